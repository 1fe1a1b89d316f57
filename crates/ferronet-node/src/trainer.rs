//! `NativeTrainer`: optimizer state and a thread budget on the process's one compute
//! pool; `fit` and `evaluate` run on threads of their own (see `spawn`) and report progress
//! through a threadsafe function.

use ferronet_core::train::evaluate_config;
use ferronet_core::TrainControl;
use ferronet_core::{FitConfig, Progress, Trainer};
use ferronet_core::team::run_on_pool;
use ferronet_core::{Labels, Targets};
use napi::bindgen_prelude::{Float32Array, Object, Uint32Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status, Task};
use napi_derive::napi;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::data::NativeData;
use crate::spawn::spawn_task;
use crate::error::{coded, guard, to_js};
use crate::net::{account, live, lock, report_external, try_lock, NativeNet, SharedModel};
use crate::options::{
    non_finite_policy, trainer_config, NativeEpochStats, NativeEvalStats, NativeFitOptions, NativeProgress,
    NativeTrainerOptions,
};

/// Progress callback: no error-first argument; at most 64 reports queued, the
/// rest dropped (epoch-end reports wait for room instead).
pub type ProgressFn =
    ThreadsafeFunction<NativeProgress, (), NativeProgress, Status, false, false, 64>;

#[napi(custom_finalize)]
pub struct NativeTrainer {
    pub(crate) model: SharedModel,
    pub(crate) trainer: Arc<Mutex<Trainer>>,
    threads: usize,
    control: Arc<TrainControl>,
    pub(crate) running: Arc<AtomicBool>,
    /// The net's busy flag (shared by every trainer of the net).
    net_busy: Arc<AtomicBool>,
    /// The net's external-memory report (the arena grows when a fit first runs).
    net_external: Arc<std::sync::atomic::AtomicI64>,
    /// This trainer's own report (optimizer state), in bytes.
    external: Arc<std::sync::atomic::AtomicI64>,
}

impl napi::bindgen_prelude::ObjectFinalize for NativeTrainer {
    fn finalize(self, env: Env) -> Result<()> {
        report_external(&env, 0, &self.external);
        Ok(())
    }
}

/// Reports a trainer's size to V8 (the change since the last report).
fn account_trainer(env: &Env, trainer: &Mutex<Trainer>, reported: &std::sync::atomic::AtomicI64) {
    if let Ok(t) = trainer.try_lock() {
        report_external(env, t.memory_bytes(), reported);
    }
}

#[napi]
impl NativeTrainer {
    /// `options.threads` = 0 uses every thread of the shared pool.
    #[napi(constructor, catch_unwind)]
    pub fn new(net: &NativeNet, options: NativeTrainerOptions) -> Result<Self> {
        let config = trainer_config(&options)?;
        let mut trainer = Trainer::with_config(config).map_err(to_js)?;
        trainer.set_non_finite(non_finite_policy(&options)?);
        let pool = ferronet_core::team::pool().current_num_threads();
        let threads = match options.threads as usize {
            0 => pool,
            n => n.min(pool),
        };
        let control = Arc::new(TrainControl::new());
        Ok(NativeTrainer {
            model: net.model.clone(),
            trainer: Arc::new(Mutex::new(trainer)),
            threads,
            control,
            running: Arc::new(AtomicBool::new(false)),
            net_busy: net.busy.clone(),
            net_external: net.external.clone(),
            external: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        })
    }

    /// Threads this trainer computes with (at most the shared pool's).
    #[napi(getter)]
    pub fn threads(&self) -> u32 {
        self.threads as u32
    }

    /// Frees the optimizer's state now (instead of at a garbage collection). The
    /// trainer stays usable: a later fit starts from a fresh optimizer state.
    #[napi(catch_unwind)]
    pub fn dispose(&self, env: Env) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "the trainer is running a fit() or evaluate(); await it before dispose()"));
        }
        self.trainer.lock().unwrap_or_else(|p| p.into_inner()).release().map_err(to_js)?;
        account_trainer(&env, &self.trainer, &self.external);
        Ok(())
    }

    /// The learning rate of the last step (before any step: of the first).
    #[napi(getter)]
    pub fn learning_rate(&self) -> f64 {
        self.trainer.lock().unwrap_or_else(|p| p.into_inner()).lr()
    }

    /// Sets the learning rate of the following steps (refused with a schedule).
    #[napi(catch_unwind)]
    pub fn set_learning_rate(&self, lr: f64) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "the trainer is running a fit() or evaluate(); await it first"));
        }
        self.trainer.lock().unwrap_or_else(|p| p.into_inner()).set_lr(lr).map_err(to_js)
    }

    /// Feeds a Plateau schedule the epoch's validation loss (from then on it follows
    /// these instead of the training loss); other schedules ignore it.
    #[napi(catch_unwind)]
    pub fn report_validation_loss(&self, loss: f64) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "the trainer is running a fit() or evaluate(); await it first"));
        }
        if !loss.is_finite() {
            return Err(coded("ERR_INVALID_OPTION", format!("invalid option `loss`: must be finite, got {loss}")));
        }
        self.trainer.lock().unwrap_or_else(|p| p.into_inner()).report_validation_loss(loss);
        Ok(())
    }

    /// Trains `options.epochs` epochs; resolves with one stats object per epoch.
    #[napi(ts_return_type = "Promise<NativeEpochStats[]>")]
    pub fn fit<'env>(
        &self,
        env: &'env Env,
        data: NativeData,
        options: NativeFitOptions,
        #[napi(ts_arg_type = "((progress: NativeProgress) => void) | undefined | null")]
        on_progress: Option<ProgressFn>,
    ) -> Result<Object<'env>> {
        data.validate()?;
        if options.batch_size == 0 {
            return Err(coded(
                "ERR_INVALID_OPTION",
                "invalid option `batchSize`: must be >= 1",
            ));
        }
        self.claim()?;
        let task = FitTask {
            model: self.model.clone(),
            trainer: self.trainer.clone(),
            threads: self.threads,
            control: self.control.clone(),
            running: self.running.clone(),
            net_busy: self.net_busy.clone(),
            net_external: self.net_external.clone(),
            external: self.external.clone(),
            data,
            config: FitConfig {
                batch_size: options.batch_size as usize,
                shuffle: options.shuffle.unwrap_or(true),
                progress_every: options.progress_every.unwrap_or(0) as usize,
            },
            epochs: options.epochs as usize,
            on_progress,
        };
        spawn_task(env, task, self.control.clone())
    }

    /// Mean loss and accuracy over `data`.
    #[napi(ts_return_type = "Promise<NativeEvalStats>")]
    pub fn evaluate<'env>(&self, env: &'env Env, data: NativeData, batch_size: u32) -> Result<Object<'env>> {
        data.validate()?;
        if batch_size == 0 {
            return Err(coded(
                "ERR_INVALID_OPTION",
                "invalid option `batchSize`: must be >= 1",
            ));
        }
        self.claim()?;
        let task = EvalTask {
            model: self.model.clone(),
            trainer: self.trainer.clone(),
            threads: self.threads,
            control: self.control.clone(),
            running: self.running.clone(),
            net_busy: self.net_busy.clone(),
            net_external: self.net_external.clone(),
            external: self.external.clone(),
            data,
            batch_size: batch_size as usize,
        };
        spawn_task(env, task, self.control.clone())
    }

    /// One synchronous optimizer step on one batch of features [rows, ...inputShape] with
    /// class ids (`labels`) or float targets; returns the loss before the step.
    #[napi(catch_unwind)]
    pub fn train_batch(
        &self,
        env: Env,
        features: Float32Array,
        labels: Option<Uint32Array>,
        targets: Option<Float32Array>,
    ) -> Result<f64> {
        guard("trainBatch", || {
            if self.running.load(Ordering::SeqCst) {
                return Err(coded(
                    "ERR_BUSY",
                    "this trainer is running fit() or evaluate(); await it first",
                ));
            }
            let mut model_guard = try_lock(&self.model)?;
            let mut trainer_guard = self.trainer.lock().unwrap_or_else(|p| p.into_inner());
            let (model, trainer) = (&mut *model_guard, &mut *trainer_guard);
            let t = match (&labels, &targets) {
                (Some(l), None) => Targets::Classes(Labels::U32(l)),
                (None, Some(t)) => Targets::Values { data: t, dim: model.output_dim() },
                _ => return Err(coded("ERR_SHAPE", "trainBatch needs exactly one of labels or targets")),
            };
            let loss = run_on_pool(self.threads, || trainer.train_batch(model, &features, t)).map_err(to_js)?;
            // The first step sizes the optimizer state and the arena: tell V8.
            report_external(&env, trainer.memory_bytes(), &self.external);
            account(&env, model, &self.net_external);
            Ok(loss)
        })
    }

    /// Asks a running fit/evaluate to stop before its next batch; returns the
    /// optimizer steps this fit had completed at that moment.
    #[napi]
    pub fn abort(&self) -> u32 {
        self.control.request_stop() as u32
    }

    /// One task at a time per trainer; a new task clears an earlier abort.
    fn claim(&self) -> Result<()> {
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(coded(
                "ERR_BUSY",
                "this trainer is already running fit() or evaluate(); await it first",
            ));
        }
        if self.net_busy.swap(true, Ordering::SeqCst) {
            self.running.store(false, Ordering::SeqCst);
            return Err(coded(
                "ERR_BUSY",
                "the network is being trained or evaluated by another trainer's fit() or evaluate(); await it first",
            ));
        }
        self.control.reset();
        Ok(())
    }
}

pub struct FitTask {
    model: SharedModel,
    trainer: Arc<Mutex<Trainer>>,
    threads: usize,
    control: Arc<TrainControl>,
    running: Arc<AtomicBool>,
    net_busy: Arc<AtomicBool>,
    net_external: Arc<std::sync::atomic::AtomicI64>,
    external: Arc<std::sync::atomic::AtomicI64>,
    data: NativeData,
    config: FitConfig,
    epochs: usize,
    on_progress: Option<ProgressFn>,
}

impl Task for FitTask {
    type Output = Vec<NativeEpochStats>;
    type JsValue = Vec<NativeEpochStats>;

    fn compute(&mut self) -> Result<Self::Output> {
        guard("fit", || {
            let data = self.data.view()?;
            let mut model_guard = live(lock(&self.model))?;
            let mut trainer_guard = self.trainer.lock().unwrap_or_else(|p| p.into_inner());
            let (model, trainer) = (&mut *model_guard, &mut *trainer_guard);
            let callback = self.on_progress.as_ref();
            let mut report = |p: &Progress| {
                // After a stop request nobody waits for reports, and a blocking one
                // could wait on a JS thread that is tearing down.
                if let (Some(cb), false) = (callback, self.control.stop_requested()) {
                    let mode = if p.epoch_end {
                        ThreadsafeFunctionCallMode::Blocking
                    } else {
                        ThreadsafeFunctionCallMode::NonBlocking
                    };
                    cb.call(NativeProgress::from(p), mode);
                }
            };
            let mut stats = Vec::with_capacity(self.epochs);
            for _ in 0..self.epochs {
                let epoch = run_on_pool(self.threads, || {
                    trainer.fit_epoch(model, &data, &self.config, &mut report, &self.control)
                })
                .map_err(to_js)?;
                stats.push(epoch.into());
            }
            Ok(stats)
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        if let Ok(m) = self.model.try_lock() {
            account(&env, &m, &self.net_external);
        }
        account_trainer(&env, &self.trainer, &self.external);
        Ok(output)
    }

    fn finally(self, _env: Env) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        self.net_busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}

pub struct EvalTask {
    model: SharedModel,
    trainer: Arc<Mutex<Trainer>>,
    threads: usize,
    control: Arc<TrainControl>,
    running: Arc<AtomicBool>,
    net_busy: Arc<AtomicBool>,
    net_external: Arc<std::sync::atomic::AtomicI64>,
    external: Arc<std::sync::atomic::AtomicI64>,
    data: NativeData,
    batch_size: usize,
}

impl Task for EvalTask {
    type Output = NativeEvalStats;
    type JsValue = NativeEvalStats;

    fn compute(&mut self) -> Result<Self::Output> {
        guard("evaluate", || {
            let data = self.data.view()?;
            let mut model_guard = live(lock(&self.model))?;
            let model = &mut *model_guard;
            let config = self.trainer.lock().unwrap_or_else(|p| p.into_inner()).config().clone();
            let s = run_on_pool(self.threads, || {
                evaluate_config(model, &data, self.batch_size, &config, &self.control)
            })
            .map_err(to_js)?;
            Ok(NativeEvalStats::new(s.loss, s.metrics, s.samples, &s.terms))
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        if let Ok(m) = self.model.try_lock() {
            account(&env, &m, &self.net_external);
        }
        account_trainer(&env, &self.trainer, &self.external);
        Ok(output)
    }

    fn finally(self, _env: Env) -> Result<()> {
        self.running.store(false, Ordering::SeqCst);
        self.net_busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}
