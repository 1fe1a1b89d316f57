//! Learning-rate schedules, stepped once per optimizer step inside the training loop
//! (Plateau: once per epoch), with `torch.optim.lr_scheduler`'s arithmetic in f64
//! (Python floats). The lr of step t (0-based, counting every optimizer step this
//! trainer has taken) is what PyTorch's `optimizer.param_groups[0]["lr"]` holds
//! before the t-th `optimizer.step()` when `scheduler.step()` follows every one.

use crate::error::{Error, Result};
use std::f64::consts::PI;

/// Which schedule, with PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleConfig {
    /// `StepLR(step_size, gamma)`: lr × gamma every `step_size` optimizer steps.
    Step { step_size: u64, gamma: f64 },
    /// `ExponentialLR(gamma)`: lr × gamma every optimizer step.
    Exponential { gamma: f64 },
    /// Linear warm-up then cosine decay to `min_lr`:
    ///   t < warmup:  lr = base·(t+1)/warmup
    ///   t < total:   lr = min_lr + (base − min_lr)·½·(1 + cos(π·(t − warmup)/(total − warmup)))
    ///   t ≥ total:   lr = min_lr
    Cosine { total_steps: u64, warmup_steps: u64, min_lr: f64 },
    /// `OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy="cos",
    /// div_factor, final_div_factor, three_phase=False, cycle_momentum=False)`.
    /// It replaces the optimizer's lr (starting at max_lr/div_factor). Momentum /
    /// betas are NOT cycled (PyTorch's default `cycle_momentum=True` would). Steps past
    /// `total_steps` (where PyTorch raises) keep the final lr.
    OneCycle { max_lr: f64, total_steps: u64, pct_start: f64, div_factor: f64, final_div_factor: f64 },
    /// `ReduceLROnPlateau(mode="min", factor, patience, threshold,
    /// threshold_mode="rel", cooldown, min_lr, eps=1e-8)`, stepped at each epoch's end
    /// with the epoch's mean training loss (or a validation loss given to the trainer).
    Plateau { factor: f64, patience: u64, threshold: f64, cooldown: u64, min_lr: f64 },
}

impl ScheduleConfig {
    /// OneCycle with PyTorch's defaults (pct_start 0.3, div_factor 25, final_div_factor 1e4).
    pub fn one_cycle(max_lr: f64, total_steps: u64) -> ScheduleConfig {
        ScheduleConfig::OneCycle { max_lr, total_steps, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 }
    }

    /// Plateau with PyTorch's defaults (factor 0.1, patience 10, threshold 1e-4, cooldown 0, min_lr 0).
    pub fn plateau() -> ScheduleConfig {
        ScheduleConfig::Plateau { factor: 0.1, patience: 10, threshold: 1e-4, cooldown: 0, min_lr: 0.0 }
    }

    pub fn validate(&self) -> Result<()> {
        let nonneg = |field: &str, v: f64| {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::config(field, format!("must be a finite number >= 0, got {v}")));
            }
            Ok(())
        };
        let pos = |field: &str, v: f64| {
            if !v.is_finite() || v <= 0.0 {
                return Err(Error::config(field, format!("must be a finite number > 0, got {v}")));
            }
            Ok(())
        };
        let at_least_one = |field: &str, v: u64| {
            if v == 0 {
                return Err(Error::config(field, "must be >= 1"));
            }
            Ok(())
        };
        match *self {
            ScheduleConfig::Step { step_size, gamma } => {
                at_least_one("schedule.stepSize", step_size)?;
                nonneg("schedule.gamma", gamma)
            }
            ScheduleConfig::Exponential { gamma } => nonneg("schedule.gamma", gamma),
            ScheduleConfig::Cosine { total_steps, warmup_steps, min_lr } => {
                at_least_one("schedule.totalSteps", total_steps)?;
                if warmup_steps > total_steps {
                    return Err(Error::config(
                        "schedule.warmupSteps",
                        format!("must be <= totalSteps ({total_steps}), got {warmup_steps}"),
                    ));
                }
                nonneg("schedule.minLr", min_lr)
            }
            ScheduleConfig::OneCycle { max_lr, total_steps, pct_start, div_factor, final_div_factor } => {
                pos("schedule.maxLr", max_lr)?;
                at_least_one("schedule.totalSteps", total_steps)?;
                if !(0.0..=1.0).contains(&pct_start) {
                    return Err(Error::config("schedule.pctStart", format!("must be in [0, 1], got {pct_start}")));
                }
                pos("schedule.divFactor", div_factor)?;
                pos("schedule.finalDivFactor", final_div_factor)
            }
            ScheduleConfig::Plateau { factor, threshold, min_lr, .. } => {
                if !(0.0..1.0).contains(&factor) {
                    return Err(Error::config("schedule.factor", format!("must be in [0, 1), got {factor}")));
                }
                nonneg("schedule.threshold", threshold)?;
                nonneg("schedule.minLr", min_lr)
            }
        }
    }
}

/// A schedule's state: the steps taken and the lr of the next one (and Plateau's
/// best value, bad epochs and cooldown).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    config: ScheduleConfig,
    base_lr: f64,
    steps: u64,
    lr: f64,
    best: f64,
    bad_epochs: u64,
    cooldown_left: u64,
}

impl Schedule {
    /// `base_lr` is the optimizer's configured lr (OneCycle ignores it, as PyTorch does).
    pub fn new(config: ScheduleConfig, base_lr: f64) -> Result<Schedule> {
        config.validate()?;
        let mut s = Schedule {
            config,
            base_lr,
            steps: 0,
            lr: base_lr,
            best: f64::INFINITY,
            bad_epochs: 0,
            cooldown_left: 0,
        };
        s.lr = s.closed_form(0).unwrap_or(base_lr);
        Ok(s)
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The state that changes as it steps: [steps, lr bits, best bits, bad epochs,
    /// cooldown left] (floats as their bits, so a checkpoint restores them exactly).
    pub fn state(&self) -> [u64; 5] {
        [self.steps, self.lr.to_bits(), self.best.to_bits(), self.bad_epochs, self.cooldown_left]
    }

    pub fn restore(&mut self, state: [u64; 5]) {
        self.steps = state[0];
        self.lr = f64::from_bits(state[1]);
        self.best = f64::from_bits(state[2]);
        self.bad_epochs = state[3];
        self.cooldown_left = state[4];
    }

    /// The lr of the next optimizer step.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Call after every optimizer step.
    pub fn advance(&mut self) {
        self.steps += 1;
        let t = self.steps;
        match self.config {
            // PyTorch's chainable forms: the lr is multiplied in place.
            ScheduleConfig::Step { step_size, gamma } => {
                if t.is_multiple_of(step_size) {
                    self.lr *= gamma;
                }
            }
            ScheduleConfig::Exponential { gamma } => self.lr *= gamma,
            ScheduleConfig::Plateau { .. } => {}
            _ => self.lr = self.closed_form(t).expect("closed-form schedule"),
        }
    }

    /// Call at each epoch's end with the value to minimise (Plateau only; others ignore it).
    pub fn epoch_end(&mut self, metric: f64) {
        let ScheduleConfig::Plateau { factor, patience, threshold, cooldown, min_lr } = self.config else {
            return;
        };
        // is_better, mode "min", threshold_mode "rel".
        if metric < self.best * (1.0 - threshold) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > patience {
            let new_lr = (self.lr * factor).max(min_lr);
            if self.lr - new_lr > 1e-8 {
                self.lr = new_lr;
            }
            self.cooldown_left = cooldown;
            self.bad_epochs = 0;
        }
    }

    /// The lr of step `t` for the schedules that are a function of t alone.
    fn closed_form(&self, t: u64) -> Option<f64> {
        match self.config {
            ScheduleConfig::Cosine { total_steps, warmup_steps, min_lr } => {
                let base = self.base_lr;
                Some(if t < warmup_steps {
                    base * (t + 1) as f64 / warmup_steps as f64
                } else if t >= total_steps {
                    min_lr
                } else {
                    let progress = (t - warmup_steps) as f64 / (total_steps - warmup_steps) as f64;
                    min_lr + (base - min_lr) * 0.5 * (1.0 + (PI * progress).cos())
                })
            }
            ScheduleConfig::OneCycle { max_lr, total_steps, pct_start, div_factor, final_div_factor } => {
                let initial = max_lr / div_factor;
                let min = initial / final_div_factor;
                // Phases as PyTorch builds them: warm-up ends at step pct·total − 1
                // (a float), annealing at total − 1.
                let end0 = pct_start * total_steps as f64 - 1.0;
                let end1 = total_steps as f64 - 1.0;
                let step = (t as f64).min(end1);
                let cos = |start: f64, end: f64, pct: f64| end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0);
                let pct = |from: f64, to: f64| if to > from { (step - from) / (to - from) } else { 1.0 };
                Some(if step <= end0 {
                    cos(initial, max_lr, pct(0.0, end0))
                } else {
                    cos(max_lr, min, pct(end0, end1))
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lrs of the first `n` steps.
    fn lrs(config: ScheduleConfig, base: f64, n: usize) -> Vec<f64> {
        let mut s = Schedule::new(config, base).unwrap();
        (0..n)
            .map(|_| {
                let lr = s.lr();
                s.advance();
                lr
            })
            .collect()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1e-12), "step {i}: {g} vs PyTorch {w}\n{got:?}");
        }
    }

    // Expected values: PyTorch's scheduler arithmetic (torch/optim/lr_scheduler.py)
    // evaluated by hand in Python floats.

    #[test]
    fn step_lr() {
        // StepLR(opt(lr=0.1), step_size=3, gamma=0.5)
        let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025];
        close(&lrs(ScheduleConfig::Step { step_size: 3, gamma: 0.5 }, 0.1, 8), &want);
    }

    #[test]
    fn exponential_lr() {
        // ExponentialLR(opt(lr=0.1), gamma=0.9): 0.1·0.9^t, multiplied step by step.
        let want = [0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002, 0.06561000000000002, 0.05904900000000002, 0.05314410000000002];
        close(&lrs(ScheduleConfig::Exponential { gamma: 0.9 }, 0.1, 7), &want);
    }

    #[test]
    fn cosine_with_warmup() {
        // base 0.1, warmup 2, total 8, min_lr 0.001; then clamped at min_lr.
        let want = [
            0.05,
            0.1,
            0.1,
            0.09336825748732973,
            0.07525000000000001,
            0.0505,
            0.025750000000000012,
            0.007631742512670284,
            0.001,
            0.001,
        ];
        // t = 2..8: min + (base − min)·½·(1 + cos(π·(t−2)/6))
        close(&lrs(ScheduleConfig::Cosine { total_steps: 8, warmup_steps: 2, min_lr: 0.001 }, 0.1, 10), &want);
    }

    #[test]
    fn one_cycle() {
        // OneCycleLR(opt, max_lr=0.1, total_steps=10) with the defaults:
        // initial 0.004, min 4e-7, phase ends 2.0 and 9.
        let want = [
            0.0040000000000000036,
            0.052000000000000005,
            0.1,
            0.09504846320134738,
            0.0811745653949763,
            0.06112620219362893,
            0.03887419780637107,
            0.0188258346050237,
            0.004951936798652629,
            4e-07,
        ];
        close(&lrs(ScheduleConfig::one_cycle(0.1, 10), 0.5, 10), &want);
    }

    #[test]
    fn plateau() {
        // ReduceLROnPlateau(opt(lr=1.0), factor=0.5, patience=1, threshold=0.1, cooldown=1, min_lr=0.2)
        let mut s = Schedule::new(
            ScheduleConfig::Plateau { factor: 0.5, patience: 1, threshold: 0.1, cooldown: 1, min_lr: 0.2 },
            1.0,
        )
        .unwrap();
        let losses = [1.0, 0.95, 0.94, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        let mut got = Vec::new();
        for &l in &losses {
            // Steps within the epoch do not move it.
            s.advance();
            s.epoch_end(l);
            got.push(s.lr());
        }
        // epoch 0: best 1.0; 1: 0.95 not < 0.9 → bad 1; 2: bad 2 > 1 → lr 0.5, cooldown 1;
        // 3: 0.5 < 0.9 best, cooldown → 0; 4: bad 1; 5: bad 2 → 0.25, cooldown 1;
        // 6: bad 1, cooldown → bad 0; 7: bad 1; 8: bad 2 → max(0.125, 0.2) = 0.2; 9: bad 0 after cooldown.
        let want = [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2];
        close(&got, &want);
    }

    #[test]
    fn validation_names_the_field() {
        let e = |c: ScheduleConfig| Schedule::new(c, 0.1).unwrap_err().to_string();
        assert!(e(ScheduleConfig::Cosine { total_steps: 0, warmup_steps: 0, min_lr: 0.0 }).contains("schedule.totalSteps"));
        assert!(e(ScheduleConfig::Cosine { total_steps: 3, warmup_steps: 4, min_lr: 0.0 }).contains("schedule.warmupSteps"));
        assert!(e(ScheduleConfig::Step { step_size: 0, gamma: 0.1 }).contains("schedule.stepSize"));
        assert!(e(ScheduleConfig::Plateau { factor: 1.0, patience: 1, threshold: 0.0, cooldown: 0, min_lr: 0.0 }).contains("schedule.factor"));
    }
}
