//! Fully connected layer, PyTorch layout: weight [out, in], bias [out].

use crate::gemm::{Epilogue, MatRef};
use crate::matmul::matmul;
use crate::rng::Rng;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::Rng as _;

/// PyTorch's default `nn.Linear` init: weight and bias uniform in ±1/sqrt(fan_in).
pub fn linear_init(inputs: usize, outputs: usize, rng: &mut Rng) -> (Array2<f32>, Array1<f32>) {
    let bound = 1.0 / (inputs as f32).sqrt();
    let weight =
        Array2::from_shape_simple_fn((outputs, inputs), || rng.random_range(-bound..bound));
    let bias = Array1::from_shape_simple_fn(outputs, || rng.random_range(-bound..bound));
    (weight, bias)
}

/// The weight is stored transposed, weight_t[I,O] = weightᵀ, so both large products
/// (forward and weight gradient) read a row-major right-hand side.
///
/// out[B,O] = inp[B,I] · weight_t[I,O] + bias[O]           (relu = false)
/// out[B,O] = max(inp[B,I] · weight_t[I,O] + bias[O], 0)   (relu = true: a following ReLU, fused)
/// Bias and ReLU are applied to each output tile as the product writes it.
pub fn linear_forward(
    out: ArrayViewMut2<f32>,
    inp: ArrayView2<f32>,
    weight_t: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    relu: bool,
) {
    let bias = bias.to_slice().expect("bias is contiguous");
    let epilogue = if relu {
        Epilogue::BiasRelu(bias)
    } else {
        Epilogue::Bias(bias)
    };
    matmul(1.0, inp, weight_t, 0.0, out, epilogue);
}

/// Gradients of `linear_forward` (without its ReLU) given dout[B,O]:
///   dweight_t[I,O] = inpᵀ[I,B] · dout[B,O]
///   dbias[O]       = sum over B of dout[B,O]
///   dinp[B,I]      = dout[B,O] · weight_t[I,O]ᵀ                 (None for the first layer)
///   dinp[B,I]   ⊙= [mask[B,I] > 0]  when `dinp_relu_mask` is given: the backward of a
///                  ReLU before this layer (mask = its output), fused into the product.
/// Gradients are overwritten, not accumulated: one backward per step.
pub fn linear_backward(
    dinp: Option<ArrayViewMut2<f32>>,
    dinp_relu_mask: Option<ArrayView2<f32>>,
    dweight_t: ArrayViewMut2<f32>,
    mut dbias: ArrayViewMut1<f32>,
    dout: ArrayView2<f32>,
    inp: ArrayView2<f32>,
    weight_t: ArrayView2<f32>,
) {
    matmul(1.0, inp.t(), dout, 0.0, dweight_t, Epilogue::None);
    dbias.fill(0.0);
    for row in dout.axis_iter(Axis(0)) {
        dbias += &row;
    }
    if let Some(dinp) = dinp {
        let epilogue = match dinp_relu_mask {
            Some(mask) => Epilogue::ReluMask(MatRef::from_view(mask)),
            None => Epilogue::None,
        };
        matmul(1.0, dout, weight_t.t(), 0.0, dinp, epilogue);
    }
}
