//! `Model::explain`: the input's gradient (saliency) against finite differences, and a
//! node's output gradient against the chain rule, in eval mode with BatchNorm and ReLU.

use ferronet_core::data::Inputs;
use ferronet_core::Model;
use serde_json::json;

fn spec() -> String {
    json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "input", "shape": [2, 6, 6] }],
        "nodes": [
            { "name": "conv", "op": "Conv2d", "inputs": ["input"], "config": { "outChannels": 3, "kernelSize": 3, "padding": 1 } },
            { "name": "bn", "op": "BatchNorm2d", "inputs": ["conv"] },
            { "name": "act", "op": "ReLU", "inputs": ["bn"] },
            { "name": "pool", "op": "AvgPool2d", "inputs": ["act"], "config": { "kernelSize": 2 } },
            { "name": "flat", "op": "Flatten", "inputs": ["pool"] },
            { "name": "fc", "op": "Linear", "inputs": ["flat"], "config": { "outFeatures": 4 } }
        ],
        "outputs": ["fc"],
    })
    .to_string()
}

fn model() -> Model {
    let mut m = Model::from_json(&spec(), 2).unwrap();
    // Non-trivial running statistics, so eval-mode BatchNorm is not the identity.
    m.set_param_by_name("bn.running_mean", &[0.1, -0.2, 0.05]).unwrap();
    m.set_param_by_name("bn.running_var", &[0.5, 1.5, 0.8]).unwrap();
    m.set_param_by_name("bn.weight", &[1.2, 0.7, -0.9]).unwrap();
    m
}

fn inputs(rows: usize) -> Vec<f32> {
    (0..rows * 72).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect()
}

#[test]
fn the_input_gradient_matches_finite_differences_and_the_net_is_unchanged() {
    let rows = 2;
    let x = inputs(rows);
    let g: Vec<f32> = (0..rows * 4).map(|i| [1.0, -0.5, 0.25, 2.0][i % 4]).collect();
    let mut fused = model();
    let before = fused.params();
    let mut m = Model::from_spec_unfused(fused.spec().clone(), 2).unwrap();
    m.assign_from(&fused).unwrap();
    let e = m.explain(rows, &x, &g, None).unwrap();
    let loss = |m: &mut Model, x: &[f32]| -> f64 {
        let mut out = vec![0.0; rows * 4];
        m.predict(Inputs::F32(x), &mut out).unwrap();
        out.iter().zip(&g).map(|(&o, &w)| o as f64 * w as f64).sum()
    };
    let mut checked = 0;
    for i in (0..x.len()).step_by(5) {
        let h = 1e-2f32;
        let (mut a, mut b) = (x.clone(), x.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (loss(&mut fused, &a) - loss(&mut fused, &b)) / (2.0 * h as f64);
        let got = e.input_grad[i] as f64;
        // ReLU kinks within ±h make a central difference meaningless there: skip them.
        if (fd - got).abs() > 1e-3 * (1.0 + fd.abs()) {
            let (mut c, mut d) = (x.clone(), x.clone());
            c[i] += h / 4.0;
            d[i] -= h / 4.0;
            let fd2 = (loss(&mut fused, &c) - loss(&mut fused, &d)) / (h as f64 / 2.0);
            assert!((fd2 - got).abs() < 1e-3 * (1.0 + fd2.abs()) || (fd2 - fd).abs() > 1e-3, "input {i}: explain {got}, finite difference {fd}");
            continue;
        }
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
    // The outputs are the eval-mode outputs of the fused net.
    let mut out = vec![0.0; rows * 4];
    fused.predict(Inputs::F32(&x), &mut out).unwrap();
    for (a, b) in out.iter().zip(&e.outputs) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert_eq!(before, fused.params());
}

#[test]
fn a_node_gradient_is_the_chain_rule_through_the_layers_after_it() {
    let rows = 3;
    let x = inputs(rows);
    let g: Vec<f32> = (0..rows * 4).map(|i| (i as f32 * 0.37).sin()).collect();
    let fused = model();
    let mut m = Model::from_spec_unfused(fused.spec().clone(), 2).unwrap();
    m.assign_from(&fused).unwrap();
    // ∂L/∂flat = g · W for the last Linear (W [4, 27]).
    let e = m.explain(rows, &x, &g, Some("flat")).unwrap();
    let (shape, act, grad) = e.node.unwrap();
    assert_eq!(shape, vec![27]);
    let w = fused.params().into_iter().find(|p| p.name == "fc.weight").unwrap().data;
    for r in 0..rows {
        for j in 0..27 {
            let want: f32 = (0..4).map(|o| g[r * 4 + o] * w[o * 27 + j]).sum();
            assert!((grad[r * 27 + j] - want).abs() < 1e-5, "row {r} unit {j}: {} vs {want}", grad[r * 27 + j]);
        }
        // The activation is the pooled ReLU output: never negative.
        assert!(act[r * 27..(r + 1) * 27].iter().all(|&a| a >= 0.0));
    }
    // A ReLU's node exists in the unfused copy; in NCHW order, [3, 6, 6].
    let e = m.explain(rows, &x, &g, Some("act")).unwrap();
    let (shape, act, grad) = e.node.unwrap();
    assert_eq!(shape, vec![3, 6, 6]);
    // Where the ReLU output is 0, its gradient still flows from the pool (¼ per cell).
    assert!(act.iter().any(|&a| a == 0.0) && grad.iter().all(|v| v.is_finite()));
    let err = m.explain(rows, &x, &g, Some("nope")).unwrap_err().to_string();
    assert!(err.contains("\"nope\" is not a node") && err.contains("conv"), "{err}");
    assert!(m.explain(rows, &x[1..], &g, None).is_err());
}
