//! `ReLU`: out = max(inp, 0). After a Linear or Conv2d it is fused into that op's
//! product (bias + ReLU in the epilogue) and its backward into the next op's input
//! gradient (a mask epilogue); this file is the standalone case.

use super::{expect_inputs, Backward, Forward, Op};
use crate::error::Result;
use ndarray::{ArrayView2, ArrayViewMut2, Zip};

#[derive(Debug, Clone)]
pub struct Relu {
    shape: Vec<usize>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "ReLU", inputs, 1)?;
    super::config::parse::<NoConfig>(name, "ReLU", config)?;
    Ok(Box::new(Relu { shape: inputs[0].clone() }))
}

/// The config of ops that take none (still rejects unknown fields).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

impl Op for Relu {
    fn kind(&self) -> &'static str {
        "ReLU"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn forward(&mut self, cx: &Forward) {
        for (o, &x) in cx.output().iter_mut().zip(cx.input(0)) {
            *o = if x > 0.0 { x } else { 0.0 };
        }
    }
    fn backward(&mut self, cx: &Backward) {
        let Some(dinp) = cx.dinput(0) else { return };
        let (dout, out) = (&*cx.dout(), cx.output());
        if cx.accumulate(0) {
            for ((d, &g), &y) in dinp.iter_mut().zip(dout).zip(out) {
                if y > 0.0 {
                    *d += g;
                }
            }
        } else {
            for ((d, &g), &y) in dinp.iter_mut().zip(dout).zip(out) {
                *d = if y > 0.0 { g } else { 0.0 };
            }
        }
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

/// grad ⊙= [out > 0], in place: the backward of a fused ReLU.
pub fn mask_inplace(grad: &mut [f32], out: &[f32]) {
    for (g, &y) in grad.iter_mut().zip(out) {
        if y <= 0.0 {
            *g = 0.0;
        }
    }
}

/// out[B,N] = max(inp[B,N], 0)
pub fn relu_forward(out: ArrayViewMut2<f32>, inp: ArrayView2<f32>) {
    Zip::from(out).and(inp).for_each(|o, &x| *o = if x > 0.0 { x } else { 0.0 });
}

/// dinp[B,N] = dout[B,N] · [out > 0]
pub fn relu_backward(dinp: ArrayViewMut2<f32>, dout: ArrayView2<f32>, out: ArrayView2<f32>) {
    Zip::from(dinp)
        .and(dout)
        .and(out)
        .for_each(|d, &g, &y| *d = if y > 0.0 { g } else { 0.0 });
}
