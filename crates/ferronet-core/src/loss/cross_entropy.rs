//! Softmax cross-entropy on logits with integer labels (any class count), fused and
//! numerically stable (log-sum-exp with the row max subtracted): PyTorch's
//! `nn.CrossEntropyLoss` with optional class weights and label smoothing, mean
//! reduction (weighted mean: divided by Σ weight[label]).

use super::LossSum;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// The loss of logits [rows, classes] against `labels`; with `grad`, d(mean loss)/d logits.
pub fn cross_entropy(
    logits: &[f32],
    rows: usize,
    classes: usize,
    labels: &[u32],
    weights: Option<&[f32]>,
    smoothing: f32,
    grad: Option<&mut [f32]>,
) -> LossSum {
    let z = ArrayView2::from_shape((rows, classes), logits).expect("logits shape");
    if weights.is_none() && smoothing == 0.0 {
        return match grad {
            Some(g) => softmax_cross_entropy_backward(
                ArrayViewMut2::from_shape((rows, classes), g).expect("grad shape"),
                z,
                labels,
            ),
            None => softmax_cross_entropy_forward(z, labels),
        };
    }
    weighted_smoothed(z, labels, weights, smoothing, grad)
}

/// Forward only: per-batch summed loss and correct count from logits[B,C].
pub fn softmax_cross_entropy_forward(logits: ArrayView2<f32>, labels: &[u32]) -> LossSum {
    let mut out = LossSum::default();
    for (row, &label) in logits.axis_iter(Axis(0)).zip(labels) {
        let (max, argmax) = row_max(row.iter().copied());
        let sum_exp: f64 = row.iter().map(|&z| ((z - max) as f64).exp()).sum();
        // -log softmax[label] = log(sum exp(z - max)) - (z[label] - max)
        out.loss_sum += sum_exp.ln() - (row[label as usize] - max) as f64;
        out.correct += usize::from(argmax == label as usize);
    }
    out
}

/// Forward and backward in one pass over logits[B,C]:
///   dlogits[B,C] = (softmax(logits) - onehot(labels)) / B
pub fn softmax_cross_entropy_backward(
    mut dlogits: ArrayViewMut2<f32>,
    logits: ArrayView2<f32>,
    labels: &[u32],
) -> LossSum {
    let batch = logits.nrows();
    let inv_batch = 1.0 / batch as f32;
    let mut out = LossSum::default();
    for ((row, mut drow), &label) in logits
        .axis_iter(Axis(0))
        .zip(dlogits.axis_iter_mut(Axis(0)))
        .zip(labels)
    {
        let label = label as usize;
        let row = row.as_slice().expect("logits rows are contiguous");
        let (max, argmax) = row_max(row.iter().copied());
        let mut sum_exp = 0.0f32;
        for (d, &z) in drow.iter_mut().zip(row) {
            let e = (z - max).exp();
            *d = e;
            sum_exp += e;
        }
        let inv_sum = 1.0 / sum_exp;
        for d in drow.iter_mut() {
            *d *= inv_sum * inv_batch;
        }
        drow[label] -= inv_batch;
        out.loss_sum += (sum_exp as f64).ln() - (row[label] - max) as f64;
        out.correct += usize::from(argmax == label);
    }
    out
}

/// The general case, as PyTorch defines it, with w = class weights (1 without) and
/// ε = label smoothing, C classes, D = Σ_i w[y_i]:
///   loss = Σ_i [ (1−ε)·w[y_i]·(−log p_i[y_i]) + ε/C · Σ_c w[c]·(−log p_i[c]) ] / D
///   dz_i = [ (1−ε)·w[y_i]·(p_i − e_{y_i}) + ε/C · (Σ_c w[c]·p_i − w) ] / D
fn weighted_smoothed(
    logits: ArrayView2<f32>,
    labels: &[u32],
    weights: Option<&[f32]>,
    smoothing: f32,
    mut grad: Option<&mut [f32]>,
) -> LossSum {
    let (rows, classes) = logits.dim();
    let w = |c: usize| weights.map_or(1.0, |w| w[c] as f64);
    let total_w: f64 = (0..classes).map(w).sum();
    let denom: f64 = labels.iter().map(|&y| w(y as usize)).sum();
    let eps = smoothing as f64;
    let mut out = LossSum::default();
    let mut loss = 0.0f64;
    for (r, row) in logits.axis_iter(Axis(0)).enumerate() {
        let y = labels[r] as usize;
        let (max, argmax) = row_max(row.iter().copied());
        let sum_exp: f64 = row.iter().map(|&z| ((z - max) as f64).exp()).sum();
        let log_sum = sum_exp.ln();
        // −log p[c] = log_sum − (z[c] − max)
        let nll = |c: usize| log_sum - (row[c] - max) as f64;
        let smooth: f64 = (0..classes).map(|c| w(c) * nll(c)).sum();
        loss += (1.0 - eps) * w(y) * nll(y) + eps / classes as f64 * smooth;
        out.correct += usize::from(argmax == y);
        if let Some(g) = grad.as_deref_mut() {
            let g = &mut g[r * classes..(r + 1) * classes];
            for (c, gc) in g.iter_mut().enumerate() {
                let p = ((row[c] - max) as f64).exp() / sum_exp;
                let hard = if c == y { p - 1.0 } else { p };
                let v = (1.0 - eps) * w(y) * hard + eps / classes as f64 * (total_w * p - w(c));
                *gc = if denom > 0.0 { (v / denom) as f32 } else { 0.0 };
            }
        }
    }
    out.loss_sum = if denom > 0.0 { loss / denom * rows as f64 } else { 0.0 };
    out
}

/// Largest value and its first index (ties go to the lowest index, like argmax).
fn row_max(row: impl Iterator<Item = f32>) -> (f32, usize) {
    let mut best = (f32::NEG_INFINITY, 0);
    for (i, z) in row.enumerate() {
        if z > best.0 || i == 0 {
            best = (z, i);
        }
    }
    best
}
