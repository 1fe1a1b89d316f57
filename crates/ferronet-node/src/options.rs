//! Plain option and result objects crossing the boundary, and their translation.

use ferronet_core::{AdamConfig, LossConfig, Metrics, OptimizerConfig, SgdConfig, TrainerConfig};
use napi::Result;
use napi_derive::napi;

use crate::error::coded;

/// Optimizer settings; fields left out take PyTorch's defaults.
#[napi(object)]
pub struct NativeOptimizer {
    /// "sgd" or "adam".
    pub kind: String,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub dampening: Option<f64>,
    pub nesterov: Option<bool>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub weight_decay: Option<f64>,
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
        other => Err(coded("ERR_INVALID_OPTION", format!("invalid option `optimizer.type`: unknown optimizer {other:?}, expected \"sgd\" or \"adam\""))),
    }
}

/// Loss settings; fields left out take PyTorch's defaults.
#[napi(object)]
pub struct NativeLoss {
    /// "cross_entropy" or "mse".
    pub kind: String,
    pub class_weights: Option<Vec<f64>>,
    pub label_smoothing: Option<f64>,
}

pub fn loss_config(l: &NativeLoss) -> Result<LossConfig> {
    match l.kind.as_str() {
        "cross_entropy" => Ok(LossConfig::CrossEntropy {
            class_weights: l.class_weights.as_ref().map(|w| w.iter().map(|&x| x as f32).collect()),
            label_smoothing: l.label_smoothing.unwrap_or(0.0) as f32,
        }),
        "mse" => Ok(LossConfig::Mse),
        other => Err(coded("ERR_INVALID_OPTION", format!("invalid option `loss.type`: unknown loss {other:?}"))),
    }
}

/// Everything a trainer is built with.
#[napi(object)]
pub struct NativeTrainerOptions {
    pub optimizer: NativeOptimizer,
    pub loss: Option<NativeLoss>,
    /// Parameter group the optimizer owns (absent: every trainable tensor).
    pub group: Option<String>,
    pub seed: f64,
    /// Threads of the shared compute pool this trainer may use; 0 = all.
    pub threads: u32,
}

pub fn trainer_config(o: &NativeTrainerOptions) -> Result<TrainerConfig> {
    Ok(TrainerConfig {
        optimizer: optimizer_config(&o.optimizer)?,
        loss: match &o.loss {
            Some(l) => loss_config(l)?,
            None => LossConfig::default(),
        },
        group: o.group.clone(),
        seed: o.seed as u64,
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
}

impl NativeEvalStats {
    pub fn new(loss: f64, m: Metrics, samples: usize) -> Self {
        NativeEvalStats {
            loss,
            accuracy: m.accuracy,
            mse: m.mse,
            mae: m.mae,
            samples: samples as u32,
        }
    }
}

#[napi(object)]
pub struct NativeFitOptions {
    pub epochs: u32,
    pub batch_size: u32,
    pub shuffle: Option<bool>,
    /// Report every this many batches; 0 or absent = only at each epoch's end.
    pub progress_every: Option<u32>,
}
