//! Parity with PyTorch for the recurrent layers: test/fixtures/parity/rnn.json (written
//! by scripts/make_rnn_fixtures.py: float64 nn.LSTM / nn.GRU, batch_first, from float32
//! inputs and parameters). Output, input gradient, every parameter gradient and, for
//! the cases with initial states (graph inputs h0, c0: "extraInputs"), dh0 / dc0.

use ferronet_core::ops::testing::run_parity_case;
use serde_json::Value;

/// Relative, with the runner's floor of 1e-2 × the tensor's largest |value|.
const REL_TOL: f64 = 1e-5;

/// Through several steps and two layers, f32 rounding alone moves gradients by more
/// than 1e-5: PyTorch's own float32 run of a case lands up to 3.5e-5 from the float64
/// reference (the fixture's "float32Error", measured as the runner measures). A case
/// allows 3× that when it exceeds REL_TOL.
fn tolerance(case: &Value) -> f64 {
    REL_TOL.max(3.0 * case["float32Error"].as_f64().unwrap_or(0.0))
}

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/rnn.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read rnn.json")).expect("parse");
    fixture["cases"].as_array().expect("cases").clone()
}

#[test]
fn recurrent_layers_match_pytorch() {
    let (mut ran, mut failures) = (Vec::new(), Vec::new());
    for case in cases().iter() {
        let name = case["name"].as_str().unwrap_or("?");
        match run_parity_case(case, tolerance(case)) {
            Ok(worst) => ran.push(format!("{name} ({worst:.1e} of {:.1e})", tolerance(case))),
            Err(e) => failures.push(e),
        }
    }
    println!("ran {} cases (worst relative error): {}", ran.len(), ran.join(", "));
    assert!(failures.is_empty(), "{} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    assert!(ran.len() >= 16, "only {} cases ran", ran.len());
}
