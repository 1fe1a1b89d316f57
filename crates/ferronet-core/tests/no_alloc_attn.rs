//! An attention net's training step allocates nothing per batch: MultiHeadAttention's
//! qkv, probabilities, dropout-scaled probabilities and pre-projection output are sized
//! in `prepare`, its backward scratch on the first backward, and the per-(sample, head)
//! products run on the callers' packing buffers. Its own test binary: the allocation
//! counter is global.

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::Model;
use ferronet_core::{AdamConfig, FitConfig, OptimizerConfig, TrainControl, Trainer};
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// Rows of a 12×12 image as 12 steps: Linear → causal attention with dropout → a
/// residual Add (so the attention's input gradient is accumulated) → full attention.
const SPEC: &str = r#"{
  "format": "ferronet-graph", "version": 1,
  "inputs": [{ "name": "input", "shape": [12, 12] }],
  "nodes": [
    { "name": "0", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 16 } },
    { "name": "1", "op": "MultiHeadAttention", "inputs": ["0"], "config": { "numHeads": 4, "causal": true, "dropout": 0.1 } },
    { "name": "2", "op": "Add", "inputs": ["0", "1"] },
    { "name": "3", "op": "MultiHeadAttention", "inputs": ["2"], "config": { "numHeads": 2, "bias": false } },
    { "name": "4", "op": "Flatten", "inputs": ["3"] },
    { "name": "5", "op": "Linear", "inputs": ["4"], "config": { "outFeatures": 10 } }
  ],
  "outputs": ["5"]
}"#;

#[test]
fn an_attention_epoch_allocates_per_epoch_not_per_batch() {
    let dim = 12 * 12;
    let n = 32 * 40 + 7; // 41 batches, the last one partial
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
        eprintln!("{threads} thread(s): {allocations} allocations in one epoch of 41 batches");
        assert!(allocations < 32, "{threads} thread(s): {allocations} allocations in an epoch of 41 batches");
    }
}
