//! The training loop over a whole epoch, and evaluation. One call per epoch:
//! shuffle (seeded), gather a batch (u8 → f32 on the fly), forward, backward, step.

use crate::data::DataView;
use crate::error::{Error, Result};
use crate::loss::LossSum;
use crate::model::Model;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::rng::{self, Rng};
use rand::Rng as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

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

    /// Optimizer steps (training batches) completed since the last reset.
    pub fn steps(&self) -> usize {
        self.steps.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<()> {
        if self.stop.load(Ordering::SeqCst) {
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
    /// Mean loss and accuracy over the batches of this epoch so far.
    pub loss: f64,
    pub accuracy: f64,
    pub samples: usize,
    pub samples_per_second: f64,
    pub seconds: f64,
    pub epoch_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalStats {
    pub loss: f64,
    pub accuracy: f64,
    pub samples: usize,
}

/// Optimizer state plus the shuffle stream: everything that carries over between epochs.
#[derive(Debug, Clone)]
pub struct Trainer {
    optimizer: Optimizer,
    shuffle_rng: Rng,
    epochs_done: usize,
    order: Vec<usize>,
    batch_labels: Vec<u8>,
}

impl Trainer {
    pub fn new(config: &OptimizerConfig, seed: u64) -> Result<Trainer> {
        Ok(Trainer {
            optimizer: config.build()?,
            shuffle_rng: rng::stream(seed, rng::STREAM_SHUFFLE),
            epochs_done: 0,
            order: Vec::new(),
            batch_labels: Vec::new(),
        })
    }

    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
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
        check_data(model, data)?;
        if config.batch_size == 0 {
            return Err(Error::config("batchSize", "must be >= 1"));
        }
        let n = data.len();
        if n == 0 {
            return Err(Error::shape("training data", "at least one sample", 0));
        }
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
        // The pool's other threads spin for the epoch, ready for each product's parts.
        let order = &self.order;
        let (batch_labels, optimizer) = (&mut self.batch_labels, &mut self.optimizer);
        crate::team::with_team(|| -> Result<()> {
            for b in 0..batches {
                control.check()?;
                let rows = &order[b * config.batch_size..((b + 1) * config.batch_size).min(n)];
                data.gather(rows, model.input_buffer(rows.len()));
                data.gather_labels(rows, batch_labels);
                let batch = step(model, optimizer, rows.len(), batch_labels, epoch, b + 1)?;
                control.steps.fetch_add(1, Ordering::SeqCst);
                total.loss_sum += batch.loss_sum;
                total.correct += batch.correct;
                samples += rows.len();
                let epoch_end = b + 1 == batches;
                if epoch_end || (config.progress_every > 0 && (b + 1) % config.progress_every == 0)
                {
                    let seconds = started.elapsed().as_secs_f64();
                    on_progress(&Progress {
                        epoch,
                        batch: b + 1,
                        batches,
                        loss: total.loss_sum / samples as f64,
                        accuracy: total.correct as f64 / samples as f64,
                        samples,
                        samples_per_second: samples as f64 / seconds.max(1e-9),
                        seconds,
                        epoch_end,
                    });
                }
            }
            Ok(())
        })?;
        self.epochs_done = epoch;
        let seconds = started.elapsed().as_secs_f64();
        Ok(EpochStats {
            epoch,
            loss: total.loss_sum / n as f64,
            accuracy: total.correct as f64 / n as f64,
            seconds,
            samples_per_second: n as f64 / seconds.max(1e-9),
        })
    }

    /// One optimizer step on one batch of f32 inputs [rows, input_dim]; returns the mean loss
    /// before the step. For custom loops and parity tests.
    pub fn train_batch(&mut self, model: &mut Model, inputs: &[f32], labels: &[u8]) -> Result<f64> {
        let data = DataView::new(crate::data::Inputs::F32(inputs), labels, model.input_dim())?;
        check_data(model, &data)?;
        let rows: Vec<usize> = (0..labels.len()).collect();
        data.gather(&rows, model.input_buffer(rows.len()));
        let batch = step(
            model,
            &mut self.optimizer,
            rows.len(),
            labels,
            self.epochs_done + 1,
            1,
        )?;
        Ok(batch.loss_sum / rows.len().max(1) as f64)
    }
}

/// One optimizer step on the batch in the model's input buffer. A non-finite loss
/// skips the update, so the weights stay usable, and names the epoch and batch.
fn step(
    model: &mut Model,
    optimizer: &mut Optimizer,
    rows: usize,
    labels: &[u8],
    epoch: usize,
    batch: usize,
) -> Result<LossSum> {
    let sums = model.forward_backward(rows, labels);
    let mean = sums.loss_sum / rows.max(1) as f64;
    if !mean.is_finite() {
        return Err(Error::NonFiniteLoss {
            value: mean as f32,
            epoch,
            batch,
        });
    }
    model.apply_optimizer(optimizer);
    Ok(sums)
}

/// Mean loss and accuracy of `model` over all of `data`, in batches of `batch_size`.
pub fn evaluate(
    model: &mut Model,
    data: &DataView,
    batch_size: usize,
    control: &TrainControl,
) -> Result<EvalStats> {
    check_data(model, data)?;
    if batch_size == 0 {
        return Err(Error::config("batchSize", "must be >= 1"));
    }
    let n = data.len();
    let mut total = LossSum::default();
    let mut rows: Vec<usize> = Vec::with_capacity(batch_size);
    let mut labels = Vec::with_capacity(batch_size);
    for start in (0..n).step_by(batch_size) {
        control.check()?;
        rows.clear();
        rows.extend(start..(start + batch_size).min(n));
        data.gather(&rows, model.input_buffer(rows.len()));
        data.gather_labels(&rows, &mut labels);
        let batch = model.loss_batch(rows.len(), &labels);
        total.loss_sum += batch.loss_sum;
        total.correct += batch.correct;
    }
    let denom = n.max(1) as f64;
    Ok(EvalStats {
        loss: total.loss_sum / denom,
        accuracy: total.correct as f64 / denom,
        samples: n,
    })
}

fn check_data(model: &Model, data: &DataView) -> Result<()> {
    if data.dim != model.input_dim() {
        return Err(Error::shape(
            "dataset sample width",
            format!("{} (the network's input width)", model.input_dim()),
            data.dim,
        ));
    }
    data.check_labels(model.output_dim())
}

/// Uniform in-place shuffle driven by our seeded stream.
fn fisher_yates(v: &mut [usize], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}
