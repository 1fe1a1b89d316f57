//! SGD with momentum, dampening, Nesterov and L2 weight decay, as `torch.optim.SGD`.

use super::check_finite_nonneg;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 0.01, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

impl SgdConfig {
    pub fn validate(&self) -> Result<()> {
        check_finite_nonneg("optimizer.lr", self.lr)?;
        if self.lr == 0.0 {
            return Err(Error::config("optimizer.lr", "must be > 0"));
        }
        check_finite_nonneg("optimizer.momentum", self.momentum)?;
        check_finite_nonneg("optimizer.dampening", self.dampening)?;
        check_finite_nonneg("optimizer.weightDecay", self.weight_decay)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(Error::config("optimizer.nesterov", "needs momentum > 0 and dampening = 0"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Sgd {
    pub config: SgdConfig,
    /// Momentum buffers, created from the first gradient (PyTorch: `buf = d_p.clone()`).
    momentum: Vec<Vec<f32>>,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Sgd { config, momentum: Vec::new() }
    }

    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) {
        let SgdConfig { lr, momentum, dampening, weight_decay, nesterov } = self.config;
        let first = self.momentum.is_empty() && momentum != 0.0;
        if first {
            self.momentum = grads.iter().map(|g| vec![0.0; g.len()]).collect();
        }
        for (i, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            for (j, (p, &g)) in param.iter_mut().zip(grad.iter()).enumerate() {
                // d_p = grad + weight_decay · param
                let mut d = if weight_decay != 0.0 { g + weight_decay * *p } else { g };
                if momentum != 0.0 {
                    let buf = &mut self.momentum[i][j];
                    // buf = d_p on the first step, else momentum · buf + (1 - dampening) · d_p
                    *buf = if first { d } else { momentum * *buf + (1.0 - dampening) * d };
                    d = if nesterov { d + momentum * *buf } else { *buf };
                }
                *p -= lr * d;
            }
        }
    }
}
