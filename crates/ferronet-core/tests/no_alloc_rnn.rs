//! LSTM and GRU training allocates nothing per batch: after a first epoch has sized the
//! scratch (gates, states of every step), an epoch makes only a handful of
//! allocations (per epoch, not per batch), with 1 and 2 threads.

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::Model;
use ferronet_core::{AdamConfig, FitConfig, OptimizerConfig, TrainControl, Trainer};
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

#[test]
fn a_recurrent_epoch_allocates_per_epoch_not_per_batch() {
    let n = 32 * 40 + 7; // 41 batches, the last one partial
    let x: Vec<u8> = (0..n * 12 * 8).map(|i| (i * 7 % 251) as u8).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, 12 * 8).unwrap();
    for op in ["LSTM", "GRU"] {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let spec = ferronet_core::ops::testing::sequential_spec(
                &[12, 8],
                &[(op, serde_json::json!({ "hiddenSize": 24, "numLayers": 2, "returns": "last" })), ("Linear", serde_json::json!({ "outFeatures": 10 }))],
            );
            let mut model = Model::from_json(&spec, 0).unwrap();
            let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 0).unwrap();
            let config = FitConfig { batch_size: 32, shuffle: true, progress_every: 10 };
            let control = TrainControl::new();
            let mut epoch = || pool.install(|| trainer.fit_epoch(&mut model, &data, &config, &mut |_| {}, &control)).unwrap();
            epoch(); // sizes the scratch, optimizer state, packing buffers
            let before = counting::allocations();
            epoch();
            let allocations = counting::allocations() - before;
            eprintln!("{op}, {threads} thread(s): {allocations} allocations in one epoch of 41 batches");
            assert!(allocations < 32, "{op}, {threads} thread(s): {allocations} allocations in an epoch of 41 batches");
        }
    }
}
