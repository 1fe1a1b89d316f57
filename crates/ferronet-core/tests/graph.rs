//! The graph compiler: names, shapes and fusion decided once, errors that name the
//! node, and gradients through fused and unfused paths.

use ferronet_core::ops::testing::{check_gradients, GradCheck};
use ferronet_core::{Error, Model};
use serde_json::json;

fn spec(nodes: serde_json::Value, outputs: &[&str], shape: &[usize]) -> String {
    json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "input", "shape": shape }],
        "nodes": nodes, "outputs": outputs,
    })
    .to_string()
}

fn err(text: &str) -> String {
    match Model::from_json(text, 0) {
        Ok(_) => panic!("expected an error for {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_specs_are_rejected_naming_the_node_and_field() {
    let e = err(&spec(json!([{ "name": "fc", "op": "Linear", "inputs": ["nope"], "config": { "outFeatures": 3 } }]), &["fc"], &[4]));
    assert!(e.contains("fc (Linear) reads \"nope\""), "{e}");
    let e = err(&spec(json!([{ "name": "fc", "op": "Linera", "inputs": ["input"] }]), &["fc"], &[4]));
    assert!(e.contains("unknown op \"Linera\"") && e.contains("Linear"), "{e}");
    let e = err(&spec(json!([{ "name": "fc", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3, "units": 2 } }]), &["fc"], &[4]));
    assert!(e.contains("nodes[fc].config") && e.contains("units"), "{e}");
    let e = err(&spec(json!([{ "name": "fc", "op": "Linear", "inputs": ["input"], "config": {} }]), &["fc"], &[4]));
    assert!(e.contains("outFeatures"), "{e}");
    let e = err(&spec(
        json!([
            { "name": "a", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } },
            { "name": "a", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } }
        ]),
        &["a"],
        &[4],
    ));
    assert!(e.contains("used twice"), "{e}");
    let e = err(&spec(
        json!([
            { "name": "a", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } },
            { "name": "b", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } }
        ]),
        &["a"],
        &[4],
    ));
    assert!(e.contains("b (Linear) is not used by any output"), "{e}");
    let e = err(&spec(json!([{ "name": "fc", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } }]), &["fc"], &[2, 3, 4]));
    assert!(e.contains("fc (Linear)") && e.contains("[2, 3, 4]") && e.contains("Flatten"), "{e}");
    match Model::from_json(r#"{"format":"ferronet-graph","version":2,"inputs":[],"nodes":[],"outputs":[]}"#, 0) {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "spec.version"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_relu_after_a_linear_is_fused_unless_its_output_is_shared() {
    let chain = spec(
        json!([
            { "name": "0", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 6 } },
            { "name": "1", "op": "ReLU", "inputs": ["0"] },
            { "name": "2", "op": "Linear", "inputs": ["1"], "config": { "outFeatures": 3 } }
        ]),
        &["2"],
        &[5],
    );
    let m = Model::from_json(&chain, 0).unwrap();
    assert_eq!(m.plan_summary(), ["0:Linear+ReLU", "2:Linear"]);
    // The pre-activation is also an output: the ReLU must stay a node of its own.
    let shared = spec(
        json!([
            { "name": "0", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 6 } },
            { "name": "1", "op": "ReLU", "inputs": ["0"] },
            { "name": "2", "op": "Linear", "inputs": ["1"], "config": { "outFeatures": 3 } }
        ]),
        &["2", "0"],
        &[5],
    );
    let m = Model::from_json(&shared, 0).unwrap();
    assert_eq!(m.plan_summary(), ["0:Linear", "1:ReLU", "2:Linear"]);
    // Parameter names are the node names, as nn.Sequential numbers them.
    let names: Vec<String> = m.params().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
}

#[test]
fn gradients_through_fused_unfused_and_rank_2_linear_paths() {
    let o = GradCheck::default();
    // Fused ReLU whose mask rides on the next product; a final fused ReLU as the output.
    let fused = spec(
        json!([
            { "name": "0", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 7 } },
            { "name": "1", "op": "ReLU", "inputs": ["0"] },
            { "name": "2", "op": "Linear", "inputs": ["1"], "config": { "outFeatures": 5 } },
            { "name": "3", "op": "ReLU", "inputs": ["2"] }
        ]),
        &["3"],
        &[6],
    );
    check_gradients(&fused, &o).unwrap();
    // A standalone ReLU on the input, a bias-free Linear, a Linear over [steps, features].
    let other = spec(
        json!([
            { "name": "0", "op": "ReLU", "inputs": ["input"] },
            { "name": "1", "op": "Linear", "inputs": ["0"], "config": { "outFeatures": 4, "bias": false } },
            { "name": "2", "op": "ReLU", "inputs": ["1"] },
            { "name": "3", "op": "Linear", "inputs": ["2"], "config": { "outFeatures": 2 } }
        ]),
        &["3"],
        &[3, 6],
    );
    let m = Model::from_json(&other, 0).unwrap();
    assert_eq!(m.plan_summary(), ["0:ReLU", "1:Linear", "2:ReLU", "3:Linear"]);
    assert_eq!(m.output_shape(), [3, 2]);
    check_gradients(&other, &o).unwrap();
}

#[test]
fn frozen_tensors_and_groups_select_what_an_optimizer_updates() {
    let text = json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "input", "shape": [4] }],
        "nodes": [
            { "name": "gen", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 4 }, "group": "generator" },
            { "name": "disc", "op": "Linear", "inputs": ["gen"], "config": { "outFeatures": 2 }, "group": "discriminator" }
        ],
        "outputs": ["disc"]
    })
    .to_string();
    let mut m = Model::from_json(&text, 0).unwrap();
    let mut refs = Vec::new();
    m.tensor_refs(Some("generator"), &mut refs);
    let ids: Vec<usize> = refs.iter().map(|r| r.id).collect();
    assert_eq!(ids, [0, 1]);
    m.tensor_refs(None, &mut refs);
    assert_eq!(refs.len(), 4);
    assert_eq!(m.set_frozen("disc", true), 2);
    m.tensor_refs(None, &mut refs);
    assert_eq!(refs.iter().map(|r| r.id).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn batchnorm_folds_into_the_op_before_it_at_evaluation() {
    let text = spec(
        json!([
            { "name": "0", "op": "Conv2d", "inputs": ["input"], "config": { "outChannels": 5, "kernelSize": 3, "padding": 1 } },
            { "name": "1", "op": "BatchNorm2d", "inputs": ["0"] },
            { "name": "2", "op": "ReLU", "inputs": ["1"] },
            { "name": "3", "op": "Conv2d", "inputs": ["2"], "config": { "outChannels": 4, "kernelSize": 3, "groups": 1, "bias": false } },
            { "name": "4", "op": "BatchNorm2d", "inputs": ["3"], "config": { "affine": false } },
            { "name": "5", "op": "Flatten", "inputs": ["4"] },
            { "name": "6", "op": "Linear", "inputs": ["5"], "config": { "outFeatures": 7 } },
            { "name": "7", "op": "BatchNorm1d", "inputs": ["6"] },
            { "name": "8", "op": "Linear", "inputs": ["7"], "config": { "outFeatures": 3 } }
        ]),
        &["8"],
        &[2, 6, 6],
    );
    let mut m = Model::from_json(&text, 3).unwrap();
    let plan = m.plan_summary();
    assert_eq!(plan[0], "0:Conv2d (folds 1 at eval)");
    assert_eq!(plan[3], "3:Conv2d (folds 4 at eval)");
    assert_eq!(plan[6], "6:Linear (folds 7 at eval)");
    // A few training steps move the running statistics and the affine parameters away
    // from their defaults, so the fold has something to fold.
    let rows = 16;
    let x: Vec<f32> = (0..rows * 72).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    let labels: Vec<u32> = (0..rows as u32).map(|i| i % 3).collect();
    let mut opt = ferronet_core::OptimizerConfig::Adam(ferronet_core::AdamConfig { lr: 0.05, ..Default::default() }).build().unwrap();
    for _ in 0..5 {
        m.set_mode(ferronet_core::Mode::Train);
        m.input_buffer(rows).copy_from_slice(&x);
        m.forward_backward(rows, &labels);
        m.apply_optimizer(&mut opt);
    }
    let predict = |m: &mut Model| {
        let mut out = vec![0.0; rows * 3];
        m.predict(ferronet_core::Inputs::F32(&x), &mut out).unwrap();
        out
    };
    m.set_profiling(true);
    let folded = predict(&mut m);
    // Folded, the BatchNorm nodes never run at evaluation (their forward time is 0).
    let bn_time = |m: &Model| -> Vec<f64> { m.profile().into_iter().filter(|(n, _, _)| n.contains("BatchNorm")).map(|(_, f, _)| f).collect() };
    assert_eq!(bn_time(&m), [0.0, 0.0, 0.0]);
    m.set_eval_folding(false);
    m.set_profiling(true);
    let unfolded = predict(&mut m);
    assert!(bn_time(&m).iter().all(|&t| t > 0.0));
    let max = unfolded.iter().fold(0f32, |a, &b| a.max(b.abs()));
    for (a, b) in folded.iter().zip(&unfolded) {
        assert!((a - b).abs() <= 1e-5 * max.max(1.0), "folded {a} vs unfolded {b}");
    }
    assert_ne!(folded, vec![0.0; rows * 3]);
}

/// A model larger than memory is an error naming what could not be allocated, not
/// the abort of Rust's allocator (which would end the Node process).
#[test]
fn a_model_too_large_for_memory_is_an_error_not_an_abort() {
    let huge = spec(json!([{ "name": "fc", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 100_000_000 } }]), &["fc"], &[784]);
    match Model::from_json(&huge, 0) {
        Err(Error::OutOfMemory { what, gib }) => {
            assert!(what.contains("fc.weight"), "{what}");
            assert!(gib > 290.0, "{gib}");
        }
        other => panic!("expected OutOfMemory, got {:?}", other.map(|_| ())),
    }
    // A batch whose activations cannot be allocated: the same, before any work.
    let mut m = Model::from_json(&spec(json!([{ "name": "fc", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 4 } }]), &["fc"], &[784]), 0).unwrap();
    assert!(matches!(m.reserve(1usize << 40, true), Err(Error::OutOfMemory { .. })));
    assert!(m.reserve(64, true).is_ok());
}
