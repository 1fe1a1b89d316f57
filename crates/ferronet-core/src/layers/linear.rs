//! Fully connected layer, PyTorch layout: weight [out, in], bias [out].

use crate::matmul::matmul;
use crate::rng::Rng;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::Rng as _;

/// PyTorch's default `nn.Linear` init: weight and bias uniform in ±1/sqrt(fan_in).
pub fn linear_init(inputs: usize, outputs: usize, rng: &mut Rng) -> (Array2<f32>, Array1<f32>) {
    let bound = 1.0 / (inputs as f32).sqrt();
    let weight = Array2::from_shape_simple_fn((outputs, inputs), || rng.random_range(-bound..bound));
    let bias = Array1::from_shape_simple_fn(outputs, || rng.random_range(-bound..bound));
    (weight, bias)
}

/// out[B,O] = inp[B,I] · weight[O,I]^T + bias[O]
pub fn linear_forward(
    mut out: ArrayViewMut2<f32>,
    inp: ArrayView2<f32>,
    weight: ArrayView2<f32>,
    bias: ArrayView1<f32>,
) {
    // Seed C with the bias rows, then accumulate the product onto it (beta = 1).
    let dim = out.raw_dim();
    out.assign(&bias.broadcast(dim).expect("bias broadcast"));
    matmul(1.0, inp, weight.t(), 1.0, out);
}

/// Gradients of `linear_forward` given dout[B,O]:
///   dweight[O,I] = dout^T[O,B] · inp[B,I]
///   dbias[O]     = sum over B of dout[B,O]
///   dinp[B,I]    = dout[B,O] · weight[O,I]   (None for the first layer: nobody needs it)
/// Gradients are overwritten, not accumulated: one backward per step.
pub fn linear_backward(
    dinp: Option<ArrayViewMut2<f32>>,
    mut dweight: ArrayViewMut2<f32>,
    mut dbias: ArrayViewMut1<f32>,
    dout: ArrayView2<f32>,
    inp: ArrayView2<f32>,
    weight: ArrayView2<f32>,
) {
    matmul(1.0, dout.t(), inp, 0.0, dweight.view_mut());
    dbias.fill(0.0);
    for row in dout.axis_iter(Axis(0)) {
        dbias += &row;
    }
    if let Some(dinp) = dinp {
        matmul(1.0, dout, weight, 0.0, dinp);
    }
}
