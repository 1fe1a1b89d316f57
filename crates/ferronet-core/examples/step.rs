//! Where a training step's time goes: `cargo run --release --example step [threads]`.
//!
//! Also answers: does fusing the optimizer update into the weight-gradient product
//! pay? Fusion would apply Adam to each dW tile while it sits in L1, saving one pass
//! that reads dW back; that pass costs at most one streaming read of every gradient,
//! which is timed here as an upper bound of the gain.
use ferronet_core::model::{LayerSpec, Model};
use ferronet_core::{AdamConfig, OptimizerConfig};
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        ferronet_core::team::with_team(|| {
            let specs = [LayerSpec::Dense { units: 500 }, LayerSpec::Relu, LayerSpec::Dense { units: 10 }];
            let mut model = Model::sequential(784, &specs, 0).unwrap();
            let mut opt = OptimizerConfig::Adam(AdamConfig::default()).build().unwrap();
            let labels: Vec<u32> = (0..64).map(|i| (i % 10) as u32).collect();
            for (i, v) in model.input_buffer(64).iter_mut().enumerate() {
                *v = ((i * 31) % 255) as f32 / 255.0;
            }
            let n = 300;
            let (mut fwd, mut fb, mut optim, mut read) = (0.0, 0.0, 0.0, 0.0);
            let mut sink = 0.0f32;
            for it in 0..n + 20 {
                let t0 = Instant::now();
                model.forward(64);
                let t1 = Instant::now();
                model.forward_backward(64, &labels);
                let t2 = Instant::now();
                model.apply_optimizer(&mut opt);
                let t3 = Instant::now();
                sink += model.sum_of_gradients();
                let t4 = Instant::now();
                if it >= 20 {
                    fwd += (t1 - t0).as_secs_f64();
                    fb += (t2 - t1).as_secs_f64();
                    optim += (t3 - t2).as_secs_f64();
                    read += (t4 - t3).as_secs_f64();
                }
            }
            let us = |s: f64| s / n as f64 * 1e6;
            println!(
                "threads {threads}: forward {:.0} us, forward+backward {:.0} us, adam {:.0} us, step {:.0} us => {:.3} s/epoch (938 steps)",
                us(fwd), us(fb), us(optim), us(fb + optim), (fb + optim) / n as f64 * 938.0
            );
            println!(
                "  one read of all gradients {:.1} us (1 thread): fusing Adam into dW could save at most {:.1}% of a step (sink {sink:.1e})",
                us(read), 100.0 * read / (fb + optim)
            );
        })
    });
}
