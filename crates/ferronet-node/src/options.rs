//! Plain option and result objects crossing the boundary, and their translation.

use ferronet_core::{
    AdamConfig, AdamWConfig, LossConfig, LossTerm, Metrics, OptimizerConfig, Reduction, RmspropConfig, ScheduleConfig,
    SgdConfig, TermLoss, TermValues, TrainerConfig,
};
use napi::Result;
use napi_derive::napi;

use crate::error::coded;

/// Optimizer settings; fields left out take PyTorch's defaults.
#[napi(object)]
pub struct NativeOptimizer {
    /// "sgd", "adam", "adamw" or "rmsprop".
    pub kind: String,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub dampening: Option<f64>,
    pub nesterov: Option<bool>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub weight_decay: Option<f64>,
    /// RMSprop's smoothing constant (default 0.99).
    pub alpha: Option<f64>,
    /// RMSprop: normalise by the centered second moment (default false).
    pub centered: Option<bool>,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> napi::Error {
    coded("ERR_INVALID_OPTION", format!("invalid option `{field}`: {reason}"))
}

/// A JS number that must be a whole count >= `min`.
fn count(field: &str, v: Option<f64>, default: u64, min: u64) -> Result<u64> {
    match v {
        None => Ok(default),
        Some(x) if !x.is_finite() || x.fract() != 0.0 || x > 9.007_199_254_740_991e15 => {
            Err(invalid(field, format!("must be a whole number, got {x}")))
        }
        Some(x) if x < min as f64 => Err(invalid(field, format!("must be >= {min}, got {x}"))),
        Some(x) => Ok(x as u64),
    }
}

pub fn optimizer_config(o: &NativeOptimizer) -> Result<OptimizerConfig> {
    let or = |v: Option<f64>, d: f32| v.map(|x| x as f32).unwrap_or(d);
    match o.kind.as_str() {
        "sgd" => {
            let d = SgdConfig::default();
            Ok(OptimizerConfig::Sgd(SgdConfig {
                lr: or(o.lr, d.lr),
                momentum: or(o.momentum, d.momentum),
                dampening: or(o.dampening, d.dampening),
                weight_decay: or(o.weight_decay, d.weight_decay),
                nesterov: o.nesterov.unwrap_or(d.nesterov),
            }))
        }
        "adam" => {
            let d = AdamConfig::default();
            Ok(OptimizerConfig::Adam(AdamConfig {
                lr: or(o.lr, d.lr),
                beta1: or(o.beta1, d.beta1),
                beta2: or(o.beta2, d.beta2),
                eps: or(o.eps, d.eps),
                weight_decay: or(o.weight_decay, d.weight_decay),
            }))
        }
        "adamw" => {
            let d = AdamWConfig::default();
            Ok(OptimizerConfig::AdamW(AdamWConfig {
                lr: or(o.lr, d.lr),
                beta1: or(o.beta1, d.beta1),
                beta2: or(o.beta2, d.beta2),
                eps: or(o.eps, d.eps),
                weight_decay: or(o.weight_decay, d.weight_decay),
            }))
        }
        "rmsprop" => {
            let d = RmspropConfig::default();
            Ok(OptimizerConfig::Rmsprop(RmspropConfig {
                lr: or(o.lr, d.lr),
                alpha: or(o.alpha, d.alpha),
                eps: or(o.eps, d.eps),
                weight_decay: or(o.weight_decay, d.weight_decay),
                momentum: or(o.momentum, d.momentum),
                centered: o.centered.unwrap_or(d.centered),
            }))
        }
        other => Err(invalid(
            "optimizer.type",
            format!("unknown optimizer {other:?}, expected \"sgd\", \"adam\", \"adamw\" or \"rmsprop\""),
        )),
    }
}

/// Loss settings; fields left out take PyTorch's defaults.
#[napi(object)]
pub struct NativeLoss {
    /// "cross_entropy", "mse", "l1", "smooth_l1", "huber" or "bce_with_logits".
    pub kind: String,
    pub class_weights: Option<Vec<f64>>,
    pub label_smoothing: Option<f64>,
    /// smooth_l1's beta (default 1.0).
    pub beta: Option<f64>,
    /// huber's delta (default 1.0).
    pub delta: Option<f64>,
    /// bce_with_logits: one weight per output for the positive term.
    pub pos_weight: Option<Vec<f64>>,
}

pub fn loss_config(l: &NativeLoss) -> Result<LossConfig> {
    match l.kind.as_str() {
        "cross_entropy" => Ok(LossConfig::CrossEntropy {
            class_weights: l.class_weights.as_ref().map(|w| w.iter().map(|&x| x as f32).collect()),
            label_smoothing: l.label_smoothing.unwrap_or(0.0) as f32,
        }),
        "mse" => Ok(LossConfig::Mse),
        "l1" => Ok(LossConfig::L1),
        "smooth_l1" => Ok(LossConfig::SmoothL1 { beta: l.beta.unwrap_or(1.0) as f32 }),
        "huber" => Ok(LossConfig::Huber { delta: l.delta.unwrap_or(1.0) as f32 }),
        "bce_with_logits" => Ok(LossConfig::BceWithLogits {
            pos_weight: l.pos_weight.as_ref().map(|w| w.iter().map(|&x| x as f32).collect()),
        }),
        "bce" => Ok(LossConfig::Bce),
        other => Err(invalid("loss.type", format!("unknown loss {other:?}"))),
    }
}

/// One term of a loss of several (see ferronet_core::loss::terms).
#[napi(object)]
pub struct NativeLossTerm {
    /// The name the term is reported under.
    pub name: String,
    /// The graph output it reads.
    pub output: String,
    /// "value" (the output is the per-sample loss) or a loss of `NativeLoss`.
    pub loss: NativeLoss,
    pub weight: Option<f64>,
    /// "mean" (default) or "sum".
    pub reduction: Option<String>,
}

pub fn loss_term(k: usize, t: &NativeLossTerm) -> Result<LossTerm> {
    let reduction = match t.reduction.as_deref() {
        None | Some("mean") => Reduction::Mean,
        Some("sum") => Reduction::Sum,
        Some(other) => return Err(invalid(&format!("loss[{k}].reduction"), format!("expected \"mean\" or \"sum\", got {other:?}"))),
    };
    let loss = match t.loss.kind.as_str() {
        "value" => TermLoss::Value,
        _ => TermLoss::Loss(loss_config(&t.loss).map_err(|_| invalid(&format!("loss[{k}].loss"), format!("unknown loss {:?}", t.loss.kind)))?),
    };
    Ok(LossTerm { name: t.name.clone(), output: t.output.clone(), loss, weight: t.weight.unwrap_or(1.0) as f32, reduction })
}

/// A learning-rate schedule; fields left out take PyTorch's defaults.
#[napi(object)]
pub struct NativeSchedule {
    /// "step", "exponential", "cosine", "one_cycle" or "plateau".
    pub kind: String,
    pub step_size: Option<f64>,
    pub gamma: Option<f64>,
    pub total_steps: Option<f64>,
    pub warmup_steps: Option<f64>,
    pub min_lr: Option<f64>,
    pub max_lr: Option<f64>,
    pub pct_start: Option<f64>,
    pub div_factor: Option<f64>,
    pub final_div_factor: Option<f64>,
    pub factor: Option<f64>,
    pub patience: Option<f64>,
    pub threshold: Option<f64>,
    pub cooldown: Option<f64>,
}

pub fn schedule_config(s: &NativeSchedule) -> Result<ScheduleConfig> {
    let need = |field: &str, v: Option<f64>| v.ok_or_else(|| invalid(field, "is required"));
    let config = match s.kind.as_str() {
        "step" => ScheduleConfig::Step {
            step_size: count("schedule.stepSize", Some(need("schedule.stepSize", s.step_size)?), 0, 1)?,
            gamma: s.gamma.unwrap_or(0.1),
        },
        "exponential" => ScheduleConfig::Exponential { gamma: need("schedule.gamma", s.gamma)? },
        "cosine" => ScheduleConfig::Cosine {
            total_steps: count("schedule.totalSteps", Some(need("schedule.totalSteps", s.total_steps)?), 0, 1)?,
            warmup_steps: count("schedule.warmupSteps", s.warmup_steps, 0, 0)?,
            min_lr: s.min_lr.unwrap_or(0.0),
        },
        "one_cycle" => ScheduleConfig::OneCycle {
            max_lr: need("schedule.maxLr", s.max_lr)?,
            total_steps: count("schedule.totalSteps", Some(need("schedule.totalSteps", s.total_steps)?), 0, 1)?,
            pct_start: s.pct_start.unwrap_or(0.3),
            div_factor: s.div_factor.unwrap_or(25.0),
            final_div_factor: s.final_div_factor.unwrap_or(1e4),
        },
        "plateau" => ScheduleConfig::Plateau {
            factor: s.factor.unwrap_or(0.1),
            patience: count("schedule.patience", s.patience, 10, 0)?,
            threshold: s.threshold.unwrap_or(1e-4),
            cooldown: count("schedule.cooldown", s.cooldown, 0, 0)?,
            min_lr: s.min_lr.unwrap_or(0.0),
        },
        other => {
            return Err(invalid(
                "schedule.type",
                format!("unknown schedule {other:?}, expected \"step\", \"exponential\", \"cosine\", \"one_cycle\" or \"plateau\""),
            ))
        }
    };
    // The core's checks, with the same field names.
    config.validate().map_err(crate::error::to_js)?;
    Ok(config)
}

/// Everything a trainer is built with.
#[napi(object)]
pub struct NativeTrainerOptions {
    pub optimizer: NativeOptimizer,
    pub loss: Option<NativeLoss>,
    /// A loss of weighted terms on the graph's outputs (instead of `loss`).
    pub loss_terms: Option<Vec<NativeLossTerm>>,
    /// Parameter group the optimizer owns (absent: every trainable tensor).
    pub group: Option<String>,
    pub seed: f64,
    /// Threads of the shared compute pool this trainer may use; 0 = all.
    pub threads: u32,
    /// A learning-rate schedule, stepped inside the training loop.
    pub schedule: Option<NativeSchedule>,
    /// Clip gradients to this global 2-norm before every step.
    pub clip_norm: Option<f64>,
    /// "stop" (default) or "skip": what a NaN or infinite gradient does.
    pub on_non_finite: Option<String>,
}

/// `onNonFinite`'s policy.
pub fn non_finite_policy(o: &NativeTrainerOptions) -> Result<ferronet_core::train::NonFinite> {
    match o.on_non_finite.as_deref() {
        None | Some("stop") => Ok(ferronet_core::train::NonFinite::Stop),
        Some("skip") => Ok(ferronet_core::train::NonFinite::Skip),
        Some(other) => Err(invalid("onNonFinite", format!("must be 'stop' or 'skip', got {other:?}"))),
    }
}

pub fn trainer_config(o: &NativeTrainerOptions) -> Result<TrainerConfig> {
    Ok(TrainerConfig {
        optimizer: optimizer_config(&o.optimizer)?,
        loss: match (&o.loss_terms, &o.loss) {
            (Some(terms), _) => LossConfig::Terms(terms.iter().enumerate().map(|(k, t)| loss_term(k, t)).collect::<Result<_>>()?),
            (None, Some(l)) => loss_config(l)?,
            (None, None) => LossConfig::default(),
        },
        group: o.group.clone(),
        seed: o.seed as u64,
        clip_norm: match o.clip_norm {
            None => None,
            Some(c) if c.is_finite() && c > 0.0 => Some(c as f32),
            Some(c) => return Err(invalid("clipNorm", format!("must be a finite number > 0, got {c}"))),
        },
        schedule: o.schedule.as_ref().map(schedule_config).transpose()?,
    })
}

#[napi(object)]
pub struct NativeProgress {
    pub epoch: u32,
    pub batch: u32,
    pub batches: u32,
    pub loss: f64,
    /// Classification (and multi-label) accuracy; absent for regression losses.
    pub accuracy: Option<f64>,
    pub mse: Option<f64>,
    pub mae: Option<f64>,
    pub samples: u32,
    pub samples_per_second: f64,
    pub seconds: f64,
    pub epoch_end: bool,
    pub lr: f64,
    /// Global gradient 2-norm of the last step, before clipping.
    pub grad_norm: f64,
    /// With loss terms: each term's mean per sample, in the terms' order.
    pub terms: Option<Vec<f64>>,
}

impl From<&ferronet_core::Progress> for NativeProgress {
    fn from(p: &ferronet_core::Progress) -> Self {
        NativeProgress {
            epoch: p.epoch as u32,
            batch: p.batch as u32,
            batches: p.batches as u32,
            loss: p.loss,
            accuracy: p.metrics.accuracy,
            mse: p.metrics.mse,
            mae: p.metrics.mae,
            samples: p.samples as u32,
            samples_per_second: p.samples_per_second,
            seconds: p.seconds,
            epoch_end: p.epoch_end,
            lr: p.lr,
            grad_norm: p.grad_norm,
            terms: terms(&p.terms),
        }
    }
}

#[napi(object)]
pub struct NativeEpochStats {
    pub epoch: u32,
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub mse: Option<f64>,
    pub mae: Option<f64>,
    pub seconds: f64,
    pub samples_per_second: f64,
    pub lr: f64,
    pub terms: Option<Vec<f64>>,
    /// Batches skipped for a NaN or infinite gradient (`onNonFinite: 'skip'`).
    pub skipped_batches: u32,
}

impl From<ferronet_core::EpochStats> for NativeEpochStats {
    fn from(s: ferronet_core::EpochStats) -> Self {
        NativeEpochStats {
            epoch: s.epoch as u32,
            loss: s.loss,
            accuracy: s.metrics.accuracy,
            mse: s.metrics.mse,
            mae: s.metrics.mae,
            seconds: s.seconds,
            samples_per_second: s.samples_per_second,
            lr: s.lr,
            terms: terms(&s.terms),
            skipped_batches: s.skipped_batches as u32,
        }
    }
}

#[napi(object)]
pub struct NativeEvalStats {
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub mse: Option<f64>,
    pub mae: Option<f64>,
    pub samples: u32,
    pub terms: Option<Vec<f64>>,
}

impl NativeEvalStats {
    pub fn new(loss: f64, m: Metrics, samples: usize, t: &TermValues) -> Self {
        NativeEvalStats {
            loss,
            accuracy: m.accuracy,
            mse: m.mse,
            mae: m.mae,
            samples: samples as u32,
            terms: terms(t),
        }
    }
}

/// Term values for JS: absent for a single loss.
fn terms(t: &TermValues) -> Option<Vec<f64>> {
    (!t.as_slice().is_empty()).then(|| t.as_slice().to_vec())
}

#[napi(object)]
pub struct NativeFitOptions {
    pub epochs: u32,
    pub batch_size: u32,
    pub shuffle: Option<bool>,
    /// Report every this many batches; 0 or absent = only at each epoch's end.
    pub progress_every: Option<u32>,
}
