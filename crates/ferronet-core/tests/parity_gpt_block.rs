//! One GPT block end to end against PyTorch (test/fixtures/parity/gpt_block.json, by
//! scripts/make_gpt_block_fixture.py): LayerNorm → causal MultiHeadAttention →
//! residual Add → LayerNorm → Linear → GELU → Linear → residual Add; output, input
//! gradient and every parameter gradient at 1e-5 relative.

use ferronet_core::ops::testing::run_parity_case;
use serde_json::Value;

#[test]
fn a_gpt_block_matches_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/gpt_block.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read gpt_block.json")).expect("parse");
    for case in fixture["cases"].as_array().expect("cases") {
        let worst = run_parity_case(case, 1e-5).unwrap_or_else(|e| panic!("{e}"));
        println!("{}: worst relative error {worst:.2e}", case["name"]);
    }
}
