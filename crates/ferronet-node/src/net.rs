//! `NativeNet`: a compiled model shared with the trainers that train it.

use ferronet_core::{Inputs, Model};
use napi::bindgen_prelude::{Float32Array, Uint8Array};
use napi::bindgen_prelude::ObjectFinalize;
use napi::{Env, Result};
use std::sync::atomic::{AtomicI64, Ordering};
use napi_derive::napi;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::error::{coded, guard, to_js};

pub type SharedModel = Arc<Mutex<Model>>;

/// Locks without blocking the JS thread: a model being trained is busy; a disposed
/// one is gone.
pub fn try_lock(model: &SharedModel) -> Result<MutexGuard<'_, Model>> {
    let guard = match model.try_lock() {
        Ok(g) => g,
        // A panic mid-step leaves the weights as they were written so far: still usable.
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            return Err(coded(
                "ERR_BUSY",
                "the network is busy in a running fit() or evaluate(); await it first",
            ))
        }
    };
    live(guard)
}

/// The guard, unless the model was disposed.
pub fn live(guard: MutexGuard<'_, Model>) -> Result<MutexGuard<'_, Model>> {
    if guard.is_released() {
        return Err(coded("ERR_DISPOSED", "this network was disposed (net.dispose()); it can no longer be used"));
    }
    Ok(guard)
}

/// Tells V8 how many bytes a model holds now (the change since the last report), so
/// that its garbage collector weighs a dropped net by its real size.
pub fn account(env: &Env, model: &Model, reported: &AtomicI64) {
    report_external(env, model.memory_bytes(), reported);
}

/// Reports `bytes` as an object's external memory, given what was reported before
/// (`reported`, updated): V8 is told the change. 0 when the object goes away.
pub fn report_external(env: &Env, bytes: usize, reported: &AtomicI64) {
    let now = bytes as i64;
    let before = reported.swap(now, Ordering::SeqCst);
    if now != before {
        let _ = env.adjust_external_memory(now - before);
    }
}

/// Locks on a worker thread, where waiting is fine.
pub fn lock(model: &SharedModel) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|p| p.into_inner())
}

#[napi(object)]
pub struct NativeParameter {
    /// PyTorch `state_dict` name, e.g. "0.weight".
    pub name: String,
    pub shape: Vec<u32>,
    pub data: Float32Array,
    /// False for buffers (BatchNorm's running statistics).
    pub trainable: bool,
    /// The node's parameter group ("" if none).
    pub group: String,
    /// Weight tying: the name of the tensor this one is (`wte.weight` for a Linear
    /// tied to `wte`); both names hold the same values and gradient.
    pub tied_to: Option<String>,
}

#[napi(custom_finalize)]
pub struct NativeNet {
    pub(crate) model: SharedModel,
    /// Fixed at construction: readable while a fit holds the model.
    input_shape: Vec<u32>,
    output_shape: Vec<u32>,
    spec: String,
    seed: u64,
    parameter_count: u32,
    /// The `__metadata__` of the file this net was loaded from (empty otherwise).
    pub(crate) file_metadata: std::collections::HashMap<String, String>,
    /// Set while some trainer's fit() or evaluate() runs on this net: a second one is
    /// refused at once (ERR_BUSY), never left waiting on a libuv thread.
    pub(crate) busy: Arc<std::sync::atomic::AtomicBool>,
    /// Bytes last reported to V8 as external memory (shared with the trainers' tasks).
    pub(crate) external: Arc<AtomicI64>,
}

impl ObjectFinalize for NativeNet {
    fn finalize(self, env: Env) -> Result<()> {
        report_external(&env, 0, &self.external);
        Ok(())
    }
}

impl NativeNet {
    /// Reports the model's current size to V8 (see `account`).
    pub(crate) fn account_now(&self, env: &Env) {
        if let Ok(m) = self.model.try_lock() {
            account(env, &m, &self.external);
        }
    }

    /// Wraps a compiled model.
    pub(crate) fn from_model(model: Model, file_metadata: std::collections::HashMap<String, String>) -> NativeNet {
        NativeNet {
            input_shape: dims(model.input_shape()),
            output_shape: dims(model.output_shape()),
            spec: model.spec().to_json(),
            seed: model.seed(),
            parameter_count: model.param_count() as u32,
            model: Arc::new(Mutex::new(model)),
            file_metadata,
            busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            external: Arc::new(AtomicI64::new(0)),
        }
    }
}

impl NativeNet {
    fn predict_inputs(&self, inputs: Inputs) -> Result<Float32Array> {
        guard("predict", || {
            let mut model = try_lock(&self.model)?;
            let rows = inputs.len() / model.input_dim().max(1);
            let mut out = vec![0.0; rows * model.output_dim()];
            model.predict(inputs, &mut out).map_err(to_js)?;
            Ok(Float32Array::new(out))
        })
    }
}

fn dims(s: &[usize]) -> Vec<u32> {
    s.iter().map(|&d| d as u32).collect()
}

#[napi]
impl NativeNet {
    /// Compiles a model spec (JSON text, docs/graph-spec.md) with parameters from `seed`.
    #[napi(factory, catch_unwind)]
    pub fn from_spec(env: Env, spec: String, seed: f64) -> Result<NativeNet> {
        let model = Model::from_json(&spec, seed as u64).map_err(to_js)?;
        let net = NativeNet::from_model(model, Default::default());
        net.account_now(&env);
        Ok(net)
    }

    #[napi(getter)]
    pub fn input_shape(&self) -> Vec<u32> {
        self.input_shape.clone()
    }

    #[napi(getter)]
    pub fn output_shape(&self) -> Vec<u32> {
        self.output_shape.clone()
    }

    /// The compiled model's spec, as JSON text.
    #[napi(getter)]
    pub fn spec(&self) -> String {
        self.spec.clone()
    }

    #[napi(getter)]
    pub fn seed(&self) -> f64 {
        self.seed as f64
    }

    /// Frees the weights, gradients and buffers now (instead of at a garbage collection);
    /// any later use is an `ERR_DISPOSED` error. Refused while a fit runs on the net.
    #[napi(catch_unwind)]
    pub fn dispose(&self, env: Env) -> Result<()> {
        let mut model = match self.model.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(coded("ERR_BUSY", "the network is busy in a running fit() or evaluate(); await it before dispose()")),
        };
        model.release();
        account(&env, &model, &self.external);
        Ok(())
    }

    /// Bytes of native memory this net holds (weights, gradients, batch buffers).
    #[napi(getter)]
    pub fn native_bytes(&self) -> f64 {
        match self.model.try_lock() {
            Ok(m) => m.memory_bytes() as f64,
            Err(_) => self.external.load(Ordering::SeqCst) as f64,
        }
    }

    /// Trainable scalars.
    #[napi(getter)]
    pub fn parameter_count(&self) -> u32 {
        self.parameter_count
    }

    /// Node names and ops after fusion, e.g. "0:Linear+ReLU".
    #[napi(catch_unwind)]
    pub fn plan(&self) -> Result<Vec<String>> {
        Ok(try_lock(&self.model)?.plan_summary())
    }

    /// Outputs [rows, ...outputShape] for f32 inputs [rows, ...inputShape] (PyTorch's order).
    #[napi(catch_unwind)]
    pub fn predict(&self, inputs: Float32Array) -> Result<Float32Array> {
        self.predict_inputs(Inputs::F32(&inputs))
    }

    /// Outputs for u8 pixels, normalised as in training (v / 255).
    #[napi(catch_unwind)]
    pub fn predict_pixels(&self, pixels: Uint8Array) -> Result<Float32Array> {
        self.predict_inputs(Inputs::U8(&pixels))
    }

    /// Copies of every tensor (weights and buffers), in `state_dict` order and layout.
    #[napi(catch_unwind)]
    pub fn parameters(&self) -> Result<Vec<NativeParameter>> {
        let model = try_lock(&self.model)?;
        let infos = model.store().tensors().to_vec();
        let names: Vec<String> = infos.iter().map(|t| t.name.clone()).collect();
        Ok(model
            .params()
            .into_iter()
            .zip(infos)
            .map(|(p, info)| NativeParameter {
                name: p.name,
                shape: dims(&p.shape),
                data: Float32Array::new(p.data),
                trainable: info.trainable(),
                group: info.group,
                tied_to: info.tied.map(|o| names[o].clone()),
            })
            .collect())
    }

    /// Gradients of the last training step of the trainable tensors, by name.
    #[napi(catch_unwind)]
    pub fn gradients(&self) -> Result<Vec<NativeParameter>> {
        let model = try_lock(&self.model)?;
        let all = model.store().tensors();
        let infos: Vec<_> = all.iter().filter(|t| t.trainable()).cloned().collect();
        Ok(model
            .grads()
            .into_iter()
            .zip(infos)
            .map(|(g, info)| NativeParameter {
                name: g.name,
                shape: dims(&g.shape),
                data: Float32Array::new(g.data),
                trainable: true,
                group: info.group,
                tied_to: info.tied.map(|o| all[o].name.clone()),
            })
            .collect())
    }

    /// Overwrites tensor `index` (in `parameters` order), PyTorch layout.
    #[napi(catch_unwind)]
    pub fn set_parameter(&self, index: u32, values: Float32Array) -> Result<()> {
        try_lock(&self.model)?
            .set_param(index as usize, &values)
            .map_err(to_js)
    }

    /// Freezes (or thaws) every tensor whose name starts with `prefix`; returns how many.
    #[napi(catch_unwind)]
    pub fn set_frozen(&self, prefix: String, frozen: bool) -> Result<u32> {
        Ok(try_lock(&self.model)?.set_frozen(&prefix, frozen) as u32)
    }
}

/// What `NativeNet.explain` returns, in PyTorch's order.
#[napi(object)]
pub struct NativeExplanation {
    /// Output 0, [rows, ...outputShape].
    pub outputs: Float32Array,
    /// ∂L/∂input, [rows, ...inputShape].
    pub input_gradient: Float32Array,
    /// The node's per-sample output shape, when a node was asked for.
    pub node_shape: Option<Vec<u32>>,
    /// The node's output [rows, ...nodeShape].
    pub activation: Option<Float32Array>,
    /// ∂L/∂ the node's output.
    pub activation_gradient: Option<Float32Array>,
}

#[napi]
impl NativeNet {
    /// Eval-mode forward of `inputs`, then backward of `outputGradient` (∂L/∂output):
    /// the input's gradient and, for `node`, its output and gradient. On an unfused copy
    /// of the net, so every node keeps its own output; the net itself is not changed.
    #[napi(catch_unwind)]
    pub fn explain(&self, inputs: Float32Array, output_gradient: Float32Array, node: Option<String>) -> Result<NativeExplanation> {
        guard("explain", || {
            let model = try_lock(&self.model)?;
            let rows = inputs.len() / model.input_dim().max(1);
            let mut copy = Model::from_spec_unfused(model.spec().clone(), model.seed()).map_err(to_js)?;
            copy.assign_from(&model).map_err(to_js)?;
            drop(model);
            let e = copy.explain(rows, &inputs, &output_gradient, node.as_deref()).map_err(to_js)?;
            let (node_shape, activation, activation_gradient) = match e.node {
                Some((shape, a, g)) => (Some(dims(&shape)), Some(Float32Array::new(a)), Some(Float32Array::new(g))),
                None => (None, None, None),
            };
            Ok(NativeExplanation {
                outputs: Float32Array::new(e.outputs),
                input_gradient: Float32Array::new(e.input_grad),
                node_shape,
                activation,
                activation_gradient,
            })
        })
    }
}
