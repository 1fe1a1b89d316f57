//! Optimizers with PyTorch's exact update rules. Each keeps its own state per
//! parameter tensor, in the order the model lists its parameters.

pub mod adam;
pub mod adamw;
pub mod clip;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
pub mod state;
pub mod tensors;

pub use adam::{Adam, AdamConfig};
pub use adamw::{AdamW, AdamWConfig};
pub use rmsprop::{Rmsprop, RmspropConfig};
pub use schedule::{Schedule, ScheduleConfig};
pub use sgd::{Sgd, SgdConfig};
pub use state::OptimizerState;
pub use tensors::TensorRef;

use crate::error::Result;

/// Which optimizer, with its hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamWConfig),
    Rmsprop(RmspropConfig),
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::AdamW(c) => c.validate(),
            OptimizerConfig::Rmsprop(c) => c.validate(),
        }
    }
    pub fn build(&self) -> Result<Optimizer> {
        self.validate()?;
        Ok(match self {
            OptimizerConfig::Sgd(c) => Optimizer::Sgd(Sgd::new(c.clone())),
            OptimizerConfig::Adam(c) => Optimizer::Adam(Adam::new(c.clone())),
            OptimizerConfig::AdamW(c) => Optimizer::AdamW(AdamW::new(c.clone())),
            OptimizerConfig::Rmsprop(c) => Optimizer::Rmsprop(Rmsprop::new(*c)),
        })
    }
}

/// A live optimizer with its state.
#[derive(Debug, Clone)]
pub enum Optimizer {
    Sgd(Sgd),
    Adam(Adam),
    AdamW(AdamW),
    Rmsprop(Rmsprop),
}

impl Optimizer {
    /// Updates every parameter tensor from its gradient, in parallel chunks.
    /// `tensors[i]` must be the same tensor on every call.
    ///
    /// # Safety
    /// Each `TensorRef` must point at live, non-overlapping parameter and gradient
    /// buffers of `len` floats, not accessed elsewhere during the call.
    pub unsafe fn step(&mut self, tensors: &[TensorRef]) {
        match self {
            Optimizer::Sgd(o) => o.step(tensors),
            Optimizer::Adam(o) => o.step(tensors),
            Optimizer::AdamW(o) => o.step(tensors),
            Optimizer::Rmsprop(o) => o.step(tensors),
        }
    }

    /// The learning rate in use.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(o) => o.config.lr,
            Optimizer::Adam(o) => o.config.lr,
            Optimizer::AdamW(o) => o.config.lr,
            Optimizer::Rmsprop(o) => o.config.lr,
        }
    }

    /// Sets the learning rate of the following steps (a schedule's job; state kept).
    pub fn set_lr(&mut self, lr: f32) {
        match self {
            Optimizer::Sgd(o) => o.config.lr = lr,
            Optimizer::Adam(o) => o.config.lr = lr,
            Optimizer::AdamW(o) => o.config.lr = lr,
            Optimizer::Rmsprop(o) => o.config.lr = lr,
        }
    }
}

/// Makes `state[t.id]` a zeroed buffer of `t.len` floats for every tensor that has none
/// yet: state is keyed by the tensor's identity in the store, not by its position in
/// this step's list, so two optimizers can own parts of one model.
pub(crate) fn ensure_state(state: &mut Vec<Vec<f32>>, tensors: &[TensorRef]) {
    for t in tensors {
        if state.len() <= t.id {
            state.resize_with(t.id + 1, Vec::new);
        }
        if state[t.id].len() != t.len {
            state[t.id] = vec![0.0; t.len];
        }
    }
}

pub(crate) fn check_finite_nonneg(field: &str, v: f32) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(crate::Error::config(
            field,
            format!("must be a finite number >= 0, got {v}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
