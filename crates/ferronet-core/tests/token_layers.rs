//! The token layers together: weight tying (one tensor, two names, summed gradient,
//! one update, model files), and bad ids as typed errors from every entry point.

use ferronet_core::data::{DataView, Inputs, Labels, Targets};
use ferronet_core::io::{self, Metadata};
use ferronet_core::ops::testing::{assert_gradients, GradCheck};
use ferronet_core::{Error, FitConfig, Model, OptimizerConfig, SgdConfig, TrainControl, Trainer};
use serde_json::json;

/// wte → wpe → ln → lm_head (tied to wte) → Flatten → head: a tiny GPT-shaped model
/// with one label per sample.
fn spec(tied: bool, head_bias: bool) -> String {
    let lm = if tied { json!({ "outFeatures": 7, "bias": head_bias, "tiedTo": "wte" }) } else { json!({ "outFeatures": 7, "bias": head_bias }) };
    json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "ids", "shape": [4] }],
        "nodes": [
            { "name": "wte", "op": "Embedding", "inputs": ["ids"], "config": { "numEmbeddings": 7, "embeddingDim": 5 } },
            { "name": "wpe", "op": "PositionEmbedding", "inputs": ["wte"], "config": { "numPositions": 6 } },
            { "name": "ln", "op": "LayerNorm", "inputs": ["wpe"] },
            { "name": "lm_head", "op": "Linear", "inputs": ["ln"], "config": lm },
            { "name": "flat", "op": "Flatten", "inputs": ["lm_head"] },
            { "name": "head", "op": "Linear", "inputs": ["flat"], "config": { "outFeatures": 3 } }
        ],
        "outputs": ["head"],
    })
    .to_string()
}

#[test]
fn a_tied_weight_is_one_tensor_with_two_names_and_the_summed_gradient() {
    let mut m = Model::from_json(&spec(true, false), 1).unwrap();
    let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["wte.weight", "wpe.weight", "ln.weight", "ln.bias", "lm_head.weight", "head.weight", "head.bias"]);
    let p = m.params();
    assert_eq!(p[0].data, p[4].data);
    // Counted once: 7·5 + 6·5 + 5 + 5 + 3·28 + 3.
    assert_eq!(m.param_count(), 35 + 30 + 10 + 84 + 3);
    // The gradient of both names is the sum of the Embedding's and the Linear's parts:
    // compare with the untied model given the same values (its two gradients add up).
    let mut free = Model::from_json(&spec(false, false), 1).unwrap();
    for q in &p {
        free.set_param_by_name(&q.name, &q.data).unwrap();
    }
    let ids = [0.0, 3.0, 3.0, 6.0, 1.0, 1.0, 1.0, 2.0];
    let g: Vec<f32> = (0..6).map(|i| (i as f32 * 0.37).sin()).collect();
    for model in [&mut m, &mut free] {
        model.input_buffer(2).copy_from_slice(&ids);
        model.forward(2);
        model.output_grad_buffer(2).copy_from_slice(&g);
        model.backward(2);
    }
    let (tg, fg) = (m.grads(), free.grads());
    let want: Vec<f32> = fg[0].data.iter().zip(&fg[4].data).map(|(a, b)| a + b).collect();
    for (a, b) in tg[0].data.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert_eq!(tg[0].data, tg[4].data);
    // One SGD step moves the shared tensor once, by lr × the summed gradient.
    let mut sgd = OptimizerConfig::Sgd(SgdConfig { lr: 0.5, ..Default::default() }).build().unwrap();
    let before = m.params()[0].data.clone();
    m.apply_optimizer(&mut sgd);
    let after = m.params();
    assert_eq!(after[0].data, after[4].data);
    for ((a, b), g) in after[0].data.iter().zip(&before).zip(&tg[0].data) {
        assert!((a - (b - 0.5 * g)).abs() < 1e-6);
    }
}

#[test]
fn tied_gradients_check_against_finite_differences() {
    for bias in [false, true] {
        assert_gradients(&spec(true, bias), &GradCheck { integer_inputs: Some(7), ..Default::default() });
    }
}

#[test]
fn tying_errors_name_both_nodes() {
    let bad = |lm: serde_json::Value, first: &str| {
        json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "ids", "shape": [4] }],
            "nodes": [
                { "name": "wte", "op": first, "inputs": ["ids"], "config": if first == "Embedding" { json!({ "numEmbeddings": 7, "embeddingDim": 5 }) } else { json!(null) } },
                { "name": "lm_head", "op": "Linear", "inputs": ["wte"], "config": lm }
            ],
            "outputs": ["lm_head"],
        })
        .to_string()
    };
    let e = Model::from_json(&bad(json!({ "outFeatures": 6, "tiedTo": "wte" }), "Embedding"), 0).unwrap_err();
    assert!(matches!(e, Error::Graph { .. }));
    let t = e.to_string();
    assert!(t.contains("lm_head (Linear)") && t.contains("wte.weight [7, 5]") && t.contains("[6, 5]"), "{t}");
    let t = Model::from_json(&bad(json!({ "outFeatures": 7, "tiedTo": "nope" }), "Embedding"), 0).unwrap_err().to_string();
    assert!(t.contains("\"nope\"") && t.contains("lm_head"), "{t}");
    let t = Model::from_json(&bad(json!({ "outFeatures": 7, "tiedTo": "wte" }), "Tanh"), 0).unwrap_err().to_string();
    assert!(t.contains("not an Embedding"), "{t}");
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ferronet-token-layers-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tied_weights_survive_a_model_file_and_unequal_copies_are_refused() {
    let m = Model::from_json(&spec(true, true), 3).unwrap();
    let path = dir().join("tied.safetensors");
    io::save_model(&m, &path, &Metadata::new()).unwrap();
    let (loaded, _) = io::load_model(&path).unwrap();
    assert_eq!(loaded.params(), m.params());
    assert_eq!(loaded.param_count(), m.param_count());
    // A file whose two names disagree: written from an untied model with other values.
    let mut other = Model::from_json(&spec(false, true), 3).unwrap();
    for p in m.params() {
        other.set_param_by_name(&p.name, &p.data).unwrap();
    }
    let mut w = other.params()[4].data.clone();
    w[0] += 1.0;
    other.set_param_by_name("lm_head.weight", &w).unwrap();
    let bad = dir().join("tied-unequal.safetensors");
    io::save_model(&other, &bad, &Metadata::new()).unwrap();
    let mut fresh = Model::from_json(&spec(true, true), 0).unwrap();
    let e = io::load_weights(&mut fresh, &bad, io::LoadOptions { strict: true }).unwrap_err();
    let t = e.to_string();
    assert!(matches!(e, Error::ModelFile { .. }) && t.contains("`lm_head.weight`") && t.contains("`wte.weight`"), "{t}");
}

fn assert_bad_id(e: Error, sample: usize, position: usize, value: &str) {
    let t = e.to_string();
    match e {
        Error::InvalidInput { node, sample: s, position: p, .. } => {
            assert_eq!((node.as_str(), s, p), ("wte", sample, position), "{t}");
            assert!(t.contains(value), "{t}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn bad_ids_are_typed_errors_from_every_entry_point() {
    let mut m = Model::from_json(&spec(true, false), 1).unwrap();
    let mut trainer = Trainer::new(&OptimizerConfig::Sgd(SgdConfig::default()), 1).unwrap();
    let mut ids: Vec<f32> = (0..40).map(|i| (i % 7) as f32).collect();
    let labels: Vec<u32> = (0..10).map(|i| i % 3).collect();
    ids[4 * 6 + 2] = 7.0; // sample 6, position 2: one past the table
    let before = m.params();
    assert_bad_id(trainer.train_batch(&mut m, &ids, Targets::Classes(Labels::U32(&labels))).unwrap_err(), 6, 2, "7");
    assert_eq!(m.params(), before, "nothing trained");
    let mut out = vec![0.0; 30];
    assert_bad_id(m.predict(Inputs::F32(&ids), &mut out).unwrap_err(), 6, 2, "7");
    ids[4 * 6 + 2] = 2.5;
    let data = DataView::with_targets(Inputs::F32(&ids), Targets::Classes(Labels::U32(&labels)), 4).unwrap();
    let config = FitConfig { batch_size: 4, shuffle: false, progress_every: 0 };
    let e = trainer.fit_epoch(&mut m, &data, &config, &mut |_| {}, &TrainControl::new()).unwrap_err();
    assert_bad_id(e, 6, 2, "2.5");
    let e = ferronet_core::train::evaluate(&mut m, &data, 4, &Default::default(), &TrainControl::new()).unwrap_err();
    assert_bad_id(e, 6, 2, "2.5");
    ids[4 * 6 + 2] = -1.0;
    assert_bad_id(m.predict(Inputs::F32(&ids), &mut out).unwrap_err(), 6, 2, "-1");
    ids[4 * 6 + 2] = f32::NAN;
    assert_bad_id(m.predict(Inputs::F32(&ids), &mut out).unwrap_err(), 6, 2, "NaN");
    ids[4 * 6 + 2] = 6.0;
    m.predict(Inputs::F32(&ids), &mut out).unwrap();
}

#[test]
fn a_tied_model_resumes_from_a_checkpoint_bit_for_bit() {
    use ferronet_core::AdamConfig;
    let ids: Vec<f32> = (0..32).map(|i| ((i * 5) % 7) as f32).collect();
    let labels: Vec<u32> = (0..8).map(|i| i % 3).collect();
    let adam = OptimizerConfig::Adam(AdamConfig { lr: 0.01, ..Default::default() });
    let mut m = Model::from_json(&spec(true, false), 4).unwrap();
    let mut trainer = Trainer::new(&adam, 2).unwrap();
    for _ in 0..3 {
        trainer.train_batch(&mut m, &ids, Targets::Classes(Labels::U32(&labels))).unwrap();
    }
    let path = dir().join("tied.ckpt.safetensors");
    io::save_checkpoint(&m, &trainer, &path, &Metadata::new()).unwrap();
    // The optimizer keeps state for the shared tensor once, under its owner's name.
    assert!(trainer.export_state().optimizer.slots.iter().all(|(id, _, _)| m.store().tensors()[*id].tied.is_none()));
    let ck = io::load_checkpoint(&path).unwrap();
    let (mut m2, mut t2) = (ck.model, Trainer::new(&adam, 2).unwrap());
    t2.restore_state(ck.state).unwrap();
    let a = trainer.train_batch(&mut m, &ids, Targets::Classes(Labels::U32(&labels))).unwrap();
    let b = t2.train_batch(&mut m2, &ids, Targets::Classes(Labels::U32(&labels))).unwrap();
    assert_eq!(a, b);
    assert_eq!(m.params(), m2.params());
}
