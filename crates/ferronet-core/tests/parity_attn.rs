//! Parity of MultiHeadAttention with PyTorch's nn.MultiheadAttention (self-attention,
//! with and without the causal mask and the biases): test/fixtures/parity/attn.json,
//! written by scripts/make_attn_fixtures.py. Output, input gradient and every
//! parameter gradient, through `ops::testing::run_parity_case`.

use ferronet_core::ops::testing::run_parity_case;
use serde_json::Value;

/// Relative, with the runner's floor of 1e-2 × the tensor's largest |value| ...
const REL_TOL: f64 = 1e-5;
/// ... or twice PyTorch's own float32 error on the case (its "float32Deviation",
/// up to 1.2e-5 here): f32 rounding of these products is itself about 1e-5.
const F32_FACTOR: f64 = 2.0;

#[test]
fn attention_matches_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/attn.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read attn.json")).expect("parse");
    let (mut ran, mut failures) = (Vec::new(), Vec::new());
    for case in fixture["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let tol = REL_TOL.max(F32_FACTOR * case["float32Deviation"].as_f64().expect("float32Deviation"));
        match run_parity_case(case, tol) {
            Ok(worst) => ran.push(format!("{name} ({worst:.1e})")),
            Err(e) => failures.push(e),
        }
    }
    println!("ran {} cases (worst relative error): {}", ran.len(), ran.join(", "));
    assert!(failures.is_empty(), "{} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    assert!(ran.len() >= 6, "only {} cases ran", ran.len());
}
