//! `PositionEmbedding`: learned absolute positions, GPT-2's `wpe`. Per sample
//! [T, C] → [T, C] = input + weight[0..T]; weight [P, C] with P = `numPositions` ≥ T
//! (default T), init N(0, 1) as `nn.Embedding` (the table GPT-2 looks positions up in:
//! the lookup of 0..T is the first T rows).

use super::config::parse;
use super::{expect_inputs, write_grad, Backward, Forward, Init, Op, ParamDecl};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PositionEmbeddingConfig {
    #[serde(default)]
    pub num_positions: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct PositionEmbedding {
    steps: usize,
    dim: usize,
    positions: usize,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "PositionEmbedding", inputs, 1)?;
    let c: PositionEmbeddingConfig = parse(name, "PositionEmbedding", config)?;
    let shape = &inputs[0];
    let [t, ch] = shape[..] else {
        return Err(Error::graph(
            name,
            format!("{name} (PositionEmbedding) takes a sequence [steps, features] per sample, got input shape {shape:?}"),
        ));
    };
    let positions = c.num_positions.unwrap_or(t);
    if positions < t {
        return Err(Error::config(
            &format!("nodes[{name}].config.numPositions"),
            format!("{name} (PositionEmbedding): {positions} positions is fewer than the input's {t} steps (input shape {shape:?})"),
        ));
    }
    Ok(Box::new(PositionEmbedding { steps: t, dim: ch, positions }))
}

impl Op for PositionEmbedding {
    fn kind(&self) -> &'static str {
        "PositionEmbedding"
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![self.steps, self.dim]
    }
    fn params(&self) -> Vec<ParamDecl> {
        vec![ParamDecl::trainable("weight", vec![self.positions, self.dim], Init::Normal { std: 1.0, zero: None })]
    }

    fn forward(&mut self, cx: &Forward) {
        // out[b, t, c] = inp[b, t, c] + weight[t, c]
        let n = self.steps * self.dim;
        let wpe = &cx.param(0)[..n];
        for (o, x) in cx.output().chunks_exact_mut(n).zip(cx.input(0).chunks_exact(n)) {
            o.iter_mut().zip(x).zip(wpe).for_each(|((o, &x), &w)| *o = x + w);
        }
    }

    fn backward(&mut self, cx: &Backward) {
        // dweight[t, c] = Σ_b dout[b, t, c] (rows T..P unused: 0);  dinp = dout
        let n = self.steps * self.dim;
        let dout = &*cx.dout();
        let dw = cx.grad(0);
        dw.fill(0.0);
        for g in dout.chunks_exact(n) {
            dw[..n].iter_mut().zip(g).for_each(|(d, &g)| *d += g);
        }
        if let Some(dx) = cx.dinput(0) {
            write_grad(dx, dout, cx.accumulate(0));
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
    fn adds_the_first_rows() {
        let s = sequential_spec(&[2, 2], &[("PositionEmbedding", json!({ "numPositions": 3 }))]);
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_param(0, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        m.input_buffer(2).copy_from_slice(&[0.5; 8]);
        assert_eq!(m.forward(2), [1.5, 2.5, 3.5, 4.5, 1.5, 2.5, 3.5, 4.5]);
        let e = Model::from_json(&sequential_spec(&[4, 2], &[("PositionEmbedding", json!({ "numPositions": 3 }))]), 0).unwrap_err();
        assert!(e.to_string().contains("numPositions"), "{e}");
        let e = Model::from_json(&sequential_spec(&[4], &[("PositionEmbedding", json!({}))]), 0).unwrap_err();
        assert!(e.to_string().contains("[steps, features]"), "{e}");
    }

    #[test]
    fn gradients() {
        let s = sequential_spec(
            &[3, 4],
            &[("PositionEmbedding", json!({ "numPositions": 5 })), ("Tanh", json!(null)), ("Linear", json!({ "outFeatures": 2 }))],
        );
        assert_gradients(&s, &GradCheck::default());
        let s = fanout_spec(&[3, 4], ("Tanh", json!(null)), ("PositionEmbedding", json!(null)));
        assert_gradients(&s, &GradCheck::default());
    }
}
