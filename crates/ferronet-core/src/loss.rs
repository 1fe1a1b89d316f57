//! Softmax cross-entropy, fused and numerically stable (log-sum-exp with the row
//! max subtracted). Mean over the batch, as PyTorch's `CrossEntropyLoss`.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Loss summed over the batch (f64) and the number of rows whose argmax is the label.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossSum {
    pub loss_sum: f64,
    pub correct: usize,
}

/// Forward only: per-batch summed loss and correct count from logits[B,C].
pub fn softmax_cross_entropy_forward(logits: ArrayView2<f32>, labels: &[u8]) -> LossSum {
    let mut out = LossSum::default();
    for (row, &label) in logits.axis_iter(Axis(0)).zip(labels) {
        let (max, argmax) = row_max(row.as_slice().unwrap_or(&row.to_vec()));
        let sum_exp: f64 = row.iter().map(|&z| ((z - max) as f64).exp()).sum();
        // -log softmax[label] = log(sum exp(z - max)) - (z[label] - max)
        out.loss_sum += sum_exp.ln() - (row[label as usize] - max) as f64;
        out.correct += usize::from(argmax == label as usize);
    }
    out
}

/// Forward and backward in one pass over logits[B,C]:
///   dlogits[B,C] = (softmax(logits) - onehot(labels)) / B
/// `batch_scale` is the B of the mean (the batch size).
pub fn softmax_cross_entropy_backward(
    mut dlogits: ArrayViewMut2<f32>,
    logits: ArrayView2<f32>,
    labels: &[u8],
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
        let (max, argmax) = row_max(row);
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

/// Largest value and its first index (ties go to the lowest index, like argmax).
fn row_max(row: &[f32]) -> (f32, usize) {
    let mut best = (f32::NEG_INFINITY, 0);
    for (i, &z) in row.iter().enumerate() {
        if z > best.0 || (i == 0) {
            best = (z, i);
        }
    }
    best
}
