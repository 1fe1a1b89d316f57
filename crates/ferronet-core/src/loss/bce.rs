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
use crate::fastmath::ln_f64;

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
pub fn bce(p: &[f32], target: &[f32], rows: usize, grad: Option<&mut [f32]>) -> LossSum {
    let n = p.len();
    let inv_n = 1.0 / n.max(1) as f64;
    #[cfg(target_arch = "x86_64")]
    let (sum, correct) = if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // Safety: the CPU has the features the function is compiled for.
        unsafe { bce_avx2(p, target, inv_n, grad) }
    } else {
        bce_loop(p, target, inv_n, grad)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (sum, correct) = bce_loop(p, target, inv_n, grad);
    LossSum { elements: n, loss_sum: sum * inv_n * rows as f64, correct, ..LossSum::default() }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bce_avx2(p: &[f32], target: &[f32], inv_n: f64, grad: Option<&mut [f32]>) -> (f64, usize) {
    bce_loop(p, target, inv_n, grad)
}

/// Σ −(y·ln p + (1 − y)·ln(1 − p)) (logs clamped at −100, as PyTorch), the count of
/// elements on the target's side of 0.5, and the gradient of the mean. The logs are
/// `ln_f64`, vectorised (compiled for AVX2 + FMA at run time): libm's ln per element
/// was most of the 0.4 s a VAE epoch spent outside its layers.
#[inline(always)]
fn bce_loop(p: &[f32], target: &[f32], inv_n: f64, grad: Option<&mut [f32]>) -> (f64, usize) {
    let term = |x: f32, y: f32| {
        let (x, y) = (x as f64, y as f64);
        let (log_p, log_q) = (ln_f64(x).max(-100.0), ln_f64(1.0 - x).max(-100.0));
        -(y * log_p + (1.0 - y) * log_q)
    };
    // Plain indexed loops: an iterator chain's `fold` is a separate function that is
    // not compiled for AVX2 (perf showed it at 12% of a VAE epoch, scalar).
    // Eight partial sums: one f64 sum is a chain of dependent adds LLVM will not
    // reorder, so the loop would stay scalar.
    let n = p.len().min(target.len());
    let (mut lanes, mut correct) = ([0.0f64; 8], 0usize);
    let whole = n / 8 * 8;
    for i in (0..whole).step_by(8) {
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane += term(p[i + k], target[i + k]);
        }
    }
    for i in 0..n {
        correct += usize::from((p[i] > 0.5) == (target[i] > 0.5));
    }
    let mut sum: f64 = lanes.iter().sum();
    for i in whole..n {
        sum += term(p[i], target[i]);
    }
    if let Some(g) = grad {
        for ((g, &x), &y) in g.iter_mut().zip(p).zip(target) {
            let (x, y) = (x as f64, y as f64);
            *g = ((x - y) / (x * (1.0 - x)).max(1e-12) * inv_n) as f32;
        }
    }
    (sum, correct)
}
