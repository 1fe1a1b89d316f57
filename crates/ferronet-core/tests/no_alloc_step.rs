//! The step API and the GAN epoch allocate nothing per batch once sized: a forward,
//! an accumulating backward, an input gradient and an optimizer step make no
//! allocation; a GAN epoch makes a handful (per epoch, not per batch).

use ferronet_core::gan::{GanFitConfig, GanTrainer};
use ferronet_core::graph::spec::GraphSpec;
use ferronet_core::loss::BatchTargets;
use ferronet_core::{AdamConfig, LossConfig, Mode, Model, OptimizerConfig, TrainControl};
use serde_json::json;
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn mlp(input: usize, out: usize, tanh: bool, seed: u64) -> Model {
    let mut layers = vec![("Linear", json!({ "outFeatures": 64 })), ("LeakyReLU", json!({ "negativeSlope": 0.2 })), ("Linear", json!({ "outFeatures": out }))];
    if tanh {
        layers.push(("Tanh", serde_json::Value::Null));
    }
    Model::from_spec(GraphSpec::sequential(&[input], &layers), seed).unwrap()
}

#[test]
fn step_calls_and_gan_epochs_allocate_per_epoch_not_per_batch() {
    let adam = OptimizerConfig::Adam(AdamConfig { lr: 2e-4, beta1: 0.5, ..Default::default() });
    let bce = LossConfig::BceWithLogits { pos_weight: None };
    let mut d = mlp(32, 1, false, 1);
    let mut opt = adam.build().unwrap();
    let x = vec![0.25f32; 16 * 32];
    let ones = vec![1.0f32; 16];
    let mut out = vec![0.0; 16];
    let mut dx = vec![0.0; 16 * 32];
    let mut step = |d: &mut Model| {
        d.zero_grad();
        d.step_forward(Mode::Train, &[&x], &mut out).unwrap();
        d.step_backward_loss(&bce, BatchTargets::Values(&ones), true).unwrap();
        d.step_forward(Mode::Train, &[&x], &mut out).unwrap();
        d.step_backward_loss(&bce, BatchTargets::Values(&ones), true).unwrap();
        d.step_input_grad(0, &mut dx).unwrap();
        d.apply_optimizer_group(&mut opt, None);
    };
    step(&mut d); // sizes the arena, the accumulation buffer, the optimizer state
    let before = counting::allocations();
    for _ in 0..20 {
        step(&mut d);
    }
    let allocations = counting::allocations() - before;
    assert!(allocations < 4, "{allocations} allocations in 20 steps of the step API");

    let (mut g, mut d) = (mlp(8, 32, true, 2), mlp(32, 1, false, 3));
    let (mut og, mut od) = (adam.build().unwrap(), adam.build().unwrap());
    let real: Vec<f32> = (0..64 * 20 * 32).map(|i| ((i % 17) as f32 / 8.5) - 1.0).collect();
    let mut gan = GanTrainer::new(8, 0).unwrap();
    let config = GanFitConfig { batch_size: 64, shuffle: true, progress_every: 5 };
    let control = TrainControl::new();
    let mut epoch = || gan.fit_epoch(&mut g, &mut d, &mut og, &mut od, &real, &config, &mut |_| {}, &control).unwrap();
    epoch();
    let before = counting::allocations();
    epoch();
    let allocations = counting::allocations() - before;
    assert!(allocations < 16, "{allocations} allocations in a GAN epoch of 20 batches");
}
