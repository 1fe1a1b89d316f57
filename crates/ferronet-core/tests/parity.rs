//! Parity with PyTorch: fixtures written by `scripts/make_fixtures.py` (float64
//! PyTorch math from float32 weights and inputs). ferronet, in f32, must match the
//! loss, logits, every gradient and the weights after 3 steps of each optimizer
//! to 1e-5 relative.

use ferronet_core::model::{LayerSpec, Model};
use ferronet_core::{AdamConfig, OptimizerConfig, SgdConfig, Trainer};
use serde_json::Value;

const REL_TOL: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test/fixtures/parity/mlp.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture"))
        .expect("parse fixture")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// |a - b| <= 1e-5 · max(|b|, floor): relative, with a floor for values that are
/// zero in exact arithmetic (f32 rounding leaves ~1e-9 there).
fn assert_rel(what: &str, got: &[f32], want: &[f32], floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= REL_TOL * (w as f64).abs().max(floor),
            "{what}[{i}]: ferronet {g} vs PyTorch {w} (err {err:e})"
        );
    }
}

fn model_from(f: &Value) -> Model {
    let specs: Vec<LayerSpec> = f["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| match l["type"].as_str().unwrap() {
            "dense" => LayerSpec::Dense {
                units: l["units"].as_u64().unwrap() as usize,
            },
            "relu" => LayerSpec::Relu,
            t => panic!("unknown layer {t}"),
        })
        .collect();
    let mut model =
        Model::sequential(f["input_dim"].as_u64().unwrap() as usize, &specs, 0).unwrap();
    for (i, p) in f["params"].as_array().unwrap().iter().enumerate() {
        model.set_param(i, &floats(&p["data"])).unwrap();
    }
    model
}

fn batch(f: &Value) -> (Vec<f32>, Vec<u32>) {
    let x = floats(&f["x"]);
    let y = f["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    (x, y)
}

#[test]
fn forward_loss_and_gradients_match_pytorch() {
    let f = fixture();
    let mut model = model_from(&f);
    let (x, y) = batch(&f);
    let mut logits = vec![0.0; y.len() * model.output_dim()];
    model
        .predict(ferronet_core::Inputs::F32(&x), &mut logits)
        .unwrap();
    assert_rel("logits", &logits, &floats(&f["logits"]), 1e-3);

    model
        .input_buffer(y.len())
        .copy_from_slice(&x);
    let loss = model.forward_backward(y.len(), &y).loss_sum / y.len() as f64;
    let want = f["loss"].as_f64().unwrap();
    assert!(
        (loss - want).abs() <= REL_TOL * want.abs(),
        "loss {loss} vs {want}"
    );

    for (i, (g, p)) in model
        .grads()
        .iter()
        .map(|g| &g.data)
        .zip(f["grads"].as_array().unwrap())
        .enumerate()
    {
        let want = floats(&p["data"]);
        // Gradient entries that are exactly 0 (dead ReLUs) or tiny get a floor of 1e-2 of the tensor's largest entry.
        let scale = want.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
        assert_rel(&format!("grad {i} ({})", p["name"]), g, &want, 1e-2 * scale);
    }
}

fn optimizer_config(o: &Value) -> OptimizerConfig {
    let num = |k: &str| o[k].as_f64().unwrap() as f32;
    match o["type"].as_str().unwrap() {
        "adam" => OptimizerConfig::Adam(AdamConfig {
            lr: num("lr"),
            beta1: o["betas"][0].as_f64().unwrap() as f32,
            beta2: o["betas"][1].as_f64().unwrap() as f32,
            eps: num("eps"),
            weight_decay: num("weight_decay"),
        }),
        "sgd" => OptimizerConfig::Sgd(SgdConfig {
            lr: num("lr"),
            momentum: num("momentum"),
            dampening: num("dampening"),
            weight_decay: num("weight_decay"),
            nesterov: o["nesterov"].as_bool().unwrap(),
        }),
        t => panic!("unknown optimizer {t}"),
    }
}

#[test]
fn three_optimizer_steps_match_pytorch() {
    let f = fixture();
    let (x, y) = batch(&f);
    let runs = f["optimizers"].as_array().unwrap();
    assert!(
        runs.len() >= 4,
        "fixture should cover Adam and SGD variants"
    );
    for run in runs {
        let name = format!("{} {}", run["type"], run);
        let name = &name[..name.len().min(160)];
        let mut model = model_from(&f);
        let mut trainer = Trainer::new(&optimizer_config(run), 0).unwrap();
        let steps = run["steps"].as_u64().unwrap() as usize;
        let losses = floats(&run["losses"]);
        for (step, want) in losses.iter().enumerate().take(steps) {
            let loss = trainer.train_batch(&mut model, &x, ferronet_core::Targets::Classes(ferronet_core::Labels::U32(&y))).unwrap();
            assert!(
                (loss - *want as f64).abs() <= REL_TOL * (*want as f64).abs(),
                "{name}: loss before step {} {loss} vs {want}",
                step + 1
            );
        }
        for (i, (p, want)) in model
            .params()
            .iter()
            .zip(run["params_after"].as_array().unwrap())
            .enumerate()
        {
            let want = floats(&want["data"]);
            let scale = want.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
            assert_rel(
                &format!("{name}: param {i} after {steps} steps"),
                &p.data,
                &want,
                1e-2 * scale,
            );
        }
    }
}
