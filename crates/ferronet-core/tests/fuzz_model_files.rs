//! Fuzzing the model-file loaders (docs/fuzzing.md): structured mutations of real
//! files (the committed fixtures, plus a small model file and an Adam checkpoint made
//! here) fed to `safetensors_file::from_bytes`, `load_model_bytes`,
//! `load_weights_bytes` and `load_checkpoint_bytes`. Every input must return `Ok` or
//! an `Err` — no panic, no abort — and allocate at most a small multiple of its own
//! size (a tracking global allocator measures each call's peak and refuses any single
//! request over 256 MiB, so a claimed size can never take the machine down).
//!
//! Input `i` of target `t` is a pure function of (`t`, `i`): a failure found by the
//! long run is replayed with `FUZZ_TARGET=t FUZZ_START=i FUZZ_ITERS=1`.
//!
//! - `cargo test --release -p ferronet-core --test fuzz_model_files` — the quick part
//!   (2 500 inputs per target, seconds), kept in the normal tests.
//! - `FUZZ_ITERS=1000000 cargo test --release -p ferronet-core --test fuzz_model_files -- --ignored --nocapture`
//!   — the long run (`FUZZ_TARGET` = read | load_model | load_weights | load_checkpoint
//!   to run one target).

use ferronet_core::data::{DataView, Inputs};
use ferronet_core::io::{self, safetensors_file, LoadOptions, Metadata};
use ferronet_core::{AdamConfig, FitConfig, LossConfig, Model, OptimizerConfig, TrainControl, Trainer, TrainerConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

// ---------------------------------------------------------------- allocation guard

struct Tracking;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static REFUSING: AtomicBool = AtomicBool::new(false);
/// No single allocation above this while a fuzz input runs.
const HARD_CAP: usize = 256 << 20;

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_CAP && REFUSING.load(Ordering::Relaxed) {
            REFUSED.fetch_max(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HARD_CAP && REFUSING.load(Ordering::Relaxed) {
            REFUSED.fetch_max(new_size, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Allowed peak for an input of `len` bytes: the bytes themselves are handed over
/// (not counted), then the parsed header, the model (values, gradients, the init
/// buffer: ~3× its tensors), the converted values, and the ops' tables along their
/// input axes (the spec may declare up to twice the file's values + 64 Ki, and as many
/// entries along its axes, 16 bytes each).
fn budget(len: usize) -> usize {
    40 * len + (4 << 20)
}

// ---------------------------------------------------------------- seeds

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/model-files").join(name);
    std::fs::read(p).unwrap()
}

fn small_spec() -> String {
    json!({
        "format": "ferronet-graph", "version": 1,
        "inputs": [{ "name": "input", "shape": [1, 6, 6] }],
        "nodes": [
            { "name": "conv", "op": "Conv2d", "inputs": ["input"], "config": { "outChannels": 2, "kernelSize": 3, "padding": 1 } },
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

/// A small model file and an Adam checkpoint (with a schedule), written by ferronet.
fn made_here() -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("ferronet-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut model = Model::from_json(&small_spec(), 3).unwrap();
    let mut trainer = Trainer::with_config(TrainerConfig {
        optimizer: OptimizerConfig::Adam(AdamConfig::default()),
        loss: LossConfig::default(),
        group: None,
        seed: 5,
        clip_norm: None,
        schedule: None,
    })
    .unwrap();
    let n = 24;
    let x: Vec<u8> = (0..n * 36).map(|i| (i * 37 % 251) as u8).collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let data = DataView::new(Inputs::U8(&x), &y, 36).unwrap();
    let cfg = FitConfig { batch_size: 8, shuffle: true, progress_every: 0 };
    trainer.fit_epoch(&mut model, &data, &cfg, &mut |_| {}, &TrainControl::new()).unwrap();
    let (m, c) = (dir.join("m.safetensors"), dir.join("c.safetensors"));
    io::save_model(&model, &m, &Metadata::new()).unwrap();
    io::save_checkpoint(&model, &trainer, &c, &Metadata::new()).unwrap();
    let out = (std::fs::read(&m).unwrap(), std::fs::read(&c).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// A file split into its header (as JSON) and its data.
#[derive(Clone)]
struct Seed {
    header: Value,
    data: Vec<u8>,
}

fn split(bytes: &[u8]) -> Seed {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    Seed { header: serde_json::from_slice(&bytes[8..8 + n]).unwrap(), data: bytes[8 + n..].to_vec() }
}

struct Seeds {
    /// Model files and checkpoints, smallest first (picked more often).
    files: Vec<Seed>,
    checkpoint: Seed,
    /// The models `load_weights` loads into: the fixtures' CNN and MLP and the small one.
    specs: Vec<String>,
}

fn seeds() -> &'static Seeds {
    static S: OnceLock<Seeds> = OnceLock::new();
    S.get_or_init(|| {
        let (m, c) = made_here();
        let checkpoint = split(&c);
        let files = vec![
            split(&m),
            checkpoint.clone(),
            split(&fixture("ferronet-cnn.safetensors")),
            split(&fixture("torch-cnn.safetensors")),
            split(&fixture("ferronet-mlp.safetensors")),
            split(&fixture("torch-mlp.safetensors")),
        ];
        let spec_of = |s: &Seed| s.header["__metadata__"]["ferronet.spec"].as_str().unwrap().to_string();
        let specs = vec![small_spec(), spec_of(&files[2]), spec_of(&files[4])];
        Seeds { files, checkpoint, specs }
    })
}

// ---------------------------------------------------------------- mutations

const DTYPES: &[&str] = &["F32", "F64", "I64", "I32", "F16", "BF16", "U8", "I8", "BOOL", "U16", "U32", "U64", "F8_E4M3", "F4", "X", ""];

fn interesting_int(r: &mut ChaCha8Rng) -> Value {
    let v: i128 = match r.random_range(0..14) {
        0 => 0,
        1 => 1,
        2 => -1,
        3 => r.random_range(0..10),
        4 => r.random_range(0..100_000),
        5 => 1 << 31,
        6 => (1 << 32) - 1,
        7 => 1 << 32,
        8 => 1 << 40,
        9 => (1 << 62) + 1,
        10 => u64::MAX as i128,
        11 => i64::MIN as i128,
        12 => 100_000_001,
        _ => r.random_range(0..1 << 20),
    };
    if v < 0 {
        json!(v as i64)
    } else {
        json!(v as u64)
    }
}

fn random_value(r: &mut ChaCha8Rng, depth: u32) -> Value {
    match r.random_range(0..if depth > 2 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(r.random_bool(0.5)),
        2 | 3 => interesting_int(r),
        4 => json!([1.5, -0.0, 1e308, f64::MIN_POSITIVE][r.random_range(0..4)]),
        5 => json!(["", "F32", "optimizer.", "Linear", "Conv2d", "__metadata__", "1e400", "NaN", "18446744073709551616", "\u{0}", "ä"]
            [r.random_range(0..11)]),
        6 => Value::Array((0..r.random_range(0..4)).map(|_| random_value(r, depth + 1)).collect()),
        7 => Value::Object((0..r.random_range(0..3)).map(|k| (format!("k{k}"), random_value(r, depth + 1))).collect()),
        _ => Value::String(format!("{}", r.random::<u64>())),
    }
}

/// Replaces, removes, duplicates or retypes one node of `v`, at a random depth.
fn mutate_json(v: &mut Value, r: &mut ChaCha8Rng) {
    let descend = r.random_bool(0.7);
    match v {
        Value::Object(m) if !m.is_empty() && descend => {
            let k = m.keys().nth(r.random_range(0..m.len())).unwrap().clone();
            mutate_json(m.get_mut(&k).unwrap(), r)
        }
        Value::Array(a) if !a.is_empty() && descend => {
            let i = r.random_range(0..a.len());
            mutate_json(&mut a[i], r)
        }
        Value::Object(m) if !m.is_empty() && r.random_bool(0.3) => {
            let k = m.keys().nth(r.random_range(0..m.len())).unwrap().clone();
            m.remove(&k);
        }
        Value::Array(a) if !a.is_empty() && r.random_bool(0.4) => match r.random_range(0..3) {
            0 => {
                a.remove(r.random_range(0..a.len()));
            }
            1 => {
                let x = a[r.random_range(0..a.len())].clone();
                a.insert(r.random_range(0..=a.len()), x);
            }
            _ => a.push(random_value(r, 1)),
        },
        Value::Number(n) if r.random_bool(0.6) => {
            *v = match n.as_u64() {
                Some(x) if r.random_bool(0.5) => {
                    let d: i64 = r.random_range(-3..=3);
                    json!(x.saturating_add_signed(d))
                }
                Some(x) if r.random_bool(0.5) => json!(x.saturating_mul(r.random_range(2..100_000))),
                _ => interesting_int(r),
            }
        }
        Value::String(s) if r.random_bool(0.5) => {
            // A JSON string inside a string (the spec, the trainer state): mutate it as JSON.
            if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                if inner.is_object() || inner.is_array() {
                    for _ in 0..r.random_range(1..4) {
                        mutate_json(&mut inner, r);
                    }
                    *s = inner.to_string();
                    return;
                }
            }
            let mut b = s.clone().into_bytes();
            if !b.is_empty() {
                let i = r.random_range(0..b.len());
                match r.random_range(0..3) {
                    0 => b.truncate(i),
                    1 => b[i] = b"0123456789-.e\"{}[]x"[r.random_range(0..19)],
                    _ => b.insert(i, b"0123456789-.e"[r.random_range(0..13)]),
                }
            }
            *s = String::from_utf8_lossy(&b).into_owned();
        }
        _ => *v = random_value(r, 0),
    }
}

fn count_numbers(v: &Value) -> usize {
    match v {
        Value::Number(_) => 1,
        Value::Array(a) => a.iter().map(count_numbers).sum(),
        Value::Object(m) => m.values().map(count_numbers).sum(),
        _ => 0,
    }
}

/// Sets the `k`-th number of `v` (depth first) to `x`.
fn set_number(v: &mut Value, k: &mut usize, x: Value) -> bool {
    match v {
        Value::Number(_) if *k == 0 => {
            *v = x;
            true
        }
        Value::Number(_) => {
            *k -= 1;
            false
        }
        Value::Array(a) => a.iter_mut().any(|e| set_number(e, k, x.clone())),
        Value::Object(m) => m.values_mut().any(|e| set_number(e, k, x.clone())),
        _ => false,
    }
}

fn tensor_names(h: &Value) -> Vec<String> {
    h.as_object().map(|m| m.keys().filter(|k| *k != "__metadata__").cloned().collect()).unwrap_or_default()
}

/// Mutations that know the format: one tensor's dtype, shape or offsets; a tensor
/// removed, renamed, added; the metadata's ferronet keys.
fn mutate_header(h: &mut Value, r: &mut ChaCha8Rng) {
    let names = tensor_names(h);
    let Some(m) = h.as_object_mut() else { return };
    let pick = |r: &mut ChaCha8Rng| names.get(r.random_range(0..names.len().max(1))).cloned();
    match r.random_range(0..14) {
        11 | 12 => {
            // One number of the spec (a layer's size, an input's shape, a kernel) set
            // to an interesting value: the spec sizes what load_model allocates.
            let spec = m.get_mut("__metadata__").and_then(|md| md.get_mut("ferronet.spec"));
            if let Some(Value::String(text)) = spec {
                if let Ok(mut v) = serde_json::from_str::<Value>(text) {
                    let n = count_numbers(&v);
                    if n > 0 {
                        let k = r.random_range(0..n);
                        let x = interesting_int(r);
                        set_number(&mut v, &mut { k }, x);
                        *text = v.to_string();
                    }
                }
            }
        }
        0 => {
            if let Some(Value::Object(t)) = pick(r).and_then(|n| m.get_mut(&n)) {
                t.insert("dtype".into(), json!(DTYPES[r.random_range(0..DTYPES.len())]));
            }
        }
        1 | 2 => {
            if let Some(Value::Array(s)) = pick(r).and_then(|n| m.get_mut(&n)).and_then(|t| t.get_mut("shape")) {
                match r.random_range(0..4) {
                    0 if !s.is_empty() => {
                        let i = r.random_range(0..s.len());
                        s[i] = interesting_int(r);
                    }
                    1 => s.push(interesting_int(r)),
                    2 if !s.is_empty() => {
                        s.pop();
                    }
                    _ => s.reverse(),
                }
            }
        }
        3 | 4 => {
            if let Some(Value::Array(o)) = pick(r).and_then(|n| m.get_mut(&n)).and_then(|t| t.get_mut("data_offsets")) {
                if !o.is_empty() {
                    let i = r.random_range(0..o.len());
                    let x = o[i].as_u64().unwrap_or(0);
                    o[i] = match r.random_range(0..3) {
                        0 => json!(x.wrapping_add(r.random_range(0..9)).wrapping_sub(4)),
                        1 => interesting_int(r),
                        _ => json!(x / 2),
                    };
                }
            }
        }
        5 => {
            if let Some(n) = pick(r) {
                m.remove(&n);
            }
        }
        6 => {
            if let Some(n) = pick(r) {
                let t = m.remove(&n).unwrap();
                let new = match r.random_range(0..4) {
                    0 => format!("optimizer.{n}.exp_avg"),
                    1 => format!("optimizer.{n}"),
                    2 => format!("{n}x"),
                    _ => "__metadata__".to_string(),
                };
                m.insert(new, t);
            }
        }
        7 => {
            if let Some(t) = pick(r).and_then(|n| m.get(&n)).cloned() {
                m.insert(format!("optimizer.{}.exp_avg_sq", pick(r).unwrap()), t);
            }
        }
        8..=10 => {
            let meta = m.entry("__metadata__").or_insert_with(|| json!({}));
            if let Some(md) = meta.as_object_mut() {
                let key = ["ferronet.spec", "ferronet.trainer", "ferronet.seed", "ferronet.kind", "format"][r.random_range(0..5)];
                match md.get_mut(key) {
                    Some(v) if r.random_bool(0.85) => {
                        for _ in 0..r.random_range(1..4) {
                            mutate_json(v, r);
                        }
                    }
                    Some(_) => {
                        md.remove(key);
                    }
                    None => {
                        let v = if key == "ferronet.trainer" {
                            seeds().checkpoint.header["__metadata__"][key].clone()
                        } else {
                            random_value(r, 0)
                        };
                        md.insert(key.into(), v);
                    }
                }
            } else {
                mutate_json(meta, r);
            }
        }
        _ => mutate_json(h, r),
    }
}

/// Bytes after serialisation: the length prefix, truncation, appended or flipped
/// bytes, a repeated key spliced into the header text, non-finite values in the data.
fn mutate_bytes(b: &mut Vec<u8>, r: &mut ChaCha8Rng) {
    let n = u64::from_le_bytes(b[..8].try_into().unwrap());
    match r.random_range(0..8) {
        0 => {
            let v: u64 = match r.random_range(0..4) {
                0 => n.wrapping_add(r.random_range(0..17)).wrapping_sub(8),
                1 => r.random_range(0..b.len() as u64 + 16),
                2 => 100_000_000 + r.random_range(0..3),
                _ => r.random(),
            };
            b[..8].copy_from_slice(&v.to_le_bytes());
        }
        1 => b.truncate(r.random_range(0..b.len())),
        2 => {
            for _ in 0..r.random_range(1..9) {
                b.push(r.random());
            }
        }
        3 | 4 => {
            for _ in 0..r.random_range(1..5) {
                let hi = if r.random_bool(0.7) { (8 + n as usize).min(b.len()) } else { b.len() };
                if hi > 0 {
                    let i = r.random_range(0..hi);
                    b[i] = if r.random_bool(0.5) { r.random() } else { b[i] ^ (1 << r.random_range(0..8)) };
                }
            }
        }
        5 => {
            // Duplicate one `"name":{...}` entry in the text (a JSON object repeating a key).
            let hi = (8 + n as usize).min(b.len());
            if let Ok(text) = std::str::from_utf8(&b[8..hi]) {
                if let (Some(s), Some(e)) = (text.find("\":{\"dtype"), text.find('}')) {
                    if let Some(q) = text[..s].rfind(",\"").or(Some(0)) {
                        let start = if q == 0 { 1 } else { q + 1 };
                        if start < e {
                            let entry = format!(",{}", &text[start..=e]);
                            let close = text.rfind('}').unwrap_or(text.len());
                            let mut t = text.to_string();
                            t.insert_str(close, &entry);
                            let mut out = (t.len() as u64).to_le_bytes().to_vec();
                            out.extend_from_slice(t.as_bytes());
                            out.extend_from_slice(&b[hi..]);
                            *b = out;
                        }
                    }
                }
            }
        }
        6 => {
            let data = 8 + n as usize;
            if data + 4 <= b.len() {
                let i = data + r.random_range(0..(b.len() - data) / 4) * 4;
                let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -0.0][r.random_range(0..5)];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => {
            let i = r.random_range(0..b.len());
            let j = (i + r.random_range(1..64)).min(b.len());
            b.drain(i..j);
        }
    }
}

fn serialise(s: &Seed) -> Vec<u8> {
    let h = s.header.to_string();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&s.data);
    out
}

/// Input `i` of `target`: a seed with 1–4 structural mutations, then maybe byte
/// mutations; now and then pure random bytes.
fn input(target: &str, i: u64) -> Vec<u8> {
    let salt = target.bytes().fold(0xcbf29ce484222325u64, |h, c| (h ^ c as u64).wrapping_mul(0x100000001b3));
    let mut r = ChaCha8Rng::seed_from_u64(salt ^ i.wrapping_mul(0x9e3779b97f4a7c15));
    let s = seeds();
    if r.random_ratio(1, 50) {
        let n = r.random_range(0..64);
        return (0..n).map(|_| r.random()).collect();
    }
    let mut seed = if target == "load_checkpoint" && r.random_bool(0.6) {
        s.checkpoint.clone()
    } else {
        // Smaller seeds more often: cheaper, and the same code paths.
        let k = [0, 0, 0, 1, 1, 1, 2, 3, 4, 5][r.random_range(0..10)];
        s.files[k].clone()
    };
    let structural = r.random_range(0..5);
    for _ in 0..structural {
        mutate_header(&mut seed.header, &mut r);
    }
    let mut b = serialise(&seed);
    let bytewise = if structural == 0 { r.random_range(1..4) } else { r.random_range(0..2) };
    for _ in 0..bytewise {
        if b.len() > 8 {
            mutate_bytes(&mut b, &mut r);
        }
    }
    b
}

// ---------------------------------------------------------------- running

const TARGETS: &[&str] = &["read", "load_model", "load_weights", "load_checkpoint"];

#[derive(Default, Debug)]
struct Tally {
    inputs: u64,
    ok: u64,
    errors: u64,
    max_peak_ratio: f64,
    failures: Vec<String>,
}

fn run_one(target: &str, bytes: Vec<u8>, models: &mut [Model], i: u64) -> std::result::Result<bool, String> {
    let path = Path::new("fuzz.safetensors");
    let strict = i % 2 == 0;
    let m = (i % models.len() as u64) as usize;
    let r = catch_unwind(AssertUnwindSafe(|| match target {
        "read" => safetensors_file::from_bytes(path, bytes).map(|c| {
            // Reading every tensor is part of the contract (values() bounds).
            for name in c.tensors.keys() {
                let _ = c.values(path, name);
            }
        }),
        "load_model" => io::load_model_bytes(path, bytes).map(|_| ()),
        "load_weights" => io::load_weights_bytes(&mut models[m], path, bytes, LoadOptions { strict }).map(|_| ()),
        "load_checkpoint" => io::load_checkpoint_bytes(path, bytes).map(|_| ()),
        _ => unreachable!(),
    }));
    match r {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) => {
            // A typed error must name the file and say something.
            let s = e.to_string();
            if s.is_empty() {
                return Err("empty error message".into());
            }
            Ok(false)
        }
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("panic: {}", msg.unwrap_or_default()))
        }
    }
}

fn fuzz(target: &str, start: u64, iters: u64, verbose: bool) -> Tally {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = seeds();
    let mut models: Vec<Model> = s.specs.iter().map(|j| Model::from_json(j, 1).unwrap()).collect();
    let mut t = Tally::default();
    let prev_hook = std::sync::Arc::new(std::panic::take_hook());
    let inner = prev_hook.clone();
    // Silent while a target runs (its panics are caught and reported), loud elsewhere.
    std::panic::set_hook(Box::new(move |info| {
        if !REFUSING.load(Ordering::Relaxed) {
            inner(info)
        }
    }));
    let t0 = std::time::Instant::now();
    for i in start..start + iters {
        let bytes = input(target, i);
        let len = bytes.len();
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        REFUSED.store(0, Ordering::Relaxed);
        REFUSING.store(true, Ordering::Relaxed);
        let r = run_one(target, bytes, &mut models, i);
        REFUSING.store(false, Ordering::Relaxed);
        // The input itself was allocated before `base`; it is not part of the peak.
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        let refused = REFUSED.load(Ordering::Relaxed);
        t.inputs += 1;
        t.max_peak_ratio = t.max_peak_ratio.max(peak as f64 / (len.max(1)) as f64);
        let fail = match r {
            Err(e) => Some(e),
            _ if refused > 0 => Some(format!("asked for {refused} bytes in one allocation (input {len} bytes)")),
            _ if peak > budget(len) => Some(format!("peak {peak} bytes for a {len}-byte input (budget {})", budget(len))),
            Ok(true) => {
                t.ok += 1;
                None
            }
            Ok(false) => {
                t.errors += 1;
                None
            }
        };
        if let Some(f) = fail {
            let line = format!("{target} input {i}: {f}");
            if verbose {
                eprintln!("{line}");
            }
            if t.failures.len() < 20 {
                t.failures.push(line);
            }
        }
        if verbose && (i + 1 - start) % 100_000 == 0 {
            eprintln!("{target}: {} inputs, {:.0?}, ok {}, errors {}, failures {}", i + 1 - start, t0.elapsed(), t.ok, t.errors, t.failures.len());
        }
    }
    let _ = std::panic::take_hook();
    if let Ok(h) = std::sync::Arc::try_unwrap(prev_hook) {
        std::panic::set_hook(h);
    }
    if verbose {
        eprintln!(
            "{target}: DONE {} inputs (from {start}) in {:.1?}: ok {}, typed errors {}, failures {}, max peak/input {:.2}",
            t.inputs,
            t0.elapsed(),
            t.ok,
            t.errors,
            t.failures.len(),
            t.max_peak_ratio
        );
    }
    t
}

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

#[test]
fn fuzz_quick() {
    for target in TARGETS {
        let t = fuzz(target, 0, 2_500, false);
        assert!(t.failures.is_empty(), "{target}: {:#?}", t.failures);
        assert!(t.ok > 0 || *target == "load_checkpoint" || *target == "load_weights", "{target}: no input loaded: {t:?}");
        assert!(t.errors > 0, "{target}: no input was rejected");
    }
}

#[test]
#[ignore]
fn fuzz_long() {
    let iters = env_u64("FUZZ_ITERS", 1_000_000);
    let start = env_u64("FUZZ_START", 0);
    let only = std::env::var("FUZZ_TARGET").ok();
    let mut failed = Vec::new();
    for target in TARGETS.iter().filter(|t| only.as_deref().is_none_or(|o| o == **t)) {
        failed.extend(fuzz(target, start, iters, true).failures);
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Writes input `FUZZ_START` of `FUZZ_TARGET` to `FUZZ_OUT` (to keep it as a regression file).
#[test]
#[ignore]
fn fuzz_dump() {
    let (Ok(t), Ok(out)) = (std::env::var("FUZZ_TARGET"), std::env::var("FUZZ_OUT")) else { return };
    std::fs::write(PathBuf::from(out), input(&t, env_u64("FUZZ_START", 0))).unwrap();
}

// ---------------------------------------------------------------- regressions

/// Runs one hand-made input through every target under the same guard as the fuzzer.
fn guarded(bytes: Vec<u8>) -> Vec<String> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = seeds();
    let mut models: Vec<Model> = s.specs.iter().map(|j| Model::from_json(j, 1).unwrap()).collect();
    let mut out = Vec::new();
    for target in TARGETS {
        let len = bytes.len();
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        REFUSED.store(0, Ordering::Relaxed);
        REFUSING.store(true, Ordering::Relaxed);
        let r = run_one(target, bytes.clone(), &mut models, 0);
        REFUSING.store(false, Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        let refused = REFUSED.load(Ordering::Relaxed);
        if let Err(e) = r {
            out.push(format!("{target}: {e}"));
        }
        if refused > 0 {
            out.push(format!("{target}: asked for {refused} bytes in one allocation"));
        }
        if peak > budget(len) {
            out.push(format!("{target}: peak {peak} bytes for {len}"));
        }
    }
    out
}

/// The small model file with its spec's `fc` node given `config`.
fn with_fc_config(config: Value) -> Vec<u8> {
    let mut seed = seeds().files[0].clone();
    let mut spec: Value = serde_json::from_str(seed.header["__metadata__"]["ferronet.spec"].as_str().unwrap()).unwrap();
    for n in spec["nodes"].as_array_mut().unwrap() {
        if n["name"] == "fc" {
            n["config"] = config.clone();
        }
    }
    seed.header["__metadata__"]["ferronet.spec"] = json!(spec.to_string());
    serialise(&seed)
}

#[test]
fn a_spec_with_a_huge_input_is_rejected_before_laying_out_pooling_windows() {
    // Found by fuzz_quick: MaxPool2d on an input of 2^32 rows asked for 64 GiB and aborted.
    let mut seed = seeds().files[0].clone();
    let text = seed.header["__metadata__"]["ferronet.spec"].as_str().unwrap().replace("[1,6,6]", "[1,4294967296,6]");
    seed.header["__metadata__"]["ferronet.spec"] = json!(text);
    let f = guarded(serialise(&seed));
    assert!(f.is_empty(), "{f:#?}");
    let err = io::load_model_bytes(Path::new("x.safetensors"), serialise(&seed)).err().unwrap().to_string();
    assert!(err.contains("far larger than"), "{err}");
    // A file lacking a tensor still says which.
    let mut seed = seeds().files[0].clone();
    seed.header.as_object_mut().unwrap().remove("fc.bias");
    seed.header.as_object_mut().unwrap().remove("fc.weight");
    let n: usize = seed.header.as_object().unwrap().values().filter_map(|t| t["data_offsets"][1].as_u64()).max().unwrap() as usize;
    seed.data.truncate(n);
    let err = io::load_model_bytes(Path::new("x.safetensors"), serialise(&seed)).err().unwrap().to_string();
    assert!(err.contains("lacks 2 tensor(s)"), "{err}");
}

#[test]
fn a_spec_declaring_huge_layers_is_rejected_before_allocating_them() {
    for out in [100_000_000u64, 1 << 40, u64::MAX] {
        let f = guarded(with_fc_config(json!({ "outFeatures": out })));
        assert!(f.is_empty(), "outFeatures {out}: {f:#?}");
    }
}

#[test]
fn a_single_channel_conv_with_huge_out_channels_allocates_nothing_when_built() {
    // Found by fuzz_quick: Conv2d on one input channel sized its padded-weight buffer
    // (as large as the weight) when built, before the file's tensors were compared.
    let mut seed = seeds().files[0].clone();
    let text = seed.header["__metadata__"]["ferronet.spec"].as_str().unwrap().replace("\"outChannels\":2", "\"outChannels\":4294967296");
    seed.header["__metadata__"]["ferronet.spec"] = json!(text);
    let f = guarded(serialise(&seed));
    assert!(f.is_empty(), "{f:#?}");
}
