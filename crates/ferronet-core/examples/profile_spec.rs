//! Where a training step of any graph spec goes, node by node:
//! `cargo run --release --example profile_spec -- SPEC.json [threads] [batch] [steps] [vocab]`.
//! Graph input 0 gets integer ids in [0, vocab) when vocab > 0 (a language model),
//! uniform values otherwise; the labels are one class per output position.
use ferronet_core::data::{Labels, Targets};
use ferronet_core::graph::Model;
use ferronet_core::optim::{AdamWConfig, OptimizerConfig};
use ferronet_core::train::{Trainer, TrainerConfig};
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = std::fs::read_to_string(&args[1]).expect("read the spec");
    let arg = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (threads, batch, steps, vocab) = (arg(2, 1), arg(3, 12), arg(4, 30), arg(5, 0));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut model = Model::from_json(&spec, 1).expect("compile");
        let config = TrainerConfig {
            optimizer: OptimizerConfig::AdamW(AdamWConfig::default()),
            loss: Default::default(),
            group: None,
            seed: 1,
            clip_norm: Some(1.0),
            schedule: None,
        };
        let mut trainer = Trainer::with_config(config).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f32> = (0..batch * model.input_dim())
            .map(|_| if vocab > 0 { rng.random_range(0..vocab) as f32 } else { rng.random_range(-1.0..1.0) })
            .collect();
        let shape = model.output_shape().to_vec();
        let classes = *shape.last().unwrap();
        let per = model.output_dim() / classes;
        let y: Vec<u32> = (0..batch * per).map(|_| rng.random_range(0..classes as u32)).collect();
        for _ in 0..3 {
            trainer.train_batch(&mut model, &x, Targets::Classes(Labels::U32(&y))).unwrap();
        }
        model.set_profiling(true);
        let t = std::time::Instant::now();
        for _ in 0..steps {
            trainer.train_batch(&mut model, &x, Targets::Classes(Labels::U32(&y))).unwrap();
        }
        let total = t.elapsed().as_secs_f64() / steps as f64;
        let mut rows = model.profile();
        let (f, b): (f64, f64) = rows.iter().fold((0.0, 0.0), |(f, b), r| (f + r.1, b + r.2));
        println!(
            "{threads} threads, batch {batch}: {:.2} ms/step (forward {:.2}, backward {:.2}, the rest — loss, optimizer, gather — {:.2})",
            total * 1e3,
            f / steps as f64 * 1e3,
            b / steps as f64 * 1e3,
            (total - (f + b) / steps as f64) * 1e3
        );
        rows.sort_by(|a, b| (b.1 + b.2).partial_cmp(&(a.1 + a.2)).unwrap());
        for (name, f, b) in rows.iter().take(25) {
            println!("{name:32} fwd {:7.3} ms  bwd {:7.3} ms", f / steps as f64 * 1e3, b / steps as f64 * 1e3);
        }
    });
}
