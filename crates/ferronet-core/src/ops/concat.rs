//! `Concat`: `torch.cat` of two or more inputs along `dim` (default 1; batch = 0,
//! negative from the end), equal in every other dimension.
//!
//! In the stored layout each sample of input j is [outer, n_j, inner] (outer and
//! inner the same for every input) and the output's [outer, Σ n_j, inner]: for each
//! outer index the inputs' runs of n_j·inner values follow one another. For [C, H, W]
//! values stored [H, W, C], concatenating channels (dim 1) has outer = H·W and
//! inner = 1: the channels interleave per spatial position.

use super::config::{parse, resolve_dim};
use super::{Backward, Forward, Op};
use crate::error::{Error, Result};
use crate::graph::layout::stored_split;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConcatConfig {
    #[serde(default = "default_dim")]
    dim: i64,
}
fn default_dim() -> i64 {
    1
}

#[derive(Debug, Clone)]
pub struct Concat {
    shape: Vec<usize>,
    /// Per sample: outer blocks, and per input its run of n_j·inner values.
    outer: usize,
    runs: Vec<usize>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    let c: ConcatConfig = parse(name, "Concat", config)?;
    if inputs.len() < 2 {
        return Err(Error::graph(name, format!("{name} (Concat) takes two or more inputs, got {}", inputs.len())));
    }
    let first = &inputs[0];
    let axis = resolve_dim(name, "Concat", c.dim, first.len())?;
    for (i, s) in inputs.iter().enumerate().skip(1) {
        let fits = s.len() == first.len() && s.iter().zip(first).enumerate().all(|(d, (a, b))| d == axis || a == b);
        if !fits {
            return Err(Error::graph(
                name,
                format!(
                    "{name} (Concat) along dim {} needs inputs equal in every other dimension: input 0 has shape {first:?} but input {i} has shape {s:?}",
                    c.dim
                ),
            ));
        }
    }
    let mut shape = first.clone();
    shape[axis] = inputs.iter().map(|s| s[axis]).sum();
    let (outer, _, inner) = stored_split(first, axis);
    let runs = inputs.iter().map(|s| s[axis] * inner).collect();
    Ok(Box::new(Concat { shape, outer, runs }))
}

impl Concat {
    /// For input j: (offset of its run in an output block, its length, output block length).
    fn place(&self, j: usize) -> (usize, usize, usize) {
        (self.runs[..j].iter().sum(), self.runs[j], self.runs.iter().sum())
    }
}

impl Op for Concat {
    fn kind(&self) -> &'static str {
        "Concat"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn forward(&mut self, cx: &Forward) {
        // out[o, off_j .. off_j + run_j] = in_j[o, ..]  for every block o of the batch
        let out = cx.output();
        for j in 0..self.runs.len() {
            let (off, run, block) = self.place(j);
            let x = cx.input(j);
            for (o, src) in x.chunks_exact(run).enumerate().take(cx.rows * self.outer) {
                out[o * block + off..o * block + off + run].copy_from_slice(src);
            }
        }
    }
    fn backward(&mut self, cx: &Backward) {
        // din_j[o, ..] (+)= dout[o, off_j .. off_j + run_j], one input at a time
        // (Concat(x, x) hands both slots one buffer).
        let dout = &*cx.dout();
        for j in 0..self.runs.len() {
            let Some(d) = cx.dinput(j) else { continue };
            let (off, run, block) = self.place(j);
            let acc = cx.accumulate(j);
            for (o, dst) in d.chunks_exact_mut(run).enumerate() {
                super::write_grad(dst, &dout[o * block + off..o * block + off + run], acc);
            }
        }
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::layout::{to_logical, to_stored};
    use crate::graph::Model;
    use crate::ops::testing::{check_gradients, GradCheck};
    use crate::ops::{Buf, Forward, Mode, Port};
    use serde_json::json;

    fn graph(shape: &[usize], nodes: &[(&str, &str, &[&str], serde_json::Value)]) -> String {
        json!({
            "format": "ferronet-graph",
            "version": 1,
            "inputs": [{ "name": "input", "shape": shape }],
            "nodes": nodes.iter().map(|(n, op, ins, c)| json!({ "name": n, "op": op, "inputs": ins, "config": c })).collect::<Vec<_>>(),
            "outputs": [nodes.last().unwrap().0],
        })
        .to_string()
    }

    /// torch.cat of samples given in PyTorch order, per sample along per-sample `axis`.
    fn cat_logical(shapes: &[Vec<usize>], xs: &[Vec<f32>], axis: usize, rows: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for r in 0..rows {
            let before: usize = shapes[0][..axis].iter().product();
            for b in 0..before {
                for (s, x) in shapes.iter().zip(xs) {
                    let run: usize = s[axis..].iter().product();
                    let size: usize = s.iter().product();
                    out.extend_from_slice(&x[r * size + b * run..r * size + (b + 1) * run]);
                }
            }
        }
        out
    }

    /// Runs the op directly on inputs of different sizes (the model has one input).
    fn run_op(shapes: &[Vec<usize>], dim: i64, rows: usize) {
        let op_shapes: Vec<Vec<usize>> = shapes.to_vec();
        let mut op = super::build("c", &json!({ "dim": dim }), &op_shapes).unwrap();
        let out_shape = op.output_shape();
        let mut xs: Vec<Vec<f32>> = Vec::new();
        let mut stored: Vec<Vec<f32>> = Vec::new();
        for (k, s) in shapes.iter().enumerate() {
            let n = rows * s.iter().product::<usize>();
            let x: Vec<f32> = (0..n).map(|i| (100 * k + i) as f32).collect();
            let mut st = vec![0.0; n];
            to_stored(s, &x, &mut st);
            xs.push(x);
            stored.push(st);
        }
        let mut out = vec![0.0; rows * out_shape.iter().product::<usize>()];
        let ports: Vec<Port> = shapes
            .iter()
            .zip(stored.iter_mut())
            .map(|(s, st)| Port { shape: s.clone(), size: s.iter().product(), buf: Buf { ptr: st.as_mut_ptr(), len: st.len() } })
            .collect();
        let out_port = Port { shape: out_shape.clone(), size: out_shape.iter().product(), buf: Buf { ptr: out.as_mut_ptr(), len: out.len() } };
        op.forward(&Forward { rows, mode: Mode::Train, seed: 0, inputs: &ports, output: &out_port, params: &[] });
        let mut logical = vec![0.0; out.len()];
        to_logical(&out_shape, &out, &mut logical);
        let axis = if dim < 0 { (shapes[0].len() as i64 + 1 + dim) as usize - 1 } else { dim as usize - 1 };
        assert_eq!(logical, cat_logical(shapes, &xs, axis, rows), "{shapes:?} dim {dim}");
    }

    #[test]
    fn exact_forward_for_every_dim_and_uneven_sizes() {
        // [C, H, W] along channels (interleaved per spatial position in the stored layout), H and W.
        run_op(&[vec![2, 2, 3], vec![3, 2, 3]], 1, 2);
        run_op(&[vec![1, 2, 3], vec![2, 2, 3], vec![1, 2, 3]], 1, 2);
        run_op(&[vec![2, 1, 3], vec![2, 3, 3]], 2, 2);
        run_op(&[vec![2, 2, 1], vec![2, 2, 2]], -1, 2);
        run_op(&[vec![3, 2], vec![1, 2]], 1, 3);
        run_op(&[vec![3, 2], vec![3, 4]], -1, 3);
        run_op(&[vec![3], vec![5]], 1, 2);
    }

    #[test]
    fn gradients_with_repeated_and_transformed_inputs() {
        for (shape, dim) in [(&[2, 2, 3][..], 1), (&[2, 2, 3], 2), (&[2, 2, 3], -1), (&[3, 4], 1), (&[5], -1)] {
            let s = graph(shape, &[
                ("t", "Tanh", &["input"], json!(null)),
                ("c", "Concat", &["input", "t", "input"], json!({ "dim": dim })),
            ]);
            check_gradients(&s, &GradCheck::default()).unwrap_or_else(|e| panic!("{shape:?} dim {dim}: {e}"));
        }
        // Uneven sizes along the last dim of a [T, F] input, through two Linears.
        let s = graph(&[3, 4], &[
            ("a", "Linear", &["input"], json!({ "outFeatures": 2 })),
            ("b", "Linear", &["input"], json!({ "outFeatures": 5 })),
            ("c", "Concat", &["a", "b"], json!({ "dim": 2 })),
        ]);
        check_gradients(&s, &GradCheck::default()).unwrap();
    }

    #[test]
    fn concat_of_a_value_with_itself_gets_both_gradients() {
        let s = graph(&[2], &[("c", "Concat", &["input", "input"], json!(null))]);
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_input_grad(true);
        m.set_input(1, &[1.0, 2.0]);
        assert_eq!(m.forward(1), &[1.0, 2.0, 1.0, 2.0]);
        m.output_grad_buffer(1).copy_from_slice(&[1.0, 2.0, 10.0, 20.0]);
        m.backward(1);
        assert_eq!(m.input_grad(1).unwrap(), &[11.0, 22.0]);
    }

    #[test]
    fn mismatched_shapes_and_bad_dims_are_named() {
        let s = graph(&[4], &[("l", "Linear", &["input"], json!({ "outFeatures": 3 })), ("c", "Concat", &["input", "l"], json!(null))]);
        assert!(Model::from_json(&s, 0).is_ok(), "rank-1 inputs may differ along dim 1");
        let s = graph(&[2, 4], &[("l", "Linear", &["input"], json!({ "outFeatures": 3 })), ("c", "Concat", &["input", "l"], json!({ "dim": 1 }))]);
        let e = Model::from_json(&s, 0).unwrap_err().to_string();
        assert!(e.contains("c (Concat)") && e.contains("[2, 4]") && e.contains("[2, 3]"), "{e}");
        let s = graph(&[2, 4], &[("c", "Concat", &["input", "input"], json!({ "dim": 0 }))]);
        let e = Model::from_json(&s, 0).unwrap_err().to_string();
        assert!(e.contains("config.dim"), "{e}");
    }
}
