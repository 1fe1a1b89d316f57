//! The training step allocates nothing per batch: after the first epoch has sized
//! every workspace, a whole epoch makes only a handful of allocations (per epoch,
//! not per batch), with 1 and 2 threads.

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::{LayerSpec, Model};
use ferronet_core::{AdamConfig, FitConfig, OptimizerConfig, TrainControl, Trainer};
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

#[test]
fn an_epoch_allocates_per_epoch_not_per_batch() {
    let n = 64 * 150 + 17; // 151 batches, the last one partial
    let x: Vec<u8> = (0..n * 784).map(|i| (i * 7 % 251) as u8).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, 784).unwrap();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let specs = [
            LayerSpec::Dense { units: 128 },
            LayerSpec::Relu,
            LayerSpec::Dense { units: 10 },
        ];
        let mut model = Model::sequential(784, &specs, 0).unwrap();
        let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 0).unwrap();
        let config = FitConfig {
            batch_size: 64,
            shuffle: true,
            progress_every: 10,
        };
        let control = TrainControl::new();
        let mut reports = 0;
        let mut epoch = |reports: &mut usize| {
            pool.install(|| {
                trainer.fit_epoch(&mut model, &data, &config, &mut |_| *reports += 1, &control)
            })
            .unwrap()
        };
        epoch(&mut reports); // sizes workspaces, optimizer state, packing buffers
        let before = counting::allocations();
        epoch(&mut reports);
        let allocations = counting::allocations() - before;
        eprintln!("{threads} thread(s): {allocations} allocations in one epoch of 151 batches");
        assert!(
            allocations < 32,
            "{threads} thread(s): {allocations} allocations in an epoch of 151 batches"
        );
        assert!(reports > 0);
    }
}
