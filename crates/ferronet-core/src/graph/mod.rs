//! A model: a DAG of ops compiled once into an execution plan over one activation
//! arena and one parameter store.
//!
//! Compiling resolves names, infers shapes (errors name the node and both shapes),
//! declares and initialises parameters (PyTorch's names, init and draw order), applies
//! the fusion rules and plans the backward pass:
//! - a ReLU that is the only consumer of a Linear/Conv2d output is folded into that
//!   op's product epilogue (bias + ReLU as the tile is written), and its backward into
//!   the next op's input-gradient product (a mask epilogue) when that op is the ReLU
//!   output's only consumer;
//! - a value used by several ops gets its gradient from each: the first writer in the
//!   backward order overwrites (GEMM beta 0), later ones add (beta 1);
//! - values that need no gradient (graph inputs, unless asked; everything before the
//!   first op with parameters) get none, so the first layer's input-gradient product
//!   is never computed.
//!
//! The arena is laid out once per batch capacity; a batch allocates nothing.

pub mod layout;
pub mod spec;
mod step;

use crate::error::{Error, Result};
use crate::ops::{self, Buf, Mode, Op, Port};
use crate::params::{ParamStore, TensorInfo};
use crate::rng;
use spec::GraphSpec;
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct Node {
    name: String,
    op: Box<dyn Op>,
    inputs: Vec<usize>,
    output: usize,
    /// Indices of this node's tensors in the store, in the op's declaration order.
    tensors: Vec<usize>,
    fused_relu: bool,
}

#[derive(Debug, Clone)]
struct Value {
    #[allow(dead_code)] // for Debug output
    name: String,
    shape: Vec<usize>,
    size: usize,
    producer: Option<usize>,
    /// (node, input slot) pairs reading this value.
    consumers: Vec<(usize, usize)>,
    offset: usize,
}

/// Per node: the buffers of its contexts, rebuilt when the arena moves.
#[derive(Debug, Clone, Default)]
struct NodePlan {
    inputs: Vec<Port>,
    output: Option<Port>,
    dout: Option<Buf>,
    dinputs: Vec<Buf>,
    needs_dinput: Vec<bool>,
    accumulate: Vec<bool>,
    mask_dinput: Vec<bool>,
    dout_unmasked: bool,
    params: Vec<Buf>,
    grads: Vec<Buf>,
    runs_backward: bool,
}

pub struct Model {
    spec: GraphSpec,
    seed: u64,
    nodes: Vec<Node>,
    values: Vec<Value>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    store: ParamStore,
    needs_grad: Vec<bool>,
    input_grad: bool,
    mode: Mode,
    /// Forward passes run in training mode: the counter of the per-node random streams.
    train_steps: u64,
    capacity: usize,
    acts: Vec<f32>,
    grads: Vec<f32>,
    plans: Vec<NodePlan>,
    /// Whether `plans` point at the current arena and store.
    planned: bool,
    /// Scratch of `apply_optimizer`, kept across steps.
    refs: Vec<crate::optim::TensorRef>,
    /// Per node: seconds spent in forward and backward, when profiling.
    profile: Option<Vec<(f64, f64)>>,
    /// Per node: the BatchNorm that is its output's only consumer, folded into it at
    /// evaluation (its weights scaled, its bias shifted: one product instead of a
    /// product and a pass over the activation).
    fold: Vec<Option<usize>>,
    eval_folding: bool,
    fold_scale: Vec<f32>,
    fold_shift: Vec<f32>,
    /// Nodes whose work a fold already did in the current forward pass.
    folded_now: Vec<bool>,
    /// Set by `release`: the buffers are gone; nothing may run on this model any more.
    released: bool,
    /// Whether the parameter gradients hold a backward's result not yet zeroed
    /// (`zero_grad`): `backward_accumulate` then adds to them.
    grads_pending: bool,
    /// `backward_accumulate`'s copy of the pending gradients (one buffer, kept).
    grad_acc: Vec<f32>,
    /// Rows of the last forward pass when it was a step-API forward (what a step-API
    /// backward runs over); 0 after any other forward.
    last_rows: usize,
    /// Whether the last backward computed the input's gradient.
    input_grad_fresh: bool,
    /// Tied tensors (weight tying): (alias tensor, offset in `tied_grads`). The alias's
    /// op writes its gradient there; after backward it is added to the owner's.
    tied: Vec<(usize, usize)>,
    tied_grads: Vec<f32>,
}

// The raw pointers in `plans` point into this model's own arena and store.
unsafe impl Send for Model {}

impl Clone for Model {
    fn clone(&self) -> Self {
        Model {
            spec: self.spec.clone(),
            seed: self.seed,
            nodes: self.nodes.clone(),
            values: self.values.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            store: self.store.clone(),
            needs_grad: self.needs_grad.clone(),
            input_grad: self.input_grad,
            mode: self.mode,
            train_steps: self.train_steps,
            capacity: 0,
            acts: Vec::new(),
            grads: Vec::new(),
            plans: self.plans.clone(),
            planned: false,
            refs: Vec::new(),
            profile: None,
            fold: self.fold.clone(),
            eval_folding: self.eval_folding,
            fold_scale: self.fold_scale.clone(),
            fold_shift: self.fold_shift.clone(),
            folded_now: self.folded_now.clone(),
            released: self.released,
            grads_pending: false,
            grad_acc: Vec::new(),
            last_rows: 0,
            input_grad_fresh: false,
            tied: self.tied.clone(),
            tied_grads: vec![0.0; self.tied_grads.len()],
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("spec", &self.spec.to_json()).finish()
    }
}

/// What the user asks for in the simple sequential MLP case (kept for the CLI's
/// seed network, the benchmarks and the tests): Dense = Linear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSpec {
    Dense { units: usize },
    Relu,
}

/// What `Model::explain` returns, all in PyTorch's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Output 0, [rows, ...output shape].
    pub outputs: Vec<f32>,
    /// ∂L/∂input, [rows, ...input shape].
    pub input_grad: Vec<f32>,
    /// For the node asked: its per-sample shape, its output and ∂L/∂ of it.
    pub node: Option<(Vec<usize>, Vec<f32>, Vec<f32>)>,
}

/// A copy of one parameter tensor in PyTorch's layout and naming.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Model {
    /// A chain of Linear/ReLU layers on inputs of width `input_dim`.
    pub fn sequential(input_dim: usize, specs: &[LayerSpec], seed: u64) -> Result<Model> {
        if input_dim == 0 {
            return Err(Error::config("inputDim", "must be > 0"));
        }
        let layers: Vec<(&str, serde_json::Value)> = specs
            .iter()
            .map(|s| match *s {
                LayerSpec::Dense { units } => ("Linear", serde_json::json!({ "outFeatures": units })),
                LayerSpec::Relu => ("ReLU", serde_json::Value::Null),
            })
            .collect();
        Model::from_spec(GraphSpec::sequential(&[input_dim], &layers), seed)
    }

    pub fn from_json(text: &str, seed: u64) -> Result<Model> {
        Model::from_spec(GraphSpec::from_json(text)?, seed)
    }

    /// Compiles `spec`, initialising the parameters from `seed`.
    pub fn from_spec(spec: GraphSpec, seed: u64) -> Result<Model> {
        Model::compile(spec, seed, true, usize::MAX)
    }

    /// `from_json`, refusing (before allocating them) specs whose parameters add up to
    /// more than `max_values` values: a file's spec cannot need more than its
    /// tensors hold, so a damaged or hostile spec is caught before it allocates.
    pub fn from_json_within(text: &str, seed: u64, max_values: usize) -> Result<Model> {
        Model::compile(GraphSpec::from_json(text)?, seed, true, max_values)
    }

    /// `from_spec` without ReLU fusion: every node keeps its own output value and
    /// gradient (what explanations read at a named node); the same tensors in the
    /// same order, so `assign_from` a fused model of the spec works.
    pub fn from_spec_unfused(spec: GraphSpec, seed: u64) -> Result<Model> {
        Model::compile(spec, seed, false, usize::MAX)
    }

    fn compile(spec: GraphSpec, seed: u64, fuse: bool, max_values: usize) -> Result<Model> {
        if spec.inputs.is_empty() {
            return Err(Error::config("spec.inputs", "needs at least one input"));
        }
        if spec.outputs.is_empty() {
            return Err(Error::config("spec.outputs", "needs at least one output"));
        }
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut values: Vec<Value> = Vec::new();
        let mut inputs = Vec::new();
        for (k, i) in spec.inputs.iter().enumerate() {
            if i.shape.is_empty() || i.shape.contains(&0) {
                return Err(Error::config(
                    &format!("spec.inputs[{k}].shape"),
                    format!("must be a non-empty list of sizes > 0, got {:?}", i.shape),
                ));
            }
            if by_name.insert(i.name.clone(), values.len()).is_some() {
                return Err(Error::config("spec.inputs", format!("name {:?} is used twice", i.name)));
            }
            inputs.push(values.len());
            values.push(Value {
                name: i.name.clone(),
                shape: i.shape.clone(),
                size: ops::numel(&i.shape),
                producer: None,
                consumers: Vec::new(),
                offset: 0,
            });
        }
        // How many times each name is read: a ReLU is fused only into a single-use output.
        let mut reads: HashMap<&str, usize> = HashMap::new();
        for n in &spec.nodes {
            for i in &n.inputs {
                *reads.entry(i.as_str()).or_default() += 1;
            }
        }
        for o in &spec.outputs {
            *reads.entry(o.as_str()).or_default() += 1;
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut store = ParamStore::default();
        let mut init_rng = rng::stream(seed, rng::STREAM_INIT);
        let (mut declared, mut dims): (usize, usize) = (0, 0);
        for n in &spec.nodes {
            if by_name.contains_key(&n.name) {
                return Err(Error::graph(&n.name, format!("node name {:?} is used twice", n.name)));
            }
            let mut ids = Vec::with_capacity(n.inputs.len());
            for i in &n.inputs {
                match by_name.get(i) {
                    Some(&v) => ids.push(v),
                    None => {
                        return Err(Error::graph(
                            &n.name,
                            format!(
                                "{} ({}) reads {i:?}, which is neither an input nor a node listed before it",
                                n.name, n.op
                            ),
                        ))
                    }
                }
            }
            // ReLU fusion: the producer's op takes the ReLU over; the ReLU's name
            // becomes another name of the producer's output.
            if fuse && n.op == "ReLU" && ids.len() == 1 && (n.config.is_null() || n.config == serde_json::json!({})) {
                let v = ids[0];
                if let Some(p) = values[v].producer {
                    let single_use = reads.get(n.inputs[0].as_str()) == Some(&1);
                    if single_use && !nodes[p].fused_relu && nodes[p].op.fuse_relu() {
                        nodes[p].fused_relu = true;
                        by_name.insert(n.name.clone(), v);
                        continue;
                    }
                }
            }
            let shapes: Vec<Vec<usize>> = ids.iter().map(|&v| values[v].shape.clone()).collect();
            // Ops lay out tables along their inputs' axes when built (pooling windows):
            // bounded too, by the same budget plus 64 Ki entries, when there is one.
            dims = shapes.iter().flatten().fold(dims, |a, &d| a.saturating_add(d));
            if dims > max_values.saturating_add(1 << 16) {
                return Err(Error::graph(
                    &n.name,
                    format!(
                        "{} ({}) reads inputs of shapes {shapes:?}: sizes far larger than the {max_values} values the file holds",
                        n.name, n.op
                    ),
                ));
            }
            let op = ops::build(&n.name, &n.op, &n.config, &shapes)?;
            let node_id = nodes.len();
            let mut tensors = Vec::new();
            let tie = op.tied_to().map(|(i, node)| (i, node.to_string()));
            for (index, decl) in op.params().into_iter().enumerate() {
                let name = format!("{}.{}", n.name, decl.name);
                if let Some((_, target)) = tie.as_ref().filter(|(i, _)| *i == index) {
                    let owner = tied_owner(&n.name, op.kind(), target, &decl.shape, &nodes, &store)?;
                    let t = store.push_alias(
                        TensorInfo {
                            name,
                            shape: decl.shape.clone(),
                            offset: 0,
                            len: 0,
                            node: node_id,
                            index,
                            kind: decl.kind,
                            group: n.group.clone().unwrap_or_default(),
                            frozen: false,
                            tied: None,
                        },
                        owner,
                    );
                    tensors.push(t);
                    continue;
                }
                declared = declared.saturating_add(decl.len());
                if declared > max_values {
                    return Err(Error::graph(
                        &n.name,
                        format!(
                            "{} ({}) brings the model to {declared} parameter values (tensor {name} {:?}), more than the {max_values} the file holds",
                            n.name, n.op, decl.shape
                        ),
                    ));
                }
                store.reserve(decl.len(), &name)?;
                let mut torch = Error::try_zeros(decl.len(), &format!("parameter {name}"))?;
                decl.init.fill(&mut torch, &mut init_rng);
                let t = store.push(TensorInfo {
                    name: format!("{}.{}", n.name, decl.name),
                    shape: decl.shape.clone(),
                    offset: 0,
                    len: decl.len(),
                    node: node_id,
                    index,
                    kind: decl.kind,
                    group: n.group.clone().unwrap_or_default(),
                    frozen: false,
                    tied: None,
                });
                op.param_from_torch(index, &torch, store.value_mut(t));
                tensors.push(t);
            }
            let shape = op.output_shape();
            if shape.is_empty() || shape.contains(&0) {
                return Err(Error::graph(
                    &n.name,
                    format!("{} ({}) would output an empty tensor, shape {shape:?} (input shapes {shapes:?})", n.name, n.op),
                ));
            }
            let out = values.len();
            for (slot, &v) in ids.iter().enumerate() {
                values[v].consumers.push((node_id, slot));
            }
            values.push(Value {
                name: n.name.clone(),
                size: ops::numel(&shape),
                shape,
                producer: Some(node_id),
                consumers: Vec::new(),
                offset: 0,
            });
            by_name.insert(n.name.clone(), out);
            nodes.push(Node {
                name: n.name.clone(),
                op,
                inputs: ids,
                output: out,
                tensors,
                fused_relu: false,
            });
        }
        store.finish()?;
        let mut outputs = Vec::new();
        for o in &spec.outputs {
            match by_name.get(o) {
                Some(&v) => outputs.push(v),
                None => return Err(Error::config("spec.outputs", format!("{o:?} is not a node or input"))),
            }
        }
        // Every node must lead to an output: otherwise its gradient would be undefined.
        let mut live = vec![false; values.len()];
        for &o in &outputs {
            live[o] = true;
        }
        for node in nodes.iter().rev() {
            if live[node.output] {
                for &i in &node.inputs {
                    live[i] = true;
                }
            }
        }
        if let Some(node) = nodes.iter().find(|n| !live[n.output]) {
            return Err(Error::graph(
                &node.name,
                format!("{} ({}) is not used by any output", node.name, node.op.kind()),
            ));
        }
        let mut offset = 0;
        for v in values.iter_mut() {
            v.offset = offset;
            offset = offset.saturating_add(v.size);
        }
        let mut tied = Vec::new();
        let mut tied_len = 0;
        for (t, info) in store.tensors.iter().enumerate() {
            if info.tied.is_some() {
                tied.push((t, tied_len));
                tied_len += info.len;
            }
        }
        let tied_grads = Error::try_zeros(tied_len, "the tied tensors' gradients")?;
        let mut model = Model {
            spec,
            seed,
            plans: vec![NodePlan::default(); nodes.len()],
            nodes,
            values,
            inputs,
            outputs,
            store,
            needs_grad: Vec::new(),
            input_grad: false,
            mode: Mode::Train,
            train_steps: 0,
            capacity: 0,
            acts: Vec::new(),
            grads: Vec::new(),
            planned: false,
            refs: Vec::new(),
            profile: None,
            fold: Vec::new(),
            eval_folding: true,
            fold_scale: Vec::new(),
            fold_shift: Vec::new(),
            folded_now: Vec::new(),
            released: false,
            grads_pending: false,
            grad_acc: Vec::new(),
            last_rows: 0,
            input_grad_fresh: false,
            tied,
            tied_grads,
        };
        model.plan_folds();
        model.plan_backward();
        Ok(model)
    }

    /// BatchNorm folding at evaluation: a node whose output only a BatchNorm reads (and
    /// no graph output) gets that BatchNorm folded into it when both ops agree at run
    /// time (`eval_affine`, `forward_affine`: Linear and Conv2d before a BatchNorm whose
    /// channel is the last stored axis).
    fn plan_folds(&mut self) {
        self.fold = vec![None; self.nodes.len()];
        let mut channels = 0;
        for (n, node) in self.nodes.iter().enumerate() {
            let v = &self.values[node.output];
            if let [(q, 0)] = v.consumers[..] {
                let kind = self.nodes[q].op.kind();
                if (kind == "BatchNorm2d" || kind == "BatchNorm1d") && !self.outputs.contains(&node.output) && !node.fused_relu {
                    self.fold[n] = Some(q);
                    channels = channels.max(*v.shape.first().unwrap_or(&0)).max(*v.shape.last().unwrap_or(&0));
                }
            }
        }
        self.fold_scale = vec![0.0; channels];
        self.fold_shift = vec![0.0; channels];
        self.folded_now = vec![false; self.nodes.len()];
    }

    /// Folds BatchNorm into the op before it at evaluation (on by default; off to compare).
    pub fn set_eval_folding(&mut self, on: bool) {
        self.eval_folding = on;
    }

    /// Which values need gradients, and per node input whether its gradient is
    /// overwritten or added to, and whether a fused ReLU's mask rides on a consumer.
    fn plan_backward(&mut self) {
        let mut needs = vec![false; self.values.len()];
        for &i in &self.inputs {
            needs[i] = self.input_grad;
        }
        for node in &self.nodes {
            let has_params = node.tensors.iter().any(|&t| self.store.tensors[t].trainable());
            needs[node.output] = has_params || node.inputs.iter().any(|&i| needs[i]);
        }
        let mut written = vec![false; self.values.len()];
        for (n, node) in self.nodes.iter().enumerate().rev() {
            let plan = &mut self.plans[n];
            plan.runs_backward = needs[node.output];
            plan.needs_dinput = node.inputs.iter().map(|&i| needs[i] && plan.runs_backward).collect();
            plan.accumulate = node
                .inputs
                .iter()
                .zip(&plan.needs_dinput)
                .map(|(&i, &need)| {
                    let acc = need && written[i];
                    if need {
                        written[i] = true;
                    }
                    acc
                })
                .collect();
            plan.mask_dinput = vec![false; node.inputs.len()];
        }
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if !node.fused_relu {
                continue;
            }
            let v = &self.values[node.output];
            let mut unmasked = true;
            if let [(c, slot)] = v.consumers[..] {
                let is_output = self.outputs.contains(&node.output);
                if !is_output && self.nodes[c].op.takes_input_relu_mask() && self.plans[c].needs_dinput[slot] {
                    self.plans[c].mask_dinput[slot] = true;
                    unmasked = false;
                }
            }
            self.plans[n].dout_unmasked = unmasked;
        }
        self.needs_grad = needs;
        self.planned = false;
    }

    /// Also compute the gradient with respect to the input (saliency, a GAN's generator).
    pub fn set_input_grad(&mut self, on: bool) {
        if self.input_grad != on {
            self.input_grad = on;
            self.plan_backward();
        }
    }

    pub fn spec(&self) -> &GraphSpec {
        &self.spec
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }
    pub fn store(&self) -> &ParamStore {
        &self.store
    }
    pub fn input_shape(&self) -> &[usize] {
        &self.values[self.inputs[0]].shape
    }
    /// Graph inputs, in the spec's order. `fit`, `predict` and `explain` feed input 0;
    /// the others (an RNN's initial state, a second modality) are set with `set_input_at`.
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// Per-sample shape of graph input `k`.
    pub fn input_shape_at(&self, k: usize) -> &[usize] {
        &self.values[self.inputs[k]].shape
    }
    /// Floats per sample of graph input `k`.
    pub fn input_dim_at(&self, k: usize) -> usize {
        self.values[self.inputs[k]].size
    }
    /// The index of the graph input called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|&v| self.values[v].name == name)
    }
    /// Errors unless the model has exactly one input (the entry points that take one
    /// array of samples: fit, evaluate, trainBatch, predict, explain).
    pub fn expect_single_input(&self, what: &str) -> Result<()> {
        if self.inputs.len() != 1 {
            let names: Vec<&str> = self.inputs.iter().map(|&v| self.values[v].name.as_str()).collect();
            return Err(Error::config(
                "net",
                format!(
                    "{what} feeds one input, but this net has {} ({}); give every input with the per-batch step API",
                    names.len(),
                    names.join(", ")
                ),
            ));
        }
        Ok(())
    }
    pub fn output_shape(&self) -> &[usize] {
        &self.values[self.outputs[0]].shape
    }
    /// Floats per input sample.
    pub fn input_dim(&self) -> usize {
        self.values[self.inputs[0]].size
    }
    /// Floats per output sample.
    pub fn output_dim(&self) -> usize {
        self.values[self.outputs[0]].size
    }
    /// Node names and ops after fusion (for tests and diagnostics): "0:Linear+ReLU".
    pub fn plan_summary(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let fold = match self.fold.get(i).copied().flatten() {
                    Some(q) => format!(" (folds {} at eval)", self.nodes[q].name),
                    None => String::new(),
                };
                format!("{}:{}{}{fold}", n.name, n.op.kind(), if n.fused_relu { "+ReLU" } else { "" })
            })
            .collect()
    }

    /// Sizes the arena for `rows` samples (only when it grows) and re-points the plans.
    /// Frees every buffer (weights, gradients, the arena): `dispose()` in JavaScript, so
    /// that memory comes back at once instead of when a garbage collection runs.
    pub fn release(&mut self) {
        self.store.values = Vec::new();
        self.store.grads = Vec::new();
        self.acts = Vec::new();
        self.grads = Vec::new();
        self.grad_acc = Vec::new();
        self.capacity = 0;
        self.planned = false;
        self.released = true;
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Bytes of the large buffers this model holds (parameters, gradients, arena), as
    /// reported to V8 so that its garbage collector knows what a net costs.
    pub fn memory_bytes(&self) -> usize {
        4 * (self.store.values.len() + self.store.grads.len() + self.acts.len() + self.grads.len() + self.grad_acc.len())
    }

    /// Allocates the activation (and gradient) arena for batches of `rows`, or says how
    /// much memory it needed: called before any work, so that a too-large batch or
    /// model is an error instead of an abort mid-step.
    pub fn reserve(&mut self, rows: usize, with_grads: bool) -> Result<()> {
        let per_sample: usize = self.values.iter().map(|v| v.size).sum();
        let n = rows.max(self.capacity).checked_mul(per_sample).unwrap_or(usize::MAX);
        if rows > self.capacity {
            self.acts = Error::try_zeros(n, &format!("the activations of a batch of {rows}"))?;
            if !self.grads.is_empty() || with_grads {
                self.grads = Error::try_zeros(n, &format!("the gradients of a batch of {rows}"))?;
            }
            self.capacity = rows;
            for node in self.nodes.iter_mut() {
                node.op.prepare(rows);
            }
            self.planned = false;
        } else if with_grads && self.grads.is_empty() {
            self.grads = Error::try_zeros(n, &format!("the gradients of a batch of {}", self.capacity))?;
            self.planned = false;
        }
        Ok(())
    }

    /// `reserve` for the calls that cannot return an error (forward, backward); the
    /// public entry points reserve first, so this only grows what they asked for.
    fn ensure_capacity(&mut self, rows: usize, with_grads: bool) {
        if let Err(e) = self.reserve(rows, with_grads) {
            panic!("{e}");
        }
        if !self.planned {
            self.point_plans();
        }
    }

    fn point_plans(&mut self) {
        let cap = self.capacity;
        let acts = self.acts.as_mut_ptr();
        let grads = self.grads.as_mut_ptr();
        let has_grads = !self.grads.is_empty();
        let port = |v: &Value| Port {
            shape: v.shape.clone(),
            size: v.size,
            buf: Buf {
                ptr: unsafe { acts.add(cap * v.offset) },
                len: cap * v.size,
            },
        };
        let gbuf = |v: &Value| {
            if has_grads {
                Buf {
                    ptr: unsafe { grads.add(cap * v.offset) },
                    len: cap * v.size,
                }
            } else {
                Buf::EMPTY
            }
        };
        let values = self.values.as_mut_ptr();
        let store_values = self.store.values.as_mut_ptr();
        let store_grads = self.store.grads.as_mut_ptr();
        for (n, node) in self.nodes.iter().enumerate() {
            let vals = unsafe { std::slice::from_raw_parts(values, self.values.len()) };
            let plan = &mut self.plans[n];
            plan.inputs = node.inputs.iter().map(|&i| port(&vals[i])).collect();
            plan.output = Some(port(&vals[node.output]));
            plan.dout = Some(gbuf(&vals[node.output]));
            plan.dinputs = node.inputs.iter().map(|&i| gbuf(&vals[i])).collect();
            plan.params = node
                .tensors
                .iter()
                .map(|&t| {
                    let i = &self.store.tensors[t];
                    Buf { ptr: unsafe { store_values.add(i.offset) }, len: i.len }
                })
                .collect();
            let tied_grads = self.tied_grads.as_mut_ptr();
            plan.grads = node
                .tensors
                .iter()
                .map(|&t| {
                    let i = &self.store.tensors[t];
                    match self.tied.iter().find(|&&(a, _)| a == t) {
                        // A tied tensor's op writes its own part of the gradient apart.
                        Some(&(_, off)) => Buf { ptr: unsafe { tied_grads.add(off) }, len: i.len },
                        None => Buf { ptr: unsafe { store_grads.add(i.offset) }, len: i.len },
                    }
                })
                .collect();
        }
        self.planned = true;
    }

    /// The input buffer of a batch of `rows` samples, in the stored layout (channels-last
    /// for [C, H, W]), to be filled before `forward`. Allocates only when `rows` grows.
    pub fn input_buffer(&mut self, rows: usize) -> &mut [f32] {
        self.input_buffer_at(0, rows)
    }

    /// `input_buffer` of graph input `k`.
    pub fn input_buffer_at(&mut self, k: usize, rows: usize) -> &mut [f32] {
        self.ensure_capacity(rows, false);
        let v = &self.values[self.inputs[k]];
        let start = self.capacity * v.offset;
        &mut self.acts[start..start + rows * v.size]
    }

    /// The input's [C, H, W] when it is stored channels-last with C > 1 (the gather
    /// transposes each sample); None when the stored order is the given one.
    pub fn input_chw(&self) -> Option<[usize; 3]> {
        match *self.input_shape() {
            [c, h, w] if layout::is_channels_last(&[c, h, w]) => Some([c, h, w]),
            _ => None,
        }
    }

    /// Fills the input buffer with `rows` samples given in PyTorch's order.
    pub fn set_input(&mut self, rows: usize, logical: &[f32]) {
        self.set_input_at(0, rows, logical)
    }

    /// Fills graph input `k` with `rows` samples given in PyTorch's order.
    pub fn set_input_at(&mut self, k: usize, rows: usize, logical: &[f32]) {
        let shape = self.input_shape_at(k).to_vec();
        layout::to_stored(&shape, logical, self.input_buffer_at(k, rows));
    }

    /// Output 0 of the last forward pass in PyTorch's order.
    pub fn output_logical(&self, rows: usize) -> Vec<f32> {
        let out = self.output(rows);
        let mut v = vec![0.0; out.len()];
        layout::to_logical(self.output_shape(), out, &mut v);
        v
    }

    /// Sets output 0's gradient from PyTorch's order (for a backward from a given gradient).
    pub fn set_output_grad(&mut self, rows: usize, logical: &[f32]) {
        let shape = self.output_shape().to_vec();
        layout::to_stored(&shape, logical, self.output_grad_buffer(rows));
    }

    /// The input's gradient in PyTorch's order (after `backward`, with `set_input_grad(true)`).
    pub fn input_grad_logical(&self, rows: usize) -> Option<Vec<f32>> {
        self.input_grad_logical_at(0, rows)
    }

    /// Graph input `k`'s gradient in PyTorch's order (after `backward`, with `set_input_grad(true)`).
    pub fn input_grad_logical_at(&self, k: usize, rows: usize) -> Option<Vec<f32>> {
        let g = self.input_grad_at(k, rows)?;
        let mut v = vec![0.0; g.len()];
        layout::to_logical(self.input_shape_at(k), g, &mut v);
        Some(v)
    }

    /// Tensor `t`'s values in the op's own layout (for gradient checks).
    pub fn tensor_value_mut(&mut self, t: usize) -> &mut [f32] {
        self.store.value_mut(t)
    }

    /// Sets the training-step counter of the random streams (a gradient check repeats
    /// one step's dropout masks: the next forward uses step + 1).
    pub fn set_train_step(&mut self, step: u64) {
        self.train_steps = step;
    }

    /// Train-mode forward passes so far: the step counter of the random streams.
    pub fn train_steps(&self) -> u64 {
        self.train_steps
    }

    /// Runs every node over the first `rows` samples of the input buffer; returns output 0.
    pub fn forward(&mut self, rows: usize) -> &[f32] {
        assert!(rows <= self.capacity, "forward: fill input_buffer first");
        if self.mode == Mode::Train {
            self.train_steps += 1;
        }
        let step = self.train_steps;
        // Only a step-API forward (which sets it after this) may be followed by its backward.
        self.last_rows = 0;
        let folding = self.mode == Mode::Eval && self.eval_folding;
        self.folded_now.fill(false);
        for n in 0..self.nodes.len() {
            if self.folded_now[n] {
                continue;
            }
            let started = self.profile.is_some().then(std::time::Instant::now);
            let plan = &self.plans[n];
            let cx = ops::Forward {
                rows,
                mode: self.mode,
                seed: node_seed(self.seed, n, step),
                inputs: &plan.inputs,
                output: plan.output.as_ref().unwrap(),
                params: &plan.params,
            };
            let mut done = false;
            if let (true, Some(q)) = (folding, self.fold[n]) {
                let (before, after) = self.nodes.split_at_mut(q);
                let bn = &self.plans[q];
                let cx_bn = ops::Forward { output: bn.output.as_ref().unwrap(), params: &bn.params, inputs: &bn.inputs, ..cx };
                if after[0].op.eval_affine(&cx_bn, &mut self.fold_scale, &mut self.fold_shift) {
                    // The folded op writes the BatchNorm's output directly.
                    let cx_fold = ops::Forward { output: bn.output.as_ref().unwrap(), ..cx };
                    done = before[n].op.forward_affine(&cx_fold, &self.fold_scale, &self.fold_shift);
                    self.folded_now[q] = done;
                }
            }
            if !done {
                self.nodes[n].op.forward(&cx);
            }
            if let (Some(p), Some(t)) = (self.profile.as_mut(), started) {
                p[n].0 += t.elapsed().as_secs_f64();
            }
        }
        self.output(rows)
    }

    /// Output 0 of the last forward pass: rows × output_dim, stored layout.
    pub fn output(&self, rows: usize) -> &[f32] {
        let v = &self.values[self.outputs[0]];
        let start = self.capacity * v.offset;
        &self.acts[start..start + rows * v.size]
    }

    /// The gradient buffer of output 0, for the loss (or a caller) to write before `backward`.
    pub fn output_grad_buffer(&mut self, rows: usize) -> &mut [f32] {
        self.ensure_capacity(rows, true);
        let v = &self.values[self.outputs[0]];
        let start = self.capacity * v.offset;
        &mut self.grads[start..start + rows * v.size]
    }

    /// Output 0 and its gradient buffer at once (the loss reads one and writes the other).
    pub fn output_and_grad(&mut self, rows: usize) -> (&[f32], &mut [f32]) {
        self.ensure_capacity(rows, true);
        let v = &self.values[self.outputs[0]];
        let start = self.capacity * v.offset;
        (&self.acts[start..start + rows * v.size], &mut self.grads[start..start + rows * v.size])
    }

    /// The graph's output names, in the spec's order (output 0 first).
    pub fn output_names(&self) -> &[String] {
        &self.spec.outputs
    }

    /// Per-sample shape of output `k`.
    pub fn output_shape_at(&self, k: usize) -> &[usize] {
        &self.values[self.outputs[k]].shape
    }

    /// Output `k` of the last forward pass: rows × its size, stored layout.
    pub fn output_at(&self, k: usize, rows: usize) -> &[f32] {
        let v = &self.values[self.outputs[k]];
        let start = self.capacity * v.offset;
        &self.acts[start..start + rows * v.size]
    }

    /// Output `k` of the last forward pass and its gradient buffer (stored layout), for
    /// losses on several outputs (see `backward_outputs`).
    pub fn output_and_grad_at(&mut self, k: usize, rows: usize) -> (&[f32], &mut [f32]) {
        self.ensure_capacity(rows, true);
        let v = &self.values[self.outputs[k]];
        let start = self.capacity * v.offset;
        (&self.acts[start..start + rows * v.size], &mut self.grads[start..start + rows * v.size])
    }

    /// Backpropagates the gradient in output 0's gradient buffer through the graph,
    /// filling every trainable parameter's gradient (and the input's, if asked).
    pub fn backward(&mut self, rows: usize) {
        self.ensure_capacity(rows, true);
        // Other outputs carry no loss: their gradient is zero.
        for &o in &self.outputs[1..] {
            let v = &self.values[o];
            let start = self.capacity * v.offset;
            self.grads[start..start + rows * v.size].fill(0.0);
        }
        self.backward_outputs(rows);
    }

    /// Backpropagates the gradients the caller wrote into every output's gradient
    /// buffer (`output_and_grad_at`): a loss with terms on several outputs.
    pub fn backward_outputs(&mut self, rows: usize) {
        self.ensure_capacity(rows, true);
        let step = self.train_steps;
        for n in (0..self.nodes.len()).rev() {
            let plan = &self.plans[n];
            if !plan.runs_backward {
                continue;
            }
            let cx = ops::Backward {
                rows,
                mode: self.mode,
                seed: node_seed(self.seed, n, step),
                inputs: &plan.inputs,
                output: plan.output.as_ref().unwrap(),
                dout: plan.dout.unwrap(),
                dinputs: &plan.dinputs,
                needs_dinput: &plan.needs_dinput,
                accumulate: &plan.accumulate,
                mask_dinput: &plan.mask_dinput,
                dout_unmasked: plan.dout_unmasked,
                params: &plan.params,
                grads: &plan.grads,
            };
            match self.profile.as_mut() {
                None => self.nodes[n].op.backward(&cx),
                Some(p) => {
                    let t = std::time::Instant::now();
                    self.nodes[n].op.backward(&cx);
                    p[n].1 += t.elapsed().as_secs_f64();
                }
            }
        }
        // A tied tensor's gradient is the sum of its uses (ops overwrite their own).
        for &(alias, off) in &self.tied {
            let info = &self.store.tensors[alias];
            let (owner, len) = (info.offset, info.len);
            let g = &mut self.store.grads[owner..owner + len];
            g.iter_mut().zip(&self.tied_grads[off..off + len]).for_each(|(d, &s)| *d += s);
        }
        self.grads_pending = true;
        self.input_grad_fresh = self.input_grad;
    }

    /// Starts timing every node's forward and backward (cleared on each call).
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(|| vec![(0.0, 0.0); self.nodes.len()]);
    }

    /// Per node after fusion: (name, seconds in forward, seconds in backward) since
    /// `set_profiling(true)`.
    pub fn profile(&self) -> Vec<(String, f64, f64)> {
        let Some(p) = &self.profile else { return Vec::new() };
        self.plan_summary().into_iter().zip(p).map(|(n, &(f, b))| (n, f, b)).collect()
    }

    /// Per node: multiply-adds of one sample's forward product, and of its backward
    /// products in the current plan (a weight gradient, and an input gradient unless no
    /// one needs it: the first layer's).
    pub fn macs(&self) -> Vec<(usize, usize)> {
        self.nodes
            .iter()
            .zip(&self.plans)
            .map(|(node, plan)| {
                let f = node.op.forward_macs();
                let has_weights = node.tensors.iter().any(|&t| self.store.tensors[t].trainable());
                let products = usize::from(has_weights) + usize::from(plan.needs_dinput.iter().any(|&d| d));
                (f, if plan.runs_backward { f * products } else { 0 })
            })
            .collect()
    }

    /// The input's gradient after `backward` (with `set_input_grad(true)`), stored layout.
    pub fn input_grad(&self, rows: usize) -> Option<&[f32]> {
        self.input_grad_at(0, rows)
    }

    /// Graph input `k`'s gradient after `backward` (with `set_input_grad(true)`), stored layout.
    pub fn input_grad_at(&self, k: usize, rows: usize) -> Option<&[f32]> {
        if !self.input_grad || self.grads.is_empty() {
            return None;
        }
        let v = &self.values[self.inputs[k]];
        let start = self.capacity * v.offset;
        Some(&self.grads[start..start + rows * v.size])
    }

    /// Eval-mode forward of `rows` samples (`inputs` in PyTorch's order), then a backward
    /// pass of `output_grad` (∂L/∂output 0, PyTorch's order): returns output 0, ∂L/∂input
    /// and, for `node`, that node's output and ∂L/∂ of it (its per-sample logical shape
    /// first), all in PyTorch's order. For saliency maps, integrated gradients and
    /// Grad-CAM. Use an unfused model (`from_spec_unfused`) to read a node that a fused
    /// plan merges into its producer. Leaves the mode as it was and turns BatchNorm
    /// folding off (a folded plan has no BatchNorm backward). Parameter gradients are
    /// overwritten.
    pub fn explain(&mut self, rows: usize, inputs: &[f32], output_grad: &[f32], node: Option<&str>) -> Result<Explanation> {
        self.expect_single_input("explain")?;
        let (din, dout) = (self.input_dim(), self.output_dim());
        if rows == 0 || inputs.len() != rows * din {
            return Err(Error::shape("explain inputs", format!("rows × {din} values"), inputs.len()));
        }
        if output_grad.len() != rows * dout {
            return Err(Error::shape("explain output gradient", format!("{} values ({rows} × {dout})", rows * dout), output_grad.len()));
        }
        let value = match node {
            None => None,
            Some(name) => match self.values.iter().position(|v| v.name == name) {
                Some(v) => Some(v),
                None => {
                    return Err(Error::config(
                        "node",
                        format!(
                            "{name:?} is not a node of this model (nodes: {})",
                            self.values.iter().skip(self.inputs.len()).map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
        };
        let mode = self.mode;
        self.set_eval_folding(false);
        self.set_input_grad(true);
        self.set_mode(Mode::Eval);
        self.set_input(rows, inputs);
        if let Err(e) = self.check_input_buffer(rows, |r| r) {
            self.set_mode(mode);
            return Err(e);
        }
        self.forward(rows);
        let outputs = self.output_logical(rows);
        self.set_output_grad(rows, output_grad);
        self.backward(rows);
        let input_grad = self.input_grad_logical(rows).unwrap_or_default();
        let node = value.map(|v| {
            let val = &self.values[v];
            let start = self.capacity * val.offset;
            let n = rows * val.size;
            let (mut a, mut g) = (vec![0.0; n], vec![0.0; n]);
            layout::to_logical(&val.shape, &self.acts[start..start + n], &mut a);
            layout::to_logical(&val.shape, &self.grads[start..start + n], &mut g);
            (val.shape.clone(), a, g)
        });
        self.set_mode(mode);
        Ok(Explanation { outputs, input_grad, node })
    }

    /// Copies of the parameter tensors (trainable and buffers) in PyTorch's layout.
    pub fn params(&self) -> Vec<Param> {
        self.export(|s, t| s.value(t))
    }

    /// Gradients of the last backward pass of the trainable tensors, same layout.
    pub fn grads(&self) -> Vec<Param> {
        let mut out = self.export(|s, t| s.grad(t));
        let trainable: Vec<bool> = self.store.tensors.iter().map(|t| t.trainable()).collect();
        let mut k = 0;
        out.retain(|_| {
            k += 1;
            trainable[k - 1]
        });
        out
    }

    fn export(&self, pick: impl Fn(&ParamStore, usize) -> &[f32]) -> Vec<Param> {
        self.store
            .tensors
            .iter()
            .enumerate()
            .map(|(t, info)| {
                let mut data = vec![0.0; info.len];
                self.nodes[info.node].op.param_to_torch(info.index, pick(&self.store, t), &mut data);
                Param { name: info.name.clone(), shape: info.shape.clone(), data }
            })
            .collect()
    }

    /// Tensor `t`'s values given in the store's layout, in PyTorch's.
    pub fn tensor_to_torch(&self, t: usize, internal: &[f32]) -> Vec<f32> {
        let info = &self.store.tensors[t];
        let mut out = vec![0.0; info.len];
        self.nodes[info.node].op.param_to_torch(info.index, internal, &mut out);
        out
    }

    /// Tensor `t`'s values given in PyTorch's layout, in the store's.
    pub fn tensor_from_torch(&self, t: usize, torch: &[f32]) -> Vec<f32> {
        let info = &self.store.tensors[t];
        let mut out = vec![0.0; info.len];
        self.nodes[info.node].op.param_from_torch(info.index, torch, &mut out);
        out
    }

    /// Copies every tensor value and the random streams' step from `other`, a model
    /// compiled from the same spec (checked by the caller).
    pub fn assign_from(&mut self, other: &Model) -> Result<()> {
        if self.store.tensors.len() != other.store.tensors.len()
            || self.store.tensors.iter().zip(&other.store.tensors).any(|(a, b)| a.name != b.name || a.len != b.len)
        {
            return Err(Error::config("net", "has other tensors than the saved model: a different architecture"));
        }
        self.store.values.copy_from_slice(&other.store.values);
        self.train_steps = other.train_steps;
        Ok(())
    }

    /// Replaces tensor `index` (in `params` order) with `values` in PyTorch's layout;
    /// the length must match and every value must be finite.
    pub fn set_param(&mut self, index: usize, values: &[f32]) -> Result<()> {
        let Some(info) = self.store.tensors.get(index).cloned() else {
            return Err(Error::config(
                "parameter index",
                format!("{index} is past the last of {} parameter tensors", self.store.tensors.len()),
            ));
        };
        if info.len != values.len() {
            return Err(Error::shape(
                &format!("parameter {}", info.name),
                format!("{} values {:?}", info.len, info.shape),
                values.len(),
            ));
        }
        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::config(
                &format!("{}[{j}]", info.name),
                format!("is {}, parameters must be finite", values[j]),
            ));
        }
        let op = &self.nodes[info.node].op;
        op.param_from_torch(info.index, values, self.store.value_mut(index));
        Ok(())
    }

    /// `set_param` by `state_dict` name.
    pub fn set_param_by_name(&mut self, name: &str, values: &[f32]) -> Result<()> {
        match self.store.find(name) {
            Some(t) => self.set_param(t, values),
            None => Err(Error::config(
                "parameter name",
                format!(
                    "{name:?} is not a tensor of this model (it has {})",
                    self.store.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// Freezes (or thaws) every tensor whose name starts with `prefix` (a node's name,
    /// a dotted scope, or "" for all): no optimizer updates a frozen tensor.
    pub fn set_frozen(&mut self, prefix: &str, frozen: bool) -> usize {
        let mut n = 0;
        for t in self.store.tensors.iter_mut() {
            if t.name.starts_with(prefix) {
                t.frozen = frozen;
                n += 1;
            }
        }
        n
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.store.trainable_count()
    }

    /// The optimizer's view of the trainable, unfrozen tensors of `group` (None = all).
    pub fn tensor_refs(&mut self, group: Option<&str>, out: &mut Vec<crate::optim::TensorRef>) {
        out.clear();
        let values = self.store.values.as_mut_ptr();
        // Mutable provenance: gradient clipping scales the gradients through these refs.
        let grads = self.store.grads.as_mut_ptr();
        for (id, t) in self.store.tensors.iter().enumerate() {
            if !t.owns_values() || t.frozen || group.is_some_and(|g| g != t.group) {
                continue;
            }
            out.push(crate::optim::TensorRef {
                id,
                param: unsafe { values.add(t.offset) },
                grad: unsafe { grads.add(t.offset) },
                len: t.len,
            });
        }
    }

    /// Sum of every gradient element (a streaming read of all gradients; see examples/step).
    pub fn sum_of_gradients(&self) -> f32 {
        self.store.grads.iter().sum()
    }

    /// Outputs (output 0, PyTorch's order) for every sample of `inputs` (PyTorch's order;
    /// u8 pixels are scaled as in training), in eval mode, in chunks.
    pub fn predict(&mut self, inputs: crate::data::Inputs, out: &mut [f32]) -> Result<()> {
        self.expect_single_input("predict")?;
        let dim = self.input_dim();
        let outputs = self.output_dim();
        if inputs.len() % dim != 0 {
            return Err(Error::shape(
                "predict input",
                format!("a multiple of {dim} values (the network's input shape {:?})", self.input_shape()),
                inputs.len(),
            ));
        }
        let rows = inputs.len() / dim;
        if out.len() != rows * outputs {
            return Err(Error::shape("predict output", rows * outputs, out.len()));
        }
        let mode = self.mode;
        self.mode = Mode::Eval;
        let chw = self.input_chw();
        let out_shape = self.output_shape().to_vec();
        let chunk = self.inference_chunk();
        if let Err(e) = self.reserve(chunk.min(rows), false) {
            self.mode = mode;
            return Err(e);
        }
        for start in (0..rows).step_by(chunk) {
            let n = chunk.min(rows - start);
            let buf = self.input_buffer(n);
            for (r, row) in buf.chunks_mut(dim).enumerate() {
                // Prediction passes NaN through, as PyTorch does: the outputs say so.
                let _finite = match chw {
                    None => inputs.copy_row(start + r, dim, row),
                    Some(chw) => inputs.copy_row_channels_last(start + r, chw, row),
                };
            }
            if let Err(e) = self.check_input_buffer(n, |r| start + r) {
                self.mode = mode;
                return Err(e);
            }
            let y = self.forward(n);
            layout::to_logical(&out_shape, y, &mut out[start * outputs..(start + n) * outputs]);
        }
        self.mode = mode;
        Ok(())
    }

    /// Asks every op that reads the graph input to check a batch of it (`Op::check_input`:
    /// an Embedding's ids must be integers in range) before a forward pass: `values` holds
    /// `rows` samples in the stored layout, `sample_of(r)` is batch row r's index in the
    /// caller's data, for the error.
    pub fn check_inputs(&self, values: &[f32], rows: usize, sample_of: impl Fn(usize) -> usize) -> Result<()> {
        self.check_inputs_at(0, values, rows, sample_of)
    }

    /// `check_inputs` of graph input `k` (for the entry points that feed every input).
    pub fn check_inputs_at(&self, k: usize, values: &[f32], rows: usize, sample_of: impl Fn(usize) -> usize) -> Result<()> {
        let v = &self.values[self.inputs[k]];
        let size = v.size;
        let values = &values[..rows * size];
        for &(n, slot) in &v.consumers {
            let node = &self.nodes[n];
            if let Err(bad) = node.op.check_input(slot, values, size) {
                return Err(Error::InvalidInput {
                    node: node.name.clone(),
                    op: node.op.kind().to_string(),
                    sample: sample_of(bad.index / size),
                    position: bad.index % size,
                    value: bad.value,
                    reason: bad.reason,
                });
            }
        }
        Ok(())
    }

    /// `check_inputs` on the first `rows` samples of every graph input's buffer (after
    /// a gather, or after `set_input_at` of each).
    pub fn check_input_buffer(&self, rows: usize, sample_of: impl Fn(usize) -> usize) -> Result<()> {
        for k in 0..self.inputs.len() {
            let v = &self.values[self.inputs[k]];
            let start = self.capacity * v.offset;
            self.check_inputs_at(k, &self.acts[start..start + rows * v.size], rows, &sample_of)?;
        }
        Ok(())
    }

    /// Rows per chunk of evaluation and prediction: as many as keep the activations
    /// near 16 M floats (64 MiB), between 64 and 1024 — the MLP's 1,300 floats per sample
    /// get 1024 rows, a CNN's ~90,000 get 186 — whatever batch size was asked for.
    pub fn inference_chunk(&self) -> usize {
        let per_sample: usize = self.values.iter().map(|v| v.size).sum();
        ((16 << 20) / per_sample.max(1)).clamp(64, 1024)
    }

    /// Cross-entropy forward and backward over the batch in the input buffer (the
    /// common case; `train::forward_backward` takes any loss).
    pub fn forward_backward(&mut self, rows: usize, labels: &[u32]) -> crate::loss::LossSum {
        let targets = crate::data::TargetBuffer { classes: labels.to_vec(), values: Vec::new(), labels_per_sample: labels.len() / rows.max(1) };
        crate::train::forward_backward(self, &crate::loss::LossConfig::default(), rows, &targets)
    }

    /// Cross-entropy of the batch in the input buffer, without gradients.
    pub fn loss_batch(&mut self, rows: usize, labels: &[u32]) -> crate::loss::LossSum {
        let dim = self.output_dim();
        let out = self.forward(rows);
        let k = labels.len() / rows.max(1);
        crate::train::positions_loss(&crate::loss::LossConfig::default(), out, rows, dim, crate::loss::BatchTargets::Classes(labels), k, None)
    }

    /// One step of `optimizer` over every trainable, unfrozen tensor.
    pub fn apply_optimizer(&mut self, optimizer: &mut crate::optim::Optimizer) {
        let mut refs = std::mem::take(&mut self.refs);
        self.tensor_refs(None, &mut refs);
        // Safety: the refs point at this model's own distinct buffers, borrowed for the call.
        unsafe { optimizer.step(&refs) };
        self.refs = refs;
    }

}

/// The tensor that node `name`'s parameter of `shape` is tied to: `target`'s weight,
/// where `target` is an Embedding listed before it with the same shape.
fn tied_owner(name: &str, kind: &str, target: &str, shape: &[usize], nodes: &[Node], store: &ParamStore) -> Result<usize> {
    let Some(node) = nodes.iter().find(|m| m.name == target) else {
        return Err(Error::graph(
            name,
            format!("{name} ({kind}) is tied to {target:?} (tiedTo), which is not a node listed before it (nodes: {})", nodes.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")),
        ));
    };
    if node.op.kind() != "Embedding" {
        return Err(Error::graph(name, format!("{name} ({kind}) is tied to {target:?} (tiedTo), which is a {}, not an Embedding", node.op.kind())));
    }
    let owner = store.find(&format!("{target}.weight")).expect("an Embedding has a weight");
    let theirs = &store.tensors[owner].shape;
    if theirs.as_slice() != shape {
        return Err(Error::graph(
            name,
            format!(
                "{name} ({kind}) weight {shape:?} [outFeatures, in features] cannot be tied to {target}.weight {theirs:?} ({target} (Embedding) [numEmbeddings, embeddingDim]): the shapes must be equal"
            ),
        ));
    }
    Ok(owner)
}

/// The random stream of node `n` at training step `step`: counter-based, so a node's
/// masks depend only on (seed, node, step), never on threads or on other nodes.
pub fn node_seed(seed: u64, n: usize, step: u64) -> u64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(n as u64 + 1) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x
}
