//! `NativeGanTrainer`: a GAN's epochs (core `gan::GanTrainer`) as tasks on threads of
//! their own (see `spawn`), with progress through a threadsafe function; `generate` for language
//! models, also as such a task; `ganNoise` recomputes a batch's noise.

use ferronet_core::gan::{self, GanFitConfig, GanProgress, GanTrainer};
use ferronet_core::generate::{generate_until, GenerateConfig};
use ferronet_core::team::run_on_pool;
use ferronet_core::TrainControl;
use napi::bindgen_prelude::{Float32Array, Object, Uint32Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status, Task};
use napi_derive::napi;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{coded, guard, to_js};
use crate::net::{account, live, lock, NativeNet, SharedModel};
use crate::spawn::spawn_task;
use crate::step::{lock_opt, NativeStepOptimizer};

#[napi(object)]
pub struct NativeGanProgress {
    pub epoch: u32,
    pub batch: u32,
    pub batches: u32,
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub samples: u32,
    pub seconds: f64,
    pub epoch_end: bool,
}

impl From<&GanProgress> for NativeGanProgress {
    fn from(p: &GanProgress) -> Self {
        NativeGanProgress {
            epoch: p.epoch as u32,
            batch: p.batch as u32,
            batches: p.batches as u32,
            d_loss: p.d_loss,
            g_loss: p.g_loss,
            d_real: p.d_real,
            d_fake: p.d_fake,
            samples: p.samples as u32,
            seconds: p.seconds,
            epoch_end: p.epoch_end,
        }
    }
}

#[napi(object)]
pub struct NativeGanFitOptions {
    pub epochs: u32,
    pub batch_size: u32,
    pub shuffle: Option<bool>,
    pub progress_every: Option<u32>,
}

pub type GanProgressFn = ThreadsafeFunction<NativeGanProgress, (), NativeGanProgress, Status, false, false, 64>;

struct Side {
    model: SharedModel,
    busy: Arc<AtomicBool>,
    external: Arc<std::sync::atomic::AtomicI64>,
    optimizer: Arc<Mutex<ferronet_core::Optimizer>>,
}

#[napi]
pub struct NativeGanTrainer {
    g: Arc<Side>,
    d: Arc<Side>,
    trainer: Arc<Mutex<GanTrainer>>,
    threads: usize,
    control: Arc<TrainControl>,
    running: Arc<AtomicBool>,
    /// Epochs finished, readable while a fit holds the trainer.
    epochs_done: Arc<AtomicU32>,
}

fn side(net: &NativeNet, opt: &NativeStepOptimizer, which: &str) -> Result<Side> {
    if !Arc::ptr_eq(&net.model, &opt.model) {
        return Err(coded("ERR_INVALID_OPTION", format!("invalid option `{which}`: this optimizer was made for another net (use {}.optimizer(...))", if which == "optG" { "generator" } else { "discriminator" })));
    }
    Ok(Side { model: net.model.clone(), busy: net.busy.clone(), external: net.external.clone(), optimizer: opt.optimizer.clone() })
}

#[napi]
impl NativeGanTrainer {
    #[napi(constructor, catch_unwind)]
    pub fn new(generator: &NativeNet, discriminator: &NativeNet, opt_g: &NativeStepOptimizer, opt_d: &NativeStepOptimizer, noise_dim: u32, seed: f64, threads: u32) -> Result<Self> {
        if Arc::ptr_eq(&generator.model, &discriminator.model) {
            return Err(coded("ERR_INVALID_OPTION", "invalid option `discriminator`: must be another net than the generator"));
        }
        let mut trainer = GanTrainer::new(noise_dim as usize, seed as u64).map_err(to_js)?;
        trainer.group_g = opt_g.group.clone();
        trainer.group_d = opt_d.group.clone();
        {
            let (g, d) = (crate::net::try_lock(&generator.model)?, crate::net::try_lock(&discriminator.model)?);
            trainer.check(&g, &d, d.input_dim()).map_err(to_js)?;
        }
        let pool = ferronet_core::team::pool().current_num_threads();
        Ok(NativeGanTrainer {
            g: Arc::new(side(generator, opt_g, "optG")?),
            d: Arc::new(side(discriminator, opt_d, "optD")?),
            trainer: Arc::new(Mutex::new(trainer)),
            threads: match threads as usize {
                0 => pool,
                n => n.min(pool),
            },
            control: Arc::new(TrainControl::new()),
            running: Arc::new(AtomicBool::new(false)),
            epochs_done: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Epochs finished.
    #[napi(getter)]
    pub fn epochs_done(&self) -> u32 {
        self.epochs_done.load(Ordering::SeqCst)
    }

    /// Trains `options.epochs` epochs on `real` (rows × D's input size); resolves
    /// with each epoch's last report.
    #[napi(ts_return_type = "Promise<NativeGanProgress[]>")]
    pub fn fit<'env>(
        &self,
        env: &'env Env,
        real: Float32Array,
        options: NativeGanFitOptions,
        #[napi(ts_arg_type = "((progress: NativeGanProgress) => void) | undefined | null")] on_progress: Option<GanProgressFn>,
    ) -> Result<Object<'env>> {
        if options.batch_size == 0 {
            return Err(coded("ERR_INVALID_OPTION", "invalid option `batchSize`: must be >= 1"));
        }
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "this GanTrainer is already running fit(); await it first"));
        }
        if self.g.busy.swap(true, Ordering::SeqCst) {
            self.running.store(false, Ordering::SeqCst);
            return Err(coded("ERR_BUSY", "the generator is busy in another fit(), evaluate() or generate(); await it first"));
        }
        if self.d.busy.swap(true, Ordering::SeqCst) {
            self.g.busy.store(false, Ordering::SeqCst);
            self.running.store(false, Ordering::SeqCst);
            return Err(coded("ERR_BUSY", "the discriminator is busy in another fit(), evaluate() or generate(); await it first"));
        }
        self.control.reset();
        let task = GanFitTask {
            g: self.g.clone(),
            d: self.d.clone(),
            trainer: self.trainer.clone(),
            threads: self.threads,
            control: self.control.clone(),
            running: self.running.clone(),
            epochs_done: self.epochs_done.clone(),
            real,
            config: GanFitConfig {
                batch_size: options.batch_size as usize,
                shuffle: options.shuffle.unwrap_or(true),
                progress_every: options.progress_every.unwrap_or(0) as usize,
            },
            epochs: options.epochs as usize,
            on_progress,
        };
        spawn_task(env, task, self.control.clone())
    }

    /// Asks a running fit to stop before its next batch; returns the batches done.
    #[napi]
    pub fn abort(&self) -> u32 {
        self.control.request_stop() as u32
    }
}

pub struct GanFitTask {
    g: Arc<Side>,
    d: Arc<Side>,
    trainer: Arc<Mutex<GanTrainer>>,
    threads: usize,
    control: Arc<TrainControl>,
    running: Arc<AtomicBool>,
    epochs_done: Arc<AtomicU32>,
    real: Float32Array,
    config: GanFitConfig,
    epochs: usize,
    on_progress: Option<GanProgressFn>,
}

impl Task for GanFitTask {
    type Output = Vec<NativeGanProgress>;
    type JsValue = Vec<NativeGanProgress>;

    fn compute(&mut self) -> Result<Self::Output> {
        guard("GanTrainer.fit", || {
            let mut g = live(lock(&self.g.model))?;
            let mut d = live(lock(&self.d.model))?;
            let mut og = lock_opt(&self.g.optimizer);
            let mut od = lock_opt(&self.d.optimizer);
            let mut trainer = self.trainer.lock().unwrap_or_else(|p| p.into_inner());
            let callback = self.on_progress.as_ref();
            let control = &*self.control;
            // After a stop request nobody waits for reports (see trainer.rs).
            let mut report = |p: &GanProgress| {
                if let (Some(cb), false) = (callback, control.stop_requested()) {
                    let mode = if p.epoch_end { ThreadsafeFunctionCallMode::Blocking } else { ThreadsafeFunctionCallMode::NonBlocking };
                    cb.call(NativeGanProgress::from(p), mode);
                }
            };
            let mut out = Vec::with_capacity(self.epochs);
            let (g, d, og, od, trainer) = (&mut *g, &mut *d, &mut *og, &mut *od, &mut *trainer);
            let real: &[f32] = &self.real;
            let config = &self.config;
            for _ in 0..self.epochs {
                let p = run_on_pool(self.threads, || {
                    trainer.fit_epoch(g, d, og, od, real, config, &mut report, control)
                })
                .map_err(to_js)?;
                self.epochs_done.store(trainer.epochs_done() as u32, Ordering::SeqCst);
                out.push(NativeGanProgress::from(&p));
            }
            Ok(out)
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        for s in [&self.g, &self.d] {
            if let Ok(m) = s.model.try_lock() {
                account(&env, &m, &s.external);
            }
        }
        Ok(output)
    }

    fn finally(self, _env: Env) -> Result<()> {
        self.g.busy.store(false, Ordering::SeqCst);
        self.d.busy.store(false, Ordering::SeqCst);
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// The N(0, 1) noise `GanTrainer` draws for batch `batch` of epoch `epoch` (1-based).
#[napi]
pub fn gan_noise(seed: f64, epoch: u32, batch: u32, rows: u32, noise_dim: u32) -> Float32Array {
    let mut z = vec![0.0; rows as usize * noise_dim as usize];
    gan::noise(seed as u64, epoch as usize, batch as usize, &mut z);
    Float32Array::new(z)
}

#[napi(object)]
pub struct NativeGeneration {
    /// The prompt followed by the new ids.
    pub ids: Uint32Array,
    pub seconds: f64,
}

#[napi]
impl NativeNet {
    /// Samples `maxNewTokens` ids after `prompt` (see core `generate`), off the JS thread.
    #[napi(ts_return_type = "Promise<NativeGeneration>")]
    pub fn generate<'env>(&self, env: &'env Env, prompt: Uint32Array, max_new_tokens: u32, temperature: f64, top_k: u32, seed: f64, threads: u32) -> Result<Object<'env>> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "the network is busy in a running fit(), evaluate() or generate(); await it first"));
        }
        let control = Arc::new(TrainControl::new());
        let task = GenerateTask {
            control: control.clone(),
            model: self.model.clone(),
            busy: self.busy.clone(),
            prompt: prompt.to_vec(),
            config: GenerateConfig { max_new_tokens: max_new_tokens as usize, temperature: temperature as f32, top_k: top_k as usize, seed: seed as u64 },
            threads: threads as usize,
        };
        spawn_task(env, task, control)
    }
}

pub struct GenerateTask {
    /// Raised only by the environment's teardown (see `spawn`).
    control: Arc<TrainControl>,
    model: SharedModel,
    busy: Arc<AtomicBool>,
    prompt: Vec<u32>,
    config: GenerateConfig,
    threads: usize,
}

impl Task for GenerateTask {
    type Output = (Vec<u32>, f64);
    type JsValue = NativeGeneration;

    fn compute(&mut self) -> Result<Self::Output> {
        guard("generate", || {
            let mut model = live(lock(&self.model))?;
            let started = std::time::Instant::now();
            let (m, prompt, config) = (&mut *model, &self.prompt, &self.config);
            let control = &*self.control;
            let ids = run_on_pool(self.threads, || generate_until(m, prompt, config, control)).map_err(to_js)?;
            Ok((ids, started.elapsed().as_secs_f64()))
        })
    }

    fn resolve(&mut self, _env: Env, (ids, seconds): Self::Output) -> Result<Self::JsValue> {
        Ok(NativeGeneration { ids: Uint32Array::new(ids), seconds })
    }

    fn finally(self, _env: Env) -> Result<()> {
        self.busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}
