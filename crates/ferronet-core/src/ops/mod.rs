//! Layers (ops), one file each: its config (the serialisable spec, with defaults),
//! shape inference, parameter declaration (PyTorch names, shapes and init), forward and
//! backward, and its tests. Every op sits behind the one [`Op`] trait and is built from
//! its JSON config by the [`REGISTRY`]; adding a layer is its file plus one registry line
//! (and the TypeScript builder).
//!
//! Buffers belong to the graph: an op reads its inputs and parameters and writes its
//! output through a [`Forward`] or [`Backward`] context whose slices point into the
//! activation arena and the parameter store. What backward needs beyond inputs and
//! output (column buffers, argmax indices, batch statistics, dropout masks) is kept by
//! the op itself in scratch sized once per batch capacity in [`Op::prepare`].
//! Nothing here allocates per batch.

pub mod activations;
pub mod adaptive_avgpool2d;
pub mod add;
pub mod attention;
pub mod avgpool2d;
pub mod batchnorm;
pub mod concat;
pub mod config;
pub mod conv2d;
pub mod conv2d_single;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod kl_divergence;
pub mod layer_norm;
pub mod gru;
pub mod linear;
pub mod lstm;
pub mod maxpool2d;
pub mod pool;
pub mod position_embedding;
pub mod relu;
pub mod rnn;
pub mod reparameterize;
pub mod testing;

use crate::error::{Error, Result};
use crate::rng::Rng;
use rand::Rng as _;

/// Train or eval: dropout and batch normalisation behave differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// How a parameter tensor starts (drawn in PyTorch's layout and order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in ±bound: PyTorch's default for Linear and Conv weights and biases
    /// (kaiming_uniform with a = √5 is U(±1/√fan_in)).
    Uniform { bound: f32 },
    Constant(f32),
    /// N(0, std²): `nn.Embedding`'s init. `zero` is a range of the flat tensor set to 0
    /// after the draw (the padding row, as PyTorch fills it).
    Normal { std: f32, zero: Option<(usize, usize)> },
}

impl Init {
    pub fn fill(&self, out: &mut [f32], rng: &mut Rng) {
        match *self {
            Init::Uniform { bound } => out
                .iter_mut()
                .for_each(|x| *x = rng.random_range(-bound..bound)),
            Init::Constant(c) => out.fill(c),
            Init::Normal { std, zero } => {
                // Box–Muller on pairs of uniforms from the seeded stream: two values per pair.
                for pair in out.chunks_mut(2) {
                    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
                    let u2: f64 = rng.random::<f64>();
                    let r = (-2.0 * u1.ln()).sqrt();
                    let t = std::f64::consts::TAU * u2;
                    pair[0] = (std as f64 * r * t.cos()) as f32;
                    if let Some(x) = pair.get_mut(1) {
                        *x = (std as f64 * r * t.sin()) as f32;
                    }
                }
                if let Some((a, b)) = zero {
                    out[a..b].fill(0.0);
                }
            }
        }
    }
}

/// A graph-input value an op cannot take (an id that is not an integer in range):
/// `index` is its position in the batch's values (sample = index / sample size).
#[derive(Debug, Clone, PartialEq)]
pub struct BadInput {
    pub index: usize,
    pub value: f32,
    /// What is wrong, e.g. "is not an integer in 0..100 (numEmbeddings)".
    pub reason: String,
}

/// Trainable parameters get gradients and are updated by optimizers; buffers
/// (BatchNorm's running statistics) are state saved with the model, never trained.
/// Counters are buffers PyTorch keeps as int64 (BatchNorm's `num_batches_tracked`):
/// held here as an f32 (exact up to 2^24) and written to model files as I64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Trainable,
    Buffer,
    Counter,
}

/// One tensor an op owns, as PyTorch's `state_dict` names and shapes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    /// The name after the node's scope: "weight", "bias", "running_mean".
    pub name: &'static str,
    /// PyTorch's shape; the op may store it in another layout (see `param_from_torch`).
    pub shape: Vec<usize>,
    pub init: Init,
    pub kind: ParamKind,
}

impl ParamDecl {
    pub fn trainable(name: &'static str, shape: Vec<usize>, init: Init) -> Self {
        ParamDecl {
            name,
            shape,
            init,
            kind: ParamKind::Trainable,
        }
    }
    pub fn buffer(name: &'static str, shape: Vec<usize>, init: Init) -> Self {
        ParamDecl {
            name,
            shape,
            init,
            kind: ParamKind::Buffer,
        }
    }
    pub fn counter(name: &'static str) -> Self {
        ParamDecl {
            name,
            shape: Vec::new(),
            init: Init::Constant(0.0),
            kind: ParamKind::Counter,
        }
    }
    /// Saturating: a shape too large to count is usize::MAX values, refused by every allocation.
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A layer. Built once per node with its input shapes known; run once per batch.
pub trait Op: Send + std::fmt::Debug {
    /// The op's name in the spec ("Conv2d").
    fn kind(&self) -> &'static str;

    /// Shape of one sample of the output (PyTorch order, batch left out).
    fn output_shape(&self) -> Vec<usize>;

    /// The tensors this op owns, in PyTorch's `state_dict` order.
    fn params(&self) -> Vec<ParamDecl> {
        Vec::new()
    }

    /// Converts parameter `index` from PyTorch's layout to the one the op computes with.
    fn param_from_torch(&self, _index: usize, torch: &[f32], internal: &mut [f32]) {
        internal.copy_from_slice(torch)
    }

    /// Converts parameter `index` from the op's layout to PyTorch's.
    fn param_to_torch(&self, _index: usize, internal: &[f32], torch: &mut [f32]) {
        torch.copy_from_slice(internal)
    }

    /// Weight tying: Some((index, node)) when parameter `index` is not the op's own but
    /// the `weight` of `node` (an earlier node), shared as PyTorch's
    /// `lm_head.weight = wte.weight`: one tensor in the store, both names in exports.
    /// The op then keeps that parameter in the owner's layout (PyTorch's), and its
    /// gradient is summed with the owner's by the graph.
    fn tied_to(&self) -> Option<(usize, &str)> {
        None
    }

    /// Sizes the op's own scratch for batches of up to `capacity` samples. Called
    /// when the graph's batch capacity grows, never per batch.
    fn prepare(&mut self, _capacity: usize) {}

    /// Checks a batch of graph-input values read on input `slot` (`values` are rows ×
    /// `sample_size`, stored layout) before a forward: the Model calls it from its public
    /// entry points (training, evaluation, prediction), so a bad id is a typed error
    /// naming the sample instead of a wrong answer. Values computed inside the graph are
    /// never checked: ops must stay memory-safe on any value.
    fn check_input(&self, _slot: usize, _values: &[f32], _sample_size: usize) -> std::result::Result<(), BadInput> {
        Ok(())
    }

    fn forward(&mut self, cx: &Forward);

    fn backward(&mut self, cx: &Backward);

    /// Takes over a ReLU applied right after this op (the only consumer of its output):
    /// from then on the op's output is the ReLU's. Return false to decline.
    fn fuse_relu(&mut self) -> bool {
        false
    }

    /// Whether the op can apply a ReLU mask to an input's gradient as it writes it
    /// (`Backward::mask_dinput`), folding the producer's ReLU backward into its product.
    fn takes_input_relu_mask(&self) -> bool {
        false
    }

    /// BatchNorm at evaluation is y = x·scale + shift per channel of the last stored
    /// axis: it writes them (from `cx.param`) and returns true, so the graph can fold it
    /// into the op before it.
    fn eval_affine(&self, _cx: &Forward, _scale: &mut [f32], _shift: &mut [f32]) -> bool {
        false
    }

    /// Forward with the output then scaled and shifted per output channel (the last
    /// stored axis): a following BatchNorm folded into the weights and bias at
    /// evaluation. Returns false if the op cannot.
    fn forward_affine(&mut self, _cx: &Forward, _scale: &[f32], _shift: &[f32]) -> bool {
        false
    }

    /// Multiply-adds of one sample's forward pass (products only; 0 for ops without),
    /// for FLOP rates: the backward is one such product per gradient it computes.
    fn forward_macs(&self) -> usize {
        0
    }

    fn clone_box(&self) -> Box<dyn Op>;
}

impl Clone for Box<dyn Op> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A builder: node name, config (JSON, may be null), per-sample input shapes.
pub type BuildFn = fn(&str, &serde_json::Value, &[Vec<usize>]) -> Result<Box<dyn Op>>;

/// Every op the graph knows, by its spec name.
pub const REGISTRY: &[(&str, BuildFn)] = &[
    ("Linear", linear::build),
    ("ReLU", relu::build),
    ("Conv2d", conv2d::build),
    ("MaxPool2d", maxpool2d::build),
    ("AvgPool2d", avgpool2d::build),
    ("AdaptiveAvgPool2d", adaptive_avgpool2d::build),
    ("Flatten", flatten::build),
    ("BatchNorm1d", batchnorm::build_1d),
    ("BatchNorm2d", batchnorm::build_2d),
    ("Dropout", dropout::build),
    ("Sigmoid", activations::build_sigmoid),
    ("Tanh", activations::build_tanh),
    ("LeakyReLU", activations::build_leaky_relu),
    ("GELU", activations::build_gelu),
    ("SiLU", activations::build_silu),
    ("Softmax", activations::build_softmax),
    ("LogSoftmax", activations::build_log_softmax),
    ("Add", add::build),
    ("Concat", concat::build),
    ("Embedding", embedding::build),
    ("PositionEmbedding", position_embedding::build),
    ("LayerNorm", layer_norm::build),
    ("MultiHeadAttention", attention::build),
    ("Reparameterize", reparameterize::build),
    ("KLDivergence", kl_divergence::build),
    ("LSTM", lstm::build),
    ("GRU", gru::build),
];

/// Builds node `name`'s op `kind` from its config and input shapes.
pub fn build(
    name: &str,
    kind: &str,
    config: &serde_json::Value,
    inputs: &[Vec<usize>],
) -> Result<Box<dyn Op>> {
    match REGISTRY.iter().find(|(k, _)| *k == kind) {
        Some((_, build)) => build(name, config, inputs),
        None => Err(Error::config(
            &format!("nodes[{name}].op"),
            format!(
                "unknown op {kind:?}; known ops: {}",
                REGISTRY.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// A buffer of the graph: `len` floats at `ptr` (a value's whole capacity, or a parameter).
#[derive(Debug, Clone, Copy)]
pub struct Buf {
    pub(crate) ptr: *mut f32,
    pub(crate) len: usize,
}

unsafe impl Send for Buf {}
unsafe impl Sync for Buf {}

impl Buf {
    pub(crate) const EMPTY: Buf = Buf {
        ptr: std::ptr::NonNull::dangling().as_ptr(),
        len: 0,
    };
    /// # Safety
    /// The buffer is alive and nobody else writes its first `n` floats meanwhile.
    unsafe fn get<'a>(self, n: usize) -> &'a [f32] {
        assert!(n <= self.len, "buffer of {} floats read as {n}", self.len);
        std::slice::from_raw_parts(self.ptr, n)
    }
    /// # Safety
    /// As `get`, and nobody else reads them either.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get_mut<'a>(self, n: usize) -> &'a mut [f32] {
        assert!(n <= self.len, "buffer of {} floats written as {n}", self.len);
        std::slice::from_raw_parts_mut(self.ptr, n)
    }
}

/// A value (activation) of the graph as an op sees it: its per-sample shape and
/// buffer (capacity rows).
#[derive(Debug, Clone)]
pub struct Port {
    pub shape: Vec<usize>,
    /// Floats per sample.
    pub size: usize,
    pub(crate) buf: Buf,
}

/// What `forward` reads and writes. The graph guarantees that inputs, output and
/// parameters are distinct, non-overlapping buffers, so the accessors hand out
/// slices with the context's lifetime. Call `output` once.
#[derive(Debug)]
pub struct Forward<'a> {
    /// Samples in this batch.
    pub rows: usize,
    pub mode: Mode,
    /// Random bits of this node for this step: the same for any thread count.
    pub seed: u64,
    pub(crate) inputs: &'a [Port],
    pub(crate) output: &'a Port,
    pub(crate) params: &'a [Buf],
}

impl<'a> Forward<'a> {
    /// Input `i`: rows × its sample size.
    pub fn input(&self, i: usize) -> &'a [f32] {
        let p = &self.inputs[i];
        unsafe { p.buf.get(self.rows * p.size) }
    }
    pub fn input_shape(&self, i: usize) -> &'a [usize] {
        &self.inputs[i].shape
    }
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// The output: rows × output sample size.
    #[allow(clippy::mut_from_ref)]
    pub fn output(&self) -> &'a mut [f32] {
        unsafe { self.output.buf.get_mut(self.rows * self.output.size) }
    }
    /// Parameter or buffer `i`, in the op's declaration order and its own layout.
    pub fn param(&self, i: usize) -> &'a [f32] {
        unsafe { self.params[i].get(self.params[i].len) }
    }
    /// A buffer the forward pass updates (BatchNorm's running statistics).
    #[allow(clippy::mut_from_ref)]
    pub fn param_mut(&self, i: usize) -> &'a mut [f32] {
        unsafe { self.params[i].get_mut(self.params[i].len) }
    }
}

/// What `backward` reads and writes: the output's gradient `dout` (which the op may
/// overwrite: it is its own), the inputs' gradients where needed, the parameters'.
#[derive(Debug)]
pub struct Backward<'a> {
    pub rows: usize,
    pub mode: Mode,
    pub seed: u64,
    pub(crate) inputs: &'a [Port],
    pub(crate) output: &'a Port,
    pub(crate) dout: Buf,
    /// Per input: its gradient buffer, or EMPTY when not needed.
    pub(crate) dinputs: &'a [Buf],
    pub(crate) needs_dinput: &'a [bool],
    pub(crate) accumulate: &'a [bool],
    pub(crate) mask_dinput: &'a [bool],
    /// For an op with a fused ReLU: whether dout still needs that ReLU's mask.
    pub(crate) dout_unmasked: bool,
    pub(crate) params: &'a [Buf],
    pub(crate) grads: &'a [Buf],
}

impl<'a> Backward<'a> {
    pub fn input(&self, i: usize) -> &'a [f32] {
        let p = &self.inputs[i];
        unsafe { p.buf.get(self.rows * p.size) }
    }
    pub fn input_shape(&self, i: usize) -> &'a [usize] {
        &self.inputs[i].shape
    }
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// The output forward wrote.
    pub fn output(&self) -> &'a [f32] {
        unsafe { self.output.buf.get(self.rows * self.output.size) }
    }
    /// The gradient of the loss with respect to the output (rows × output size).
    #[allow(clippy::mut_from_ref)]
    pub fn dout(&self) -> &'a mut [f32] {
        unsafe { self.dout.get_mut(self.rows * self.output.size) }
    }
    /// The gradient of input `i`, to be written (or added to, see `accumulate`);
    /// None when no one needs it (a graph input, a frozen branch).
    #[allow(clippy::mut_from_ref)]
    pub fn dinput(&self, i: usize) -> Option<&'a mut [f32]> {
        if !self.needs_dinput[i] {
            return None;
        }
        let n = self.rows * self.inputs[i].size;
        Some(unsafe { self.dinputs[i].get_mut(n) })
    }
    /// Whether another consumer already wrote input `i`'s gradient: then add (GEMM beta 1),
    /// else overwrite (beta 0).
    pub fn accumulate(&self, i: usize) -> bool {
        self.accumulate[i]
    }
    /// Whether input `i` is a ReLU's output whose backward this op applies: zero the
    /// gradient where the input is <= 0 (only asked of ops that `takes_input_relu_mask`).
    pub fn mask_dinput(&self, i: usize) -> bool {
        self.mask_dinput[i]
    }
    pub fn param(&self, i: usize) -> &'a [f32] {
        unsafe { self.params[i].get(self.params[i].len) }
    }
    /// The gradient of trainable parameter `i`: overwritten by each backward pass.
    #[allow(clippy::mut_from_ref)]
    pub fn grad(&self, i: usize) -> &'a mut [f32] {
        unsafe { self.grads[i].get_mut(self.grads[i].len) }
    }
    /// Applies the fused ReLU's backward to dout unless a consumer already did
    /// (for ops that took a ReLU with `fuse_relu`).
    pub fn apply_fused_relu_mask(&self) {
        if self.dout_unmasked {
            crate::ops::relu::mask_inplace(self.dout(), self.output());
        }
    }
}

/// The per-sample size of a shape.
/// Saturating: a shape too large to count is usize::MAX values, refused by every allocation.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// Checks the number of inputs of node `name`.
pub fn expect_inputs(name: &str, kind: &str, inputs: &[Vec<usize>], n: usize) -> Result<()> {
    if inputs.len() != n {
        return Err(Error::graph(
            name,
            format!(
                "{name} ({kind}) takes {n} input{}, got {}",
                if n == 1 { "" } else { "s" },
                inputs.len()
            ),
        ));
    }
    Ok(())
}

/// A buffer that the parts of one `team::run_parts` loop write in disjoint pieces
/// (one sample each), so it can be shared by the parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedMut<T> {
    ptr: *mut T,
    len: usize,
}

unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub(crate) fn new(s: &mut [T]) -> Self {
        SharedMut { ptr: s.as_mut_ptr(), len: s.len() }
    }
    /// Elements `start..start + len`.
    ///
    /// # Safety
    /// No two slices handed out at the same time overlap, and the buffer outlives them.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice<'a>(&self, start: usize, len: usize) -> &'a mut [T] {
        assert!(start + len <= self.len, "part {start}..{} of a buffer of {}", start + len, self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}

/// dx ⊙= [x > 0]: the backward of the ReLU that produced an op's input, applied by
/// the op to the input gradient it wrote (`Backward::mask_dinput`).
pub(crate) fn mask_by_input(dx: &mut [f32], x: &[f32]) {
    crate::ops::relu::mask_inplace(dx, x)
}

/// dst = src, or dst += src when another consumer already wrote this input gradient
/// (`Backward::accumulate`).
pub(crate) fn write_grad(dst: &mut [f32], src: &[f32], accumulate: bool) {
    if accumulate {
        dst.iter_mut().zip(src).for_each(|(d, &g)| *d += g);
    } else {
        dst.copy_from_slice(src);
    }
}
