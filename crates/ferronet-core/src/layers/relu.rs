//! ReLU: out = max(inp, 0).

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// out[B,N] = max(inp[B,N], 0)
pub fn relu_forward(out: ArrayViewMut2<f32>, inp: ArrayView2<f32>) {
    Zip::from(out)
        .and(inp)
        .for_each(|o, &x| *o = if x > 0.0 { x } else { 0.0 });
}

/// In place in PyTorch's convention: the gradient passes where the output was positive.
///   dinp[B,N] = dout[B,N] · [out > 0]
pub fn relu_backward(dinp: ArrayViewMut2<f32>, dout: ArrayView2<f32>, out: ArrayView2<f32>) {
    Zip::from(dinp)
        .and(dout)
        .and(out)
        .for_each(|d, &g, &y| *d = if y > 0.0 { g } else { 0.0 });
}

/// The same mask applied in place to a gradient buffer.
pub fn relu_backward_inplace(grad: ArrayViewMut2<f32>, out: ArrayView2<f32>) {
    Zip::from(grad).and(out).for_each(|g, &y| {
        if y <= 0.0 {
            *g = 0.0
        }
    });
}
