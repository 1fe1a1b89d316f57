//! Model files and checkpoints: round trips, hostile and truncated files, atomic
//! saves, and a resumed run that continues bit for bit.

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::io::{self, LoadOptions, Metadata};
use ferronet_core::optim::{AdamWConfig, RmspropConfig, SgdConfig};
use ferronet_core::{AdamConfig, Error, FitConfig, LossConfig, Model, OptimizerConfig, ScheduleConfig, TrainControl, Trainer, TrainerConfig};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A small CNN with every kind of tensor a file holds: weights, BatchNorm buffers
/// and its int64 counter; Dropout so that the random streams matter.
fn spec() -> String {
    json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "input", "shape": [1, 8, 8] }],
        "nodes": [
            { "name": "conv", "op": "Conv2d", "inputs": ["input"], "config": { "outChannels": 4, "kernelSize": 3, "padding": 1 } },
            { "name": "bn", "op": "BatchNorm2d", "inputs": ["conv"] },
            { "name": "act", "op": "ReLU", "inputs": ["bn"] },
            { "name": "pool", "op": "MaxPool2d", "inputs": ["act"], "config": { "kernelSize": 2 } },
            { "name": "flat", "op": "Flatten", "inputs": ["pool"] },
            { "name": "drop", "op": "Dropout", "inputs": ["flat"], "config": { "p": 0.3 } },
            { "name": "fc", "op": "Linear", "inputs": ["drop"], "config": { "outFeatures": 3 } }
        ],
        "outputs": ["fc"],
    })
    .to_string()
}

/// 8×8 images of three classes: a bright row band at a class-dependent height.
fn images(n: usize) -> (Vec<u8>, Vec<u8>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let c = i % 3;
        y.push(c as u8);
        for p in 0..64 {
            let row = p / 8;
            let band = row / 3 == c;
            x.push(((if band { 180 } else { 30 }) + (i * 37 + p * 11) % 60) as u8);
        }
    }
    (x, y)
}

fn dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ferronet-files-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn trainer(optimizer: OptimizerConfig, schedule: Option<ScheduleConfig>) -> Trainer {
    Trainer::with_config(TrainerConfig { optimizer, loss: LossConfig::default(), group: None, seed: 5, clip_norm: None, schedule }).unwrap()
}

fn fit(model: &mut Model, t: &mut Trainer, data: &DataView, epochs: usize) -> Vec<u64> {
    let cfg = FitConfig { batch_size: 16, shuffle: true, progress_every: 0 };
    (0..epochs)
        .map(|_| t.fit_epoch(model, data, &cfg, &mut |_| {}, &TrainControl::new()).unwrap().loss.to_bits())
        .collect()
}

fn predict(model: &mut Model, x: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0; x.len() / 64 * 3];
    model.predict(Inputs::U8(x), &mut out).unwrap();
    out
}

fn trained() -> (Model, Vec<u8>) {
    let (x, y) = images(96);
    let data = DataView::new(Inputs::U8(&x), &y, 64).unwrap();
    let mut m = Model::from_json(&spec(), 3).unwrap();
    let mut t = trainer(OptimizerConfig::Adam(AdamConfig { lr: 0.01, ..Default::default() }), None);
    fit(&mut m, &mut t, &data, 2);
    (m, x)
}

#[test]
fn a_saved_model_loads_back_with_the_same_tensors_and_predictions() {
    let (mut m, x) = trained();
    let d = dir();
    let path = d.join("m.safetensors");
    let mut user = Metadata::new();
    user.insert("classNames".into(), "[\"a\",\"b\",\"c\"]".into());
    io::save_model(&m, &path, &user).unwrap();
    let (mut back, meta) = io::load_model(&path).unwrap();
    assert_eq!(meta.get("classNames").unwrap(), "[\"a\",\"b\",\"c\"]");
    assert_eq!(meta.get("format").unwrap(), "pt");
    let names: Vec<String> = back.params().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "fc.weight", "fc.bias"]
    );
    for (a, b) in m.params().iter().zip(back.params()) {
        assert_eq!(a.data, b.data, "{}", a.name);
        assert_eq!(a.shape, b.shape, "{}", a.name);
    }
    // 2 epochs of 6 batches moved the BatchNorm counter to 12.
    assert_eq!(back.params()[6].data, vec![12.0]);
    assert_eq!(predict(&mut m, &x), predict(&mut back, &x));
    // The counter is int64 in the file, as PyTorch writes it.
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["bn.num_batches_tracked"]["dtype"], "I64");
    assert_eq!(header["bn.num_batches_tracked"]["shape"], json!([]));
    assert_eq!(header["conv.weight"]["shape"], json!([4, 1, 3, 3]));
    // Byte-reproducible: saving the same model again writes the same bytes (the
    // header's keys sorted), and the safetensors crate still reads it.
    let again = d.join("again.safetensors");
    for _ in 0..4 {
        io::save_model(&m, &again, &user).unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), bytes);
    }
    safetensors::SafeTensors::deserialize(&bytes).unwrap();
    // load_weights into a fresh net of the same architecture gives the same net.
    let mut fresh = Model::from_json(&spec(), 99).unwrap();
    io::load_weights(&mut fresh, &path, LoadOptions { strict: true }).unwrap();
    assert_eq!(predict(&mut fresh, &x), predict(&mut m, &x));
}

fn expect_file_error(result: Result<impl std::fmt::Debug, Error>, path: &Path, needle: &str) {
    match result {
        Err(Error::ModelFile { path: p, message }) => {
            assert_eq!(p, path.display().to_string());
            assert!(message.contains(needle), "{needle:?} not in {message:?}");
        }
        other => panic!("expected a model-file error containing {needle:?}, got {other:?}"),
    }
}

/// A valid file's parts, to build broken ones from.
fn parts(path: &Path) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

fn assemble(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn hostile_and_truncated_files_are_typed_errors_naming_the_file_and_the_problem() {
    let (m, _) = trained();
    let d = dir();
    let good = d.join("good.safetensors");
    io::save_model(&m, &good, &Metadata::new()).unwrap();
    let (header, data) = parts(&good);
    let bytes = std::fs::read(&good).unwrap();
    let bad = d.join("bad.safetensors");
    let case = |content: &[u8], needle: &str| {
        std::fs::write(&bad, content).unwrap();
        expect_file_error(io::load_model(&bad), &bad, needle);
    };
    case(b"", "too short");
    case(&[1, 2, 3], "too short");
    case(&u64::MAX.to_le_bytes(), "over the format's");
    case(&(1u64 << 40).to_le_bytes(), "over the format's");
    case(&bytes[..bytes.len() - 10], "truncated");
    case(&bytes[..100], "truncated");
    case(&[&bytes[..], &[0u8; 4]].concat(), "bytes past its last tensor");
    case(&assemble("not json at all", &[]), "not a JSON object");
    case(&assemble("[1, 2]", &[]), "not a JSON object");
    case(&[&2u64.to_le_bytes()[..], &[0xff, 0xfe]].concat(), "not UTF-8");
    // Overlapping offsets: the second tensor starts inside the first.
    let mut h = header.clone();
    h.insert("fc.bias".into(), json!({ "dtype": "F32", "shape": [3], "data_offsets": [0, 12] }));
    case(&assemble(&serde_json::Value::Object(h).to_string(), &data), "offsets");
    // A shape claiming 2^62 elements: an overflow, never an allocation.
    let mut h = header.clone();
    h.insert("fc.bias".into(), json!({ "dtype": "F32", "shape": [1u64 << 31, 1u64 << 31], "data_offsets": [0, 12] }));
    case(&assemble(&serde_json::Value::Object(h).to_string(), &data), "");
    // Byte length not matching the shape: the tensor is named.
    let mut h = header.clone();
    let off = h["fc.bias"]["data_offsets"].clone();
    h.insert("fc.bias".into(), json!({ "dtype": "F32", "shape": [4], "data_offsets": off }));
    case(&assemble(&serde_json::Value::Object(h).to_string(), &data), "fc.bias");
    // A duplicated name (the JSON object repeats the key).
    let text = serde_json::Value::Object(header.clone()).to_string();
    let dup = format!("{{\"fc.bias\":{},{}", header["fc.bias"], &text[1..]);
    case(&assemble(&dup, &data), "names tensor `fc.bias` twice");

    // Files that are valid safetensors but not the model's.
    let write_model = |tensors: Vec<(String, ferronet_core::io::safetensors_file::Tensor)>, meta: Metadata| {
        let bytes = ferronet_core::io::safetensors_file::encode(&bad, &tensors, &meta).unwrap();
        std::fs::write(&bad, bytes).unwrap();
    };
    use ferronet_core::io::safetensors_file::Tensor;
    let spec_meta = || {
        let mut meta = Metadata::new();
        meta.insert("ferronet.spec".into(), m.spec().to_json());
        meta
    };
    let all = |skip: &str, replace: Option<Tensor>| {
        let mut replace = replace;
        let mut out = Vec::new();
        for (p, info) in m.params().into_iter().zip(m.store().tensors()) {
            if p.name == skip {
                if let Some(t) = replace.take() {
                    out.push((p.name.clone(), t));
                }
                continue;
            }
            let t = if info.kind == ferronet_core::ops::ParamKind::Counter { Tensor::i64(&[], &[3]) } else { Tensor::f32(&p.shape, &p.data) };
            out.push((p.name, t));
        }
        out
    };
    write_model(all("fc.bias", None), spec_meta());
    expect_file_error(io::load_model(&bad), &bad, "lacks 1 tensor(s) the model has: `fc.bias`");
    write_model(all("fc.bias", Some(Tensor::f32(&[1, 3], &[0.0; 3]))), spec_meta());
    expect_file_error(io::load_model(&bad), &bad, "tensor `fc.bias` has shape [1, 3] but the model's is [3]");
    write_model(all("fc.bias", Some(Tensor::f32(&[3], &[0.0, f32::NAN, 0.0]))), spec_meta());
    expect_file_error(io::load_model(&bad), &bad, "`fc.bias` holds NaN at index 1");
    let f16 = ferronet_core::io::safetensors_file::Tensor { dtype: ferronet_core::io::safetensors_file::Dtype::F16, shape: vec![3], bytes: vec![0; 6] };
    write_model(all("fc.bias", Some(f16)), spec_meta());
    expect_file_error(io::load_model(&bad), &bad, "`fc.bias` has dtype F16");
    let mut extra = all("", None);
    extra.push(("head.weight".into(), Tensor::f32(&[1], &[0.0])));
    write_model(extra, spec_meta());
    expect_file_error(io::load_model(&bad), &bad, "tensor(s) the model does not: `head.weight`");
    write_model(all("", None), Metadata::new());
    expect_file_error(io::load_model(&bad), &bad, "has no `ferronet.spec`");
    let mut meta = Metadata::new();
    meta.insert("ferronet.spec".into(), "{\"format\":\"ferronet-graph\",\"version\":1}".into());
    write_model(all("", None), meta);
    expect_file_error(io::load_model(&bad), &bad, "spec that does not compile");
    expect_file_error(io::load_model(&d.join("missing.safetensors")), &d.join("missing.safetensors"), "cannot be opened");
    expect_file_error(io::load_model(&d), &d, "");

    // A failed load_weights leaves the model as it was.
    let mut target = Model::from_json(&spec(), 1).unwrap();
    let before = target.params();
    write_model(all("fc.bias", Some(Tensor::f32(&[3], &[0.0, f32::INFINITY, 0.0]))), spec_meta());
    assert!(io::load_weights(&mut target, &bad, LoadOptions { strict: true }).is_err());
    assert_eq!(before, target.params());
}

/// Every truncation and many single-byte corruptions of a valid file: always an
/// error or a model, never a panic.
#[test]
fn corrupted_files_never_panic() {
    let (m, _) = trained();
    let d = dir();
    let good = d.join("good.safetensors");
    io::save_model(&m, &good, &Metadata::new()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = d.join("bad.safetensors");
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut count = 0;
    for cut in (0..bytes.len()).step_by(7) {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert!(io::load_model(&bad).is_err());
        count += 1;
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..1500 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut b = bytes.clone();
        // Mostly the header, where the structure is.
        let at = (state >> 33) as usize % (8 + n + 64).min(b.len());
        b[at] = (state >> 20) as u8;
        std::fs::write(&bad, &b).unwrap();
        let _ = io::load_model(&bad);
        count += 1;
    }
    assert!(count > 1500);
}

#[test]
fn a_save_that_fails_midway_leaves_the_previous_file_intact() {
    let (m, _) = trained();
    let d = dir();
    let path = d.join("m.safetensors");
    io::save_model(&m, &path, &Metadata::new()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let other = Model::from_json(&spec(), 42).unwrap();
    io::atomic::fail_next_write(&path, 100);
    expect_file_error(io::save_model(&other, &path, &Metadata::new()), &path, "the previous file, if there was one, is unchanged");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file left behind");
    let mut bad_meta = Metadata::new();
    bad_meta.insert("ferronet.spec".into(), "x".into());
    assert!(matches!(io::save_model(&other, &path, &bad_meta), Err(Error::InvalidConfig { .. })));
}

/// Runs `epochs` epochs straight, and the same split at `split` with a checkpoint
/// written and read back in between; losses and weights must be the same bits.
fn resume_is_exact(optimizer: OptimizerConfig, schedule: Option<ScheduleConfig>) {
    let (x, y) = images(90);
    let data = DataView::new(Inputs::U8(&x), &y, 64).unwrap();
    let (epochs, split) = (4, 2);
    let mut a = Model::from_json(&spec(), 8).unwrap();
    let mut ta = trainer(optimizer.clone(), schedule.clone());
    let straight = fit(&mut a, &mut ta, &data, epochs);

    let mut b = Model::from_json(&spec(), 8).unwrap();
    let mut tb = trainer(optimizer.clone(), schedule.clone());
    let mut losses = fit(&mut b, &mut tb, &data, split);
    let d = dir();
    let path = d.join("ck.safetensors");
    io::save_checkpoint(&b, &tb, &path, &Metadata::new()).unwrap();
    drop((b, tb));
    let ck = io::load_checkpoint(&path).unwrap();
    let mut c = ck.model;
    let mut tc = trainer(optimizer, schedule);
    tc.restore_state(ck.state).unwrap();
    assert_eq!(tc.epochs_done(), split);
    losses.extend(fit(&mut c, &mut tc, &data, epochs - split));
    assert_eq!(losses, straight, "epoch losses (bits)");
    for (p, q) in a.params().iter().zip(c.params()) {
        assert_eq!(p.data, q.data, "{}", p.name);
    }
    // The checkpoint is also a model file.
    assert!(io::load_model(&path).is_ok());
}

#[test]
fn a_resumed_run_continues_bit_for_bit() {
    resume_is_exact(OptimizerConfig::Adam(AdamConfig { lr: 0.01, ..Default::default() }), Some(ScheduleConfig::Cosine { total_steps: 24, warmup_steps: 3, min_lr: 0.0 }));
    resume_is_exact(OptimizerConfig::Sgd(SgdConfig { lr: 0.05, momentum: 0.9, nesterov: true, ..Default::default() }), None);
    resume_is_exact(OptimizerConfig::AdamW(AdamWConfig { lr: 0.01, weight_decay: 0.1, ..Default::default() }), Some(ScheduleConfig::Plateau { factor: 0.5, patience: 0, threshold: 0.5, cooldown: 0, min_lr: 0.0 }));
    resume_is_exact(OptimizerConfig::Rmsprop(RmspropConfig { lr: 0.005, centered: true, momentum: 0.5, ..Default::default() }), Some(ScheduleConfig::Step { step_size: 5, gamma: 0.7 }));
}

#[test]
fn a_model_file_is_not_a_checkpoint_and_a_checkpoint_checks_its_trainer() {
    let (m, _) = trained();
    let d = dir();
    let path = d.join("m.safetensors");
    io::save_model(&m, &path, &Metadata::new()).unwrap();
    expect_file_error(io::load_checkpoint(&path).map(|_| ()), &path, "is a model file, not a checkpoint");
    let t = trainer(OptimizerConfig::Adam(AdamConfig::default()), None);
    io::save_checkpoint(&m, &t, &path, &Metadata::new()).unwrap();
    let ck = io::load_checkpoint(&path).unwrap();
    let mut sgd = trainer(OptimizerConfig::Sgd(SgdConfig::default()), None);
    let e = sgd.restore_state(ck.state).unwrap_err();
    assert!(e.contains("adam optimizer state") && e.contains("sgd"), "{e}");
}
