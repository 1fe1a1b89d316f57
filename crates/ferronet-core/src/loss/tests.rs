//! Loss tests: hand-computed values, finite differences of the mean loss with respect
//! to the model output, and the kinks (zero error, |d| = β, |d| = δ).

use super::*;

/// The batch-mean loss and its gradient.
fn eval(loss: &LossConfig, pred: &[f32], rows: usize, dim: usize, t: BatchTargets) -> (f64, Vec<f32>, LossSum) {
    let mut g = vec![f32::NAN; pred.len()];
    let s = loss.compute(pred, rows, dim, t, Some(&mut g));
    // Forward-only gives the same statistics (the fused cross-entropy backward sums
    // its exponentials in f32, the forward in f64: equal to ~1e-8).
    let f = loss.compute(pred, rows, dim, t, None);
    assert_eq!((f.correct, f.elements), (s.correct, s.elements));
    assert!((f.loss_sum - s.loss_sum).abs() <= 1e-7 * s.loss_sum.abs().max(1.0), "{f:?} vs {s:?}");
    (s.loss_sum / rows as f64, g, s)
}

/// Central differences of the mean loss against the analytic gradient, at points
/// at least h away from kinks. The losses round (pred − target) or (z − max) in f32,
/// ~6e-8, so h = 1e-2 (truncation ~h²·f'''/6 ≲ 1e-6) and a 1e-3 relative tolerance.
fn check_fd(loss: &LossConfig, pred: &[f32], rows: usize, dim: usize, t: BatchTargets) {
    let (_, g, _) = eval(loss, pred, rows, dim, t);
    let h = 1e-2f32;
    for i in 0..pred.len() {
        let mut p = pred.to_vec();
        p[i] = pred[i] + h;
        let (hi, up) = (p[i], loss.compute(&p, rows, dim, t, None).loss_sum / rows as f64);
        p[i] = pred[i] - h;
        let (lo, down) = (p[i], loss.compute(&p, rows, dim, t, None).loss_sum / rows as f64);
        // The step as f32 rounded it.
        let fd = (up - down) / (hi as f64 - lo as f64);
        let err = (fd - g[i] as f64).abs();
        assert!(
            err <= 1e-3 * (g[i] as f64).abs().max(1e-2),
            "{}: d loss/d pred[{i}]: analytic {} vs finite difference {fd}",
            loss.name(),
            g[i]
        );
    }
}

fn close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{what}: {got} vs {want}");
}

fn close_all(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{what}[{i}]: {a} vs {b}");
    }
}

/// Values away from every kink used below (|d| ∉ {0, 1, 1.5}).
const PRED: [f32; 8] = [0.3, -1.7, 2.2, 0.05, -0.4, 1.3, -2.6, 0.9];
const TARGET: [f32; 8] = [0.0, 0.5, -0.1, 1.0, 0.2, -0.6, 0.0, 0.75];

// ---------- cross-entropy ----------

#[test]
fn cross_entropy_hand_values() {
    let plain = LossConfig::default();
    let (l, g, s) = eval(&plain, &[1.0, 2.0, 3.0], 1, 3, BatchTargets::Classes(&[0]));
    close("plain", l, 2.40760596444438);
    assert_eq!(s.correct, 0);
    // softmax − onehot
    let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).sum();
    let p: Vec<f32> = [1.0f64, 2.0, 3.0].iter().map(|x| (x.exp() / z) as f32).collect();
    close_all("plain grad", &g, &[p[0] - 1.0, p[1], p[2]]);

    // Σ_i [(1−ε)·w[y_i]·nll_i(y_i) + ε/C·Σ_c w[c]·nll_i(c)] / Σ_i w[y_i], by hand in Python.
    let ws = LossConfig::CrossEntropy { class_weights: Some(vec![1.0, 2.0, 0.5]), label_smoothing: 0.1 };
    let logits = [1.0, 2.0, 3.0, 0.5, -1.0, 2.0];
    let (l, _, s) = eval(&ws, &logits, 2, 3, BatchTargets::Classes(&[0, 2]));
    close("weighted, smoothed", l, 1.8229838657494504);
    assert_eq!(s.correct, 1);
}

#[test]
fn cross_entropy_gradients_match_finite_differences() {
    let logits = [0.3, -1.2, 2.0, 0.7, 1.1, -0.4, 0.0, 0.25, -2.0, 1.5, 0.9, -0.3];
    let labels = [2, 0, 1];
    for loss in [
        LossConfig::default(),
        LossConfig::CrossEntropy { class_weights: Some(vec![0.5, 2.0, 1.0, 0.25]), label_smoothing: 0.0 },
        LossConfig::CrossEntropy { class_weights: None, label_smoothing: 0.2 },
        LossConfig::CrossEntropy { class_weights: Some(vec![0.5, 2.0, 1.0, 0.25]), label_smoothing: 0.3 },
    ] {
        check_fd(&loss, &logits, 3, 4, BatchTargets::Classes(&labels));
    }
}

#[test]
fn cross_entropy_smoothing_without_weights_matches_weights_of_one() {
    let logits = [0.3, -1.2, 2.0, 0.7, 1.1, -0.4];
    let a = LossConfig::CrossEntropy { class_weights: None, label_smoothing: 0.15 };
    let b = LossConfig::CrossEntropy { class_weights: Some(vec![1.0; 3]), label_smoothing: 0.15 };
    let (la, ga, _) = eval(&a, &logits, 2, 3, BatchTargets::Classes(&[1, 0]));
    let (lb, gb, _) = eval(&b, &logits, 2, 3, BatchTargets::Classes(&[1, 0]));
    close("loss", la, lb);
    close_all("grad", &ga, &gb);
}

// ---------- L1, SmoothL1, Huber ----------

#[test]
fn l1_hand_values_and_zero_error() {
    let (l, g, s) = eval(&LossConfig::L1, &[1.0, -2.0, 0.5, 3.0], 2, 2, BatchTargets::Values(&[0.0, 0.0, 0.5, 1.0]));
    close("l1", l, 1.25);
    close("loss_sum", s.loss_sum, 2.5);
    close_all("grad", &g, &[0.25, -0.25, 0.0, 0.25]);
    assert_eq!(s.elements, 4);
    close("abs_err", s.abs_err, 5.0);
    close("sq_err", s.sq_err, 9.0);
    check_fd(&LossConfig::L1, &PRED, 4, 2, BatchTargets::Values(&TARGET));
}

#[test]
fn smooth_l1_hand_values_and_kinks() {
    let loss = LossConfig::SmoothL1 { beta: 1.0 };
    // d = 0.5, −2, 0, 1 (the kink): 0.125 + 1.5 + 0 + 0.5 = 2.125, mean 0.53125.
    let (l, g, _) = eval(&loss, &[0.5, -2.0, 0.0, 1.0], 2, 2, BatchTargets::Values(&[0.0; 4]));
    close("smooth_l1", l, 0.53125);
    close_all("grad", &g, &[0.125, -0.25, 0.0, 0.25]);
    // β = 2: d = 1 → 0.25, d = −3 → 2.
    let (l, g, _) = eval(&LossConfig::SmoothL1 { beta: 2.0 }, &[1.0, -3.0], 1, 2, BatchTargets::Values(&[0.0; 2]));
    close("smooth_l1 beta 2", l, 1.125);
    close_all("grad beta 2", &g, &[0.25, -0.5]);
    check_fd(&loss, &PRED, 4, 2, BatchTargets::Values(&TARGET));
    check_fd(&LossConfig::SmoothL1 { beta: 0.5 }, &PRED, 4, 2, BatchTargets::Values(&TARGET));
}

#[test]
fn smooth_l1_with_beta_zero_is_l1() {
    let t = BatchTargets::Values(&TARGET);
    let mut pred = PRED;
    pred[0] = TARGET[0]; // a zero error: gradient 0, not 0/0
    let (a, ga, sa) = eval(&LossConfig::SmoothL1 { beta: 0.0 }, &pred, 4, 2, t);
    let (b, gb, sb) = eval(&LossConfig::L1, &pred, 4, 2, t);
    assert_eq!((a, &ga, sa), (b, &gb, sb));
    assert_eq!(ga[0], 0.0);
}

#[test]
fn huber_hand_values_and_kinks() {
    let loss = LossConfig::Huber { delta: 1.5 };
    // d = 1, −3, 0, 1.5 (the kink): 0.5 + 1.5·(3 − 0.75) + 0 + 1.125 = 5, mean 1.25.
    let (l, g, s) = eval(&loss, &[1.0, -3.0, 0.0, 1.5], 2, 2, BatchTargets::Values(&[0.0; 4]));
    close("huber", l, 1.25);
    close("loss_sum", s.loss_sum, 2.5);
    close_all("grad", &g, &[0.25, -0.375, 0.0, 0.375]);
    check_fd(&loss, &PRED, 4, 2, BatchTargets::Values(&TARGET));
    check_fd(&LossConfig::Huber { delta: 0.4 }, &PRED, 4, 2, BatchTargets::Values(&TARGET));
}

#[test]
fn huber_is_delta_times_smooth_l1_with_beta_delta() {
    // PyTorch documents HuberLoss(δ) = δ · SmoothL1Loss(β = δ).
    let t = BatchTargets::Values(&TARGET);
    for d in [0.3f32, 1.0, 2.5] {
        let (h, gh, _) = eval(&LossConfig::Huber { delta: d }, &PRED, 4, 2, t);
        let (s, gs, _) = eval(&LossConfig::SmoothL1 { beta: d }, &PRED, 4, 2, t);
        close("loss", h, d as f64 * s);
        let gs: Vec<f32> = gs.iter().map(|g| g * d).collect();
        close_all("grad", &gh, &gs);
    }
}

// ---------- BCE with logits ----------

#[test]
fn bce_with_logits_hand_values() {
    let x = [0.0, 2.0, -1.0, 3.0];
    let y = [1.0, 0.0, 1.0, 1.0];
    let (l, g, s) = eval(&LossConfig::BceWithLogits { pos_weight: None }, &x, 2, 2, BatchTargets::Values(&y));
    close("bce", l, 1.0454810576737208);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want: Vec<f32> = x.iter().zip(&y).map(|(&x, &y)| ((sig(x as f64) - y as f64) / 4.0) as f32).collect();
    close_all("grad", &g, &want);
    // Right: x = 3 (y 1); wrong: 0 (not > 0, y 1), 2 (y 0), −1 (y 1).
    assert_eq!((s.correct, s.elements), (1, 4));

    let pw = LossConfig::BceWithLogits { pos_weight: Some(vec![2.0, 0.5]) };
    let (l, g, _) = eval(&pw, &x, 2, 2, BatchTargets::Values(&y));
    close("bce pos_weight", l, 1.5410098557465448);
    let p = [2.0, 0.5, 2.0, 0.5];
    let want: Vec<f32> = (0..4)
        .map(|i| {
            let lw = (p[i] - 1.0) * y[i] as f64 + 1.0;
            ((lw * sig(x[i] as f64) - p[i] * y[i] as f64) / 4.0) as f32
        })
        .collect();
    close_all("grad pos_weight", &g, &want);
}

#[test]
fn bce_with_logits_is_stable_for_large_logits() {
    let loss = LossConfig::BceWithLogits { pos_weight: None };
    let (l, g, _) = eval(&loss, &[100.0, -100.0, 100.0, -100.0], 1, 4, BatchTargets::Values(&[1.0, 0.0, 0.0, 1.0]));
    // ~0, ~0, 100, 100 → mean 50.
    close("loss", l, 50.0);
    assert!(g.iter().all(|g| g.is_finite()));
    close_all("grad", &g, &[0.0, 0.0, 0.25, -0.25]);
}

#[test]
fn bce_with_logits_gradients_match_finite_differences() {
    let soft = [0.0, 1.0, 0.3, 1.0, 0.0, 0.9, 1.0, 0.5];
    check_fd(&LossConfig::BceWithLogits { pos_weight: None }, &PRED, 4, 2, BatchTargets::Values(&soft));
    check_fd(&LossConfig::BceWithLogits { pos_weight: Some(vec![3.0, 0.25]) }, &PRED, 4, 2, BatchTargets::Values(&soft));
}

#[test]
fn validation_names_the_field() {
    let err = |l: LossConfig, dim| l.validate(dim).unwrap_err().to_string();
    assert!(err(LossConfig::SmoothL1 { beta: -1.0 }, 2).contains("loss.beta"));
    assert!(err(LossConfig::Huber { delta: 0.0 }, 2).contains("loss.delta"));
    assert!(err(LossConfig::BceWithLogits { pos_weight: Some(vec![1.0]) }, 2).contains("loss.posWeight"));
    assert!(err(LossConfig::BceWithLogits { pos_weight: Some(vec![1.0, f32::NAN]) }, 2).contains("loss.posWeight[1]"));
    assert!(LossConfig::SmoothL1 { beta: 0.0 }.validate(2).is_ok());
    assert!(LossConfig::BceWithLogits { pos_weight: Some(vec![1.0, 2.0]) }.validate(2).is_ok());
    assert_eq!(LossConfig::BceWithLogits { pos_weight: None }.metric_kind(), MetricKind::LabelAccuracy);
    assert_eq!(LossConfig::Huber { delta: 1.0 }.target_kind(), TargetKind::Values);
}
