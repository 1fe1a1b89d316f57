//! `NativeNet`: a model shared with the trainers that train it.

use ferronet_core::{Inputs, Model};
use napi::bindgen_prelude::{Float32Array, Uint8Array};
use napi::Result;
use napi_derive::napi;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::error::{coded, guard, to_js};
use crate::options::{layer_spec_js, layer_specs, NativeLayerSpec};

pub type SharedModel = Arc<Mutex<Model>>;

/// Locks without blocking the JS thread: a model being trained is busy.
pub fn try_lock(model: &SharedModel) -> Result<MutexGuard<'_, Model>> {
    match model.try_lock() {
        Ok(g) => Ok(g),
        // A panic mid-step leaves the weights as they were written so far: still usable.
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(TryLockError::WouldBlock) => Err(coded(
            "ERR_BUSY",
            "the network is busy in a running fit() or evaluate(); await it first",
        )),
    }
}

/// Locks on a worker thread, where waiting is fine.
pub fn lock(model: &SharedModel) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|p| p.into_inner())
}

#[napi(object)]
pub struct NativeParameter {
    /// PyTorch-style name, e.g. "0.weight".
    pub name: String,
    pub shape: Vec<u32>,
    pub data: Float32Array,
}

#[napi]
pub struct NativeNet {
    pub(crate) model: SharedModel,
}

impl NativeNet {
    fn predict_inputs(&self, inputs: Inputs) -> Result<Float32Array> {
        guard("predict", || {
            let mut model = try_lock(&self.model)?;
            let rows = inputs.len() / model.input_dim().max(1);
            let mut out = vec![0.0; rows * model.output_dim()];
            model.predict(inputs, &mut out).map_err(to_js)?;
            Ok(Float32Array::new(out))
        })
    }
}

#[napi]
impl NativeNet {
    #[napi(factory, catch_unwind)]
    pub fn sequential(
        input_dim: u32,
        layers: Vec<NativeLayerSpec>,
        seed: f64,
    ) -> Result<NativeNet> {
        let specs = layer_specs(&layers)?;
        let model = Model::sequential(input_dim as usize, &specs, seed as u64).map_err(to_js)?;
        Ok(NativeNet {
            model: Arc::new(Mutex::new(model)),
        })
    }

    #[napi(getter)]
    pub fn input_dim(&self) -> Result<u32> {
        Ok(try_lock(&self.model)?.input_dim() as u32)
    }

    #[napi(getter)]
    pub fn output_dim(&self) -> Result<u32> {
        Ok(try_lock(&self.model)?.output_dim() as u32)
    }

    #[napi(getter)]
    pub fn layers(&self) -> Result<Vec<NativeLayerSpec>> {
        Ok(try_lock(&self.model)?
            .specs()
            .iter()
            .map(layer_spec_js)
            .collect())
    }

    #[napi(getter)]
    pub fn seed(&self) -> Result<f64> {
        Ok(try_lock(&self.model)?.seed() as f64)
    }

    /// Logits [rows, outputs] for f32 inputs [rows, inputDim].
    #[napi(catch_unwind)]
    pub fn predict(&self, inputs: Float32Array) -> Result<Float32Array> {
        self.predict_inputs(Inputs::F32(&inputs))
    }

    /// Logits for u8 pixels, normalised as in training (v / 255).
    #[napi(catch_unwind)]
    pub fn predict_pixels(&self, pixels: Uint8Array) -> Result<Float32Array> {
        self.predict_inputs(Inputs::U8(&pixels))
    }

    /// Copies of every parameter tensor, in layer order.
    #[napi(catch_unwind)]
    pub fn parameters(&self) -> Result<Vec<NativeParameter>> {
        let model = try_lock(&self.model)?;
        Ok(model
            .params()
            .into_iter()
            .map(|p| NativeParameter {
                name: p.name,
                shape: p.shape.iter().map(|&d| d as u32).collect(),
                data: Float32Array::new(p.data),
            })
            .collect())
    }

    /// Gradients of the last training step, same order as `parameters`.
    #[napi(catch_unwind)]
    pub fn gradients(&self) -> Result<Vec<Float32Array>> {
        let model = try_lock(&self.model)?;
        Ok(model
            .grads()
            .into_iter()
            .map(|g| Float32Array::new(g.data))
            .collect())
    }

    /// Overwrites parameter tensor `index` (in `parameters` order).
    #[napi(catch_unwind)]
    pub fn set_parameter(&self, index: u32, values: Float32Array) -> Result<()> {
        try_lock(&self.model)?
            .set_param(index as usize, &values)
            .map_err(to_js)
    }
}
