//! LeNet-5 end to end against PyTorch (test/fixtures/parity/lenet.json, written by
//! scripts/make_layer_fixtures.py): logits, cross-entropy, every parameter gradient and
//! the input gradient of one batch of 4 real digits, float64 reference.

use ferronet_core::ops::testing::{rel_err, tensor};
use ferronet_core::Model;
use serde_json::Value;

#[test]
fn lenet5_logits_loss_and_every_gradient_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/lenet.json");
    let f: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut model = Model::from_json(&f["spec"].to_string(), 0).unwrap();
    // The ReLUs are folded into the convolutions' and dense layers' products.
    assert_eq!(
        model.plan_summary(),
        ["0:Conv2d+ReLU", "2:MaxPool2d", "3:Conv2d+ReLU", "5:MaxPool2d", "6:Flatten", "7:Linear+ReLU", "9:Linear+ReLU", "11:Linear"]
    );
    model.set_input_grad(true);
    for (name, t) in f["params"].as_object().unwrap() {
        model.set_param_by_name(name, &tensor(t).1).unwrap();
    }
    let (shape, x) = tensor(&f["input"]);
    let rows = shape[0];
    let labels: Vec<u32> = f["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    model.set_input(rows, &x);
    let loss = model.forward_backward(rows, &labels).loss_sum / rows as f64;
    let want = f["loss_value"].as_f64().unwrap();
    assert!((loss - want).abs() < 1e-5 * want.abs(), "loss {loss} vs {want}");
    let mut logits = vec![0.0; rows * 10];
    model.predict(ferronet_core::Inputs::F32(&x), &mut logits).unwrap();
    let e = rel_err(&logits, &tensor(&f["logits"]).1, 1e-2);
    assert!(e < 1e-5, "logits differ by {e:e}");
    let grads = model.grads();
    for (name, t) in f["paramGrads"].as_object().unwrap() {
        let got = grads.iter().find(|g| &g.name == name).unwrap();
        // 1e-4: sums over 4·28·28 positions of f32 products (the first conv's weight
        // gradient) carry ~1e-6 relative rounding; the floor is 1e-2 of the tensor's max.
        let e = rel_err(&got.data, &tensor(t).1, 1e-2);
        eprintln!("{name}: {e:.2e}");
        assert!(e < 1e-4, "gradient of {name} differs by {e:e}");
    }
    let e = rel_err(&model.input_grad_logical(rows).unwrap(), &tensor(&f["inputGrad"]).1, 1e-2);
    assert!(e < 1e-4, "input gradient differs by {e:e}");
}
