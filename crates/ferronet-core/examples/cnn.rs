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
    // GFLOP/s of each node's products (2 FLOPs per multiply-add), and the fraction of
    // this machine's peak FMA rate at this thread count.
    let (peak, isa) = ferronet_core::team::run_on_pool(threads, || ferronet_core::bench::peak_gflops(threads));
    println!("  peak {peak:.0} GFLOP/s ({isa}, {threads} threads); per node: ms, and GFLOP/s (% of peak) where it has products");
    let (mut f, mut b) = (0.0, 0.0);
    let rate = |macs: usize, secs: f64| {
        if macs == 0 || secs == 0.0 {
            String::new()
        } else {
            let g = 2.0 * macs as f64 * n as f64 / secs / 1e9;
            format!("{g:6.0} GFLOP/s ({:3.0}%)", 100.0 * g / peak)
        }
    };
    for ((node, fw, bw), (fm, bm)) in model.profile().into_iter().zip(model.macs()) {
        println!("  {node:<22} forward {:7.1} ms {:<22} backward {:7.1} ms {}", fw * 1e3, rate(fm, fw), bw * 1e3, rate(bm, bw));
        f += fw;
        b += bw;
    }
    println!("  {:<22} forward {:7.1} ms {:<22} backward {:7.1} ms", "all nodes", f * 1e3, "", b * 1e3);
}
