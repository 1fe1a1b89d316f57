//! The GAN loop against the same phases written out with the step API.

use super::*;
use crate::graph::spec::GraphSpec;
use crate::{AdamConfig, OptimizerConfig};
use serde_json::json;

fn mlp(input: usize, hidden: usize, out: usize, tanh: bool, seed: u64) -> Model {
    let mut layers = vec![
        ("Linear", json!({ "outFeatures": hidden })),
        ("LeakyReLU", json!({ "negativeSlope": 0.2 })),
        ("Linear", json!({ "outFeatures": out })),
    ];
    if tanh {
        layers.push(("Tanh", serde_json::Value::Null));
    }
    Model::from_spec(GraphSpec::sequential(&[input], &layers), seed).unwrap()
}

fn adam() -> Optimizer {
    OptimizerConfig::Adam(AdamConfig { lr: 2e-3, beta1: 0.5, beta2: 0.999, ..Default::default() }).build().unwrap()
}

fn real(n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|i| ((i * 7919 % 97) as f32 / 48.5 - 1.0) * 0.9).collect()
}

const CONFIG: GanFitConfig = GanFitConfig { batch_size: 8, shuffle: false, progress_every: 1 };

#[test]
fn one_batch_is_the_discriminator_step_then_the_generator_step() {
    let (nd, dim) = (4, 6);
    let (mut g, mut d) = (mlp(nd, 10, dim, true, 1), mlp(dim, 10, 1, false, 2));
    let (g0, d0) = (g.clone(), d.clone());
    let x = real(8, dim);
    let (mut og, mut od) = (adam(), adam());
    let mut gan = GanTrainer::new(nd, 5).unwrap();
    let mut reports = Vec::new();
    let p = gan
        .fit_epoch(&mut g, &mut d, &mut og, &mut od, &x, &CONFIG, &mut |p| reports.push(*p), &TrainControl::new())
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert!(p.d_loss.is_finite() && p.g_loss.is_finite());

    // The same batch by hand.
    let (mut g2, mut d2) = (g0.clone(), d0.clone());
    let (mut og2, mut od2) = (adam(), adam());
    let mut z = vec![0.0; 8 * nd];
    noise(5, 1, 1, &mut z);
    let mut fake = vec![0.0; 8 * dim];
    let mut out = vec![0.0; 8];
    let bce = LossConfig::BceWithLogits { pos_weight: None };
    g2.step_forward(Mode::Train, &[&z], &mut fake).unwrap();
    d2.zero_grad();
    d2.step_forward(Mode::Train, &[&x], &mut out).unwrap();
    let lr = d2.step_backward_loss(&bce, BatchTargets::Values(&[1.0; 8]), false).unwrap().loss_sum / 8.0;
    d2.step_forward(Mode::Train, &[&fake], &mut out).unwrap();
    let lf = d2.step_backward_loss(&bce, BatchTargets::Values(&[0.0; 8]), false).unwrap().loss_sum / 8.0;
    d2.apply_optimizer_group(&mut od2, None);
    let d_after_d_step = d2.params();
    d2.zero_grad();
    d2.step_forward(Mode::Train, &[&fake], &mut out).unwrap();
    let lg = d2.step_backward_loss(&bce, BatchTargets::Values(&[1.0; 8]), true).unwrap().loss_sum / 8.0;
    let mut dfake = vec![0.0; 8 * dim];
    d2.step_input_grad(0, &mut dfake).unwrap();
    g2.zero_grad();
    g2.step_backward_grad(&dfake, false).unwrap();
    g2.apply_optimizer_group(&mut og2, None);

    assert_eq!(p.d_loss, lr + lf);
    assert_eq!(p.g_loss, lg);
    // D is left as its own step made it: the generator phase did not update it.
    assert_eq!(d.params(), d_after_d_step);
    assert_ne!(d.params(), d0.params());
    assert_eq!(g.params(), g2.params());
    assert_ne!(g.params(), g0.params());
}

#[test]
fn epochs_report_finite_losses_and_stop_on_request() {
    let (nd, dim) = (3, 5);
    let (mut g, mut d) = (mlp(nd, 8, dim, true, 3), mlp(dim, 8, 1, false, 4));
    let x = real(40, dim);
    let (mut og, mut od) = (adam(), adam());
    let mut gan = GanTrainer::new(nd, 1).unwrap();
    let control = TrainControl::new();
    let config = GanFitConfig { shuffle: true, progress_every: 0, ..CONFIG };
    for e in 1..=2 {
        let p = gan.fit_epoch(&mut g, &mut d, &mut og, &mut od, &x, &config, &mut |_| {}, &control).unwrap();
        assert_eq!((p.epoch, p.batches, p.samples), (e, 5, 40));
        assert!(p.d_loss.is_finite() && p.g_loss.is_finite() && (0.0..=1.0).contains(&p.d_real) && (0.0..=1.0).contains(&p.d_fake));
    }
    assert_eq!(control.steps(), 10);
    control.request_stop();
    let before = (g.params(), d.params());
    let e = gan.fit_epoch(&mut g, &mut d, &mut og, &mut od, &x, &config, &mut |_| {}, &control).unwrap_err();
    assert!(matches!(e, Error::Aborted { .. }), "{e:?}");
    assert_eq!((g.params(), d.params()), before);
}

#[test]
fn mismatched_nets_are_shape_errors() {
    let (mut g, mut d) = (mlp(4, 8, 6, true, 1), mlp(7, 8, 1, false, 2));
    let (mut og, mut od) = (adam(), adam());
    let mut gan = GanTrainer::new(4, 1).unwrap();
    let e = gan.fit_epoch(&mut g, &mut d, &mut og, &mut od, &real(8, 7), &CONFIG, &mut |_| {}, &TrainControl::new()).unwrap_err();
    assert!(e.to_string().contains("generator output"), "{e}");
    let mut gan = GanTrainer::new(3, 1).unwrap();
    let e = gan.fit_epoch(&mut g, &mut d, &mut og, &mut od, &real(8, 7), &CONFIG, &mut |_| {}, &TrainControl::new()).unwrap_err();
    assert!(e.to_string().contains("noiseDim"), "{e}");
}
