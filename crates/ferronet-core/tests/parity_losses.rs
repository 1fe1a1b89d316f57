//! Parity with PyTorch for every loss configuration: test/fixtures/parity/losses.json
//! (scripts/make_layer_fixtures.py: float32 inputs, float64 PyTorch math). ferronet,
//! in f32 with f64 sums, must match the loss and d loss / d input to 1e-5 relative.

use ferronet_core::loss::{BatchTargets, LossConfig};
use serde_json::Value;

const REL_TOL: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/losses.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture")).expect("parse fixture")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn opt_floats(v: &Value) -> Option<Vec<f32>> {
    (!v.is_null()).then(|| floats(v))
}

fn loss_config(l: &Value) -> LossConfig {
    let num = |k: &str, d: f64| l.get(k).and_then(Value::as_f64).unwrap_or(d) as f32;
    let none = Value::Null;
    match l["type"].as_str().unwrap() {
        "cross_entropy" => LossConfig::CrossEntropy {
            class_weights: opt_floats(l.get("classWeights").unwrap_or(&none)),
            label_smoothing: num("labelSmoothing", 0.0),
        },
        "mse" => LossConfig::Mse,
        "l1" => LossConfig::L1,
        "smooth_l1" => LossConfig::SmoothL1 { beta: num("beta", 1.0) },
        "huber" => LossConfig::Huber { delta: num("delta", 1.0) },
        "bce_with_logits" => LossConfig::BceWithLogits {
            pos_weight: opt_floats(l.get("posWeight").unwrap_or(&none)),
        },
        t => panic!("unknown loss {t}"),
    }
}

#[test]
fn every_loss_matches_pytorch() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let loss = loss_config(&case["loss"]);
        seen.insert(loss.name());
        let shape: Vec<usize> = case["input"]["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let rows = shape[0];
        let dim: usize = shape[1..].iter().product();
        let input = floats(&case["input"]["data"]);
        assert_eq!(input.len(), rows * dim, "{name}: input");
        loss.validate(dim).unwrap_or_else(|e| panic!("{name}: {e}"));
        let labels: Vec<u32>;
        let values: Vec<f32>;
        let targets = match loss {
            LossConfig::CrossEntropy { .. } => {
                labels = case["target"]["data"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
                BatchTargets::Classes(&labels)
            }
            _ => {
                values = floats(&case["target"]["data"]);
                BatchTargets::Values(&values)
            }
        };
        let mut grad = vec![f32::NAN; input.len()];
        let sums = loss.compute(&input, rows, dim, targets, Some(&mut grad));
        let got = sums.loss_sum / rows as f64;
        let want = case["loss_value"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= REL_TOL * want.abs().max(1e-6),
            "{name}: loss ferronet {got} vs PyTorch {want}"
        );
        let forward = loss.compute(&input, rows, dim, targets, None).loss_sum / rows as f64;
        assert!((forward - want).abs() <= REL_TOL * want.abs().max(1e-6), "{name}: forward-only loss {forward} vs {want}");

        let want_grad = floats(&case["inputGrad"]["data"]);
        assert_eq!(want_grad.len(), grad.len(), "{name}: gradient length");
        // Entries near 0 get a floor of 1e-3 of the largest.
        let scale = want_grad.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
        for (i, (&g, &w)) in grad.iter().zip(&want_grad).enumerate() {
            let err = (g as f64 - w as f64).abs();
            assert!(
                err <= REL_TOL * (w as f64).abs().max(1e-3 * scale),
                "{name}: d loss/d input[{i}]: ferronet {g} vs PyTorch {w} (err {err:e})"
            );
        }
    }
    for l in ["cross_entropy", "mse", "l1", "smooth_l1", "huber", "bce_with_logits"] {
        assert!(seen.contains(l), "fixture has no {l} case");
    }
}
