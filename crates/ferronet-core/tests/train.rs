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

/// Clipping, a schedule and the reported gradient norm in the epoch loop: the norm
/// (a sum over fixed chunks of a 36k-weight tensor, wider than one parallel chunk)
/// and the weights are the same bits on 1 and 2 threads; the lrs are the schedule's.
#[test]
fn clipping_schedule_and_grad_norm_in_the_loop() {
    use ferronet_core::{LossConfig, ScheduleConfig, TrainerConfig};
    let (x, y) = clusters(96);
    let data = DataView::new(Inputs::U8(&x), &y, 6).unwrap();
    let specs = [LayerSpec::Dense { units: 6000 }, LayerSpec::Relu, LayerSpec::Dense { units: 3 }];
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut model = Model::sequential(6, &specs, 3).unwrap();
            let mut trainer = Trainer::with_config(TrainerConfig {
                optimizer: OptimizerConfig::Adam(AdamConfig::default()),
                loss: LossConfig::default(),
                group: None,
                seed: 3,
                clip_norm: Some(0.5),
                schedule: Some(ScheduleConfig::Step { step_size: 2, gamma: 0.5 }),
            })
            .unwrap();
            let stop = TrainControl::new();
            let mut seen = Vec::new();
            let fit = FitConfig { batch_size: 16, shuffle: true, progress_every: 1 };
            let stats = trainer
                .fit_epoch(&mut model, &data, &fit, &mut |p| seen.push((p.lr, p.grad_norm)), &stop)
                .unwrap();
            let params: Vec<Vec<f32>> = model.params().iter().map(|p| p.data.to_vec()).collect();
            (seen, stats.lr, params)
        })
    };
    let (seen, lr, params) = run(1);
    assert_eq!(seen.len(), 6);
    let lrs: Vec<f64> = seen.iter().map(|s| s.0).collect();
    let base = AdamConfig::default().lr as f64;
    assert_eq!(lrs, [base, base, base * 0.5, base * 0.5, base * 0.25, base * 0.25]);
    assert_eq!(lr, base * 0.25);
    assert!(seen.iter().all(|s| s.1.is_finite() && s.1 > 0.0), "{seen:?}");
    let (seen2, _, params2) = run(2);
    let bits = |v: &[(f64, f64)]| v.iter().map(|s| s.1.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&seen), bits(&seen2));
    assert_eq!(params, params2);
}

/// Plateau steps at epoch ends on the epoch's mean loss: with a threshold no epoch
/// can beat and patience 0, the lr drops by `factor` after every epoch but the first.
#[test]
fn plateau_reduces_at_epoch_ends() {
    use ferronet_core::{LossConfig, ScheduleConfig, TrainerConfig};
    let (x, y) = clusters(64);
    let data = DataView::new(Inputs::U8(&x), &y, 6).unwrap();
    let mut model = Model::sequential(6, &SPECS, 1).unwrap();
    let mut trainer = Trainer::with_config(TrainerConfig {
        optimizer: OptimizerConfig::Adam(AdamConfig::default()),
        loss: LossConfig::default(),
        group: None,
        seed: 1,
        clip_norm: None,
        schedule: Some(ScheduleConfig::Plateau { factor: 0.5, patience: 0, threshold: 0.99, cooldown: 0, min_lr: 0.0 }),
    })
    .unwrap();
    let stop = TrainControl::new();
    let lrs: Vec<f64> = (0..4)
        .map(|_| trainer.fit_epoch(&mut model, &data, &config(), &mut |_| {}, &stop).unwrap().lr)
        .collect();
    let base = AdamConfig::default().lr as f64;
    assert_eq!(lrs, [base, base, base * 0.5, base * 0.25]);
    assert_eq!(trainer.optimizer().lr() as f64, base * 0.25);
}

/// NaN written into the features after they were handed over, or a label changed to
/// one out of range: the batch that holds it fails with a typed error naming the
/// sample, epoch and batch, before anything is trained on it.
#[test]
fn non_finite_inputs_and_bad_labels_are_caught_per_batch_before_training() {
    let (x, y) = clusters(64);
    let mut xf: Vec<f32> = x.iter().map(|&v| v as f32 / 255.0).collect();
    xf[37 * 6 + 2] = f32::NAN;
    let data = DataView::new(Inputs::F32(&xf), &y, 6).unwrap();
    let mut model = Model::sequential(6, &SPECS, 1).unwrap();
    let before = model.params();
    let mut trainer = Trainer::new(&OptimizerConfig::Adam(AdamConfig::default()), 1).unwrap();
    let fit = FitConfig { batch_size: 16, shuffle: false, progress_every: 0 };
    let err = trainer.fit_epoch(&mut model, &data, &fit, &mut |_| {}, &TrainControl::new()).unwrap_err();
    match &err {
        Error::NonFiniteData { what, sample, epoch, batch } => {
            assert_eq!((what.as_str(), *sample, *epoch, *batch), ("input", 37, 1, 3));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("sample 37 holds NaN"), "{err}");
    // Batches 1 and 2 trained; nothing after the bad one, and no weight is NaN.
    assert_ne!(before, model.params());
    assert!(model.params().iter().all(|p| p.data.iter().all(|v| v.is_finite())));
    // trainBatch's path checks the same way.
    let e = trainer.train_batch(&mut model, &xf[36 * 6..38 * 6], ferronet_core::Targets::Classes(ferronet_core::Labels::U8(&y[36..38]))).unwrap_err();
    assert!(matches!(e, Error::NonFiniteData { sample: 1, .. }), "{e:?}");
    // A label out of range in a batch (the array changed after the check) is an error, not a panic.
    let bad = [0u8, 1, 7];
    let view = DataView::new(Inputs::U8(&x[..18]), &bad, 6).unwrap();
    let mut buf = ferronet_core::data::TargetBuffer::default();
    let e = view.gather_targets(&[0, 1, 2], &mut buf, 3).unwrap_err();
    assert!(matches!(e, Error::LabelOutOfRange { index: 2, label: 7, classes: 3 }), "{e:?}");
}
