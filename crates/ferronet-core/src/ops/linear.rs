//! `Linear`: PyTorch's `nn.Linear` on the last dimension. Weight [out, in] and bias
//! [out] at the API; the weight is stored transposed, weight_t [in, out], so both large
//! products (forward and weight gradient) read a row-major right-hand side.
//!
//! Weight tying (`tiedTo: "<Embedding node>"`, a GPT's output projection sharing the
//! token table: nanoGPT's `lm_head.weight = wte.weight`): the weight is then the
//! Embedding's [V, C] tensor, kept in its layout ([out, in], PyTorch's) and read
//! through a transposed view; its gradient is summed with the Embedding's by the graph.

use super::config::{default_true, parse};
use super::{expect_inputs, Backward, Forward, Init, Op, ParamDecl};
use crate::error::{Error, Result};
use crate::gemm::{Epilogue, MatMut, MatRef};
use crate::matmul::matmul;
use crate::rng::Rng;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::Rng as _;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinearConfig {
    pub out_features: usize,
    #[serde(default = "default_true")]
    pub bias: bool,
    /// The name of an Embedding node (listed before) whose weight this one shares.
    #[serde(default)]
    pub tied_to: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Linear {
    inputs: usize,
    outputs: usize,
    bias: bool,
    /// Leading per-sample dims (a [T, F] input is T rows of F per sample).
    lead: Vec<usize>,
    relu: bool,
    /// Weight and bias with a following BatchNorm1d folded in (evaluation only).
    folded: Vec<f32>,
    /// Tied to this Embedding's weight: stored [out, in] (not transposed).
    tied_to: Option<String>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "Linear", inputs, 1)?;
    let c: LinearConfig = parse(name, "Linear", config)?;
    if c.out_features == 0 {
        return Err(Error::config(&format!("nodes[{name}].config.outFeatures"), "must be > 0"));
    }
    let shape = &inputs[0];
    if shape.is_empty() || shape.len() > 2 {
        return Err(Error::graph(
            name,
            format!(
                "{name} (Linear) takes [features] or [steps, features] per sample, got input shape {shape:?}{}",
                if shape.len() == 3 { " (put a Flatten before it)" } else { "" }
            ),
        ));
    }
    Ok(Box::new(Linear {
        inputs: *shape.last().unwrap(),
        outputs: c.out_features,
        bias: c.bias,
        lead: shape[..shape.len() - 1].to_vec(),
        relu: false,
        folded: Vec::new(),
        tied_to: c.tied_to,
    }))
}

impl Linear {
    /// Rows of the product for `rows` samples.
    fn product_rows(&self, rows: usize) -> usize {
        rows * self.lead.iter().product::<usize>()
    }
    /// The weight as weight_t [in, out]: the stored tensor, or for a tied weight (stored
    /// [out, in]) its transposed view.
    fn weight_t<'a>(&self, w: &'a [f32]) -> ArrayView2<'a, f32> {
        let (i, o) = (self.inputs, self.outputs);
        match self.tied_to {
            None => ArrayView2::from_shape((i, o), w).unwrap(),
            Some(_) => ArrayView2::from_shape((o, i), w).unwrap().reversed_axes(),
        }
    }
}

impl Op for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }
    fn output_shape(&self) -> Vec<usize> {
        let mut s = self.lead.clone();
        s.push(self.outputs);
        s
    }
    fn params(&self) -> Vec<ParamDecl> {
        let bound = 1.0 / (self.inputs as f32).sqrt();
        let mut p = vec![ParamDecl::trainable("weight", vec![self.outputs, self.inputs], Init::Uniform { bound })];
        if self.bias {
            p.push(ParamDecl::trainable("bias", vec![self.outputs], Init::Uniform { bound }));
        }
        p
    }
    fn tied_to(&self) -> Option<(usize, &str)> {
        self.tied_to.as_deref().map(|t| (0, t))
    }
    fn param_from_torch(&self, index: usize, torch: &[f32], internal: &mut [f32]) {
        if index == 0 && self.tied_to.is_none() {
            transpose(torch, self.outputs, self.inputs, internal)
        } else {
            internal.copy_from_slice(torch)
        }
    }
    fn param_to_torch(&self, index: usize, internal: &[f32], torch: &mut [f32]) {
        if index == 0 && self.tied_to.is_none() {
            transpose(internal, self.inputs, self.outputs, torch)
        } else {
            torch.copy_from_slice(internal)
        }
    }
    fn fuse_relu(&mut self) -> bool {
        // The epilogue adds a bias as it applies the ReLU; without one, stay unfused.
        self.relu = self.bias;
        self.relu
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }

    fn forward(&mut self, cx: &Forward) {
        let m = self.product_rows(cx.rows);
        let (i, o) = (self.inputs, self.outputs);
        let inp = ArrayView2::from_shape((m, i), cx.input(0)).unwrap();
        let out = ArrayViewMut2::from_shape((m, o), cx.output()).unwrap();
        let weight_t = self.weight_t(cx.param(0));
        let epilogue = match (self.bias, self.relu) {
            (true, false) => Epilogue::Bias(cx.param(1)),
            (true, true) => Epilogue::BiasRelu(cx.param(1)),
            (false, _) => Epilogue::None,
        };
        matmul(1.0, inp, weight_t, 0.0, out, epilogue);
    }

    fn forward_macs(&self) -> usize {
        self.lead.iter().product::<usize>() * self.inputs * self.outputs
    }

    fn forward_affine(&mut self, cx: &Forward, scale: &[f32], shift: &[f32]) -> bool {
        // A BatchNorm1d after a Linear at evaluation: weight_t'[i, o] = weight_t[i, o]·scale[o],
        // bias'[o] = bias[o]·scale[o] + shift[o]; one product instead of product + pass.
        if self.tied_to.is_some() {
            return false;
        }
        let (i, o) = (self.inputs, self.outputs);
        let mut folded = std::mem::take(&mut self.folded);
        folded.resize(i * o + o, 0.0);
        let (w, b) = folded.split_at_mut(i * o);
        for (dst, src) in w.chunks_exact_mut(o).zip(cx.param(0).chunks_exact(o)) {
            for ((d, &v), &s) in dst.iter_mut().zip(src).zip(scale) {
                *d = v * s;
            }
        }
        for c in 0..o {
            let bias = if self.bias { cx.param(1)[c] } else { 0.0 };
            b[c] = bias * scale[c] + shift[c];
        }
        let m = self.product_rows(cx.rows);
        let inp = ArrayView2::from_shape((m, i), cx.input(0)).unwrap();
        let out = ArrayViewMut2::from_shape((m, o), cx.output()).unwrap();
        matmul(1.0, inp, ArrayView2::from_shape((i, o), &*w).unwrap(), 0.0, out, Epilogue::Bias(b));
        self.folded = folded;
        true
    }

    fn backward(&mut self, cx: &Backward) {
        if self.relu {
            cx.apply_fused_relu_mask();
        }
        let m = self.product_rows(cx.rows);
        let (i, o) = (self.inputs, self.outputs);
        let dout = ArrayView2::from_shape((m, o), &*cx.dout()).unwrap();
        let inp = ArrayView2::from_shape((m, i), cx.input(0)).unwrap();
        let weight_t = self.weight_t(cx.param(0));
        if self.tied_to.is_none() {
            // dweight_t[I,O] = inpᵀ[I,m] · dout[m,O]
            let dweight_t = ArrayViewMut2::from_shape((i, o), cx.grad(0)).unwrap();
            matmul(1.0, inp.t(), dout, 0.0, dweight_t, Epilogue::None);
        } else {
            // dweight[O,I] = doutᵀ[O,m] · inp[m,I]  (the Embedding's layout)
            let dweight = ArrayViewMut2::from_shape((o, i), cx.grad(0)).unwrap();
            matmul(1.0, dout.t(), inp, 0.0, dweight, Epilogue::None);
        }
        if self.bias {
            column_sums(dout, ArrayViewMut1::from(cx.grad(1)));
        }
        if let Some(dinp) = cx.dinput(0) {
            // dinp[m,I] (+)= dout[m,O] · weight_tᵀ[O,I], masked by the producer's ReLU if asked.
            let dinp = ArrayViewMut2::from_shape((m, i), dinp).unwrap();
            let beta = if cx.accumulate(0) { 1.0 } else { 0.0 };
            let epilogue = if cx.mask_dinput(0) {
                Epilogue::ReluMask(MatRef::from_view(inp))
            } else {
                Epilogue::None
            };
            matmul(1.0, dout, weight_t.t(), beta, dinp, epilogue);
        }
    }

    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

/// dst[c, r] = src[r, c] for src [rows, cols].
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for r in 0..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

/// out[j] = Σ_i m[i, j]
pub fn column_sums(m: ArrayView2<f32>, mut out: ArrayViewMut1<f32>) {
    out.fill(0.0);
    for row in m.axis_iter(Axis(0)) {
        out += &row;
    }
}

// The plain function pair, kept for the gradient checks and the examples.

/// PyTorch's default `nn.Linear` init: weight and bias uniform in ±1/sqrt(fan_in).
pub fn linear_init(inputs: usize, outputs: usize, rng: &mut Rng) -> (Array2<f32>, Array1<f32>) {
    let bound = 1.0 / (inputs as f32).sqrt();
    let weight = Array2::from_shape_simple_fn((outputs, inputs), || rng.random_range(-bound..bound));
    let bias = Array1::from_shape_simple_fn(outputs, || rng.random_range(-bound..bound));
    (weight, bias)
}

/// out[B,O] = inp[B,I] · weight_t[I,O] + bias[O]           (relu = false)
/// out[B,O] = max(inp[B,I] · weight_t[I,O] + bias[O], 0)   (relu = true: a following ReLU, fused)
pub fn linear_forward(
    out: ArrayViewMut2<f32>,
    inp: ArrayView2<f32>,
    weight_t: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    relu: bool,
) {
    let bias = bias.to_slice().expect("bias is contiguous");
    let epilogue = if relu { Epilogue::BiasRelu(bias) } else { Epilogue::Bias(bias) };
    matmul(1.0, inp, weight_t, 0.0, out, epilogue);
}

/// Gradients of `linear_forward` (without its ReLU) given dout[B,O]:
///   dweight_t[I,O] = inpᵀ[I,B] · dout[B,O]
///   dbias[O]       = sum over B of dout[B,O]
///   dinp[B,I]      = dout[B,O] · weight_t[I,O]ᵀ                 (None for the first layer)
///   dinp[B,I]   ⊙= [mask[B,I] > 0]  when `dinp_relu_mask` is given.
pub fn linear_backward(
    dinp: Option<ArrayViewMut2<f32>>,
    dinp_relu_mask: Option<ArrayView2<f32>>,
    dweight_t: ArrayViewMut2<f32>,
    dbias: ArrayViewMut1<f32>,
    dout: ArrayView2<f32>,
    inp: ArrayView2<f32>,
    weight_t: ArrayView2<f32>,
) {
    matmul(1.0, inp.t(), dout, 0.0, dweight_t, Epilogue::None);
    column_sums(dout, dbias);
    if let Some(dinp) = dinp {
        let epilogue = match dinp_relu_mask {
            Some(mask) => Epilogue::ReluMask(MatRef::from_view(mask)),
            None => Epilogue::None,
        };
        crate::gemm::gemm(
            1.0,
            MatRef::from_view(dout),
            MatRef::from_view(weight_t.t()),
            0.0,
            MatMut::from_view(dinp),
            epilogue,
        );
    }
}
