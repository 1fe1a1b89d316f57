//! A checkpoint: a model file plus the trainer's state, so that `fit` continues
//! exactly where it stopped. The optimizer's buffers are tensors named
//! `optimizer.<param>.<slot>` (PyTorch's slot names, the parameter's shape and
//! layout); counters, the shuffle stream's position, the schedule and the model's
//! dropout-step counter are JSON under `ferronet.trainer`, floats as their bits.
//! A checkpoint also loads as a model file (`load_model` skips the optimizer tensors).

use super::model_file::{self, base_metadata, model_tensors, Metadata};
use super::safetensors_file::{self, Tensor};
use crate::error::{Error, Result};
use crate::graph::Model;
use crate::optim::OptimizerState;
use crate::train::{Trainer, TrainerState};
use serde_json::{json, Value};
use std::path::Path;

pub const TRAINER_KEY: &str = "ferronet.trainer";
const PREFIX: &str = "optimizer.";

/// What `load_checkpoint` returns: the model, the file's metadata, and the state to
/// hand to `Trainer::restore_state`.
pub struct Checkpoint {
    pub model: Model,
    pub metadata: Metadata,
    pub state: TrainerState,
}

/// Saves `model` and `trainer` (which trains it) to `path`, atomically.
pub fn save_checkpoint(model: &Model, trainer: &Trainer, path: &Path, user: &Metadata) -> Result<()> {
    let state = trainer.export_state();
    let infos = model.store().tensors();
    let mut tensors = model_tensors(model);
    for (id, slot, values) in &state.optimizer.slots {
        let info = &infos[*id];
        tensors.push((format!("{PREFIX}{}.{slot}", info.name), Tensor::f32(&info.shape, &model.tensor_to_torch(*id, values))));
    }
    let mut metadata = base_metadata(model, "checkpoint", user)?;
    metadata.insert(TRAINER_KEY.into(), state_json(&state, model.train_steps()).to_string());
    model_file::write(path, &tensors, &metadata)
}

fn state_json(s: &TrainerState, model_steps: u64) -> Value {
    json!({
        "version": 1,
        "epochsDone": s.epochs_done,
        "seed": s.seed.to_string(),
        "shuffleWordPos": s.shuffle_word_pos.to_string(),
        "modelTrainSteps": model_steps.to_string(),
        "optimizer": { "kind": s.optimizer.kind, "steps": s.optimizer.steps.to_string(), "lrBits": s.optimizer_lr.to_bits() },
        "lrBits": s.lr.to_bits().to_string(),
        "gradNormBits": s.grad_norm.to_bits().to_string(),
        "schedule": s.schedule.map(|st| st.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
        "plateauExternal": s.plateau_external,
    })
}

/// Reads a checkpoint: the model (weights, buffers, dropout step) and the trainer state.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    load_checkpoint_contents(path, safetensors_file::read(path)?)
}

/// `load_checkpoint` of a file's bytes already in memory; `path` only names it in errors.
pub fn load_checkpoint_bytes(path: &Path, bytes: Vec<u8>) -> Result<Checkpoint> {
    load_checkpoint_contents(path, safetensors_file::from_bytes(path, bytes)?)
}

fn load_checkpoint_contents(path: &Path, contents: safetensors_file::Contents) -> Result<Checkpoint> {
    let mut model = model_file::model_from_contents(path, &contents)?;
    let fail = |m: String| Error::model_file(path, m);
    let Some(text) = contents.metadata.get(TRAINER_KEY) else {
        return Err(fail(format!(
            "is a model file, not a checkpoint (no `{TRAINER_KEY}` in its __metadata__): load it with Net.load, or save checkpoints with trainer.save"
        )));
    };
    let v: Value = serde_json::from_str(text).map_err(|e| fail(format!("has a `{TRAINER_KEY}` that is not JSON: {e}")))?;
    let field = |name: &str| fail(format!("has a `{TRAINER_KEY}` whose field `{name}` is missing or malformed"));
    let int = |name: &str| -> Result<u64> { v[name].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| field(name)) };
    if v["version"].as_u64() != Some(1) {
        return Err(field("version"));
    }
    let shuffle_word_pos: u128 = v["shuffleWordPos"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| field("shuffleWordPos"))?;
    let o = &v["optimizer"];
    let kind = o["kind"].as_str().ok_or_else(|| field("optimizer.kind"))?.to_string();
    let steps = o["steps"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| field("optimizer.steps"))?;
    let optimizer_lr = o["lrBits"].as_u64().and_then(|b| u32::try_from(b).ok()).map(f32::from_bits).ok_or_else(|| field("optimizer.lrBits"))?;
    let schedule = match &v["schedule"] {
        Value::Null => None,
        Value::Array(a) if a.len() == 5 => {
            let mut st = [0u64; 5];
            for (d, x) in st.iter_mut().zip(a) {
                *d = x.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| field("schedule"))?;
            }
            Some(st)
        }
        _ => return Err(field("schedule")),
    };
    let infos = model.store().tensors().to_vec();
    let mut slots = Vec::new();
    for name in contents.tensors.keys().filter(|n| n.starts_with(PREFIX)) {
        let rest = &name[PREFIX.len()..];
        let found = rest.rsplit_once('.').and_then(|(param, slot)| infos.iter().position(|i| i.name == param).map(|t| (t, slot)));
        let Some((t, slot)) = found else {
            return Err(fail(format!("has optimizer state `{name}` for a tensor the model does not have")));
        };
        let entry = &contents.tensors[name];
        if entry.shape != infos[t].shape {
            return Err(fail(format!("tensor `{name}` has shape {:?} but `{}` is {:?}", entry.shape, infos[t].name, infos[t].shape)));
        }
        let values = contents.values(path, name)?;
        if let Some(j) = values.iter().position(|x| !x.is_finite()) {
            return Err(fail(format!("tensor `{name}` holds {} at index {j}", values[j])));
        }
        slots.push((t, slot.to_string(), model.tensor_from_torch(t, &values)));
    }
    let state = TrainerState {
        epochs_done: v["epochsDone"].as_u64().ok_or_else(|| field("epochsDone"))? as usize,
        seed: int("seed")?,
        shuffle_word_pos,
        optimizer: OptimizerState { kind, steps, slots },
        optimizer_lr,
        lr: f64::from_bits(int("lrBits")?),
        grad_norm: f64::from_bits(int("gradNormBits")?),
        schedule,
        plateau_external: v["plateauExternal"].as_bool().ok_or_else(|| field("plateauExternal"))?,
    };
    model.set_train_step(int("modelTrainSteps")?);
    Ok(Checkpoint { model, metadata: contents.metadata, state })
}
