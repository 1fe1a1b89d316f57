//! A sequential network of layers, with its parameters, gradients and the
//! activation workspaces of one batch size (allocated once, reused every batch).

use crate::data::Inputs;
use crate::error::{Error, Result};
use crate::layers::linear::{linear_backward, linear_forward, linear_init};
use crate::layers::relu::{relu_backward, relu_backward_inplace, relu_forward};
use crate::loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward, LossSum};
use crate::optim::{Optimizer, TensorRef};
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
    /// weight_t [in, out] (the transpose of PyTorch's [out, in], so every large product
    /// reads its operands row-contiguously), bias [out], and their gradients.
    Linear {
        weight_t: Array2<f32>,
        bias: Array1<f32>,
        dweight_t: Array2<f32>,
        dbias: Array1<f32>,
    },
    Relu,
}

/// One unit of work of the forward pass; `input`/`output` index the activations.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Linear layer `layer`, with the ReLU that follows it fused in when `relu`
    /// (then `output` is the ReLU's output and the pre-activation is never stored).
    Dense {
        layer: usize,
        relu: bool,
        input: usize,
        output: usize,
    },
    /// A ReLU not preceded by a linear layer.
    Relu { input: usize, output: usize },
}

fn plan(layers: &[Layer]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        match layers[i] {
            Layer::Linear { .. } => {
                let relu = matches!(layers.get(i + 1), Some(Layer::Relu));
                let output = if relu { i + 2 } else { i + 1 };
                steps.push(Step::Dense {
                    layer: i,
                    relu,
                    input: i,
                    output,
                });
                i = output;
            }
            Layer::Relu => {
                steps.push(Step::Relu {
                    input: i,
                    output: i + 1,
                });
                i += 1;
            }
        }
    }
    steps
}

/// A copy of one parameter tensor in PyTorch's layout and naming.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// `<layer index>.weight` ([out, in]) or `<layer index>.bias` ([out]).
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
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
    /// The execution plan: layers with a ReLU right after them run as one fused step.
    steps: Vec<Step>,
    seed: u64,
    ws: Workspace,
    /// Scratch for `apply_optimizer`.
    tensor_refs: Vec<TensorRef>,
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
                    let weight_t = weight.t().as_standard_layout().into_owned();
                    layers.push(Layer::Linear {
                        dweight_t: Array2::zeros(weight_t.raw_dim()),
                        dbias: Array1::zeros(bias.raw_dim()),
                        weight_t,
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
        let steps = plan(&layers);
        Ok(Model {
            input_dim,
            specs: specs.to_vec(),
            layers,
            widths,
            steps,
            seed,
            ws: Workspace::default(),
            tensor_refs: Vec::new(),
        })
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

    /// Copies of the parameter tensors in layer order (weight, then bias), PyTorch layout.
    pub fn params(&self) -> Vec<Param> {
        self.tensors(|w, _, b, _| (w, b))
    }

    /// Copies of the gradients of the last backward pass, same order and layout as `params`.
    pub fn grads(&self) -> Vec<Param> {
        self.tensors(|_, dw, _, db| (dw, db))
    }

    fn tensors(
        &self,
        pick: impl for<'a> Fn(
            &'a Array2<f32>,
            &'a Array2<f32>,
            &'a Array1<f32>,
            &'a Array1<f32>,
        ) -> (&'a Array2<f32>, &'a Array1<f32>),
    ) -> Vec<Param> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if let Layer::Linear {
                weight_t,
                bias,
                dweight_t,
                dbias,
            } = layer
            {
                let (w_t, b) = pick(weight_t, dweight_t, bias, dbias);
                let (inputs, outputs) = w_t.dim();
                out.push(Param {
                    name: format!("{i}.weight"),
                    shape: vec![outputs, inputs],
                    data: w_t.t().iter().copied().collect(),
                });
                out.push(Param {
                    name: format!("{i}.bias"),
                    shape: vec![outputs],
                    data: b.to_vec(),
                });
            }
        }
        out
    }

    /// Replaces parameter tensor `index` (in `params` order) with `values` in PyTorch
    /// layout; the length must match and every value must be finite.
    pub fn set_param(&mut self, index: usize, values: &[f32]) -> Result<()> {
        let mut k = 0;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if let Layer::Linear { weight_t, bias, .. } = layer {
                for kind in ["weight", "bias"] {
                    if k == index {
                        let len = if kind == "weight" {
                            weight_t.len()
                        } else {
                            bias.len()
                        };
                        if len != values.len() {
                            return Err(Error::shape(
                                &format!("parameter {i}.{kind}"),
                                format!("{len} values"),
                                values.len(),
                            ));
                        }
                        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
                            return Err(Error::config(
                                &format!("{i}.{kind}[{j}]"),
                                format!("is {}, parameters must be finite", values[j]),
                            ));
                        }
                        if kind == "weight" {
                            let (inputs, outputs) = weight_t.dim();
                            let given = ndarray::ArrayView2::from_shape((outputs, inputs), values)
                                .expect("length checked");
                            weight_t.assign(&given.t());
                        } else {
                            bias.as_slice_mut().unwrap().copy_from_slice(values);
                        }
                        return Ok(());
                    }
                    k += 1;
                }
            }
        }
        Err(Error::config(
            "parameter index",
            format!("{index} is past the last of {k} parameter tensors"),
        ))
    }

    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Linear { weight_t, bias, .. } => weight_t.len() + bias.len(),
                Layer::Relu => 0,
            })
            .sum()
    }

    /// Makes room for `rows` rows of activations (and their gradients when training).
    fn ensure_workspace(&mut self, rows: usize) {
        if self.ws.capacity >= rows && !self.ws.acts.is_empty() {
            return;
        }
        self.ws.capacity = rows;
        self.ws.acts = self
            .widths
            .iter()
            .map(|&w| Array2::zeros((rows, w)))
            .collect();
        self.ws.dacts = self
            .widths
            .iter()
            .map(|&w| Array2::zeros((rows, w)))
            .collect();
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
        assert!(
            rows <= self.ws.capacity,
            "forward_batch: fill input_buffer first"
        );
        let acts = &mut self.ws.acts;
        for step in &self.steps {
            match *step {
                Step::Dense {
                    layer,
                    relu,
                    input,
                    output,
                } => {
                    let Layer::Linear { weight_t, bias, .. } = &self.layers[layer] else {
                        unreachable!()
                    };
                    let (before, after) = acts.split_at_mut(output);
                    let inp = before[input].slice(s![..rows, ..]);
                    linear_forward(
                        after[0].slice_mut(s![..rows, ..]),
                        inp,
                        weight_t.view(),
                        bias.view(),
                        relu,
                    );
                }
                Step::Relu { input, output } => {
                    let (before, after) = acts.split_at_mut(output);
                    relu_forward(
                        after[0].slice_mut(s![..rows, ..]),
                        before[input].slice(s![..rows, ..]),
                    );
                }
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
        // Steps before the first dense layer have nothing to learn and need no gradient.
        let first = self
            .steps
            .iter()
            .position(|s| matches!(s, Step::Dense { .. }))
            .unwrap();
        let (acts, dacts) = (&self.ws.acts, &mut self.ws.dacts);
        // Whether dacts[output of the current step] already carries that step's ReLU mask
        // (applied by the next layer's fused backward product).
        let mut masked = false;
        for s in (first..self.steps.len()).rev() {
            match self.steps[s] {
                Step::Dense {
                    layer,
                    relu,
                    input,
                    output,
                } => {
                    let (dbefore, dafter) = dacts.split_at_mut(output);
                    if relu && !masked {
                        relu_backward_inplace(
                            dafter[0].slice_mut(s![..rows, ..]),
                            acts[output].slice(s![..rows, ..]),
                        );
                    }
                    let dout = dafter[0].slice(s![..rows, ..]);
                    let need_dinp = s > first;
                    // The previous step's ReLU backward rides on this layer's dinp product.
                    let fuse_mask =
                        need_dinp && matches!(self.steps[s - 1], Step::Dense { relu: true, .. });
                    let Layer::Linear {
                        weight_t,
                        dweight_t,
                        dbias,
                        ..
                    } = &mut self.layers[layer]
                    else {
                        unreachable!()
                    };
                    linear_backward(
                        need_dinp.then(|| dbefore[input].slice_mut(s![..rows, ..])),
                        fuse_mask.then(|| acts[input].slice(s![..rows, ..])),
                        dweight_t.view_mut(),
                        dbias.view_mut(),
                        dout,
                        acts[input].slice(s![..rows, ..]),
                        weight_t.view(),
                    );
                    masked = fuse_mask;
                }
                Step::Relu { input, output } => {
                    let (dbefore, dafter) = dacts.split_at_mut(output);
                    relu_backward(
                        dbefore[input].slice_mut(s![..rows, ..]),
                        dafter[0].slice(s![..rows, ..]),
                        acts[output].slice(s![..rows, ..]),
                    );
                    masked = false;
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
        // Rebuilt each step into a buffer kept across steps: no allocation after the first.
        self.tensor_refs.clear();
        for layer in self.layers.iter_mut() {
            if let Layer::Linear {
                weight_t,
                bias,
                dweight_t,
                dbias,
            } = layer
            {
                self.tensor_refs.push(TensorRef {
                    param: weight_t.as_mut_ptr(),
                    grad: dweight_t.as_ptr(),
                    len: weight_t.len(),
                });
                self.tensor_refs.push(TensorRef {
                    param: bias.as_mut_ptr(),
                    grad: dbias.as_ptr(),
                    len: bias.len(),
                });
            }
        }
        // Safety: the refs point at this model's own, distinct, contiguous buffers,
        // borrowed mutably by `self` for the whole call.
        unsafe { optimizer.step(&self.tensor_refs) };
    }

    /// Sum of every gradient element: one streaming read of all gradients (used to
    /// measure what fusing the optimizer into the gradient product could save).
    pub fn sum_of_gradients(&self) -> f32 {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Linear {
                    dweight_t, dbias, ..
                } => dweight_t.sum() + dbias.sum(),
                Layer::Relu => 0.0,
            })
            .sum()
    }

    /// Logits for `rows` rows of inputs [rows, input_dim] (u8 pixels are scaled as in
    /// training), computed in chunks.
    pub fn predict(&mut self, inputs: Inputs, out: &mut [f32]) -> Result<()> {
        const CHUNK: usize = 1024;
        let dim = self.input_dim;
        let classes = self.output_dim();
        if inputs.len() % dim != 0 {
            return Err(Error::shape(
                "predict input",
                format!("a multiple of {dim} values (the network's input width)"),
                inputs.len(),
            ));
        }
        let rows = inputs.len() / dim;
        if out.len() != rows * classes {
            return Err(Error::shape("predict output", rows * classes, out.len()));
        }
        for start in (0..rows).step_by(CHUNK) {
            let n = CHUNK.min(rows - start);
            let mut buf = self.input_buffer(n);
            for (r, mut row) in buf.rows_mut().into_iter().enumerate() {
                inputs.copy_row(start + r, dim, row.as_slice_mut().unwrap());
            }
            let logits = self.forward_batch(n);
            for (r, row) in logits.rows().into_iter().enumerate() {
                out[(start + r) * classes..(start + r + 1) * classes]
                    .copy_from_slice(row.as_slice().unwrap());
            }
        }
        Ok(())
    }
}
