//! Regression losses on float targets, mean over every element (PyTorch's
//! `reduction="mean"`), with the error metrics beside them.

use super::LossSum;

/// Squared and absolute error sums of pred against target.
fn errors(pred: &[f32], target: &[f32], out: &mut LossSum) {
    for (&p, &t) in pred.iter().zip(target) {
        let d = (p - t) as f64;
        out.sq_err += d * d;
        out.abs_err += d.abs();
    }
    out.elements += pred.len();
}

/// `nn.MSELoss`: mean (pred − target)²; grad = 2 (pred − target) / N.
pub fn mse(pred: &[f32], target: &[f32], rows: usize, grad: Option<&mut [f32]>) -> LossSum {
    let mut out = LossSum::default();
    errors(pred, target, &mut out);
    let n = pred.len().max(1);
    out.loss_sum = out.sq_err / n as f64 * rows as f64;
    if let Some(g) = grad {
        let scale = 2.0 / n as f32;
        for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
            *g = scale * (p - t);
        }
    }
    out
}

/// `nn.L1Loss`: mean |pred − target|; grad = sign(pred − target) / N (0 where equal,
/// as `torch.sign`).
pub fn l1(pred: &[f32], target: &[f32], rows: usize, grad: Option<&mut [f32]>) -> LossSum {
    let mut out = LossSum::default();
    errors(pred, target, &mut out);
    let n = pred.len().max(1);
    out.loss_sum = out.abs_err / n as f64 * rows as f64;
    if let Some(g) = grad {
        let scale = 1.0 / n as f32;
        for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
            let d = p - t;
            *g = if d > 0.0 {
                scale
            } else if d < 0.0 {
                -scale
            } else {
                0.0
            };
        }
    }
    out
}

/// `nn.SmoothL1Loss(beta)`: per element 0.5·d²/β where |d| < β, else |d| − 0.5·β;
/// grad d/β inside, sign(d) outside (PyTorch's backward: x < −β → −1, x > β → 1,
/// else x/β, so at |d| = β both sides give ±1). β = 0 is exactly `l1` (PyTorch's
/// `F.smooth_l1_loss` dispatches to `l1_loss` then).
pub fn smooth_l1(pred: &[f32], target: &[f32], rows: usize, beta: f32, grad: Option<&mut [f32]>) -> LossSum {
    if beta == 0.0 {
        return l1(pred, target, rows, grad);
    }
    let mut out = LossSum::default();
    errors(pred, target, &mut out);
    let n = pred.len().max(1);
    let b = beta as f64;
    let sum: f64 = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let d = (p - t) as f64;
            if d.abs() < b {
                0.5 * d * d / b
            } else {
                d.abs() - 0.5 * b
            }
        })
        .sum();
    out.loss_sum = sum / n as f64 * rows as f64;
    if let Some(g) = grad {
        let scale = 1.0 / n as f32;
        for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
            let d = p - t;
            *g = scale
                * if d < -beta {
                    -1.0
                } else if d > beta {
                    1.0
                } else {
                    d / beta
                };
        }
    }
    out
}

/// `nn.HuberLoss(delta)`: per element 0.5·d² where |d| <= δ, else δ·(|d| − 0.5·δ);
/// grad d inside, δ·sign(d) outside (PyTorch's backward: x < −δ → −δ, x > δ → δ,
/// else x; continuous at |d| = δ).
pub fn huber(pred: &[f32], target: &[f32], rows: usize, delta: f32, grad: Option<&mut [f32]>) -> LossSum {
    let mut out = LossSum::default();
    errors(pred, target, &mut out);
    let n = pred.len().max(1);
    let dl = delta as f64;
    let sum: f64 = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let d = (p - t) as f64;
            if d.abs() <= dl {
                0.5 * d * d
            } else {
                dl * (d.abs() - 0.5 * dl)
            }
        })
        .sum();
    out.loss_sum = sum / n as f64 * rows as f64;
    if let Some(g) = grad {
        let scale = 1.0 / n as f32;
        for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
            let d = p - t;
            *g = scale
                * if d < -delta {
                    -delta
                } else if d > delta {
                    delta
                } else {
                    d
                };
        }
    }
    out
}
