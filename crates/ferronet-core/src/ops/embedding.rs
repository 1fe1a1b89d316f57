//! `Embedding`: PyTorch's `nn.Embedding`, a lookup table. Per sample, ids of shape S
//! (a sequence [T] usually) → rows of the table, S + [C]. Parameter weight [V, C]
//! (`numEmbeddings` × `embeddingDim`), init N(0, 1) as PyTorch, the `paddingIdx` row
//! zeroed and never given a gradient.
//!
//! Ids travel as f32 through the graph like every value: integers are exact up to
//! 2^24 = 16,777,216, far above any vocabulary. A graph input's ids are checked before
//! each forward (`check_input`: not an integer, negative, ≥ numEmbeddings or NaN is a
//! typed error naming the sample and position); ids computed inside the graph are
//! clamped into range so the lookup never reads outside the table.

use super::config::parse;
use super::{expect_inputs, Backward, BadInput, Forward, Init, Op, ParamDecl, SharedMut};
use crate::error::{Error, Result};
use crate::graph::layout::is_channels_last;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmbeddingConfig {
    pub num_embeddings: usize,
    pub embedding_dim: usize,
    /// As PyTorch: negative counts from the end (−1 = the last id).
    #[serde(default)]
    pub padding_idx: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Embedding {
    /// V: rows of the table.
    vocab: usize,
    /// C: width of a row.
    dim: usize,
    in_shape: Vec<usize>,
    padding: Option<usize>,
    name: String,
}

/// Largest integer an f32 id holds exactly (2^24).
pub const MAX_EXACT_ID: usize = 1 << 24;

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "Embedding", inputs, 1)?;
    let c: EmbeddingConfig = parse(name, "Embedding", config)?;
    let field = |f: &str| format!("nodes[{name}].config.{f}");
    if c.num_embeddings == 0 || c.num_embeddings > MAX_EXACT_ID {
        return Err(Error::config(
            &field("numEmbeddings"),
            format!("{name} (Embedding): must be in 1..={MAX_EXACT_ID} (ids are carried as f32, exact up to 2^24), got {}", c.num_embeddings),
        ));
    }
    if c.embedding_dim == 0 {
        return Err(Error::config(&field("embeddingDim"), format!("{name} (Embedding): must be >= 1, got 0")));
    }
    let v = c.num_embeddings as i64;
    let padding = match c.padding_idx {
        None => None,
        Some(p) if (-v..v).contains(&p) => Some(if p < 0 { (p + v) as usize } else { p as usize }),
        Some(p) => {
            return Err(Error::config(
                &field("paddingIdx"),
                format!("{name} (Embedding): {p} is out of range for numEmbeddings {v} (use -{v}..={})", v - 1),
            ))
        }
    };
    let shape = &inputs[0];
    let mut out = shape.clone();
    out.push(c.embedding_dim);
    // Ids and rows are both read in their given order: layouts that store a sample
    // channels-last ([C, H, W] values) are refused rather than permuted.
    if is_channels_last(shape) || is_channels_last(&out) {
        return Err(Error::graph(
            name,
            format!("{name} (Embedding) takes ids of shape [T] (or any shape whose output S + [C] is not a 3-d image), got input shape {shape:?}"),
        ));
    }
    Ok(Box::new(Embedding {
        vocab: c.num_embeddings,
        dim: c.embedding_dim,
        in_shape: shape.clone(),
        padding,
        name: name.to_string(),
    }))
}

impl Embedding {
    /// The row of id value `x`: the id when it is valid, else clamped into range (ids
    /// computed inside the graph are not checked; graph inputs are, by `check_input`).
    #[inline]
    fn row(&self, x: f32) -> usize {
        debug_assert!(
            x.fract() == 0.0 && x >= 0.0 && (x as usize) < self.vocab,
            "{} (Embedding): id {x} is not in 0..{}",
            self.name,
            self.vocab
        );
        // `as` saturates (NaN → 0), then the clamp keeps the read inside the table.
        (x as usize).min(self.vocab - 1)
    }
}

impl Op for Embedding {
    fn kind(&self) -> &'static str {
        "Embedding"
    }
    fn output_shape(&self) -> Vec<usize> {
        let mut s = self.in_shape.clone();
        s.push(self.dim);
        s
    }
    fn params(&self) -> Vec<ParamDecl> {
        let zero = self.padding.map(|p| (p * self.dim, (p + 1) * self.dim));
        vec![ParamDecl::trainable("weight", vec![self.vocab, self.dim], Init::Normal { std: 1.0, zero })]
    }

    fn check_input(&self, _slot: usize, values: &[f32], _sample_size: usize) -> std::result::Result<(), BadInput> {
        let v = self.vocab;
        match values.iter().position(|&x| !(x >= 0.0 && x.fract() == 0.0 && (x as usize) < v)) {
            None => Ok(()),
            Some(index) => {
                let x = values[index];
                let reason = if x.is_nan() {
                    "is NaN, not an id".to_string()
                } else if x.fract() != 0.0 || x.is_infinite() {
                    format!("is not an integer id (ids are integers in 0..{v}, numEmbeddings {v})")
                } else {
                    format!("is out of range: ids are integers in 0..{v} (numEmbeddings {v})")
                };
                Err(BadInput { index, value: x, reason })
            }
        }
    }

    fn forward(&mut self, cx: &Forward) {
        // out[b, t, :] = weight[ids[b, t], :]
        // Copies in parallel over fixed chunks of positions (disjoint output rows).
        const POSITIONS_PER_PART: usize = 256;
        let (ids, weight) = (cx.input(0), cx.param(0));
        let c = self.dim;
        let out = SharedMut::new(cx.output());
        let n = ids.len();
        crate::team::run_parts(n.div_ceil(POSITIONS_PER_PART), &|part| {
            let p0 = part * POSITIONS_PER_PART;
            let len = POSITIONS_PER_PART.min(n - p0);
            // Safety: parts cover disjoint ranges of positions, so of output rows.
            let out = unsafe { out.slice(p0 * c, len * c) };
            for (&x, row) in ids[p0..p0 + len].iter().zip(out.chunks_exact_mut(c)) {
                let r = self.row(x);
                row.copy_from_slice(&weight[r * c..(r + 1) * c]);
            }
        });
    }

    fn backward(&mut self, cx: &Backward) {
        // dweight[v, :] = Σ over positions with ids == v (but paddingIdx) of dout[pos, :].
        // One pass in position order: a repeated id adds up, the same sum for any
        // number of threads. The ids get no gradient.
        let (ids, dout, dweight) = (cx.input(0), &*cx.dout(), cx.grad(0));
        let c = self.dim;
        dweight.fill(0.0);
        for (&x, g) in ids.iter().zip(dout.chunks_exact(c)) {
            let r = self.row(x);
            if Some(r) == self.padding {
                continue;
            }
            dweight[r * c..(r + 1) * c].iter_mut().zip(g).for_each(|(d, &g)| *d += g);
        }
        if let Some(dx) = cx.dinput(0) {
            // An id is not differentiable: its gradient is 0 (only asked of graph inputs
            // with input gradients on, or of ids computed inside the graph).
            if !cx.accumulate(0) {
                dx.fill(0.0);
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::Model;
    use crate::ops::testing::{assert_gradients, sequential_spec, GradCheck};
    use serde_json::json;

    fn spec(t: usize, config: serde_json::Value, then: &[(&str, serde_json::Value)]) -> String {
        let mut layers = vec![("Embedding", config)];
        layers.extend_from_slice(then);
        sequential_spec(&[t], &layers)
    }

    #[test]
    fn looks_up_rows_and_sums_gradients_of_repeated_ids() {
        let s = spec(4, json!({ "numEmbeddings": 3, "embeddingDim": 2 }), &[]);
        let mut m = Model::from_json(&s, 0).unwrap();
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        m.set_param(0, &w).unwrap();
        m.input_buffer(1).copy_from_slice(&[2.0, 0.0, 2.0, 2.0]);
        let out = m.forward(1).to_vec();
        assert_eq!(out, [5.0, 6.0, 1.0, 2.0, 5.0, 6.0, 5.0, 6.0]);
        m.output_grad_buffer(1).copy_from_slice(&[1.0, 1.0, 0.5, 0.5, 1.0, 2.0, 3.0, 4.0]);
        m.backward(1);
        assert_eq!(m.grads()[0].data, [0.5, 0.5, 0.0, 0.0, 5.0, 7.0]);
    }

    #[test]
    fn padding_row_starts_at_zero_and_gets_no_gradient() {
        let s = spec(3, json!({ "numEmbeddings": 4, "embeddingDim": 2, "paddingIdx": -1 }), &[]);
        let mut m = Model::from_json(&s, 7).unwrap();
        assert_eq!(&m.params()[0].data[6..8], [0.0, 0.0]);
        assert!(m.params()[0].data[..6].iter().all(|&x| x != 0.0));
        m.input_buffer(1).copy_from_slice(&[3.0, 1.0, 3.0]);
        m.forward(1);
        m.output_grad_buffer(1).fill(1.0);
        m.backward(1);
        assert_eq!(m.grads()[0].data, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn init_is_standard_normal() {
        let s = spec(1, json!({ "numEmbeddings": 1000, "embeddingDim": 100 }), &[]);
        let w = Model::from_json(&s, 3).unwrap().params()[0].data.clone();
        let n = w.len() as f64;
        let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
    }

    #[test]
    fn bad_ids_are_named() {
        let s = spec(3, json!({ "numEmbeddings": 5, "embeddingDim": 2 }), &[]);
        let m = Model::from_json(&s, 0).unwrap();
        let err = m.check_inputs(&[0.0, 1.0, 2.0, 4.0, 5.0, 1.0], 2, |r| r + 10).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sample 11") && text.contains("position 1") && text.contains('5'), "{text}");
        for bad in [-1.0, 0.5, f32::NAN, f32::INFINITY] {
            let e = m.check_inputs(&[0.0, bad, 1.0], 1, |r| r).unwrap_err().to_string();
            assert!(e.contains("0 (Embedding)") && e.contains("position 1"), "{e}");
        }
        assert!(m.check_inputs(&[0.0, 4.0, 1.0], 1, |r| r).is_ok());
    }

    #[test]
    fn config_errors_name_the_field() {
        for (c, field) in [
            (json!({ "numEmbeddings": 0, "embeddingDim": 2 }), "numEmbeddings"),
            (json!({ "numEmbeddings": 3, "embeddingDim": 0 }), "embeddingDim"),
            (json!({ "numEmbeddings": 3, "embeddingDim": 2, "paddingIdx": 3 }), "paddingIdx"),
            (json!({ "embeddingDim": 2 }), "numEmbeddings"),
        ] {
            let e = Model::from_json(&spec(2, c, &[]), 0).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let e = Model::from_json(&sequential_spec(&[3, 4], &[("Embedding", json!({ "numEmbeddings": 3, "embeddingDim": 2 }))]), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("input shape [3, 4]"), "{e}");
    }

    #[test]
    fn gradients_with_repeated_ids_and_padding() {
        // Few ids, many positions: every id repeats.
        let then = [("Tanh", serde_json::Value::Null), ("Flatten", serde_json::Value::Null), ("Linear", json!({ "outFeatures": 2 }))];
        let s = spec(6, json!({ "numEmbeddings": 4, "embeddingDim": 3 }), &then);
        assert_gradients(&s, &GradCheck { integer_inputs: Some(4), ..Default::default() });
        // With a padding row (id 3, never drawn here: the padding row's forward use has
        // a gradient PyTorch does not give it, which a finite difference would see; its
        // zero gradient is checked above).
        let s = spec(6, json!({ "numEmbeddings": 4, "embeddingDim": 3, "paddingIdx": 3 }), &then);
        assert_gradients(&s, &GradCheck { integer_inputs: Some(3), ..Default::default() });
    }
}
