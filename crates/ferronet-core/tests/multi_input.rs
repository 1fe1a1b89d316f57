//! Graphs with several inputs (an RNN's initial state, two modalities), and class
//! labels per position for sequence models ([T, classes] outputs, as PyTorch's
//! `cross_entropy(logits.view(-1, V), targets.view(-1))`).

use ferronet_core::data::{DataView, Inputs, Labels, Targets};
use ferronet_core::graph::Model;
use ferronet_core::ops::testing::{assert_gradients, GradCheck};
use ferronet_core::optim::{AdamConfig, OptimizerConfig};
use ferronet_core::train::Trainer;

fn two_input_spec() -> String {
    serde_json::json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "x", "shape": [5] }, { "name": "y", "shape": [3] }],
        "nodes": [
            { "name": "a", "op": "Linear", "inputs": ["x"], "config": { "outFeatures": 4 } },
            { "name": "b", "op": "Linear", "inputs": ["y"], "config": { "outFeatures": 4 } },
            { "name": "s", "op": "Add", "inputs": ["a", "b"] },
            { "name": "t", "op": "Tanh", "inputs": ["s"] }
        ],
        "outputs": ["t"]
    })
    .to_string()
}

#[test]
fn every_input_is_fed_and_gets_its_gradient() {
    let spec = two_input_spec();
    assert_gradients(&spec, &GradCheck::default());
    let mut m = Model::from_json(&spec, 3).unwrap();
    assert_eq!(m.num_inputs(), 2);
    assert_eq!((m.input_index("y"), m.input_dim_at(1), m.input_shape_at(1)), (Some(1), 3, &[3usize][..]));
    // The second input changes the output: it is read, not ignored.
    let x = vec![0.5f32; 2 * 5];
    m.set_input(2, &x);
    m.set_input_at(1, 2, &[0.0; 6]);
    let a = m.forward(2).to_vec();
    m.set_input_at(1, 2, &[1.0; 6]);
    let b = m.forward(2).to_vec();
    assert!(a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-4));
}

#[test]
fn one_array_entry_points_refuse_a_multi_input_net_by_name() {
    let mut m = Model::from_json(&two_input_spec(), 3).unwrap();
    let mut out = vec![0.0; 4];
    let e = m.predict(Inputs::F32(&[0.0; 5]), &mut out).unwrap_err().to_string();
    assert!(e.contains("2 (x, y)") && e.contains("step API"), "{e}");
    let mut t = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 1).unwrap();
    let e = t.train_batch(&mut m, &[0.0; 5], Targets::Classes(Labels::U32(&[1]))).unwrap_err().to_string();
    assert!(e.contains("2 (x, y)"), "{e}");
}

/// [T=6, F=4] → Linear → [6, 5] logits, one label per position.
fn sequence_model() -> Model {
    let spec = serde_json::json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "x", "shape": [6, 4] }],
        "nodes": [{ "name": "head", "op": "Linear", "inputs": ["x"], "config": { "outFeatures": 5 } }],
        "outputs": ["head"]
    });
    Model::from_json(&spec.to_string(), 7).unwrap()
}

#[test]
fn per_position_labels_train_with_the_mean_over_positions() {
    let mut m = sequence_model();
    let rows = 3;
    let x: Vec<f32> = (0..rows * 24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
    let labels: Vec<u32> = (0..rows * 6).map(|i| (i * 3 % 5) as u32).collect();
    // The expected loss: mean over all 18 positions of −log softmax(logits)[label].
    m.set_input(rows, &x);
    let logits = m.forward(rows).to_vec();
    let mut want = 0.0f64;
    for (p, &l) in labels.iter().enumerate() {
        let z = &logits[p * 5..p * 5 + 5];
        let max = z.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
        want += lse - z[l as usize] as f64;
    }
    want /= labels.len() as f64;
    let mut t = Trainer::new(&OptimizerConfig::Adam(AdamConfig { lr: 0.05, ..AdamConfig::default() }), 1).unwrap();
    let got = t.train_batch(&mut m, &x, Targets::Classes(Labels::U32(&labels))).unwrap();
    assert!((got - want).abs() < 1e-5 * want.abs(), "loss {got} vs {want}");
    // The same through a DataView: 3 samples with 6 labels each.
    let view = DataView::with_targets(Inputs::F32(&x), Targets::Classes(Labels::U32(&labels)), 24).unwrap();
    assert_eq!((view.len(), view.labels_per_sample), (3, 6));
    // Training on it lowers the loss.
    let mut last = got;
    for _ in 0..50 {
        last = t.train_batch(&mut m, &x, Targets::Classes(Labels::U32(&labels))).unwrap();
    }
    assert!(last < 0.8 * got, "{got} → {last}");
}

#[test]
fn per_position_labels_are_checked_against_the_output_shape_and_class_count() {
    let mut m = sequence_model();
    let mut t = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 1).unwrap();
    let x = vec![0.1f32; 2 * 24];
    // 3 labels per sample, but the output has 6 positions.
    let e = t.train_batch(&mut m, &x, Targets::Classes(Labels::U32(&[0; 6]))).unwrap_err().to_string();
    assert!(e.contains("3 labels per sample") && e.contains("[6, 5]"), "{e}");
    // A label ≥ 5 names its flat index (sample 1, position 2 → 8).
    let mut labels = vec![0u32; 12];
    labels[8] = 5;
    let e = t.train_batch(&mut m, &x, Targets::Classes(Labels::U32(&labels))).unwrap_err().to_string();
    assert!(e.contains('8') && e.contains('5'), "{e}");
}
