//! Plain option and result objects crossing the boundary, and their translation.

use ferronet_core::{AdamConfig, LayerSpec, OptimizerConfig, SgdConfig};
use napi::Result;
use napi_derive::napi;

use crate::error::coded;

#[napi(object)]
pub struct NativeLayerSpec {
    /// "dense" or "relu".
    pub kind: String,
    pub units: Option<u32>,
}

pub fn layer_specs(specs: &[NativeLayerSpec]) -> Result<Vec<LayerSpec>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| match s.kind.as_str() {
            "dense" => Ok(LayerSpec::Dense {
                units: s.units.unwrap_or(0) as usize,
            }),
            "relu" => Ok(LayerSpec::Relu),
            other => Err(coded(
                "ERR_INVALID_OPTION",
                format!("invalid option `layers[{i}].kind`: unknown layer kind {other:?}"),
            )),
        })
        .collect()
}

pub fn layer_spec_js(spec: &LayerSpec) -> NativeLayerSpec {
    match *spec {
        LayerSpec::Dense { units } => NativeLayerSpec {
            kind: "dense".into(),
            units: Some(units as u32),
        },
        LayerSpec::Relu => NativeLayerSpec {
            kind: "relu".into(),
            units: None,
        },
    }
}

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

#[napi(object)]
pub struct NativeProgress {
    pub epoch: u32,
    pub batch: u32,
    pub batches: u32,
    pub loss: f64,
    pub accuracy: f64,
    pub samples: u32,
    pub samples_per_second: f64,
    pub seconds: f64,
    pub epoch_end: bool,
}

impl From<&ferronet_core::Progress> for NativeProgress {
    fn from(p: &ferronet_core::Progress) -> Self {
        NativeProgress {
            epoch: p.epoch as u32,
            batch: p.batch as u32,
            batches: p.batches as u32,
            loss: p.loss,
            accuracy: p.accuracy,
            samples: p.samples as u32,
            samples_per_second: p.samples_per_second,
            seconds: p.seconds,
            epoch_end: p.epoch_end,
        }
    }
}

#[napi(object)]
pub struct NativeEpochStats {
    pub epoch: u32,
    pub loss: f64,
    pub accuracy: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
}

impl From<ferronet_core::EpochStats> for NativeEpochStats {
    fn from(s: ferronet_core::EpochStats) -> Self {
        NativeEpochStats {
            epoch: s.epoch as u32,
            loss: s.loss,
            accuracy: s.accuracy,
            seconds: s.seconds,
            samples_per_second: s.samples_per_second,
        }
    }
}

#[napi(object)]
pub struct NativeEvalStats {
    pub loss: f64,
    pub accuracy: f64,
    pub samples: u32,
}

#[napi(object)]
pub struct NativeFitOptions {
    pub epochs: u32,
    pub batch_size: u32,
    pub shuffle: Option<bool>,
    /// Report every this many batches; 0 or absent = only at each epoch's end.
    pub progress_every: Option<u32>,
}
