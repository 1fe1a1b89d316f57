//! The per-batch step API: gradient accumulation, equality with `train_batch`,
//! group-restricted steps, the input's gradient, errors.

use ferronet_core::data::Targets;
use ferronet_core::graph::spec::GraphSpec;
use ferronet_core::loss::BatchTargets;
use ferronet_core::{AdamConfig, LossConfig, Mode, Model, OptimizerConfig, Trainer};
use serde_json::json;

fn mlp(seed: u64) -> Model {
    let spec = GraphSpec::sequential(
        &[5],
        &[("Linear", json!({ "outFeatures": 7 })), ("ReLU", serde_json::Value::Null), ("Linear", json!({ "outFeatures": 3 }))],
    );
    Model::from_spec(spec, seed).unwrap()
}

fn batch(rows: usize, salt: usize) -> (Vec<f32>, Vec<u32>) {
    let x = (0..rows * 5).map(|i| (((i + salt) * 2654435761) % 1000) as f32 / 500.0 - 1.0).collect();
    let y = (0..rows).map(|i| ((i + salt) % 3) as u32).collect();
    (x, y)
}

fn grads(m: &Model) -> Vec<Vec<f32>> {
    m.grads().into_iter().map(|p| p.data).collect()
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let ce = LossConfig::default();
    let mut m = mlp(1);
    let mut out = vec![0.0; 4 * 3];
    let (xa, ya) = batch(4, 0);
    let (xb, yb) = batch(4, 11);
    let mut one = |m: &mut Model, x: &[f32], y: &[u32]| {
        m.step_forward(Mode::Train, &[x], &mut out).unwrap();
        m.step_backward_loss(&ce, BatchTargets::Classes(y), false).unwrap();
    };
    m.zero_grad();
    one(&mut m, &xa, &ya);
    let ga = grads(&m);
    m.zero_grad();
    assert!(grads(&m).iter().flatten().all(|&g| g == 0.0));
    one(&mut m, &xb, &yb);
    let gb = grads(&m);
    m.zero_grad();
    one(&mut m, &xa, &ya);
    one(&mut m, &xb, &yb);
    let sum: Vec<Vec<f32>> = ga.iter().zip(&gb).map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + y).collect()).collect();
    assert_eq!(grads(&m), sum);
}

#[test]
fn one_step_equals_train_batch() {
    let adam = OptimizerConfig::Adam(AdamConfig { lr: 1e-2, ..Default::default() });
    let (x, y) = batch(6, 3);
    let mut a = mlp(2);
    let mut b = a.clone();
    let mut trainer = Trainer::new(&adam, 0).unwrap();
    for _ in 0..3 {
        trainer.train_batch(&mut a, &x, Targets::Classes(ferronet_core::Labels::U32(&y))).unwrap();
    }
    let mut opt = adam.build().unwrap();
    let mut out = vec![0.0; 6 * 3];
    for _ in 0..3 {
        b.zero_grad();
        b.step_forward(Mode::Train, &[&x], &mut out).unwrap();
        b.step_backward_loss(&LossConfig::default(), BatchTargets::Classes(&y), false).unwrap();
        b.apply_optimizer_group(&mut opt, None);
    }
    assert_eq!(a.params(), b.params());
}

#[test]
fn input_gradient_matches_finite_differences() {
    let mut m = mlp(3);
    let mse = LossConfig::Mse;
    let (x, _) = batch(2, 5);
    let t: Vec<f32> = (0..6).map(|i| i as f32 * 0.1).collect();
    let mut out = vec![0.0; 6];
    let mut loss = |m: &mut Model, x: &[f32]| -> f64 {
        m.step_forward(Mode::Eval, &[x], &mut out).unwrap();
        m.zero_grad();
        m.step_backward_loss(&mse, BatchTargets::Values(&t), true).unwrap().loss_sum / 2.0
    };
    loss(&mut m, &x);
    let mut g = vec![0.0; 10];
    m.step_input_grad(0, &mut g).unwrap();
    for i in 0..10 {
        let (mut p, mut q) = (x.clone(), x.clone());
        p[i] += 1e-2;
        q[i] -= 1e-2;
        let fd = (loss(&mut m, &p) - loss(&mut m, &q)) / 2e-2;
        assert!((fd - g[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "x[{i}]: finite difference {fd} vs {}", g[i]);
    }
}

#[test]
fn errors_name_the_argument_and_the_shapes() {
    let mut m = mlp(1);
    let ce = LossConfig::default();
    let e = m.step_backward_loss(&ce, BatchTargets::Classes(&[0]), false).unwrap_err();
    assert!(e.to_string().contains("step forward first"), "{e}");
    let e = m.step_forward(Mode::Train, &[&[0.0; 7]], &mut [0.0; 3]).unwrap_err();
    assert!(e.to_string().contains("multiple of 5") && e.to_string().contains("7 values"), "{e}");
    let e = m.step_forward(Mode::Train, &[&[0.0; 10]], &mut [0.0; 3]).unwrap_err();
    assert!(e.to_string().contains("output buffer") && e.to_string().contains("= 6"), "{e}");
    m.step_forward(Mode::Train, &[&[0.0; 10]], &mut [0.0; 6]).unwrap();
    let e = m.step_backward_loss(&ce, BatchTargets::Classes(&[0, 1, 2]), false).unwrap_err();
    assert!(e.to_string().contains("2 class ids"), "{e}");
    let e = m.step_backward_grad(&[0.0; 5], false).unwrap_err();
    assert!(e.to_string().contains("outputGrad") && e.to_string().contains("= 6"), "{e}");
    m.step_backward_grad(&[0.0; 6], false).unwrap();
    let e = m.step_input_grad(0, &mut [0.0; 10]).unwrap_err();
    assert!(e.to_string().contains("inputGrad: true"), "{e}");
}
