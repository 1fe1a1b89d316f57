//! AdamW as `torch.optim.AdamW`: decoupled weight decay — every parameter is first
//! multiplied by 1 − lr·weight_decay, then takes the plain Adam step (bias correction
//! in f64, eps outside the square root), with no decay term in the gradient.

use super::adam::{Adam, AdamConfig};
use super::check_finite_nonneg;
use super::tensors::TensorRef;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults (weight_decay 0.01, unlike Adam's 0).
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

impl AdamWConfig {
    /// The Adam part, without its L2 term.
    fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: 0.0,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.adam().validate()?;
        check_finite_nonneg("optimizer.weightDecay", self.weight_decay)
    }
}

#[derive(Debug, Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    adam: Adam,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            adam: Adam::new(config.adam()),
            config,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.adam.steps()
    }

    pub(crate) fn adam_ref(&self) -> &Adam {
        &self.adam
    }

    pub(crate) fn adam_mut(&mut self) -> &mut Adam {
        &mut self.adam
    }

    /// # Safety
    /// See [`super::Optimizer::step`].
    pub unsafe fn step(&mut self, tensors: &[TensorRef]) {
        // The config may have changed (a schedule sets lr): the Adam part follows it.
        self.adam.config = self.config.adam();
        // PyTorch: param.mul_(1 - lr * weight_decay), the factor a Python float
        // (f64) applied to the f32 tensor as f32.
        let decay = (1.0 - self.config.lr as f64 * self.config.weight_decay as f64) as f32;
        self.adam.step_decayed(tensors, decay);
    }
}
