//! Where an epoch of the VAE of examples/vae-fashion.ts goes, node by node, on
//! random pixels: `cargo run --release --example profile_vae -- [threads] [samples]`.
use ferronet_core::data::{DataView, Inputs, Targets};
use ferronet_core::graph::Model;
use ferronet_core::loss::terms::{LossTerm, Reduction, TermLoss};
use ferronet_core::loss::LossConfig;
use ferronet_core::optim::{AdamConfig, OptimizerConfig};
use ferronet_core::train::{FitConfig, TrainControl, Trainer, TrainerConfig};

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (threads, n) = (arg(1, 2), arg(2, 60_000));
    let spec = serde_json::json!({
        "format": "ferronet-graph", "version": 1, "inputs": [{ "name": "x", "shape": [784] }],
        "nodes": [
            { "name": "fc1", "op": "Linear", "inputs": ["x"], "config": { "outFeatures": 400 } },
            { "name": "r1", "op": "ReLU", "inputs": ["fc1"] },
            { "name": "fc21", "op": "Linear", "inputs": ["r1"], "config": { "outFeatures": 20 } },
            { "name": "fc22", "op": "Linear", "inputs": ["r1"], "config": { "outFeatures": 20 } },
            { "name": "z", "op": "Reparameterize", "inputs": ["fc21", "fc22"], "config": { "sampleInEval": true } },
            { "name": "kl", "op": "KLDivergence", "inputs": ["fc21", "fc22"] },
            { "name": "fc3", "op": "Linear", "inputs": ["z"], "config": { "outFeatures": 400 } },
            { "name": "r3", "op": "ReLU", "inputs": ["fc3"] },
            { "name": "fc4", "op": "Linear", "inputs": ["r3"], "config": { "outFeatures": 784 } },
            { "name": "recon", "op": "Sigmoid", "inputs": ["fc4"] }
        ],
        "outputs": ["recon", "kl"]
    });
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut model = Model::from_json(&spec.to_string(), 0).unwrap();
        let term = |name: &str, loss| LossTerm { name: name.into(), output: name.into(), loss, weight: 1.0, reduction: Reduction::Sum };
        let config = TrainerConfig {
            optimizer: OptimizerConfig::Adam(AdamConfig::default()),
            loss: LossConfig::Terms(vec![term("recon", TermLoss::Loss(LossConfig::Bce)), term("kl", TermLoss::Value)]),
            group: None,
            seed: 0,
            clip_norm: None,
            schedule: None,
        };
        let mut trainer = Trainer::with_config(config).unwrap();
        let pixels: Vec<u8> = (0..n * 784).map(|i| ((i * 2_654_435_761usize) >> 13) as u8).collect();
        let data = DataView::with_targets(Inputs::U8(&pixels), Targets::Inputs, 784).unwrap();
        let fit = FitConfig { batch_size: 128, shuffle: true, progress_every: 0 };
        let control = TrainControl::new();
        trainer.fit_epoch(&mut model, &data, &fit, &mut |_| {}, &control).unwrap();
        model.set_profiling(true);
        let t = std::time::Instant::now();
        trainer.fit_epoch(&mut model, &data, &fit, &mut |_| {}, &control).unwrap();
        let total = t.elapsed().as_secs_f64();
        let rows = model.profile();
        let (f, b): (f64, f64) = rows.iter().fold((0.0, 0.0), |(f, b), r| (f + r.1, b + r.2));
        println!("{threads} threads: epoch {total:.3} s (forward {f:.3}, backward {b:.3}, the rest {:.3})", total - f - b);
        for (name, f, b) in rows {
            println!("{name:24} fwd {f:6.3} s  bwd {b:6.3} s");
        }
    });
}
