//! `LayerNorm`: PyTorch's `nn.LayerNorm(C)` over the last dimension. Each row of C
//! values (a [T, C] sample is T rows) is normalised by its own mean and (biased)
//! variance, then scaled and shifted: y = (x − mean)·rstd·weight + bias,
//! rstd = 1/√(var + eps). Params weight [C] (ones) and bias [C] (zeros), unless
//! `elementwiseAffine` is false (neither) or `bias` is false (no bias).
//!
//! As llm.c's layernorm_forward/backward: forward keeps mean and rstd per row (the op's
//! scratch), backward recomputes the normalised value from them. Rows are independent,
//! so both passes run in parallel over fixed chunks of rows; the weight and bias
//! gradients are summed per chunk and then in chunk order: the same bits for any thread
//! count.

use super::config::{default_true, parse};
use super::{expect_inputs, numel, Backward, Forward, Init, Op, ParamDecl, SharedMut};
use crate::error::{Error, Result};
use crate::graph::layout::is_channels_last;
use crate::team::run_parts;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LayerNormConfig {
    #[serde(default = "default_eps")]
    pub eps: f32,
    #[serde(default = "default_true")]
    pub elementwise_affine: bool,
    #[serde(default = "default_true")]
    pub bias: bool,
}

fn default_eps() -> f32 {
    1e-5
}

/// Rows per parallel part (and per partial sum of the parameter gradients).
const ROWS_PER_PART: usize = 64;

#[derive(Debug, Clone)]
pub struct LayerNorm {
    shape: Vec<usize>,
    /// C: the normalised width.
    c: usize,
    /// Rows per sample (numel / C).
    rows_per_sample: usize,
    eps: f32,
    affine: bool,
    bias: bool,
    /// Per row of the last forward: mean and 1/√(var + eps).
    mean: Vec<f32>,
    rstd: Vec<f32>,
    /// Per part: its sums of dweight and dbias (2·C each part).
    partials: Vec<f32>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "LayerNorm", inputs, 1)?;
    let c: LayerNormConfig = parse(name, "LayerNorm", config)?;
    if !(c.eps.is_finite() && c.eps > 0.0) {
        return Err(Error::config(&format!("nodes[{name}].config.eps"), format!("{name} (LayerNorm): must be a finite number > 0, got {}", c.eps)));
    }
    let shape = &inputs[0];
    // The last logical axis must be the contiguous one: [C, H, W] images are stored
    // channels-last, so their W is not.
    if shape.is_empty() || is_channels_last(shape) {
        return Err(Error::graph(
            name,
            format!("{name} (LayerNorm) normalises the last dimension of [features] or [steps, features] samples, got input shape {shape:?}"),
        ));
    }
    let width = *shape.last().unwrap();
    Ok(Box::new(LayerNorm {
        shape: shape.clone(),
        c: width,
        rows_per_sample: numel(shape) / width,
        eps: c.eps,
        affine: c.elementwise_affine,
        bias: c.elementwise_affine && c.bias,
        mean: Vec::new(),
        rstd: Vec::new(),
        partials: Vec::new(),
    }))
}

/// One row: out = (inp − mean)·rstd·w + b; returns (mean, rstd).
fn forward_row(out: &mut [f32], inp: &[f32], w: Option<&[f32]>, b: Option<&[f32]>, eps: f32) -> (f32, f32) {
    let c = inp.len() as f32;
    let mean = inp.iter().sum::<f32>() / c;
    let var = inp.iter().map(|&x| (x - mean) * (x - mean)).sum::<f32>() / c;
    let rstd = 1.0 / (var + eps).sqrt();
    match (w, b) {
        (Some(w), Some(b)) => {
            for (((o, &x), &w), &b) in out.iter_mut().zip(inp).zip(w).zip(b) {
                *o = (x - mean) * rstd * w + b;
            }
        }
        (Some(w), None) => out.iter_mut().zip(inp).zip(w).for_each(|((o, &x), &w)| *o = (x - mean) * rstd * w),
        _ => out.iter_mut().zip(inp).for_each(|(o, &x)| *o = (x - mean) * rstd),
    }
    (mean, rstd)
}

/// One row's input gradient given dout, with dnorm = dout·w:
///   dinp = (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd   (written or added)
fn backward_row(dinp: &mut [f32], dout: &[f32], inp: &[f32], w: Option<&[f32]>, mean: f32, rstd: f32, accumulate: bool) {
    let c = inp.len() as f32;
    let dnorm = |i: usize| match w {
        Some(w) => dout[i] * w[i],
        None => dout[i],
    };
    let (mut dnorm_mean, mut dnorm_norm_mean) = (0.0f32, 0.0f32);
    for i in 0..inp.len() {
        let norm = (inp[i] - mean) * rstd;
        let d = dnorm(i);
        dnorm_mean += d;
        dnorm_norm_mean += d * norm;
    }
    dnorm_mean /= c;
    dnorm_norm_mean /= c;
    for i in 0..inp.len() {
        let norm = (inp[i] - mean) * rstd;
        let g = (dnorm(i) - dnorm_mean - norm * dnorm_norm_mean) * rstd;
        if accumulate {
            dinp[i] += g;
        } else {
            dinp[i] = g;
        }
    }
}

impl Op for LayerNorm {
    fn kind(&self) -> &'static str {
        "LayerNorm"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn params(&self) -> Vec<ParamDecl> {
        let mut p = Vec::new();
        if self.affine {
            p.push(ParamDecl::trainable("weight", vec![self.c], Init::Constant(1.0)));
        }
        if self.bias {
            p.push(ParamDecl::trainable("bias", vec![self.c], Init::Constant(0.0)));
        }
        p
    }
    fn prepare(&mut self, capacity: usize) {
        let rows = capacity * self.rows_per_sample;
        self.mean = vec![0.0; rows];
        self.rstd = vec![0.0; rows];
        self.partials = vec![0.0; rows.div_ceil(ROWS_PER_PART) * 2 * self.c];
    }

    fn forward(&mut self, cx: &Forward) {
        let (c, eps) = (self.c, self.eps);
        let rows = cx.rows * self.rows_per_sample;
        let inp = cx.input(0);
        let (w, b) = (self.affine.then(|| cx.param(0)), self.bias.then(|| cx.param(1)));
        let (out, mean, rstd) = (SharedMut::new(cx.output()), SharedMut::new(&mut self.mean), SharedMut::new(&mut self.rstd));
        run_parts(rows.div_ceil(ROWS_PER_PART), &|part| {
            let r0 = part * ROWS_PER_PART;
            let n = ROWS_PER_PART.min(rows - r0);
            // Safety: parts cover disjoint rows of out, mean and rstd.
            let (out, mean, rstd) = unsafe { (out.slice(r0 * c, n * c), mean.slice(r0, n), rstd.slice(r0, n)) };
            for k in 0..n {
                let x = &inp[(r0 + k) * c..(r0 + k + 1) * c];
                (mean[k], rstd[k]) = forward_row(&mut out[k * c..(k + 1) * c], x, w, b, eps);
            }
        });
    }

    fn backward(&mut self, cx: &Backward) {
        let c = self.c;
        let rows = cx.rows * self.rows_per_sample;
        let parts = rows.div_ceil(ROWS_PER_PART);
        let (inp, dout) = (cx.input(0), &*cx.dout());
        let w = self.affine.then(|| cx.param(0));
        let (mean, rstd) = (&self.mean[..rows], &self.rstd[..rows]);
        let dinp = cx.dinput(0).map(SharedMut::new);
        let accumulate = cx.accumulate(0);
        let partials = SharedMut::new(&mut self.partials[..parts * 2 * c]);
        let (affine, has_bias) = (self.affine, self.bias);
        run_parts(parts, &|part| {
            let r0 = part * ROWS_PER_PART;
            let n = ROWS_PER_PART.min(rows - r0);
            // Safety: parts cover disjoint rows of dinp and their own partial sums.
            let sums = unsafe { partials.slice(part * 2 * c, 2 * c) };
            let (dw, db) = sums.split_at_mut(c);
            dw.fill(0.0);
            db.fill(0.0);
            for k in r0..r0 + n {
                let (x, g) = (&inp[k * c..(k + 1) * c], &dout[k * c..(k + 1) * c]);
                if affine {
                    // dweight += norm·dout;  dbias += dout
                    for i in 0..c {
                        dw[i] += (x[i] - mean[k]) * rstd[k] * g[i];
                        db[i] += g[i];
                    }
                }
                if let Some(dinp) = dinp {
                    let dx = unsafe { dinp.slice(k * c, c) };
                    backward_row(dx, g, x, w, mean[k], rstd[k], accumulate);
                }
            }
        });
        if affine {
            let dw = cx.grad(0);
            dw.fill(0.0);
            let mut db = has_bias.then(|| cx.grad(1));
            if let Some(db) = db.as_mut() {
                db.fill(0.0);
            }
            for sums in self.partials[..parts * 2 * c].chunks_exact(2 * c) {
                dw.iter_mut().zip(&sums[..c]).for_each(|(d, &s)| *d += s);
                if let Some(db) = db.as_mut() {
                    db.iter_mut().zip(&sums[c..]).for_each(|(d, &s)| *d += s);
                }
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
    use crate::ops::testing::{assert_gradients, fanout_spec, sequential_spec, GradCheck};
    use serde_json::json;

    #[test]
    fn normalises_each_row() {
        let s = sequential_spec(&[2, 4], &[("LayerNorm", json!({ "elementwiseAffine": false }))]);
        let mut m = Model::from_json(&s, 0).unwrap();
        assert!(m.params().is_empty());
        m.input_buffer(1).copy_from_slice(&[1.0, 2.0, 3.0, 4.0, -5.0, 0.0, 5.0, 0.0]);
        let y = m.forward(1).to_vec();
        for row in y.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4, "{row:?}");
        }
        let s = sequential_spec(&[4], &[("LayerNorm", json!({ "bias": false }))]);
        let m = Model::from_json(&s, 0).unwrap();
        assert_eq!(m.params().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["0.weight"]);
        let e = Model::from_json(&sequential_spec(&[3, 4, 4], &[("LayerNorm", json!({}))]), 0).unwrap_err();
        assert!(e.to_string().contains("[3, 4, 4]"), "{e}");
        let e = Model::from_json(&sequential_spec(&[4], &[("LayerNorm", json!({ "eps": 0 }))]), 0).unwrap_err();
        assert!(e.to_string().contains("eps"), "{e}");
    }

    #[test]
    fn same_bits_for_any_thread_count() {
        // 300 rows: 5 parts, partial sums of the weight gradient added in part order.
        let s = sequential_spec(&[100, 8], &[("LayerNorm", json!({}))]);
        let base = Model::from_json(&s, 0).unwrap();
        let x: Vec<f32> = (0..3 * 800).map(|i| ((i * 37) % 101) as f32 / 17.0 - 3.0).collect();
        let g: Vec<f32> = (0..3 * 800).map(|i| ((i * 13) % 29) as f32 / 7.0 - 2.0).collect();
        let with = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut m = base.clone();
            m.set_input_grad(true);
            pool.install(|| {
                crate::team::with_team(|| {
                    m.input_buffer(3).copy_from_slice(&x);
                    let y = m.forward(3).to_vec();
                    m.output_grad_buffer(3).copy_from_slice(&g);
                    m.backward(3);
                    (y, m.input_grad(3).unwrap().to_vec(), m.grads())
                })
            })
        };
        assert_eq!(with(1), with(2));
    }

    #[test]
    fn gradients() {
        for config in [json!({}), json!({ "elementwiseAffine": false }), json!({ "bias": false })] {
            // A Linear after it gives the weight and bias non-trivial gradients.
            let s = sequential_spec(&[3, 5], &[("LayerNorm", config), ("Linear", json!({ "outFeatures": 3 }))]);
            assert_gradients(&s, &GradCheck::default());
        }
        // Many rows: more than one parallel part.
        let s = sequential_spec(&[40, 3], &[("Linear", json!({ "outFeatures": 16 })), ("LayerNorm", json!({})), ("Linear", json!({ "outFeatures": 2 }))]);
        assert_gradients(&s, &GradCheck { batch: 2, samples: 30, ..Default::default() });
        let s = fanout_spec(&[2, 6], ("Tanh", json!(null)), ("LayerNorm", json!({})));
        assert_gradients(&s, &GradCheck::default());
    }
}
