//! The epoch loop: learning, validation of data, abort, determinism.

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::model::{LayerSpec, Model};
use ferronet_core::train::evaluate;
use ferronet_core::{AdamConfig, Error, FitConfig, OptimizerConfig, TrainControl, Trainer};

const SPECS: [LayerSpec; 3] = [
    LayerSpec::Dense { units: 16 },
    LayerSpec::Relu,
    LayerSpec::Dense { units: 3 },
];

/// Three separable clusters as u8 "pixels" in 6 dimensions.
fn clusters(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut x = Vec::with_capacity(n * 6);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i % 3) as u8;
        y.push(c);
        for d in 0..6 {
            let base = if d / 2 == c as usize { 200u32 } else { 40 };
            x.push((base + ((i * 31 + d * 17) % 40) as u32) as u8);
        }
    }
    (x, y)
}

fn config() -> FitConfig {
    FitConfig {
        batch_size: 16,
        shuffle: true,
        progress_every: 0,
    }
}

#[test]
fn an_epoch_learns_and_reports_progress() {
    let (x, y) = clusters(300);
    let data = DataView::new(Inputs::U8(&x), &y, 6).unwrap();
    let mut model = Model::sequential(6, &SPECS, 1).unwrap();
    let mut trainer = Trainer::new(
        &OptimizerConfig::Adam(AdamConfig {
            lr: 0.01,
            ..Default::default()
        }),
        1,
    )
    .unwrap();
    let stop = TrainControl::new();
    let before = evaluate(&mut model, &data, 64, &Default::default(), &stop).unwrap();
    let mut reports = vec![];
    for _ in 0..5 {
        trainer
            .fit_epoch(
                &mut model,
                &data,
                &config(),
                &mut |p| reports.push(*p),
                &stop,
            )
            .unwrap();
    }
    let after = evaluate(&mut model, &data, 64, &Default::default(), &stop).unwrap();
    assert!(
        after.loss < before.loss * 0.3,
        "{} -> {}",
        before.loss,
        after.loss
    );
    assert!(after.accuracy > 0.97);
    assert_eq!(reports.len(), 5, "one report per epoch end");
    assert!(reports
        .iter()
        .all(|p| p.epoch_end && p.batches == 19 && p.samples == 300));
    assert_eq!(trainer.epochs_done(), 5);
}

#[test]
fn bad_data_is_rejected_with_the_place_named() {
    let (x, y) = clusters(30);
    assert!(matches!(
        DataView::new(Inputs::U8(&x[1..]), &y, 6),
        Err(Error::Shape { .. })
    ));
    let mut model = Model::sequential(6, &SPECS, 1).unwrap();
    let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 1).unwrap();
    let stop = TrainControl::new();
    let narrow = DataView::new(Inputs::U8(&x[..30 * 3]), &y, 3).unwrap();
    let err = trainer
        .fit_epoch(&mut model, &narrow, &config(), &mut |_| {}, &stop)
        .unwrap_err();
    assert!(err.to_string().contains("sample size"), "{err}");
    let mut bad_labels = y.clone();
    bad_labels[7] = 3;
    let data = DataView::new(Inputs::U8(&x), &bad_labels, 6).unwrap();
    let err = trainer
        .fit_epoch(&mut model, &data, &config(), &mut |_| {}, &stop)
        .unwrap_err();
    assert_eq!(
        err,
        Error::LabelOutOfRange {
            index: 7,
            label: 3,
            classes: 3
        }
    );
    let bad = Trainer::new(
        &OptimizerConfig::Adam(AdamConfig {
            lr: -1.0,
            ..Default::default()
        }),
        0,
    )
    .unwrap_err();
    assert!(bad.to_string().contains("optimizer.lr"));
}

#[test]
fn stop_flag_aborts_before_the_next_batch_and_keeps_weights() {
    let (x, y) = clusters(90);
    let data = DataView::new(Inputs::U8(&x), &y, 6).unwrap();
    let mut model = Model::sequential(6, &SPECS, 1).unwrap();
    let before: Vec<Vec<f32>> = model.params().iter().map(|p| p.data.to_vec()).collect();
    let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 1).unwrap();
    let stop = TrainControl::new();
    assert_eq!(stop.request_stop(), 0);
    let err = trainer
        .fit_epoch(&mut model, &data, &config(), &mut |_| {}, &stop)
        .unwrap_err();
    assert_eq!(err, Error::Aborted { steps: 0 });
    let after: Vec<Vec<f32>> = model.params().iter().map(|p| p.data.to_vec()).collect();
    assert_eq!(before, after);
    assert_eq!(trainer.epochs_done(), 0);
}

#[test]
fn same_seed_same_bits_any_thread_count() {
    let (x, y) = clusters(500);
    let data = DataView::new(Inputs::U8(&x), &y, 6).unwrap();
    let run = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut model = Model::sequential(6, &SPECS, seed).unwrap();
            let mut trainer =
                Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), seed).unwrap();
            let stop = TrainControl::new();
            for _ in 0..2 {
                trainer
                    .fit_epoch(&mut model, &data, &config(), &mut |_| {}, &stop)
                    .unwrap();
            }
            model
                .params()
                .iter()
                .map(|p| p.data.to_vec())
                .collect::<Vec<_>>()
        })
    };
    let a = run(1, 5);
    assert_eq!(a, run(1, 5));
    assert_eq!(a, run(2, 5));
    assert_ne!(a, run(1, 6));
}

#[test]
fn two_trainers_share_the_one_pool_at_once_without_deadlock_and_same_bits() {
    // Wider than the toy net so that products are split across the team.
    let specs = [LayerSpec::Dense { units: 256 }, LayerSpec::Relu, LayerSpec::Dense { units: 3 }];
    let (x, y) = clusters(2000);
    let data = DataView::new(Inputs::U8(&x), &y, 6).unwrap();
    let cfg = FitConfig { batch_size: 64, shuffle: true, progress_every: 0 };
    let train = |seed: u64, threads: usize| {
        let mut model = Model::sequential(6, &specs, seed).unwrap();
        let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), seed).unwrap();
        let stop = TrainControl::new();
        for _ in 0..3 {
            ferronet_core::team::run_on_pool(threads, || {
                trainer.fit_epoch(&mut model, &data, &cfg, &mut |_| {}, &stop)
            })
            .unwrap();
        }
        model.params().into_iter().map(|p| p.data).collect::<Vec<_>>()
    };
    let alone = (train(1, 0), train(2, 1));
    // Both at once on the shared pool, from two threads (as two libuv workers would).
    let together = std::thread::scope(|s| {
        let a = s.spawn(|| train(1, 0));
        let b = s.spawn(|| train(2, 1));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(alone, together);
    // The pool is the process's one: as many threads as cores (or FERRONET_THREADS), never more per trainer.
    let pool = ferronet_core::team::pool().current_num_threads();
    let seen = ferronet_core::team::run_on_pool(1, ferronet_core::team::threads);
    assert_eq!(seen, 1);
    assert_eq!(ferronet_core::team::run_on_pool(0, ferronet_core::team::threads), pool);
}
