//! Training data held by reference to the caller's typed arrays: no copy is made,
//! the task borrows the JS buffers for its duration (they stay alive through
//! napi references). The TS layer documents that a dataset must not be mutated
//! while a fit or evaluate on it is running.

use ferronet_core::{DataView, Inputs, Labels, Targets};
use napi::bindgen_prelude::{Float32Array, Uint32Array, Uint8Array};
use napi::Result;
use napi_derive::napi;

use crate::error::{coded, to_js};

#[napi(object)]
pub struct NativeData {
    /// u8 pixels, normalised to [0, 1] on the fly. Exactly one of pixels / features.
    pub pixels: Option<Uint8Array>,
    /// f32 features, used as they are.
    pub features: Option<Float32Array>,
    /// Class ids as bytes. Exactly one of labels / labels32 / targets.
    pub labels: Option<Uint8Array>,
    /// Class ids of any size.
    pub labels32: Option<Uint32Array>,
    /// Float targets (regression, multi-label), `targetDim` per sample.
    pub targets: Option<Float32Array>,
    pub target_dim: Option<u32>,
    /// The targets are the inputs themselves (an autoencoder's): instead of the above.
    pub targets_are_inputs: Option<bool>,
    /// Values per sample.
    pub dim: u32,
}

impl NativeData {
    pub fn validate(&self) -> Result<()> {
        self.view().map(|_| ())
    }

    pub fn view(&self) -> Result<DataView<'_>> {
        let inputs = match (&self.pixels, &self.features) {
            (Some(p), None) => Inputs::U8(p),
            (None, Some(f)) => Inputs::F32(f),
            _ => return Err(coded(
                "ERR_SHAPE",
                "dataset must have exactly one of pixels (Uint8Array) or features (Float32Array)",
            )),
        };
        let targets = match (&self.labels, &self.labels32, &self.targets) {
            (None, None, None) if self.targets_are_inputs == Some(true) => Targets::Inputs,
            (Some(l), None, None) => Targets::Classes(Labels::U8(l)),
            (None, Some(l), None) => Targets::Classes(Labels::U32(l)),
            (None, None, Some(t)) => Targets::Values {
                data: t,
                dim: self.target_dim.unwrap_or(1) as usize,
            },
            _ => return Err(coded(
                "ERR_SHAPE",
                "dataset must have exactly one of labels (Uint8Array), labels32 (Uint32Array) or targets (Float32Array)",
            )),
        };
        DataView::with_targets(inputs, targets, self.dim as usize).map_err(to_js)
    }
}
