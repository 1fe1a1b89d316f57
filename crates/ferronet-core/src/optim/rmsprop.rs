//! RMSprop as `torch.optim.RMSprop` (single-tensor CPU path), per element:
//!   g  += weight_decay · p                         (if weight_decay ≠ 0)
//!   sq  = α·sq + (1 − α)·g²
//!   centered: ga = lerp(ga, g, 1 − α);  avg = sqrt(sq − ga²) + eps
//!   else:     avg = sqrt(sq) + eps                  (eps after the square root)
//!   momentum > 0: buf = momentum·buf + g / avg;  p −= lr·buf
//!   else:         p −= lr · (g / avg)
//! Every state buffer starts at zero, as PyTorch's `zeros_like`.

use super::check_finite_nonneg;
use super::tensors::{for_each_chunk, multiversion, TensorRef};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmspropConfig {
    pub lr: f32,
    pub alpha: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub momentum: f32,
    pub centered: bool,
}

impl Default for RmspropConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        RmspropConfig {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmspropConfig {
    pub fn validate(&self) -> Result<()> {
        check_finite_nonneg("optimizer.lr", self.lr)?;
        if self.lr == 0.0 {
            return Err(Error::config("optimizer.lr", "must be > 0"));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::config("optimizer.alpha", format!("must be in [0, 1], got {}", self.alpha)));
        }
        check_finite_nonneg("optimizer.eps", self.eps)?;
        check_finite_nonneg("optimizer.weightDecay", self.weight_decay)?;
        check_finite_nonneg("optimizer.momentum", self.momentum)?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Rmsprop {
    pub config: RmspropConfig,
    square_avg: Vec<Vec<f32>>,
    grad_avg: Vec<Vec<f32>>,
    momentum_buffer: Vec<Vec<f32>>,
}

impl Rmsprop {
    pub fn new(config: RmspropConfig) -> Self {
        Rmsprop {
            config,
            square_avg: Vec::new(),
            grad_avg: Vec::new(),
            momentum_buffer: Vec::new(),
        }
    }

    pub(crate) fn state_floats(&self) -> usize {
        self.square_avg.iter().chain(&self.grad_avg).chain(&self.momentum_buffer).map(Vec::len).sum()
    }

    pub(crate) fn export_slots(&self) -> Vec<(usize, String, Vec<f32>)> {
        let mut out = Vec::new();
        super::state::export("square_avg", &self.square_avg, |_| true, &mut out);
        super::state::export("grad_avg", &self.grad_avg, |_| true, &mut out);
        super::state::export("momentum_buffer", &self.momentum_buffer, |_| true, &mut out);
        out
    }

    pub(crate) fn import_slots(&mut self, slots: Vec<(usize, String, Vec<f32>)>) -> std::result::Result<(), String> {
        let (mut s, mut g, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for (id, slot, values) in slots {
            match slot.as_str() {
                "square_avg" => super::state::import(&mut s, id, values),
                "grad_avg" => super::state::import(&mut g, id, values),
                "momentum_buffer" => super::state::import(&mut b, id, values),
                other => return Err(format!("has an RMSprop state slot `{other}` (expected square_avg, grad_avg, momentum_buffer)")),
            }
        }
        (self.square_avg, self.grad_avg, self.momentum_buffer) = (s, g, b);
        Ok(())
    }

    /// # Safety
    /// See [`super::Optimizer::step`].
    pub unsafe fn step(&mut self, tensors: &[TensorRef]) {
        let c = self.config;
        super::ensure_state(&mut self.square_avg, tensors);
        if c.centered {
            super::ensure_state(&mut self.grad_avg, tensors);
        }
        if c.momentum > 0.0 {
            super::ensure_state(&mut self.momentum_buffer, tensors);
        }
        let (sq, ga, buf) = (
            SharedBuffers(&mut self.square_avg),
            SharedBuffers(&mut self.grad_avg),
            SharedBuffers(&mut self.momentum_buffer),
        );
        for_each_chunk(tensors, &|i, range| {
            let t = tensors[i];
            let len = range.len();
            let p = std::slice::from_raw_parts_mut(t.param.add(range.start), len);
            let g = std::slice::from_raw_parts(t.grad.add(range.start), len);
            let s = std::slice::from_raw_parts_mut(sq.ptr(t.id).add(range.start), len);
            let a: &mut [f32] = if c.centered {
                std::slice::from_raw_parts_mut(ga.ptr(t.id).add(range.start), len)
            } else {
                &mut []
            };
            let b: &mut [f32] = if c.momentum > 0.0 {
                std::slice::from_raw_parts_mut(buf.ptr(t.id).add(range.start), len)
            } else {
                &mut []
            };
            rmsprop_update(p, g, s, a, b, &c);
        });
    }
}

/// State buffers shared with the chunk workers, which touch disjoint ranges.
struct SharedBuffers<'a>(&'a mut Vec<Vec<f32>>);
unsafe impl Sync for SharedBuffers<'_> {}
impl SharedBuffers<'_> {
    fn ptr(&self, i: usize) -> *mut f32 {
        self.0[i].as_ptr() as *mut f32
    }
}

/// `torch.lerp(start, end, w)` as ATen's CPU kernel computes it.
#[inline(always)]
fn lerp(start: f32, end: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        start + w * (end - start)
    } else {
        end - (end - start) * (1.0 - w)
    }
}

/// One element: returns the new parameter; updates the state in place.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn element(p: f32, g: f32, sq: &mut f32, ga: Option<&mut f32>, buf: Option<&mut f32>, c: &RmspropConfig) -> f32 {
    let g = if c.weight_decay != 0.0 { g + c.weight_decay * p } else { g };
    *sq = c.alpha * *sq + (1.0 - c.alpha) * (g * g);
    let avg = match ga {
        Some(ga) => {
            *ga = lerp(*ga, g, 1.0 - c.alpha);
            (*sq - *ga * *ga).sqrt() + c.eps
        }
        None => sq.sqrt() + c.eps,
    };
    match buf {
        Some(b) => {
            *b = c.momentum * *b + g / avg;
            p - c.lr * *b
        }
        None => p + (-c.lr) * (g / avg),
    }
}

multiversion! {
    fn rmsprop_update(p: &mut [f32], g: &[f32], sq: &mut [f32], ga: &mut [f32], buf: &mut [f32], c: &RmspropConfig) {
        let n = p.len();
        match (c.centered, c.momentum > 0.0) {
            (false, false) => for i in 0..n {
                p[i] = element(p[i], g[i], &mut sq[i], None, None, c);
            },
            (true, false) => for i in 0..n {
                p[i] = element(p[i], g[i], &mut sq[i], Some(&mut ga[i]), None, c);
            },
            (false, true) => for i in 0..n {
                p[i] = element(p[i], g[i], &mut sq[i], None, Some(&mut buf[i]), c);
            },
            (true, true) => for i in 0..n {
                p[i] = element(p[i], g[i], &mut sq[i], Some(&mut ga[i]), Some(&mut buf[i]), c);
            },
        }
    }
}
