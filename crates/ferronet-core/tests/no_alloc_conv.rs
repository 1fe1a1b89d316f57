//! A CNN's training step allocates nothing per batch either: Conv2d's column buffers
//! and MaxPool2d's row scratch are sized once per batch capacity (in `prepare`, or
//! the column gradient on the first backward), never per batch. Its own test binary:
//! the allocation counter is global.

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::Model;
use ferronet_core::{AdamConfig, FitConfig, OptimizerConfig, TrainControl, Trainer};
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// Every op family: the single-channel convolution route, BatchNorm (2d and 1d),
/// pools, a grouped and a 1×1 convolution, a residual Add, a channel Concat, Dropout,
/// GELU and the dense layers.
const SPEC: &str = r#"{
  "format": "ferronet-graph", "version": 1,
  "inputs": [{ "name": "input", "shape": [1, 12, 12] }],
  "nodes": [
    { "name": "0", "op": "Conv2d", "inputs": ["input"], "config": { "outChannels": 4, "kernelSize": 3, "padding": 1 } },
    { "name": "1", "op": "ReLU", "inputs": ["0"] },
    { "name": "2", "op": "BatchNorm2d", "inputs": ["1"] },
    { "name": "3", "op": "MaxPool2d", "inputs": ["2"], "config": { "kernelSize": 2 } },
    { "name": "4", "op": "Conv2d", "inputs": ["3"], "config": { "outChannels": 6, "kernelSize": 3, "groups": 2 } },
    { "name": "5", "op": "ReLU", "inputs": ["4"] },
    { "name": "6", "op": "Conv2d", "inputs": ["5"], "config": { "outChannels": 6, "kernelSize": 1 } },
    { "name": "7", "op": "Add", "inputs": ["6", "5"] },
    { "name": "8", "op": "Concat", "inputs": ["7", "5"] },
    { "name": "9", "op": "AvgPool2d", "inputs": ["8"], "config": { "kernelSize": 2 } },
    { "name": "10", "op": "AdaptiveAvgPool2d", "inputs": ["9"], "config": { "outputSize": 2 } },
    { "name": "11", "op": "Flatten", "inputs": ["10"] },
    { "name": "12", "op": "Dropout", "inputs": ["11"], "config": { "p": 0.25 } },
    { "name": "13", "op": "Linear", "inputs": ["12"], "config": { "outFeatures": 16 } },
    { "name": "14", "op": "GELU", "inputs": ["13"] },
    { "name": "15", "op": "BatchNorm1d", "inputs": ["14"] },
    { "name": "16", "op": "Linear", "inputs": ["15"], "config": { "outFeatures": 10 } }
  ],
  "outputs": ["16"]
}"#;

#[test]
fn a_cnn_epoch_allocates_per_epoch_not_per_batch() {
    let dim = 12 * 12;
    let n = 32 * 60 + 7; // 61 batches, the last one partial
    let x: Vec<u8> = (0..n * dim).map(|i| (i * 7 % 251) as u8).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, dim).unwrap();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut model = Model::from_json(SPEC, 0).unwrap();
        let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 0).unwrap();
        let config = FitConfig { batch_size: 32, shuffle: true, progress_every: 10 };
        let control = TrainControl::new();
        let mut epoch = || {
            pool.install(|| trainer.fit_epoch(&mut model, &data, &config, &mut |_| {}, &control)).unwrap()
        };
        epoch(); // sizes the arena, the ops' scratch, optimizer state, packing buffers
        let before = counting::allocations();
        epoch();
        let allocations = counting::allocations() - before;
        eprintln!("{threads} thread(s): {allocations} allocations in one epoch of 61 batches");
        assert!(allocations < 32, "{threads} thread(s): {allocations} allocations in an epoch of 61 batches");
    }
}
