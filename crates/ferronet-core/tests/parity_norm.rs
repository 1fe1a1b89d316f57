//! Parity with PyTorch for the ops of this branch: every case of
//! test/fixtures/parity/layers.json (written by scripts/make_layer_fixtures.py,
//! float64 math on float32 inputs and parameters) whose spec uses only registered
//! ops runs through `ops::testing::run_parity_case`; the others (Conv2d, pooling,
//! Flatten: not on this branch) are listed as skipped.
//!
//! Tolerance: 1e-4 relative (relative to max(|want|, 1e-2·max|want|) per tensor) for
//! every case. We compute in f32, PyTorch's reference in f64; f32 rounding
//! (~6e-8 per operation) through these small ops stays well below it.

use ferronet_core::ops::testing::run_parity_case;
use ferronet_core::ops::REGISTRY;

const TOL: f64 = 1e-4;

#[test]
fn layer_cases_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/layers.json");
    let text = std::fs::read_to_string(path).expect("layers.json is present");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let known = |op: &str| REGISTRY.iter().any(|(k, _)| *k == op);
    let (mut ran, mut skipped, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut missing: Vec<&str> = case["spec"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["op"].as_str().unwrap())
            .filter(|op| !known(op))
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            skipped.push(format!("{name} (needs {})", missing.join(", ")));
            continue;
        }
        match run_parity_case(case, TOL) {
            Ok(err) => ran.push(format!("{name}: worst relative error {err:.2e}")),
            Err(e) => failures.push(e),
        }
    }
    println!("ran {} cases:\n  {}", ran.len(), ran.join("\n  "));
    println!("skipped {} cases (ops not on this branch):\n  {}", skipped.len(), skipped.join("\n  "));
    assert!(failures.is_empty(), "{} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    assert!(ran.len() >= 20, "expected the BN, activation, softmax and Add cases to run, ran {}", ran.len());
}
