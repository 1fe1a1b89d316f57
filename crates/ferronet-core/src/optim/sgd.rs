//! SGD with momentum, dampening, Nesterov and L2 weight decay, as `torch.optim.SGD`.

use super::check_finite_nonneg;
use super::tensors::{for_each_chunk, multiversion, TensorRef};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
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
            return Err(Error::config(
                "optimizer.nesterov",
                "needs momentum > 0 and dampening = 0",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Sgd {
    pub config: SgdConfig,
    /// Momentum buffers, created from the first gradient (PyTorch: `buf = d_p.clone()`).
    momentum: Vec<Vec<f32>>,
    /// Per tensor id: whether its momentum buffer holds a first gradient yet.
    started: Vec<bool>,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Sgd {
            config,
            momentum: Vec::new(),
            started: Vec::new(),
        }
    }

    pub(crate) fn state_floats(&self) -> usize {
        self.momentum.iter().map(Vec::len).sum()
    }

    pub(crate) fn export_slots(&self) -> Vec<(usize, String, Vec<f32>)> {
        let mut out = Vec::new();
        let started = &self.started;
        super::state::export("momentum_buffer", &self.momentum, |id| started.get(id) == Some(&true), &mut out);
        out
    }

    pub(crate) fn import_slots(&mut self, slots: Vec<(usize, String, Vec<f32>)>) -> std::result::Result<(), String> {
        let (mut m, mut started) = (Vec::new(), Vec::new());
        for (id, slot, values) in slots {
            if slot != "momentum_buffer" {
                return Err(format!("has an SGD state slot `{slot}` (expected momentum_buffer)"));
            }
            super::state::import(&mut m, id, values);
            if started.len() <= id {
                started.resize(id + 1, false);
            }
            started[id] = true;
        }
        (self.momentum, self.started) = (m, started);
        Ok(())
    }

    /// # Safety
    /// See [`super::Optimizer::step`].
    pub unsafe fn step(&mut self, tensors: &[TensorRef]) {
        // PyTorch creates each momentum buffer from the tensor's first gradient.
        if self.config.momentum != 0.0 {
            super::ensure_state(&mut self.momentum, tensors);
            let max_id = tensors.iter().map(|t| t.id + 1).max().unwrap_or(0);
            if self.started.len() < max_id {
                self.started.resize(max_id, false);
            }
        }
        let started = &self.started;
        let config = self.config;
        let buffers = SharedBuffers(&mut self.momentum);
        for_each_chunk(tensors, &|i, range| {
            let t = tensors[i];
            let len = range.len();
            let p = std::slice::from_raw_parts_mut(t.param.add(range.start), len);
            let g = std::slice::from_raw_parts(t.grad.add(range.start), len);
            if config.momentum == 0.0 {
                sgd_update(p, g, &mut [], &config, false);
            } else {
                let buf = std::slice::from_raw_parts_mut(buffers.ptr(t.id).add(range.start), len);
                sgd_update(p, g, buf, &config, !started[t.id]);
            }
        });
        if config.momentum != 0.0 {
            for t in tensors {
                self.started[t.id] = true;
            }
        }
    }
}

/// Momentum buffers shared with the chunk workers, which touch disjoint ranges.
struct SharedBuffers<'a>(&'a mut Vec<Vec<f32>>);
unsafe impl Sync for SharedBuffers<'_> {}
impl SharedBuffers<'_> {
    fn ptr(&self, i: usize) -> *mut f32 {
        self.0[i].as_ptr() as *mut f32
    }
}

multiversion! {
    fn sgd_update(p: &mut [f32], g: &[f32], buf: &mut [f32], c: &SgdConfig, first: bool) {
        let SgdConfig { lr, momentum, dampening, weight_decay, nesterov } = *c;
        if momentum == 0.0 {
            for (p, &g) in p.iter_mut().zip(g) {
                // d_p = grad + weight_decay · param;  p -= lr · d_p
                let d = if weight_decay != 0.0 { g + weight_decay * *p } else { g };
                *p -= lr * d;
            }
            return;
        }
        for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            let d = if weight_decay != 0.0 { g + weight_decay * *p } else { g };
            // buf = d_p on the first step, else momentum · buf + (1 - dampening) · d_p
            *b = if first { d } else { momentum * *b + (1.0 - dampening) * d };
            let d = if nesterov { d + momentum * *b } else { *b };
            *p -= lr * d;
        }
    }
}
