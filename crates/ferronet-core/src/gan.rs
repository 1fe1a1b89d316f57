//! A GAN's epoch loop, one call per epoch like `Trainer::fit_epoch`: per batch the
//! discriminator step, then the generator step (the order of PyTorch's DCGAN example).
//!
//! - D step: D(x) on the real batch labelled 1 and D(G(z)) on the fake batch labelled
//!   0, BCE with logits, the two backward passes accumulating (`errD_real.backward();
//!   errD_fake.backward()`), then D's optimizer only; dLoss = the sum of the two means.
//! - G step, non-saturating: D(G(z)) with the same z labelled 1, backpropagated
//!   through D (whose weights are NOT updated: its optimizer does not step, and its
//!   gradients are zeroed before its next step) into ∂L/∂G(z), then through G; G's
//!   optimizer only.
//!
//! Two models rather than one graph's two groups: D reads both real and generated
//! batches, which one graph would need two copies of D (sharing weights) for; with
//! two models G's output is D's input and ∂L/∂G(z) is D's input gradient.
//!
//! The noise of batch b of epoch e is N(0, 1) from a counter-based stream of (seed,
//! e, b): reproducible, independent of threads, and recomputable (`noise`).

use crate::error::{Error, Result};
use crate::graph::Model;
use crate::loss::{BatchTargets, LossConfig};
use crate::ops::Mode;
use crate::optim::Optimizer;
use crate::rng::{self, Rng};
use crate::train::TrainControl;
use rand::Rng as _;
use std::time::Instant;

pub const STREAM_NOISE: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GanFitConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    /// Report progress every this many batches; 0 reports only at the end of each epoch.
    pub progress_every: usize,
}

/// Means over the batches of the epoch so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanProgress {
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// BCE(D(x), 1) + BCE(D(G(z)), 0), mean over batches.
    pub d_loss: f64,
    /// BCE(D(G(z)), 1), mean over batches.
    pub g_loss: f64,
    /// Mean σ(D(x)) over the real samples.
    pub d_real: f64,
    /// Mean σ(D(G(z))) over the fake samples, in the D step (before D's update).
    pub d_fake: f64,
    pub samples: usize,
    pub seconds: f64,
    pub epoch_end: bool,
}

/// A GAN's state between epochs: the shuffle stream, the epoch count, its buffers.
#[derive(Debug, Clone)]
pub struct GanTrainer {
    noise_dim: usize,
    seed: u64,
    shuffle_rng: Rng,
    epochs_done: usize,
    order: Vec<usize>,
    real: Vec<f32>,
    noise: Vec<f32>,
    fake: Vec<f32>,
    d_out: Vec<f32>,
    ones: Vec<f32>,
    zeros: Vec<f32>,
    fake_grad: Vec<f32>,
    loss: LossConfig,
    /// The parameter groups the two optimizers own (None = all of the net's).
    pub group_g: Option<String>,
    pub group_d: Option<String>,
}

/// N(0, 1) noise of batch `batch` of epoch `epoch` (both 1-based) into `out`
/// (Box–Muller on the counter-based stream of (seed, epoch, batch)).
pub fn noise(seed: u64, epoch: usize, batch: usize, out: &mut [f32]) {
    let key = crate::graph::node_seed(seed, epoch, batch as u64);
    let mut r = rng::stream(key, STREAM_NOISE);
    for pair in out.chunks_mut(2) {
        // u1 in (0, 1]: ln never sees 0.
        let u1 = 1.0 - r.random::<f64>();
        let u2 = r.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        pair[0] = (radius * angle.cos()) as f32;
        if pair.len() > 1 {
            pair[1] = (radius * angle.sin()) as f32;
        }
    }
}

fn sum_sigmoid(x: &[f32]) -> f64 {
    x.iter().map(|&v| 1.0 / (1.0 + (-(v as f64)).exp())).sum::<f64>()
}

/// What to do about a NaN or infinite gradient of D or G.
const GAN_GRADIENT_HINT: &str = "Lower the learning rates or the input scale";

impl GanTrainer {
    pub fn new(noise_dim: usize, seed: u64) -> Result<GanTrainer> {
        if noise_dim == 0 {
            return Err(Error::config("noiseDim", "must be >= 1"));
        }
        Ok(GanTrainer {
            noise_dim,
            seed,
            shuffle_rng: rng::stream(seed, rng::STREAM_SHUFFLE),
            epochs_done: 0,
            order: Vec::new(),
            real: Vec::new(),
            noise: Vec::new(),
            fake: Vec::new(),
            d_out: Vec::new(),
            ones: Vec::new(),
            zeros: Vec::new(),
            fake_grad: Vec::new(),
            loss: LossConfig::BceWithLogits { pos_weight: None },
            group_g: None,
            group_d: None,
        })
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    pub fn noise_dim(&self) -> usize {
        self.noise_dim
    }

    /// Checks that G maps [noiseDim] to D's input and the data fits D's input.
    pub fn check(&self, g: &Model, d: &Model, data_len: usize) -> Result<()> {
        if g.input_dim() != self.noise_dim {
            return Err(Error::shape(
                "generator input",
                format!("noiseDim = {} values", self.noise_dim),
                format!("{} values (input shape {:?})", g.input_dim(), g.input_shape()),
            ));
        }
        if g.output_dim() != d.input_dim() {
            return Err(Error::shape(
                "generator output",
                format!("the discriminator's input, {} values (shape {:?})", d.input_dim(), d.input_shape()),
                format!("{} values (shape {:?})", g.output_dim(), g.output_shape()),
            ));
        }
        let dim = d.input_dim();
        if data_len == 0 || data_len % dim != 0 {
            return Err(Error::shape(
                "real data",
                format!("a positive multiple of the discriminator's input size {dim} (shape {:?})", d.input_shape()),
                format!("{data_len} values"),
            ));
        }
        Ok(())
    }

    /// One epoch over `real` (rows × D's input size, PyTorch's order). Stops before the
    /// next batch once `control` asks (`Error::Aborted`), the nets keeping the weights
    /// of the last finished batch.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_epoch(
        &mut self,
        g: &mut Model,
        d: &mut Model,
        opt_g: &mut Optimizer,
        opt_d: &mut Optimizer,
        real: &[f32],
        config: &GanFitConfig,
        on_progress: &mut dyn FnMut(&GanProgress),
        control: &TrainControl,
    ) -> Result<GanProgress> {
        self.check(g, d, real.len())?;
        if config.batch_size == 0 {
            return Err(Error::config("batchSize", "must be >= 1"));
        }
        let dim = d.input_dim();
        let n = real.len() / dim;
        let bs = config.batch_size.min(n);
        let d_dim = d.output_dim();
        self.real.resize(bs * dim, 0.0);
        self.noise.resize(bs * self.noise_dim, 0.0);
        self.fake.resize(bs * dim, 0.0);
        self.fake_grad.resize(bs * dim, 0.0);
        self.d_out.resize(bs * d_dim, 0.0);
        self.ones.resize(bs * d_dim, 1.0);
        self.zeros.resize(bs * d_dim, 0.0);
        g.reserve(bs, true)?;
        d.reserve(bs, true)?;
        let epoch = self.epochs_done + 1;
        self.order.clear();
        self.order.extend(0..n);
        if config.shuffle {
            for i in (1..n).rev() {
                let j = self.shuffle_rng.random_range(0..=i);
                self.order.swap(i, j);
            }
        }
        let batches = n.div_ceil(bs);
        let started = Instant::now();
        let (mut d_loss, mut g_loss, mut d_real, mut d_fake) = (0.0, 0.0, 0.0, 0.0);
        let mut samples = 0;
        let mut last = None;
        crate::team::with_team(|| -> Result<()> {
            for b in 0..batches {
                control.check()?;
                let rows = &self.order[b * bs..((b + 1) * bs).min(n)];
                let m = rows.len();
                for (i, &r) in rows.iter().enumerate() {
                    let src = &real[r * dim..(r + 1) * dim];
                    if src.iter().any(|v| !v.is_finite()) {
                        return Err(Error::NonFiniteData { what: "real sample".into(), sample: r, epoch, batch: b + 1 });
                    }
                    self.real[i * dim..(i + 1) * dim].copy_from_slice(src);
                }
                let (x, z, fake) = (&self.real[..m * dim], &mut self.noise[..m * self.noise_dim], &mut self.fake[..m * dim]);
                noise(self.seed, epoch, b + 1, z);
                let (ones, zeros, d_out) = (&self.ones[..m * d_dim], &self.zeros[..m * d_dim], &mut self.d_out[..m * d_dim]);
                // G(z), kept in G's arena for the generator step.
                g.step_forward(Mode::Train, &[z], fake)?;
                // Discriminator step: real → 1, fake → 0, gradients accumulated.
                d.zero_grad();
                d.step_forward(Mode::Train, &[x], d_out)?;
                let dr = sum_sigmoid(d_out) / d_out.len() as f64;
                let lr = d.step_backward_loss(&self.loss, BatchTargets::Values(ones), false)?.loss_sum / m as f64;
                d.step_forward(Mode::Train, &[fake], d_out)?;
                let df = sum_sigmoid(d_out) / d_out.len() as f64;
                let lf = d.step_backward_loss(&self.loss, BatchTargets::Values(zeros), false)?.loss_sum / m as f64;
                if !(lr + lf).is_finite() {
                    return Err(Error::NonFiniteLoss { value: (lr + lf) as f32, epoch, batch: b + 1 });
                }
                if let Some(param) = d.non_finite_gradient(self.group_d.as_deref()) {
                    return Err(Error::gradient_in_batch(format!("D's {param}"), epoch, b + 1, GAN_GRADIENT_HINT));
                }
                d.apply_optimizer_group(opt_d, self.group_d.as_deref());
                // Generator step: D(G(z)) → 1 through D (not stepped) into G.
                d.zero_grad();
                d.step_forward(Mode::Train, &[fake], d_out)?;
                let lg = d.step_backward_loss(&self.loss, BatchTargets::Values(ones), true)?.loss_sum / m as f64;
                if !lg.is_finite() {
                    return Err(Error::NonFiniteLoss { value: lg as f32, epoch, batch: b + 1 });
                }
                let fake_grad = &mut self.fake_grad[..m * dim];
                d.step_input_grad(0, fake_grad)?;
                g.zero_grad();
                g.step_backward_grad(fake_grad, false)?;
                if let Some(param) = g.non_finite_gradient(self.group_g.as_deref()) {
                    return Err(Error::gradient_in_batch(format!("G's {param}"), epoch, b + 1, GAN_GRADIENT_HINT));
                }
                g.apply_optimizer_group(opt_g, self.group_g.as_deref());
                control.count_step();
                d_loss += (lr + lf) * m as f64;
                g_loss += lg * m as f64;
                d_real += dr * m as f64;
                d_fake += df * m as f64;
                samples += m;
                let epoch_end = b + 1 == batches;
                let s = samples as f64;
                let p = GanProgress {
                    epoch,
                    batch: b + 1,
                    batches,
                    d_loss: d_loss / s,
                    g_loss: g_loss / s,
                    d_real: d_real / s,
                    d_fake: d_fake / s,
                    samples,
                    seconds: started.elapsed().as_secs_f64(),
                    epoch_end,
                };
                if epoch_end || (config.progress_every > 0 && (b + 1) % config.progress_every == 0) {
                    on_progress(&p);
                }
                last = Some(p);
            }
            Ok(())
        })?;
        self.epochs_done = epoch;
        Ok(last.expect("at least one batch"))
    }
}

#[cfg(test)]
mod tests;
