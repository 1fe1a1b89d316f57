//! Parity with PyTorch for the token layers: test/fixtures/parity/embed.json (written by
//! scripts/make_embed_fixtures.py: float64 PyTorch math from float32 inputs and
//! parameters). Embedding with repeated ids and a padding row, PositionEmbedding,
//! LayerNorm with and without affine, a tied embedding + output projection (the
//! fixture's gradient of the shared tensor is PyTorch's: the sum of both uses).

use ferronet_core::ops::testing::run_parity_case;
use serde_json::Value;

const REL_TOL: f64 = 1e-5;

#[test]
fn token_layers_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/embed.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read embed.json")).expect("parse");
    let (mut ran, mut failures) = (Vec::new(), Vec::new());
    for case in fixture["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        match run_parity_case(case, REL_TOL) {
            Ok(worst) => ran.push(format!("{name} ({worst:.1e})")),
            Err(e) => failures.push(e),
        }
    }
    println!("ran {} cases (worst relative error): {}", ran.len(), ran.join(", "));
    assert!(failures.is_empty(), "{} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(ran.len(), 8);
}
