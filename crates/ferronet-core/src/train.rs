//! The training loop over a whole epoch, and evaluation. One call per epoch:
//! shuffle (seeded), gather a batch (u8 → f32 on the fly), forward, loss, backward, step.

use crate::data::{DataView, TargetBuffer, Targets};
use crate::error::{Error, Result};
use crate::loss::terms::{compute_terms, resolve_outputs};
use crate::loss::{BatchTargets, LossConfig, LossSum, LossTerm, TargetKind};
use crate::model::Model;
use crate::ops::Mode;
use crate::optim::{clip, Optimizer, OptimizerConfig, OptimizerState, Schedule, ScheduleConfig, TensorRef};
use crate::rng::{self, Rng};
use rand::Rng as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Set when the process is exiting: every running fit/evaluate stops before its next
/// batch (an exit otherwise waits for the thread that runs it to finish the whole fit).
static STOP_ALL: AtomicBool = AtomicBool::new(false);

/// Stops every run in this process before its next batch, for good (process exit).
pub fn stop_all() {
    STOP_ALL.store(true, Ordering::SeqCst);
}

/// Shared between a running fit/evaluate and whoever may stop it (another thread).
/// Stopping is checked before every batch, so at most the batch in progress
/// completes after `request_stop`.
#[derive(Debug, Default)]
pub struct TrainControl {
    stop: AtomicBool,
    steps: AtomicUsize,
}

impl TrainControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop before its next batch; returns the steps completed so far.
    pub fn request_stop(&self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.steps.load(Ordering::SeqCst)
    }

    /// Clears a stop request and the step count, for a new run.
    pub fn reset(&self) {
        self.stop.store(false, Ordering::SeqCst);
        self.steps.store(0, Ordering::SeqCst);
    }

    /// Has a stop been asked for (of this run, or of all)?
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || STOP_ALL.load(Ordering::Relaxed)
    }

    /// Optimizer steps (training batches) completed since the last reset.
    pub fn steps(&self) -> usize {
        self.steps.load(Ordering::SeqCst)
    }

    /// Counts one finished step (loops outside this module: the GAN's).
    pub(crate) fn count_step(&self) {
        self.steps.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.stop_requested() {
            return Err(Error::Aborted {
                steps: self.steps(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    /// Report progress every this many batches; 0 reports only at the end of each epoch.
    pub progress_every: usize,
}

/// A progress report, sent every `progress_every` batches and at the end of each epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based epoch number, counted over the trainer's whole life.
    pub epoch: usize,
    /// Batches done in this epoch, and in all of it.
    pub batch: usize,
    pub batches: usize,
    /// Mean loss over the batches of this epoch so far, and the loss's metrics.
    pub loss: f64,
    pub metrics: Metrics,
    /// Kept for the classification case: `metrics.accuracy`, NaN otherwise.
    pub accuracy: f64,
    pub samples: usize,
    pub samples_per_second: f64,
    pub seconds: f64,
    pub epoch_end: bool,
    /// The learning rate of the last step.
    pub lr: f64,
    /// The global 2-norm of this report's step's gradients, before any clipping
    /// (measured on reported steps and whenever clipping is on).
    pub grad_norm: f64,
    /// With loss terms: each term's mean per sample so far, in the terms' order
    /// (`loss` is their weighted total); empty for a single loss.
    pub terms: TermValues,
}

/// Each loss term's mean per sample, in the terms' order (none for a single loss).
/// A fixed array, so the reports stay `Copy`: a loss has at most `MAX_TERMS` terms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TermValues {
    len: usize,
    values: [f64; crate::loss::terms::MAX_TERMS],
}

impl TermValues {
    fn per_sample(sums: &[f64], samples: usize) -> Self {
        let mut t = TermValues { len: sums.len(), ..Default::default() };
        for (v, s) in t.values.iter_mut().zip(sums) {
            *v = s / samples.max(1) as f64;
        }
        t
    }
    pub fn as_slice(&self) -> &[f64] {
        &self.values[..self.len]
    }
}

/// The metrics that fit the loss: accuracy for classification (per label for
/// multi-label targets), mean squared and absolute error for regression.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    pub accuracy: Option<f64>,
    pub mse: Option<f64>,
    pub mae: Option<f64>,
}

impl Metrics {
    fn of(loss: &LossConfig, sums: &LossSum, samples: usize) -> Metrics {
        let per = |x: f64| x / sums.elements.max(1) as f64;
        match loss.metric_kind() {
            // Per-position labels count positions (`elements`); otherwise samples.
            crate::loss::MetricKind::Accuracy => Metrics {
                accuracy: Some(sums.correct as f64 / if sums.elements > 0 { sums.elements } else { samples }.max(1) as f64),
                ..Default::default()
            },
            crate::loss::MetricKind::LabelAccuracy => Metrics {
                accuracy: Some(per(sums.correct as f64)),
                ..Default::default()
            },
            crate::loss::MetricKind::Regression => Metrics {
                accuracy: None,
                mse: Some(per(sums.sq_err)),
                mae: Some(per(sums.abs_err)),
            },
            crate::loss::MetricKind::None => Metrics::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub metrics: Metrics,
    pub seconds: f64,
    pub samples_per_second: f64,
    /// The learning rate of the epoch's last step (a Plateau reduction at the
    /// epoch's end shows from the next epoch on).
    pub lr: f64,
    /// Each loss term's mean per sample (see `Progress::terms`).
    pub terms: TermValues,
    /// Batches whose update was skipped because a gradient was NaN or infinite
    /// (`NonFinite::Skip`); their loss still counts in `loss`.
    pub skipped_batches: usize,
}

/// What a step does when a gradient is NaN or infinite while the loss is finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinite {
    /// `Error::NonFiniteGradient` naming the tensor, epoch and batch; no update.
    #[default]
    Stop,
    /// No update for that batch (the weights keep their last finite values); counted
    /// in `EpochStats::skipped_batches`.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalStats {
    pub loss: f64,
    pub accuracy: f64,
    pub metrics: Metrics,
    pub samples: usize,
    /// Each loss term's mean per sample (see `Progress::terms`).
    pub terms: TermValues,
}

/// Everything a trainer is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    pub optimizer: OptimizerConfig,
    pub loss: LossConfig,
    /// The parameter group this trainer's optimizer owns (None = every trainable tensor).
    pub group: Option<String>,
    pub seed: u64,
    /// Clip the gradients to this global 2-norm before every step
    /// (`torch.nn.utils.clip_grad_norm_`); None = no clipping.
    pub clip_norm: Option<f32>,
    /// A learning-rate schedule, stepped per optimizer step (Plateau: per epoch).
    pub schedule: Option<ScheduleConfig>,
}

/// Everything a trainer carries from one epoch to the next, as data (checkpoints).
/// Floats are kept exactly; a trainer restored from it continues bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    pub epochs_done: usize,
    pub seed: u64,
    /// Position of the shuffle stream (ChaCha8's word position).
    pub shuffle_word_pos: u128,
    pub optimizer: OptimizerState,
    /// The optimizer's current lr (a schedule sets it per step).
    pub optimizer_lr: f32,
    pub lr: f64,
    pub grad_norm: f64,
    /// `Schedule::state`, if there is a schedule.
    pub schedule: Option<[u64; 5]>,
    pub plateau_external: bool,
}

/// Optimizer state plus the shuffle stream: everything that carries over between epochs.
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainerConfig,
    optimizer: Optimizer,
    shuffle_rng: Rng,
    epochs_done: usize,
    order: Vec<usize>,
    targets: TargetBuffer,
    refs: Vec<TensorRef>,
    /// Per-step state beside the optimizer: schedule, clipping, last norm and lr.
    extras: StepExtras,
    /// Loss terms' scratch: output indices, per-term sums, one term's gradient.
    terms: TermScratch,
    /// Plateau is fed validation losses by `report_validation_loss` instead of the
    /// epoch's training loss once one has been given.
    plateau_external: bool,
}

/// What loss terms need per batch, kept across batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct TermScratch {
    /// Each term's output index in the model.
    outputs: Vec<usize>,
    /// Each term's loss summed over the samples so far (of the epoch or evaluation).
    sums: Vec<f64>,
    grad: Vec<f32>,
    /// Class count the labels are checked against (a class term's output size).
    classes: Option<usize>,
}

/// The loss a run optimises or reports: one loss on output 0, or terms.
#[derive(Clone, Copy)]
enum Objective<'a> {
    Single(&'a LossConfig),
    Terms(&'a [LossTerm]),
}

impl<'a> Objective<'a> {
    fn of(config: &'a TrainerConfig) -> Self {
        match &config.loss {
            LossConfig::Terms(terms) => Objective::Terms(terms),
            loss => Objective::Single(loss),
        }
    }
    fn terms(&self) -> usize {
        match self {
            Objective::Single(_) => 0,
            Objective::Terms(t) => t.len(),
        }
    }
    fn metrics(&self, sums: &LossSum, samples: usize) -> Metrics {
        match self {
            Objective::Single(l) => Metrics::of(l, sums, samples),
            Objective::Terms(_) => Metrics::default(),
        }
    }
}

/// What a step needs besides the model and optimizer, and what it reports.
#[derive(Debug, Clone)]
struct StepExtras {
    schedule: Option<Schedule>,
    clip_norm: Option<f32>,
    /// On a non-finite gradient: skip the batch's update (true) or stop with an error.
    skip_non_finite: bool,
    /// Batches whose update was skipped for a non-finite gradient, since the trainer was made.
    skipped: usize,
    /// Scratch for the gradient norm's per-chunk sums.
    partials: Vec<f64>,
    grad_norm: f64,
    lr: f64,
}

impl Trainer {
    /// Cross-entropy training with `config`'s optimizer.
    pub fn new(config: &OptimizerConfig, seed: u64) -> Result<Trainer> {
        Trainer::with_config(TrainerConfig {
            optimizer: config.clone(),
            loss: LossConfig::default(),
            group: None,
            seed,
            clip_norm: None,
            schedule: None,
        })
    }

    pub fn with_config(config: TrainerConfig) -> Result<Trainer> {
        let optimizer = config.optimizer.build()?;
        if let Some(c) = config.clip_norm {
            if !c.is_finite() || c <= 0.0 {
                return Err(Error::config("clipNorm", format!("must be a finite number > 0, got {c}")));
            }
        }
        let schedule = match &config.schedule {
            Some(s) => Some(Schedule::new(s.clone(), optimizer.lr() as f64)?),
            None => None,
        };
        let lr = schedule.as_ref().map_or(optimizer.lr() as f64, |s| s.lr());
        Ok(Trainer {
            extras: StepExtras {
                schedule,
                clip_norm: config.clip_norm,
                skip_non_finite: false,
                skipped: 0,
                partials: Vec::new(),
                grad_norm: f64::NAN,
                lr,
            },
            plateau_external: false,
            terms: TermScratch::default(),
            optimizer,
            shuffle_rng: rng::stream(config.seed, rng::STREAM_SHUFFLE),
            config,
            epochs_done: 0,
            order: Vec::new(),
            targets: TargetBuffer::default(),
            refs: Vec::new(),
        })
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Bytes this trainer holds: the optimizer's buffers and the epoch's scratch.
    pub fn memory_bytes(&self) -> usize {
        self.optimizer.state_bytes() + 8 * self.order.capacity() + 4 * (self.targets.classes.capacity() + self.targets.values.capacity())
    }

    /// Frees the optimizer's buffers and the scratch (`dispose()` in JavaScript): the
    /// trainer starts again from a fresh optimizer state if it is used again.
    pub fn release(&mut self) -> Result<()> {
        self.optimizer = self.config.optimizer.build()?;
        self.order = Vec::new();
        self.targets = TargetBuffer::default();
        Ok(())
    }

    /// The state a checkpoint saves (see [`TrainerState`]).
    pub fn export_state(&self) -> TrainerState {
        TrainerState {
            epochs_done: self.epochs_done,
            seed: self.config.seed,
            shuffle_word_pos: self.shuffle_rng.get_word_pos(),
            optimizer: self.optimizer.export_state(),
            optimizer_lr: self.optimizer.lr(),
            lr: self.extras.lr,
            grad_norm: self.extras.grad_norm,
            schedule: self.extras.schedule.as_ref().map(|s| s.state()),
            plateau_external: self.plateau_external,
        }
    }

    /// Continues from `state` (which a trainer with the same configuration exported).
    /// The caller has checked the optimizer slots against the model's tensors.
    pub fn restore_state(&mut self, state: TrainerState) -> std::result::Result<(), String> {
        if state.seed != self.config.seed {
            return Err(format!("was written by a trainer with seed {}, this one has seed {}", state.seed, self.config.seed));
        }
        match (&mut self.extras.schedule, state.schedule) {
            (Some(s), Some(st)) => s.restore(st),
            (None, None) => {}
            (Some(_), None) => return Err("has no schedule state but this trainer has a schedule".into()),
            (None, Some(_)) => return Err("has schedule state but this trainer has no schedule".into()),
        }
        self.optimizer.import_state(state.optimizer)?;
        self.optimizer.set_lr(state.optimizer_lr);
        self.shuffle_rng = rng::stream(self.config.seed, rng::STREAM_SHUFFLE);
        self.shuffle_rng.set_word_pos(state.shuffle_word_pos);
        self.epochs_done = state.epochs_done;
        self.extras.lr = state.lr;
        self.extras.grad_norm = state.grad_norm;
        self.plateau_external = state.plateau_external;
        Ok(())
    }

    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The schedule's state, if there is one.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.extras.schedule.as_ref()
    }

    /// The learning rate of the last step (before any step: of the first).
    pub fn lr(&self) -> f64 {
        self.extras.lr
    }

    /// What a step does with a NaN or infinite gradient (default: stop).
    pub fn set_non_finite(&mut self, policy: NonFinite) {
        self.extras.skip_non_finite = policy == NonFinite::Skip;
    }

    /// The global gradient 2-norm of the last step, before clipping (NaN before any step).
    pub fn grad_norm(&self) -> f64 {
        self.extras.grad_norm
    }

    /// Sets the learning rate of the following steps (a reduce-on-plateau callback's
    /// job). A trainer with a schedule refuses: the schedule sets the rate every step.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        if self.extras.schedule.is_some() {
            return Err(Error::config("lr", "this trainer has a schedule, which sets the learning rate at every step"));
        }
        if !lr.is_finite() || lr <= 0.0 {
            return Err(Error::config("lr", format!("must be a finite number > 0, got {lr}")));
        }
        self.optimizer.set_lr(lr as f32);
        self.extras.lr = lr;
        Ok(())
    }

    /// Steps a Plateau schedule on a validation loss (call once per epoch, after
    /// `fit_epoch`); from then on `fit_epoch` no longer steps it on its training loss.
    /// Other schedules ignore it.
    pub fn report_validation_loss(&mut self, loss: f64) {
        self.plateau_external = true;
        if let Some(s) = self.extras.schedule.as_mut() {
            s.epoch_end(loss);
        }
    }

    /// One pass over `data`. Stops before the next batch once `control` asks, leaving
    /// the model with the weights of the last finished step, and returns `Error::Aborted`.
    pub fn fit_epoch(
        &mut self,
        model: &mut Model,
        data: &DataView,
        config: &FitConfig,
        on_progress: &mut dyn FnMut(&Progress),
        control: &TrainControl,
    ) -> Result<EpochStats> {
        let objective = Objective::of(&self.config);
        check_data(model, data, objective, &mut self.terms)?;
        if config.batch_size == 0 {
            return Err(Error::config("batchSize", "must be >= 1"));
        }
        let n = data.len();
        if n == 0 {
            return Err(Error::shape("training data", "at least one sample", 0));
        }
        model.reserve(config.batch_size.min(n), true)?;
        model.set_mode(Mode::Train);
        let epoch = self.epochs_done + 1;
        self.order.clear();
        self.order.extend(0..n);
        if config.shuffle {
            fisher_yates(&mut self.order, &mut self.shuffle_rng);
        }
        let batches = n.div_ceil(config.batch_size);
        let started = Instant::now();
        let mut total = LossSum::default();
        let mut samples = 0;
        let skipped_before = self.extras.skipped;
        // The pool's other threads spin for the epoch, ready for each product's parts.
        let order = &self.order;
        let group = self.config.group.as_deref();
        let (targets, optimizer, refs, extras, ts) =
            (&mut self.targets, &mut self.optimizer, &mut self.refs, &mut self.extras, &mut self.terms);
        ts.sums.clear();
        ts.sums.resize(objective.terms(), 0.0);
        crate::team::with_team(|| -> Result<()> {
            for b in 0..batches {
                control.check()?;
                let rows = &order[b * config.batch_size..((b + 1) * config.batch_size).min(n)];
                let chw = model.input_chw();
                let classes = ts.classes.unwrap_or(model.output_dim());
                gathered(data.gather(rows, model.input_buffer(rows.len()), chw), data.gather_targets(rows, targets, classes), rows, epoch, b + 1)?;
                model.check_input_buffer(rows.len(), |r| rows[r])?;
                let epoch_end = b + 1 == batches;
                let report = epoch_end || (config.progress_every > 0 && (b + 1) % config.progress_every == 0);
                let batch = step(model, optimizer, objective, ts, group, refs, extras, rows.len(), targets, epoch, b + 1, report)?;
                control.steps.fetch_add(1, Ordering::SeqCst);
                total.add(&batch);
                samples += rows.len();
                if report {
                    let seconds = started.elapsed().as_secs_f64();
                    let metrics = objective.metrics(&total, samples);
                    on_progress(&Progress {
                        epoch,
                        batch: b + 1,
                        batches,
                        loss: total.loss_sum / samples as f64,
                        accuracy: metrics.accuracy.unwrap_or(f64::NAN),
                        metrics,
                        samples,
                        samples_per_second: samples as f64 / seconds.max(1e-9),
                        seconds,
                        epoch_end,
                        lr: extras.lr,
                        grad_norm: extras.grad_norm,
                        terms: TermValues::per_sample(&ts.sums, samples),
                    });
                }
            }
            Ok(())
        })?;
        self.epochs_done = epoch;
        let seconds = started.elapsed().as_secs_f64();
        let metrics = objective.metrics(&total, n);
        let lr = self.extras.lr;
        if !self.plateau_external {
            if let Some(s) = self.extras.schedule.as_mut() {
                s.epoch_end(total.loss_sum / n as f64);
            }
        }
        Ok(EpochStats {
            epoch,
            loss: total.loss_sum / n as f64,
            accuracy: metrics.accuracy.unwrap_or(f64::NAN),
            metrics,
            seconds,
            samples_per_second: n as f64 / seconds.max(1e-9),
            lr,
            terms: TermValues::per_sample(&self.terms.sums, n),
            skipped_batches: self.extras.skipped - skipped_before,
        })
    }

    /// One optimizer step on one batch of f32 inputs [rows, input_dim] (PyTorch's order);
    /// returns the mean loss before the step. For custom loops and parity tests.
    pub fn train_batch(&mut self, model: &mut Model, inputs: &[f32], targets: Targets) -> Result<f64> {
        let data = DataView::with_targets(crate::data::Inputs::F32(inputs), targets, model.input_dim())?;
        let objective = Objective::of(&self.config);
        check_data(model, &data, objective, &mut self.terms)?;
        model.reserve(data.len(), true)?;
        model.set_mode(Mode::Train);
        let rows: Vec<usize> = (0..data.len()).collect();
        let chw = model.input_chw();
        let classes = self.terms.classes.unwrap_or(model.output_dim());
        gathered(data.gather(&rows, model.input_buffer(rows.len()), chw), data.gather_targets(&rows, &mut self.targets, classes), &rows, self.epochs_done + 1, 1)?;
        model.check_input_buffer(rows.len(), |r| r)?;
        let group = self.config.group.as_deref();
        self.terms.sums.clear();
        self.terms.sums.resize(objective.terms(), 0.0);
        let batch = step(
            model,
            &mut self.optimizer,
            objective,
            &mut self.terms,
            group,
            &mut self.refs,
            &mut self.extras,
            rows.len(),
            &self.targets,
            self.epochs_done + 1,
            1,
            true,
        )?;
        Ok(batch.loss_sum / rows.len().max(1) as f64)
    }
}

/// The result of gathering a batch: a sample with NaN/±∞ inputs, or a bad target,
/// becomes an error naming the sample, the epoch and the batch.
fn gathered(bad_input: Option<usize>, targets: Result<()>, rows: &[usize], epoch: usize, batch: usize) -> Result<()> {
    if let Some(i) = bad_input {
        return Err(Error::NonFiniteData { what: "input".into(), sample: rows[i], epoch, batch });
    }
    match targets {
        Err(Error::NonFiniteData { what, sample, .. }) => Err(Error::NonFiniteData { what, sample, epoch, batch }),
        other => other,
    }
}

fn batch_targets(t: &TargetBuffer, kind: TargetKind) -> BatchTargets<'_> {
    match kind {
        TargetKind::Classes => BatchTargets::Classes(&t.classes),
        TargetKind::Values => BatchTargets::Values(&t.values),
    }
}

/// Forward, loss and backward over the batch in the model's input buffer: fills the
/// gradients and returns the batch's loss statistics.
pub fn forward_backward(model: &mut Model, loss: &LossConfig, rows: usize, targets: &TargetBuffer) -> LossSum {
    model.forward(rows);
    let dim = model.output_dim();
    let sums = {
        let (out, grad) = model.output_and_grad(rows);
        batch_loss(loss, out, rows, dim, targets, Some(grad))
    };
    model.backward(rows);
    sums
}

/// `forward_backward` for either objective; terms add their batch sums to `ts.sums`.
fn forward_backward_objective(model: &mut Model, objective: Objective, ts: &mut TermScratch, rows: usize, targets: &TargetBuffer) -> LossSum {
    match objective {
        Objective::Single(loss) => forward_backward(model, loss, rows, targets),
        Objective::Terms(terms) => {
            model.forward(rows);
            let sums = compute_terms(model, terms, &ts.outputs, rows, targets, &mut ts.sums, Some(&mut ts.grad));
            model.backward_outputs(rows);
            sums
        }
    }
}

/// One optimizer step on the batch in the model's input buffer. A non-finite loss
/// skips the update, so the weights stay usable, and names the epoch and batch.
/// After backward: the gradients' global norm (when clipping, or when the step is
/// reported: `measure_norm`), clipping when asked, the schedule's lr, the optimizer
/// step, the schedule advanced. Measuring the norm on every step is one more pass over
/// the gradients: the seed MLP's epoch took 3–5% longer with it (interleaved A/B).
#[allow(clippy::too_many_arguments)]
fn step(
    model: &mut Model,
    optimizer: &mut Optimizer,
    objective: Objective,
    ts: &mut TermScratch,
    group: Option<&str>,
    refs: &mut Vec<TensorRef>,
    extras: &mut StepExtras,
    rows: usize,
    targets: &TargetBuffer,
    epoch: usize,
    batch: usize,
    measure_norm: bool,
) -> Result<LossSum> {
    let sums = forward_backward_objective(model, objective, ts, rows, targets);
    let mean = sums.loss_sum / rows.max(1) as f64;
    if !mean.is_finite() {
        return Err(Error::NonFiniteLoss {
            value: mean as f32,
            epoch,
            batch,
        });
    }
    model.tensor_refs(group, refs);
    // Safety: the refs point at the model's own, distinct, contiguous parameter and
    // gradient buffers, which nothing else touches during the step.
    unsafe {
        // A NaN or infinite gradient with a finite loss (an overflow in backward) would
        // turn the weights into NaN: checked before any update. The norm, when it is
        // measured anyway, is non-finite exactly then; otherwise one read of the
        // gradients (see `clip::all_finite` for its cost).
        let finite = if measure_norm || extras.clip_norm.is_some() {
            extras.grad_norm = clip::grad_norm(refs, &mut extras.partials);
            extras.grad_norm.is_finite()
        } else {
            clip::all_finite(refs)
        };
        if !finite {
            if extras.skip_non_finite {
                extras.skipped += 1;
                return Ok(sums);
            }
            let param = model.name_of_ref(refs, clip::first_non_finite(refs));
            return Err(Error::gradient_in_batch(param, epoch, batch, "Lower the learning rate or the input scale, clip the gradients (clipNorm), or pass onNonFinite: 'skip' to skip such batches"));
        }
        if let Some(max_norm) = extras.clip_norm {
            clip::clip(refs, extras.grad_norm, max_norm);
        }
        if let Some(s) = &extras.schedule {
            optimizer.set_lr(s.lr() as f32);
            extras.lr = s.lr();
        } else {
            extras.lr = optimizer.lr() as f64;
        }
        optimizer.step(refs);
    }
    if let Some(s) = extras.schedule.as_mut() {
        s.advance();
    }
    Ok(sums)
}

/// Mean loss and the loss's metrics of `model` over all of `data`, in eval mode, in
/// batches of `batch_size` (at most `Model::inference_chunk` rows at a time, to bound
/// the arena).
pub fn evaluate(
    model: &mut Model,
    data: &DataView,
    batch_size: usize,
    loss: &LossConfig,
    control: &TrainControl,
) -> Result<EvalStats> {
    evaluate_objective(model, data, batch_size, Objective::Single(loss), control)
}

/// `evaluate` for a loss of terms: `EvalStats::loss` is their weighted total and
/// `terms` each one's mean per sample.
pub fn evaluate_terms(model: &mut Model, data: &DataView, batch_size: usize, terms: &[LossTerm], control: &TrainControl) -> Result<EvalStats> {
    evaluate_objective(model, data, batch_size, Objective::Terms(terms), control)
}

/// `evaluate` with the loss `config` trains with (its terms, if it has any).
pub fn evaluate_config(model: &mut Model, data: &DataView, batch_size: usize, config: &TrainerConfig, control: &TrainControl) -> Result<EvalStats> {
    evaluate_objective(model, data, batch_size, Objective::of(config), control)
}

fn evaluate_objective(model: &mut Model, data: &DataView, batch_size: usize, objective: Objective, control: &TrainControl) -> Result<EvalStats> {
    let mut ts = TermScratch::default();
    check_data(model, data, objective, &mut ts)?;
    if batch_size == 0 {
        return Err(Error::config("batchSize", "must be >= 1"));
    }
    let batch_size = batch_size.min(model.inference_chunk());
    model.reserve(batch_size.min(data.len()), false)?;
    model.set_mode(Mode::Eval);
    let n = data.len();
    let mut total = LossSum::default();
    let mut rows: Vec<usize> = Vec::with_capacity(batch_size);
    let mut targets = TargetBuffer::default();
    let dim = model.output_dim();
    let classes = ts.classes.unwrap_or(dim);
    if let Objective::Terms(t) = objective {
        ts.sums.resize(t.len(), 0.0);
    }
    for start in (0..n).step_by(batch_size) {
        control.check()?;
        rows.clear();
        rows.extend(start..(start + batch_size).min(n));
        let chw = model.input_chw();
        gathered(data.gather(&rows, model.input_buffer(rows.len()), chw), data.gather_targets(&rows, &mut targets, classes), &rows, 0, start / batch_size + 1)?;
        model.check_input_buffer(rows.len(), |r| rows[r])?;
        let out = model.forward(rows.len());
        let batch = match objective {
            Objective::Single(loss) => batch_loss(loss, out, rows.len(), dim, &targets, None),
            Objective::Terms(terms) => compute_terms(model, terms, &ts.outputs, rows.len(), &targets, &mut ts.sums, None),
        };
        total.add(&batch);
    }
    let metrics = objective.metrics(&total, n);
    Ok(EvalStats {
        loss: total.loss_sum / n.max(1) as f64,
        accuracy: metrics.accuracy.unwrap_or(f64::NAN),
        metrics,
        samples: n,
        terms: TermValues::per_sample(&ts.sums, n),
    })
}

fn check_data(model: &Model, data: &DataView, objective: Objective, ts: &mut TermScratch) -> Result<()> {
    model.expect_single_input("training and evaluation")?;
    if data.dim != model.input_dim() {
        return Err(Error::shape(
            "dataset sample size",
            format!("{} (the network's input shape {:?})", model.input_dim(), model.input_shape()),
            data.dim,
        ));
    }
    let loss = match objective {
        Objective::Single(loss) => loss,
        Objective::Terms(terms) => return check_terms(model, data, terms, ts),
    };
    let classes = sequence_classes(model, data.labels_per_sample)?;
    loss.validate(classes)?;
    check_targets(data, loss, classes, "loss")
}

/// The dataset's targets against a loss on an output of `dim` values (classes when
/// the labels are per position).
fn check_targets(data: &DataView, loss: &LossConfig, dim: usize, field: &str) -> Result<()> {
    match (loss.target_kind(), data.targets) {
        (TargetKind::Classes, Targets::Classes(_)) => data.check_labels(dim),
        (TargetKind::Values, Targets::Values { .. } | Targets::Inputs) => {
            if data.target_dim() != dim {
                return Err(Error::TargetWidth { expected: dim, got: data.target_dim() });
            }
            Ok(())
        }
        (TargetKind::Classes, _) => Err(Error::config(
            field,
            format!("{} needs integer class labels, the dataset has float targets", loss.name()),
        )),
        (TargetKind::Values, _) => Err(Error::config(
            field,
            format!("{} needs float targets, the dataset has class labels", loss.name()),
        )),
    }
}

/// The class count of a model trained with `k` labels per sample: its output size
/// for k = 1; for k > 1 the output must be [k, classes] (positions first, classes last).
fn sequence_classes(model: &Model, k: usize) -> Result<usize> {
    let shape = model.output_shape();
    if k <= 1 {
        return Ok(model.output_dim());
    }
    let classes = *shape.last().unwrap_or(&0);
    if shape.len() < 2 || model.output_dim() != k * classes {
        return Err(Error::shape(
            "labels per sample",
            format!(
                "1 label per sample, or one per position of an output [positions, classes] (the network's output is {shape:?})"
            ),
            format!("{k} labels per sample"),
        ));
    }
    Ok(classes)
}

/// The loss of a batch whose targets may hold k labels per sample (a [k, classes]
/// output): each position is a row of the loss (PyTorch's `logits.view(-1, V)`), and
/// the sums are scaled back to samples, so the reported loss is the mean per position
/// and the accuracy the fraction of positions right.
pub(crate) fn batch_loss(loss: &LossConfig, out: &[f32], rows: usize, dim: usize, targets: &TargetBuffer, grad: Option<&mut [f32]>) -> LossSum {
    positions_loss(loss, out, rows, dim, batch_targets(targets, loss.target_kind()), targets.per_sample(), grad)
}

/// `batch_loss` on borrowed targets with `k` labels per sample (the step API's).
pub(crate) fn positions_loss(loss: &LossConfig, out: &[f32], rows: usize, dim: usize, targets: BatchTargets, k: usize, grad: Option<&mut [f32]>) -> LossSum {
    let mut sums = loss.compute(out, rows * k, dim / k, targets, grad);
    if k > 1 {
        sums.loss_sum /= k as f64;
        sums.elements = rows * k;
    }
    sums
}

/// Each term's output, options and targets; fills `ts.outputs` and `ts.classes`.
fn check_terms(model: &Model, data: &DataView, terms: &[LossTerm], ts: &mut TermScratch) -> Result<()> {
    resolve_outputs(terms, model, &mut ts.outputs)?;
    ts.classes = None;
    for (k, (t, &o)) in terms.iter().zip(&ts.outputs).enumerate() {
        let dim = crate::ops::numel(model.output_shape_at(o));
        t.validate(k, dim)?;
        if let crate::loss::TermLoss::Loss(l) = &t.loss {
            check_targets(data, l, dim, &format!("loss[{k}]"))?;
            if l.target_kind() == TargetKind::Classes {
                ts.classes = Some(dim);
            }
        }
    }
    Ok(())
}

/// Uniform in-place shuffle driven by our seeded stream.
fn fisher_yates(v: &mut [usize], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}
