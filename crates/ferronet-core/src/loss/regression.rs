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
