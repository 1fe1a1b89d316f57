//! Parity with PyTorch, layer by layer: test/fixtures/parity/layers.json (written by
//! scripts/make_layer_fixtures.py: float64 PyTorch math from float32 inputs and
//! parameters). Every case runs through `ops::testing::run_parity_case` (output, input
//! gradient, parameter gradients and buffers after); a case using an op the registry
//! does not know fails.

use ferronet_core::ops::testing::run_parity_case;
use ferronet_core::ops::REGISTRY;
use serde_json::Value;

/// Relative, with the runner's floor of 1e-2 × the tensor's largest |value| for
/// elements that are near zero.
const REL_TOL: f64 = 1e-4;

#[test]
fn layers_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/layers.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read layers.json")).expect("parse");
    let known = |op: &str| REGISTRY.iter().any(|(k, _)| *k == op);
    let (mut ran, mut skipped, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for case in fixture["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let ops: Vec<&str> = case["spec"]["nodes"].as_array().unwrap().iter().map(|n| n["op"].as_str().unwrap()).collect();
        let missing: Vec<&str> = ops.iter().copied().filter(|op| !known(op)).collect();
        if !missing.is_empty() {
            skipped.push(format!("{name} (needs {})", missing.join(", ")));
            failures.push(format!("{name}: unknown ops {}", missing.join(", ")));
            continue;
        }
        match run_parity_case(case, REL_TOL) {
            Ok(worst) => ran.push(format!("{name} ({worst:.1e})")),
            Err(e) => failures.push(e),
        }
    }
    println!("ran {} cases (worst relative error): {}", ran.len(), ran.join(", "));
    println!("skipped {} cases: {}", skipped.len(), skipped.join(", "));
    assert!(failures.is_empty(), "{} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    assert!(ran.len() >= 40, "only {} cases ran", ran.len());
}
