//! Parity with PyTorch for a VAE's pieces: test/fixtures/parity/vae.json (written by
//! scripts/make_vae_fixtures.py, float64 PyTorch math from float32 values). The KL
//! op, the reparameterisation given ε, plain BCE summed per sample, and a small
//! examples/vae model's loss of terms (BCE sum + KL, gradients of the batch sum).

use ferronet_core::data::TargetBuffer;
use ferronet_core::loss::terms::compute_terms;
use ferronet_core::loss::{LossConfig, LossTerm, Reduction, TermLoss};
use ferronet_core::ops::kl_divergence::{kl_backward_logvar, kl_backward_mean, kl_forward};
use ferronet_core::ops::reparameterize::{reparameterize_backward_logvar, reparameterize_forward};
use ferronet_core::ops::testing::{rel_err, tensor};
use ferronet_core::{Mode, Model};
use serde_json::Value;

const TOL: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/vae.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read vae.json")).expect("parse")
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    let e = rel_err(got, want, 1e-2);
    assert!(e < TOL, "{what}: relative error {e:.2e}\n got  {got:?}\n want {want:?}");
}

fn scalar(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= TOL * want.abs(), "{what}: {got} vs PyTorch {want}");
}

#[test]
fn kl_divergence_matches_pytorch() {
    let f = fixture();
    let c = &f["kl"];
    let ((shape, m), (_, lv), (_, dkl)) = (tensor(&c["mean"]), tensor(&c["logvar"]), tensor(&c["dkl"]));
    let (rows, z) = (shape[0], shape[1]);
    let mut kl = vec![0.0; rows];
    kl_forward(&mut kl, &m, &lv, z);
    close("kl", &kl, &tensor(&c["kl"]).1);
    let (mut dm, mut dlv) = (vec![0.0; m.len()], vec![0.0; m.len()]);
    kl_backward_mean(&mut dm, &dkl, &m, z, false);
    kl_backward_logvar(&mut dlv, &dkl, &lv, z, false);
    close("dmean", &dm, &tensor(&c["dmean"]).1);
    close("dlogvar", &dlv, &tensor(&c["dlogvar"]).1);
}

#[test]
fn reparameterize_given_epsilon_matches_pytorch() {
    let f = fixture();
    let c = &f["reparameterize"];
    let (m, lv, eps, dz) = (tensor(&c["mean"]).1, tensor(&c["logvar"]).1, tensor(&c["eps"]).1, tensor(&c["dz"]).1);
    let mut z = vec![0.0; m.len()];
    reparameterize_forward(&mut z, &m, &lv, &eps);
    close("z", &z, &tensor(&c["z"]).1);
    let mut dlv = vec![7.0; m.len()];
    reparameterize_backward_logvar(&mut dlv, &dz, &lv, &eps, false);
    close("dlogvar", &dlv, &tensor(&c["dlogvar"]).1);
    close("dmean = dz", &dz, &tensor(&c["dmean"]).1);
}

#[test]
fn bce_summed_per_sample_matches_pytorch() {
    let f = fixture();
    let c = &f["bce"];
    let ((shape, p), (_, y)) = (tensor(&c["p"]), tensor(&c["y"]));
    let (rows, dim) = (shape[0], shape[1]);
    let mut g = vec![0.0; p.len()];
    let s = LossConfig::Bce.compute(&p, rows, dim, ferronet_core::loss::BatchTargets::Values(&y), Some(&mut g));
    // loss_sum is the per-element mean × rows; summed per sample it is × dim.
    scalar("bce per sample", s.loss_sum * dim as f64 / rows as f64, c["loss_per_sample"].as_f64().unwrap());
    let g_sum: Vec<f32> = g.iter().map(|x| x * (rows * dim) as f32).collect();
    close("d(sum)/dp", &g_sum, &tensor(&c["dp_sum"]).1);
}

#[test]
fn vae_loss_of_terms_matches_pytorch() {
    let f = fixture();
    let c = &f["vae"];
    let mut model = Model::from_json(&c["spec"].to_string(), 0).unwrap();
    for (name, t) in c["params"].as_object().unwrap() {
        model.set_param_by_name(name, &tensor(t).1).unwrap();
    }
    let (shape, x) = tensor(&c["x"]);
    let rows = shape[0];
    let terms = vec![
        LossTerm { name: "recon".into(), output: "recon".into(), loss: TermLoss::Loss(LossConfig::Bce), weight: 1.0, reduction: Reduction::Sum },
        LossTerm { name: "kl".into(), output: "kl".into(), loss: TermLoss::Value, weight: 1.0, reduction: Reduction::Sum },
    ];
    // Eval mode: z = mean (ε = 0), as the fixture; the gradients still flow.
    model.set_mode(Mode::Eval);
    model.reserve(rows, true).unwrap();
    model.set_input(rows, &x);
    model.forward(rows);
    let targets = TargetBuffer { classes: Vec::new(), values: x.clone(), ..Default::default() };
    let mut sums = vec![0.0; 2];
    let mut scratch = Vec::new();
    let total = compute_terms(&mut model, &terms, &[0, 1], rows, &targets, &mut sums, Some(&mut scratch));
    model.backward_outputs(rows);
    scalar("recon per sample", sums[0] / rows as f64, c["recon_per_sample"].as_f64().unwrap());
    scalar("kl per sample", sums[1] / rows as f64, c["kl_per_sample"].as_f64().unwrap());
    scalar("total per sample", total.loss_sum / rows as f64, c["loss_per_sample"].as_f64().unwrap());
    let grads = model.grads();
    let want = c["grads_of_batch_sum"].as_object().unwrap();
    assert_eq!(grads.len(), want.len());
    for g in &grads {
        close(&format!("d loss / d {}", g.name), &g.data, &tensor(&want[&g.name]).1);
    }
}

/// The trainer with a loss of terms on data whose targets are its inputs: the loss
/// falls, every report carries both terms, and they add up to the weighted total.
#[test]
fn a_vae_trains_with_two_reported_terms_on_its_own_inputs() {
    use ferronet_core::data::{DataView, Inputs};
    use ferronet_core::{FitConfig, OptimizerConfig, TrainControl, Trainer, TrainerConfig};
    let f = fixture();
    let mut model = Model::from_json(&f["vae"]["spec"].to_string(), 3).unwrap();
    let x: Vec<u8> = (0..256 * 12).map(|i| ((i * 37 + i / 12 * 11) % 256) as u8).collect();
    let data = DataView::with_targets(Inputs::U8(&x), ferronet_core::Targets::Inputs, 12).unwrap();
    let terms = vec![
        LossTerm { name: "recon".into(), output: "recon".into(), loss: TermLoss::Loss(LossConfig::Bce), weight: 1.0, reduction: Reduction::Sum },
        LossTerm { name: "kl".into(), output: "kl".into(), loss: TermLoss::Value, weight: 0.5, reduction: Reduction::Sum },
    ];
    let config = TrainerConfig {
        optimizer: OptimizerConfig::Adam(Default::default()),
        loss: LossConfig::Terms(terms.clone()),
        group: None,
        seed: 1,
        clip_norm: None,
        schedule: None,
    };
    let mut trainer = Trainer::with_config(config.clone()).unwrap();
    let fit = FitConfig { batch_size: 32, shuffle: true, progress_every: 2 };
    let control = TrainControl::new();
    let mut reports = Vec::new();
    let mut epochs = Vec::new();
    for _ in 0..5 {
        epochs.push(trainer.fit_epoch(&mut model, &data, &fit, &mut |p| reports.push(*p), &control).unwrap());
    }
    assert!(epochs[4].loss < epochs[0].loss, "{} → {}", epochs[0].loss, epochs[4].loss);
    for e in &epochs {
        let t = e.terms.as_slice();
        assert_eq!(t.len(), 2);
        assert!((t[0] + 0.5 * t[1] - e.loss).abs() < 1e-9 * e.loss, "{t:?} vs {}", e.loss);
        assert!(e.metrics.accuracy.is_none() && e.metrics.mse.is_none());
    }
    assert!(reports.len() >= 20 && reports.iter().all(|p| p.terms.as_slice().len() == 2));
    let eval = ferronet_core::train::evaluate_config(&mut model, &data, 100, &config, &control).unwrap();
    assert_eq!(eval.terms.as_slice().len(), 2);
    assert!((eval.terms.as_slice()[0] + 0.5 * eval.terms.as_slice()[1] - eval.loss).abs() < 1e-9 * eval.loss);
    // A term on an output the graph does not have is named.
    let mut bad = terms;
    bad[1].output = "nope".into();
    let mut trainer = Trainer::with_config(TrainerConfig { loss: LossConfig::Terms(bad), ..config }).unwrap();
    let e = trainer.fit_epoch(&mut model, &data, &fit, &mut |_| {}, &control).unwrap_err().to_string();
    assert!(e.contains("loss[1].output") && e.contains("nope"), "{e}");
}
