//! Training data held by reference to the caller's typed arrays: no copy is made,
//! the task borrows the JS buffers for its duration (they stay alive through
//! napi references). The TS layer documents that a dataset must not be mutated
//! while a fit or evaluate on it is running.

use ferronet_core::{DataView, Inputs};
use napi::bindgen_prelude::{Float32Array, Uint8Array};
use napi::Result;
use napi_derive::napi;

use crate::error::{coded, to_js};

#[napi(object)]
pub struct NativeData {
    /// u8 pixels, normalised to [0, 1] on the fly. Exactly one of pixels / features.
    pub pixels: Option<Uint8Array>,
    /// f32 features, used as they are.
    pub features: Option<Float32Array>,
    pub labels: Uint8Array,
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
        DataView::new(inputs, &self.labels, self.dim as usize).map_err(to_js)
    }
}
