//! One epoch of the seed network on MNIST-sized synthetic data: `cargo run --release --example epoch [threads]`.
use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::{LayerSpec, Model};
use ferronet_core::{AdamConfig, FitConfig, OptimizerConfig, TrainControl, Trainer};

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let n = 60_000;
    let x: Vec<u8> = (0..n * 784)
        .map(|i| ((i as u64 * 2654435761) >> 13) as u8)
        .collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, 784).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let specs = [
        LayerSpec::Dense { units: 500 },
        LayerSpec::Relu,
        LayerSpec::Dense { units: 10 },
    ];
    let mut model = Model::sequential(784, &specs, 0).unwrap();
    let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 0).unwrap();
    let cfg = FitConfig {
        batch_size: 64,
        shuffle: true,
        progress_every: 0,
    };
    let stop = TrainControl::new();
    for _ in 0..3 {
        let s = pool
            .install(|| trainer.fit_epoch(&mut model, &data, &cfg, &mut |_| {}, &stop))
            .unwrap();
        println!("threads {threads}: epoch {:.3} s", s.seconds);
    }
}
