//! Epochs of LeNet-5 or the larger CNN on MNIST-sized synthetic data, for profiling:
//! `cargo run --release --example cnn [lenet|cnn] [threads] [samples]`.
use ferronet_core::data::{DataView, Inputs};
use ferronet_core::{AdamConfig, FitConfig, Model, OptimizerConfig, TrainControl, Trainer};
use serde_json::json;

fn spec(net: &str) -> String {
    let layers: Vec<(&str, serde_json::Value)> = match net {
        "lenet" => vec![
            ("Conv2d", json!({ "outChannels": 6, "kernelSize": 5, "padding": 2 })),
            ("ReLU", json!(null)),
            ("MaxPool2d", json!({ "kernelSize": 2 })),
            ("Conv2d", json!({ "outChannels": 16, "kernelSize": 5 })),
            ("ReLU", json!(null)),
            ("MaxPool2d", json!({ "kernelSize": 2 })),
            ("Flatten", json!(null)),
            ("Linear", json!({ "outFeatures": 120 })),
            ("ReLU", json!(null)),
            ("Linear", json!({ "outFeatures": 84 })),
            ("ReLU", json!(null)),
            ("Linear", json!({ "outFeatures": 10 })),
        ],
        _ => vec![
            ("Conv2d", json!({ "outChannels": 32, "kernelSize": 3 })),
            ("ReLU", json!(null)),
            ("Conv2d", json!({ "outChannels": 64, "kernelSize": 3 })),
            ("ReLU", json!(null)),
            ("MaxPool2d", json!({ "kernelSize": 2 })),
            ("Dropout", json!({ "p": 0.25 })),
            ("Flatten", json!(null)),
            ("Linear", json!({ "outFeatures": 128 })),
            ("ReLU", json!(null)),
            ("Dropout", json!({ "p": 0.5 })),
            ("Linear", json!({ "outFeatures": 10 })),
        ],
    };
    ferronet_core::GraphSpec::sequential(&[1, 28, 28], &layers).to_json()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let net = args.get(1).map_or("lenet", |s| s.as_str());
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60_000);
    let x: Vec<u8> = (0..n * 784).map(|i| ((i as u64 * 2654435761) >> 13) as u8).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, 784).unwrap();
    let mut model = Model::from_json(&spec(net), 0).unwrap();
    let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 0).unwrap();
    let cfg = FitConfig { batch_size: 64, shuffle: true, progress_every: 0 };
    let stop = TrainControl::new();
    for e in 0..3 {
        // The last epoch is timed per node (the clock reads cost ~1 µs per node per batch).
        model.set_profiling(e == 2);
        let s = ferronet_core::team::run_on_pool(threads, || trainer.fit_epoch(&mut model, &data, &cfg, &mut |_| {}, &stop)).unwrap();
        println!("{net} threads {threads}: epoch {:.3} s ({n} samples)", s.seconds);
    }
    let (mut f, mut b) = (0.0, 0.0);
    for (node, fw, bw) in model.profile() {
        println!("  {node:<22} forward {:7.1} ms  backward {:7.1} ms", fw * 1e3, bw * 1e3);
        f += fw;
        b += bw;
    }
    println!("  {:<22} forward {:7.1} ms  backward {:7.1} ms", "all nodes", f * 1e3, b * 1e3);
}
