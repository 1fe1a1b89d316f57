//! LSTM and GRU give the same weights bit for bit after an epoch on 1 or 2 threads
//! (and on a spinning team, which `fit_epoch` uses): the products split C, never a sum,
//! and the gate passes split whole samples (batch 64: both are split).

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::Model;
use ferronet_core::{AdamConfig, FitConfig, OptimizerConfig, TrainControl, Trainer};

#[test]
fn an_epoch_is_bit_identical_on_one_and_two_threads() {
    let n = 64 * 6 + 5;
    let x: Vec<u8> = (0..n * 10 * 6).map(|i| (i * 13 % 251) as u8).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, 10 * 6).unwrap();
    for op in ["LSTM", "GRU"] {
        let weights: Vec<Vec<f32>> = [1, 2]
            .iter()
            .map(|&threads| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let spec = ferronet_core::ops::testing::sequential_spec(
                    &[10, 6],
                    &[(op, serde_json::json!({ "hiddenSize": 48, "numLayers": 2, "returns": "last" })), ("Linear", serde_json::json!({ "outFeatures": 10 }))],
                );
                let mut model = Model::from_json(&spec, 0).unwrap();
                let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 0).unwrap();
                let config = FitConfig { batch_size: 64, shuffle: true, progress_every: 10 };
                pool.install(|| trainer.fit_epoch(&mut model, &data, &config, &mut |_| {}, &TrainControl::new())).unwrap();
                model.params().into_iter().flat_map(|p| p.data).collect()
            })
            .collect();
        assert!(weights[0] == weights[1], "{op}: weights differ between 1 and 2 threads");
    }
}
