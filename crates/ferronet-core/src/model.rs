//! A sequential network of layers, with its parameters, gradients and the
//! activation workspaces of one batch size (allocated once, reused every batch).

use crate::error::{Error, Result};
use crate::layers::linear::{linear_backward, linear_forward, linear_init};
use crate::layers::relu::{relu_backward_inplace, relu_forward};
use crate::loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward, LossSum};
use crate::optim::Optimizer;
use crate::rng;
use ndarray::{s, Array1, Array2, ArrayView2};

/// What the user asks for, layer by layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSpec {
    Dense { units: usize },
    Relu,
}

#[derive(Debug, Clone)]
enum Layer {
    /// weight [out, in], bias [out] and their gradients.
    Linear { weight: Array2<f32>, bias: Array1<f32>, dweight: Array2<f32>, dbias: Array1<f32> },
    Relu,
}

/// One named parameter tensor, read-only.
#[derive(Debug, Clone, Copy)]
pub struct ParamRef<'a> {
    /// PyTorch-style name: `<layer index>.weight` / `<layer index>.bias`.
    pub layer: usize,
    pub kind: &'static str,
    pub shape: [usize; 2],
    pub data: &'a [f32],
}

/// Activations of one batch: acts[0] is the input batch, acts[i+1] the output of
/// layer i; dacts mirror them with gradients. Sized for `capacity` rows.
#[derive(Debug, Clone, Default)]
struct Workspace {
    capacity: usize,
    acts: Vec<Array2<f32>>,
    dacts: Vec<Array2<f32>>,
}

#[derive(Debug, Clone)]
pub struct Model {
    input_dim: usize,
    specs: Vec<LayerSpec>,
    layers: Vec<Layer>,
    /// Width of each activation: widths[0] = input_dim, widths[i+1] = output of layer i.
    widths: Vec<usize>,
    seed: u64,
    ws: Workspace,
}

impl Model {
    /// Builds and initialises the network (PyTorch's default Linear init, from `seed`).
    pub fn sequential(input_dim: usize, specs: &[LayerSpec], seed: u64) -> Result<Model> {
        if input_dim == 0 {
            return Err(Error::config("inputDim", "must be > 0"));
        }
        if !specs.iter().any(|s| matches!(s, LayerSpec::Dense { .. })) {
            return Err(Error::config("layers", "needs at least one dense layer"));
        }
        let mut init_rng = rng::stream(seed, rng::STREAM_INIT);
        let mut widths = vec![input_dim];
        let mut layers = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let in_w = *widths.last().unwrap();
            match *spec {
                LayerSpec::Dense { units } => {
                    if units == 0 {
                        return Err(Error::config(&format!("layers[{i}].units"), "must be > 0"));
                    }
                    let (weight, bias) = linear_init(in_w, units, &mut init_rng);
                    layers.push(Layer::Linear {
                        dweight: Array2::zeros(weight.raw_dim()),
                        dbias: Array1::zeros(bias.raw_dim()),
                        weight,
                        bias,
                    });
                    widths.push(units);
                }
                LayerSpec::Relu => {
                    layers.push(Layer::Relu);
                    widths.push(in_w);
                }
            }
        }
        Ok(Model { input_dim, specs: specs.to_vec(), layers, widths, seed, ws: Workspace::default() })
    }

    pub fn input_dim(&self) -> usize {
        self.input_dim
    }
    pub fn output_dim(&self) -> usize {
        *self.widths.last().unwrap()
    }
    pub fn specs(&self) -> &[LayerSpec] {
        &self.specs
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Parameter tensors in layer order (weight then bias), as an optimizer sees them.
    pub fn params(&self) -> Vec<ParamRef<'_>> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if let Layer::Linear { weight, bias, .. } = layer {
                let (o, n) = weight.dim();
                out.push(ParamRef { layer: i, kind: "weight", shape: [o, n], data: weight.as_slice().unwrap() });
                out.push(ParamRef { layer: i, kind: "bias", shape: [o, 1], data: bias.as_slice().unwrap() });
            }
        }
        out
    }

    /// Gradients from the last `train_step`/`backward`, same order as `params`.
    pub fn grads(&self) -> Vec<&[f32]> {
        let mut out = Vec::new();
        for layer in &self.layers {
            if let Layer::Linear { dweight, dbias, .. } = layer {
                out.push(dweight.as_slice().unwrap());
                out.push(dbias.as_slice().unwrap());
            }
        }
        out
    }

    /// Replaces parameter tensor `index` (in `params` order); the length must match.
    pub fn set_param(&mut self, index: usize, values: &[f32]) -> Result<()> {
        let mut k = 0;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if let Layer::Linear { weight, bias, .. } = layer {
                for (kind, dst) in [("weight", weight.as_slice_mut().unwrap()), ("bias", bias.as_slice_mut().unwrap())] {
                    if k == index {
                        if dst.len() != values.len() {
                            return Err(Error::shape(&format!("parameter {i}.{kind}"), format!("{} values", dst.len()), values.len()));
                        }
                        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
                            return Err(Error::config(&format!("{i}.{kind}[{j}]"), format!("is {}, parameters must be finite", values[j])));
                        }
                        dst.copy_from_slice(values);
                        return Ok(());
                    }
                    k += 1;
                }
            }
        }
        Err(Error::config("parameter index", format!("{index} is past the last of {k} parameter tensors")))
    }

    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|p| p.data.len()).sum()
    }

    /// Makes room for `rows` rows of activations (and their gradients when training).
    fn ensure_workspace(&mut self, rows: usize) {
        if self.ws.capacity >= rows && !self.ws.acts.is_empty() {
            return;
        }
        self.ws.capacity = rows;
        self.ws.acts = self.widths.iter().map(|&w| Array2::zeros((rows, w))).collect();
        self.ws.dacts = self.widths.iter().map(|&w| Array2::zeros((rows, w))).collect();
    }

    /// The input buffer of a batch of `rows` rows, to be filled by the caller
    /// before `forward_batch`. Allocates only when `rows` exceeds the capacity.
    pub fn input_buffer(&mut self, rows: usize) -> ndarray::ArrayViewMut2<'_, f32> {
        self.ensure_workspace(rows);
        self.ws.acts[0].slice_mut(s![..rows, ..])
    }

    /// Runs the forward pass over the first `rows` rows of the input buffer and
    /// returns the logits [rows, outputs].
    pub fn forward_batch(&mut self, rows: usize) -> ArrayView2<'_, f32> {
        assert!(rows <= self.ws.capacity, "forward_batch: fill input_buffer first");
        for (i, layer) in self.layers.iter().enumerate() {
            let (before, after) = self.ws.acts.split_at_mut(i + 1);
            let inp = before[i].slice(s![..rows, ..]);
            let out = after[0].slice_mut(s![..rows, ..]);
            match layer {
                Layer::Linear { weight, bias, .. } => linear_forward(out, inp, weight.view(), bias.view()),
                Layer::Relu => relu_forward(out, inp),
            }
        }
        self.ws.acts.last().unwrap().slice(s![..rows, ..])
    }

    /// Forward, loss, backward over the batch in the input buffer; fills the gradients.
    /// Returns the summed loss and correct count of the batch.
    pub fn forward_backward(&mut self, rows: usize, labels: &[u8]) -> LossSum {
        debug_assert_eq!(labels.len(), rows);
        self.forward_batch(rows);
        let last = self.layers.len();
        let loss = {
            let logits = self.ws.acts[last].slice(s![..rows, ..]);
            let dlogits = self.ws.dacts[last].slice_mut(s![..rows, ..]);
            softmax_cross_entropy_backward(dlogits, logits, labels)
        };
        // The first layer that has parameters needs no input gradient: stop there.
        let first_param = self.layers.iter().position(|l| matches!(l, Layer::Linear { .. })).unwrap();
        for i in (first_param..last).rev() {
            let (dbefore, dafter) = self.ws.dacts.split_at_mut(i + 1);
            let dout = dafter[0].slice(s![..rows, ..]);
            match &mut self.layers[i] {
                Layer::Linear { weight, dweight, dbias, .. } => {
                    let inp = self.ws.acts[i].slice(s![..rows, ..]);
                    let dinp = (i > first_param).then(|| dbefore[i].slice_mut(s![..rows, ..]));
                    linear_backward(dinp, dweight.view_mut(), dbias.view_mut(), dout, inp, weight.view());
                }
                Layer::Relu => {
                    // dinp = dout · [out > 0]
                    let mut dinp = dbefore[i].slice_mut(s![..rows, ..]);
                    dinp.assign(&dout);
                    relu_backward_inplace(dinp, self.ws.acts[i + 1].slice(s![..rows, ..]));
                }
            }
        }
        loss
    }

    /// Loss and correct count of the batch in the input buffer, without gradients.
    pub fn loss_batch(&mut self, rows: usize, labels: &[u8]) -> LossSum {
        let logits = self.forward_batch(rows);
        softmax_cross_entropy_forward(logits, labels)
    }

    /// Applies one optimizer step using the gradients of the last backward pass.
    pub fn apply_optimizer(&mut self, optimizer: &mut Optimizer) {
        let mut params: Vec<&mut [f32]> = Vec::new();
        let mut grads: Vec<&[f32]> = Vec::new();
        for layer in self.layers.iter_mut() {
            if let Layer::Linear { weight, bias, dweight, dbias } = layer {
                params.push(weight.as_slice_mut().unwrap());
                params.push(bias.as_slice_mut().unwrap());
                grads.push(dweight.as_slice().unwrap());
                grads.push(dbias.as_slice().unwrap());
            }
        }
        optimizer.step(&mut params, &grads);
    }

    /// Logits for `rows` rows of f32 inputs [rows, input_dim], computed in chunks.
    pub fn predict(&mut self, inputs: &[f32], out: &mut [f32]) -> Result<()> {
        const CHUNK: usize = 1024;
        let dim = self.input_dim;
        let classes = self.output_dim();
        if inputs.len() % dim != 0 {
            return Err(Error::shape("predict input", format!("a multiple of {dim} values (the network's input width)"), inputs.len()));
        }
        let rows = inputs.len() / dim;
        if out.len() != rows * classes {
            return Err(Error::shape("predict output", rows * classes, out.len()));
        }
        for start in (0..rows).step_by(CHUNK) {
            let n = CHUNK.min(rows - start);
            let mut buf = self.input_buffer(n);
            for (r, mut row) in buf.rows_mut().into_iter().enumerate() {
                row.as_slice_mut().unwrap().copy_from_slice(&inputs[(start + r) * dim..(start + r + 1) * dim]);
            }
            let logits = self.forward_batch(n);
            for (r, row) in logits.rows().into_iter().enumerate() {
                out[(start + r) * classes..(start + r + 1) * classes].copy_from_slice(row.as_slice().unwrap());
            }
        }
        Ok(())
    }
}
