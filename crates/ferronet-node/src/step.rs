//! The per-batch step API of custom loops: forward, backward (from a loss or a given
//! output gradient), input gradients, zeroGrad on `NativeNet`; `NativeStepOptimizer`
//! steps one parameter group. Each is one synchronous call that writes into arrays
//! the caller passes (no result array is allocated per call); a net held by a running
//! fit/evaluate/generate (its busy flag) refuses them with ERR_BUSY.

use ferronet_core::loss::BatchTargets;
use ferronet_core::optim::Optimizer;
use ferronet_core::team::run_on_pool;
use ferronet_core::{LossConfig, Mode, Model};
use napi::bindgen_prelude::{Float32Array, Uint32Array};
use napi::{Env, Result};
use napi_derive::napi;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{coded, guard, to_js};
use crate::net::{account, report_external, try_lock, NativeNet, SharedModel};
use crate::options::{optimizer_config, NativeOptimizer};

/// The model, unless a task holds the net (ERR_BUSY) or it was disposed.
pub(crate) fn step_lock<'a>(model: &'a SharedModel, busy: &AtomicBool) -> Result<MutexGuard<'a, Model>> {
    if busy.load(Ordering::SeqCst) {
        return Err(coded("ERR_BUSY", "the network is busy in a running fit(), evaluate() or generate(); await it first"));
    }
    try_lock(model)
}

/// Losses by code (the TypeScript layer maps names): 0 cross_entropy, 1 mse, 2 l1,
/// 3 smooth_l1, 4 huber, 5 bce_with_logits. `param` is label smoothing, beta or
/// delta; `weights` class weights or pos_weight.
fn loss_of(code: u32, param: Option<f64>, weights: Option<&Float32Array>) -> Result<LossConfig> {
    let w = weights.map(|w| w.to_vec());
    Ok(match code {
        0 => LossConfig::CrossEntropy { class_weights: w, label_smoothing: param.unwrap_or(0.0) as f32 },
        1 => LossConfig::Mse,
        2 => LossConfig::L1,
        3 => LossConfig::SmoothL1 { beta: param.unwrap_or(1.0) as f32 },
        4 => LossConfig::Huber { delta: param.unwrap_or(1.0) as f32 },
        5 => LossConfig::BceWithLogits { pos_weight: w },
        other => return Err(coded("ERR_INVALID_OPTION", format!("invalid option `loss`: unknown loss code {other}"))),
    })
}

fn all_threads() -> usize {
    0
}

#[napi]
impl NativeNet {
    /// Forward of a batch (`input`, plus `more` for graph inputs 1, 2, …; PyTorch's
    /// order) in train or eval mode; output 0 is written into `out`. Returns the rows.
    #[napi(catch_unwind)]
    pub fn step_forward(&self, env: Env, input: Float32Array, train: bool, mut out: Float32Array, more: Option<Vec<Float32Array>>) -> Result<u32> {
        guard("forward", || {
            let mut model = step_lock(&self.model, &self.busy)?;
            let grew = model.memory_bytes();
            let mode = if train { Mode::Train } else { Mode::Eval };
            // Safety: the JS thread is inside this call; nothing else writes `out`.
            let out = unsafe { out.as_mut() };
            let m = &mut *model;
            let x: &[f32] = &input;
            let rows = match &more {
                None => run_on_pool(all_threads(), || m.step_forward(mode, &[x], out)),
                Some(rest) => {
                    let mut all: Vec<&[f32]> = vec![x];
                    all.extend(rest.iter().map(|a| &**a));
                    run_on_pool(all_threads(), || m.step_forward(mode, &all, out))
                }
            }
            .map_err(to_js)?;
            if model.memory_bytes() != grew {
                account(&env, &model, &self.external);
            }
            Ok(rows as u32)
        })
    }

    /// Backward of a loss (code, see `loss_of`) on the last step forward's output
    /// against class ids (`labels`) or float `targets`; gradients add to pending ones.
    /// Returns the batch's mean loss.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn step_backward_loss(
        &self,
        env: Env,
        loss: u32,
        param: Option<f64>,
        weights: Option<Float32Array>,
        labels: Option<Uint32Array>,
        targets: Option<Float32Array>,
        input_grad: bool,
    ) -> Result<f64> {
        guard("backward", || {
            let mut model = step_lock(&self.model, &self.busy)?;
            let grew = model.memory_bytes();
            let loss = loss_of(loss, param, weights.as_ref())?;
            let t = match (&labels, &targets) {
                (Some(l), None) => BatchTargets::Classes(l),
                (None, Some(t)) => BatchTargets::Values(t),
                _ => return Err(coded("ERR_SHAPE", "backward needs exactly one of labels or targets")),
            };
            let m = &mut *model;
            let sums = run_on_pool(all_threads(), || m.step_backward_loss(&loss, t, input_grad)).map_err(to_js)?;
            if model.memory_bytes() != grew {
                account(&env, &model, &self.external);
            }
            Ok(sums.loss_sum / model.step_rows_count().max(1) as f64)
        })
    }

    /// Backward of a given ∂L/∂output (PyTorch's order) of the last step forward.
    #[napi(catch_unwind)]
    pub fn step_backward_grad(&self, env: Env, output_grad: Float32Array, input_grad: bool) -> Result<()> {
        guard("backward", || {
            let mut model = step_lock(&self.model, &self.busy)?;
            let grew = model.memory_bytes();
            let (m, g): (&mut Model, &[f32]) = (&mut *model, &output_grad);
            run_on_pool(all_threads(), || m.step_backward_grad(g, input_grad)).map_err(to_js)?;
            if model.memory_bytes() != grew {
                account(&env, &model, &self.external);
            }
            Ok(())
        })
    }

    /// ∂L/∂(input `index`) of the last backward into `out`.
    #[napi(catch_unwind)]
    pub fn step_input_grad(&self, index: u32, mut out: Float32Array) -> Result<()> {
        let model = step_lock(&self.model, &self.busy)?;
        // Safety: as in step_forward.
        model.step_input_grad(index as usize, unsafe { out.as_mut() }).map_err(to_js)
    }

    /// Zeroes every parameter gradient.
    #[napi(catch_unwind)]
    pub fn zero_grad(&self) -> Result<()> {
        step_lock(&self.model, &self.busy)?.zero_grad();
        Ok(())
    }

    /// Parameter groups owning trainable tensors ("" = tensors of no group).
    #[napi(catch_unwind)]
    pub fn parameter_groups(&self) -> Result<Vec<String>> {
        Ok(try_lock(&self.model)?.groups())
    }
}

/// An optimizer over one parameter group of one net, stepped by the caller.
#[napi(custom_finalize)]
pub struct NativeStepOptimizer {
    pub(crate) model: SharedModel,
    pub(crate) busy: Arc<AtomicBool>,
    pub(crate) optimizer: Arc<Mutex<Optimizer>>,
    pub(crate) group: Option<String>,
    pub(crate) kind: &'static str,
    external: Arc<AtomicI64>,
}

impl napi::bindgen_prelude::ObjectFinalize for NativeStepOptimizer {
    fn finalize(self, env: Env) -> Result<()> {
        report_external(&env, 0, &self.external);
        Ok(())
    }
}

pub(crate) fn lock_opt(o: &Mutex<Optimizer>) -> MutexGuard<'_, Optimizer> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

/// The optimizer without blocking the JS thread: a running GanTrainer fit holds it.
fn try_opt(o: &Mutex<Optimizer>) -> Result<MutexGuard<'_, Optimizer>> {
    match o.try_lock() {
        Ok(g) => Ok(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(coded("ERR_BUSY", "this optimizer is in use by a running GanTrainer fit(); await it first")),
    }
}

#[napi]
impl NativeStepOptimizer {
    /// `group`: the parameter group it owns (absent: every trainable tensor).
    #[napi(constructor, catch_unwind)]
    pub fn new(net: &NativeNet, options: NativeOptimizer, group: Option<String>) -> Result<Self> {
        let config = optimizer_config(&options)?;
        let optimizer = config.build().map_err(to_js)?;
        if let Some(g) = &group {
            let groups = try_lock(&net.model)?.groups();
            if !groups.contains(g) {
                return Err(coded(
                    "ERR_INVALID_OPTION",
                    format!("invalid option `group`: {g:?} is not a parameter group of this net (it has {:?})", groups.iter().filter(|g| !g.is_empty()).collect::<Vec<_>>()),
                ));
            }
        }
        Ok(NativeStepOptimizer {
            kind: optimizer.kind(),
            model: net.model.clone(),
            busy: net.busy.clone(),
            optimizer: Arc::new(Mutex::new(optimizer)),
            group,
            external: Arc::new(AtomicI64::new(0)),
        })
    }

    /// One step over the group's trainable, unfrozen tensors from their pending gradients.
    #[napi(catch_unwind)]
    pub fn step(&self, env: Env) -> Result<()> {
        guard("optimizer.step", || {
            let mut model = step_lock(&self.model, &self.busy)?;
            let mut opt = try_opt(&self.optimizer)?;
            let (m, o) = (&mut *model, &mut *opt);
            let first = o.state_bytes() == 0;
            let group = self.group.as_deref();
            run_on_pool(all_threads(), || match m.non_finite_gradient(group) {
                Some(param) => Err(ferronet_core::Error::NonFiniteGradient { param, at: "before optimizer.step()".into(), hint: "Skip this step (zeroGrad() and go on), lower the learning rate, or clip the gradients".into() }),
                None => {
                    m.apply_optimizer_group(o, group);
                    Ok(())
                }
            })
            .map_err(crate::error::to_js)?;
            if first {
                report_external(&env, o.state_bytes(), &self.external);
            }
            Ok(())
        })
    }

    /// The learning rate in use.
    #[napi(getter)]
    pub fn lr(&self) -> Result<f64> {
        Ok(try_opt(&self.optimizer)?.lr() as f64)
    }

    /// Sets the learning rate of the following steps (state kept).
    #[napi(setter)]
    pub fn set_lr(&self, lr: f64) -> Result<()> {
        if !lr.is_finite() || lr <= 0.0 {
            return Err(coded("ERR_INVALID_OPTION", format!("invalid option `lr`: must be a finite number > 0, got {lr}")));
        }
        try_opt(&self.optimizer)?.set_lr(lr as f32);
        Ok(())
    }

    /// Steps taken (Adam/AdamW; 0 for the others, whose state has no counter).
    #[napi(getter)]
    pub fn steps(&self) -> Result<f64> {
        Ok(try_opt(&self.optimizer)?.export_state().steps as f64)
    }

    /// Bytes of the optimizer's buffers in memory.
    #[napi(getter)]
    pub fn native_bytes(&self) -> Result<f64> {
        Ok(try_opt(&self.optimizer)?.state_bytes() as f64)
    }

    /// The state as bytes (see `state_bytes`): kind, steps, lr and every slot by
    /// tensor name, PyTorch layout.
    #[napi(catch_unwind)]
    pub fn state_bytes(&self) -> Result<napi::bindgen_prelude::Uint8Array> {
        let model = try_lock(&self.model)?;
        let opt = try_opt(&self.optimizer)?;
        let bytes = ferronet_core::io::optimizer_state::encode(&model, &opt.export_state(), opt.lr()).map_err(to_js)?;
        Ok(bytes.into())
    }

    /// Replaces the state with bytes from `stateBytes` of an optimizer of the same kind
    /// on a net with the same tensors.
    #[napi(catch_unwind)]
    pub fn load_state_bytes(&self, bytes: napi::bindgen_prelude::Uint8Array) -> Result<()> {
        let model = try_lock(&self.model)?;
        let (state, lr) = ferronet_core::io::optimizer_state::decode(&model, &bytes, self.kind).map_err(to_js)?;
        let mut opt = try_opt(&self.optimizer)?;
        opt.import_state(state).map_err(|m| coded("ERR_INVALID_OPTION", format!("invalid option `bytes`: {m}")))?;
        opt.set_lr(lr);
        Ok(())
    }
}

/// What an async step computes.
pub enum StepWork {
    Forward { input: Float32Array, more: Option<Vec<Float32Array>>, train: bool, out: Float32Array },
    BackwardLoss { loss: LossConfig, labels: Option<Uint32Array>, targets: Option<Float32Array>, input_grad: bool },
    BackwardGrad { grad: Float32Array, input_grad: bool },
}

/// `forwardAsync` / `backwardAsync`: the same work as the sync calls, on a libuv
/// thread, the net's busy flag held meanwhile (other calls on it: ERR_BUSY).
pub struct StepTask {
    model: SharedModel,
    busy: Arc<AtomicBool>,
    work: StepWork,
}

impl napi::Task for StepTask {
    type Output = f64;
    type JsValue = f64;

    fn compute(&mut self) -> Result<f64> {
        guard("step", || {
            let mut guard = crate::net::live(crate::net::lock(&self.model))?;
            let m = &mut *guard;
            match &mut self.work {
                StepWork::Forward { input, more, train, out } => {
                    let mode = if *train { Mode::Train } else { Mode::Eval };
                    // Safety: the JS side is told not to touch `out` until the promise settles.
                    let out = unsafe { out.as_mut() };
                    let x: &[f32] = input;
                    let mut all: Vec<&[f32]> = vec![x];
                    if let Some(rest) = more {
                        all.extend(rest.iter().map(|a| &**a));
                    }
                    run_on_pool(all_threads(), || m.step_forward(mode, &all, out)).map(|r| r as f64).map_err(to_js)
                }
                StepWork::BackwardLoss { loss, labels, targets, input_grad } => {
                    let t = match (labels.as_deref(), targets.as_deref()) {
                        (Some(l), None) => BatchTargets::Classes(l),
                        (None, Some(t)) => BatchTargets::Values(t),
                        _ => return Err(coded("ERR_SHAPE", "backward needs exactly one of labels or targets")),
                    };
                    let (loss, ig) = (&*loss, *input_grad);
                    let sums = run_on_pool(all_threads(), || m.step_backward_loss(loss, t, ig)).map_err(to_js)?;
                    Ok(sums.loss_sum / m.step_rows_count().max(1) as f64)
                }
                StepWork::BackwardGrad { grad, input_grad } => {
                    let (g, ig): (&[f32], bool) = (grad, *input_grad);
                    run_on_pool(all_threads(), || m.step_backward_grad(g, ig)).map_err(to_js)?;
                    Ok(f64::NAN)
                }
            }
        })
    }

    fn resolve(&mut self, _env: Env, output: f64) -> Result<f64> {
        Ok(output)
    }

    fn finally(self, _env: Env) -> Result<()> {
        self.busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl NativeNet {
    fn step_task(&self, work: StepWork) -> Result<napi::bindgen_prelude::AsyncTask<StepTask>> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "the network is busy in a running fit(), evaluate(), generate() or async step; await it first"));
        }
        Ok(napi::bindgen_prelude::AsyncTask::new(StepTask { model: self.model.clone(), busy: self.busy.clone(), work }))
    }
}

#[napi]
impl NativeNet {
    /// `stepForward` off the JS thread; resolves with the rows. `out` is written by
    /// the task: do not read or write it before the promise settles.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn step_forward_async(&self, input: Float32Array, train: bool, out: Float32Array, more: Option<Vec<Float32Array>>) -> Result<napi::bindgen_prelude::AsyncTask<StepTask>> {
        self.step_task(StepWork::Forward { input, more, train, out })
    }

    /// `stepBackwardLoss` off the JS thread; resolves with the mean loss.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn step_backward_loss_async(
        &self,
        loss: u32,
        param: Option<f64>,
        weights: Option<Float32Array>,
        labels: Option<Uint32Array>,
        targets: Option<Float32Array>,
        input_grad: bool,
    ) -> Result<napi::bindgen_prelude::AsyncTask<StepTask>> {
        let loss = loss_of(loss, param, weights.as_ref())?;
        self.step_task(StepWork::BackwardLoss { loss, labels, targets, input_grad })
    }

    /// `stepBackwardGrad` off the JS thread.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn step_backward_grad_async(&self, output_grad: Float32Array, input_grad: bool) -> Result<napi::bindgen_prelude::AsyncTask<StepTask>> {
        self.step_task(StepWork::BackwardGrad { grad: output_grad, input_grad })
    }
}
