//! `nn.BCEWithLogitsLoss` on logits [rows, dim] with float targets in [0, 1], mean
//! over every element, with optional per-class `pos_weight` (broadcast over the last
//! dimension, as PyTorch does). Numerically stable, PyTorch's own form:
//!   lw   = (pos_weight − 1)·y + 1            (1 without pos_weight)
//!   loss = (1 − y)·x + lw·(log(1 + exp(−|x|)) + max(−x, 0))
//! which without pos_weight is max(x, 0) − x·y + log(1 + exp(−|x|)), and in general
//! −[p·y·log σ(x) + (1 − y)·log(1 − σ(x))]. Its gradient:
//!   d loss / dx = (lw·σ(x) − p·y) / N          (= (σ(x) − y) / N without pos_weight)
//! The metric is per-label accuracy: an element is right when (x > 0) == (y > 0.5).

use super::LossSum;

/// σ(x) without overflow for either sign.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub fn bce_with_logits(
    logits: &[f32],
    target: &[f32],
    rows: usize,
    dim: usize,
    pos_weight: Option<&[f32]>,
    mut grad: Option<&mut [f32]>,
) -> LossSum {
    let n = logits.len();
    let inv_n = 1.0 / n.max(1) as f64;
    let mut out = LossSum::default();
    let mut sum = 0.0f64;
    for (i, (&x, &y)) in logits.iter().zip(target).enumerate() {
        let (x, y) = (x as f64, y as f64);
        let p = pos_weight.map_or(1.0, |w| w[i % dim.max(1)] as f64);
        let lw = (p - 1.0) * y + 1.0;
        sum += (1.0 - y) * x + lw * ((-x.abs()).exp().ln_1p() + (-x).max(0.0));
        out.correct += usize::from((x > 0.0) == (y > 0.5));
        if let Some(g) = grad.as_deref_mut() {
            g[i] = ((lw * sigmoid(x) - p * y) * inv_n) as f32;
        }
    }
    out.elements = n;
    out.loss_sum = sum * inv_n * rows as f64;
    out
}

/// `nn.BCELoss` / `F.binary_cross_entropy` on probabilities p (after a Sigmoid), mean
/// over every element, exactly as PyTorch computes it:
///   loss = −[y·max(log p, −100) + (1 − y)·max(log(1 − p), −100)]
///   d loss / dp = (p − y) / max(p·(1 − p), 1e−12) / N
/// The clamp keeps p = 0 or 1 finite. Logits with `bce_with_logits` are the more
/// accurate form of the same loss; this one matches models that end in a Sigmoid
/// (PyTorch's examples/vae). Metric: an element is right when (p > 0.5) == (y > 0.5).
pub fn bce(p: &[f32], target: &[f32], rows: usize, mut grad: Option<&mut [f32]>) -> LossSum {
    let n = p.len();
    let inv_n = 1.0 / n.max(1) as f64;
    let mut out = LossSum::default();
    let mut sum = 0.0f64;
    for (i, (&x, &y)) in p.iter().zip(target).enumerate() {
        let (x, y) = (x as f64, y as f64);
        let (log_p, log_q) = (x.ln().max(-100.0), (1.0 - x).ln().max(-100.0));
        sum -= y * log_p + (1.0 - y) * log_q;
        out.correct += usize::from((x > 0.5) == (y > 0.5));
        if let Some(g) = grad.as_deref_mut() {
            g[i] = ((x - y) / (x * (1.0 - x)).max(1e-12) * inv_n) as f32;
        }
    }
    out.elements = n;
    out.loss_sum = sum * inv_n * rows as f64;
    out
}
