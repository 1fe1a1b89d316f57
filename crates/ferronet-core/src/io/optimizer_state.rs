//! An optimizer's state on its own, as bytes (a step-API optimizer's save): a
//! safetensors image whose tensors are `optimizer.<param>.<slot>` (as in a
//! checkpoint: PyTorch's slot names, the parameter's shape and layout) and whose
//! `ferronet.optimizer` metadata holds the kind, the step count and the lr's bits.

use super::safetensors_file::{self, Tensor};
use crate::error::{Error, Result};
use crate::graph::Model;
use crate::optim::OptimizerState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const OPTIMIZER_KEY: &str = "ferronet.optimizer";
const PREFIX: &str = "optimizer.";
const WHERE: &str = "optimizer state";

/// `state` (with the lr in use) of an optimizer over `model`'s tensors, as bytes.
pub fn encode(model: &Model, state: &OptimizerState, lr: f32) -> Result<Vec<u8>> {
    let infos = model.store().tensors();
    let tensors: Vec<(String, Tensor)> = state
        .slots
        .iter()
        .map(|(id, slot, values)| {
            let info = &infos[*id];
            (format!("{PREFIX}{}.{slot}", info.name), Tensor::f32(&info.shape, &model.tensor_to_torch(*id, values)))
        })
        .collect();
    let mut metadata = BTreeMap::new();
    let header = json!({ "version": 1, "kind": state.kind, "steps": state.steps.to_string(), "lrBits": lr.to_bits() });
    metadata.insert(OPTIMIZER_KEY.to_string(), header.to_string());
    safetensors_file::encode(Path::new(WHERE), &tensors, &metadata)
}

/// The state and lr in `bytes` (from `encode`) for `model`, which must have the
/// tensors named there with their shapes; `kind` is the receiving optimizer's.
pub fn decode(model: &Model, bytes: &[u8], kind: &str) -> Result<(OptimizerState, f32)> {
    let path = Path::new(WHERE);
    let contents = safetensors_file::from_bytes(path, bytes.to_vec())?;
    let fail = |m: String| Error::model_file(path, m);
    let Some(text) = contents.metadata.get(OPTIMIZER_KEY) else {
        return Err(fail(format!("has no `{OPTIMIZER_KEY}` metadata: not bytes from optimizer.stateBytes")));
    };
    let v: Value = serde_json::from_str(text).map_err(|e| fail(format!("`{OPTIMIZER_KEY}` is not JSON: {e}")))?;
    let field = |name: &str| fail(format!("`{OPTIMIZER_KEY}` has a missing or malformed `{name}`"));
    if v["version"].as_u64() != Some(1) {
        return Err(field("version"));
    }
    let saved = v["kind"].as_str().ok_or_else(|| field("kind"))?;
    if saved != kind {
        return Err(fail(format!("holds {saved} state but this optimizer is {kind}")));
    }
    let steps = v["steps"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| field("steps"))?;
    let lr = v["lrBits"].as_u64().and_then(|b| u32::try_from(b).ok()).map(f32::from_bits).ok_or_else(|| field("lrBits"))?;
    let infos = model.store().tensors();
    let mut slots = Vec::new();
    for (name, entry) in &contents.tensors {
        let rest = name.strip_prefix(PREFIX).ok_or_else(|| fail(format!("has a tensor `{name}` that is not optimizer state")))?;
        let found = rest.rsplit_once('.').and_then(|(param, slot)| infos.iter().position(|i| i.name == param).map(|t| (t, slot)));
        let Some((t, slot)) = found else {
            return Err(fail(format!("has state `{name}` for a tensor this net does not have")));
        };
        if entry.shape != infos[t].shape {
            return Err(fail(format!("tensor `{name}` has shape {:?} but `{}` is {:?}", entry.shape, infos[t].name, infos[t].shape)));
        }
        let values = contents.values(path, name)?;
        if let Some(j) = values.iter().position(|x| !x.is_finite()) {
            return Err(fail(format!("tensor `{name}` holds {} at index {j}", values[j])));
        }
        slots.push((t, slot.to_string(), model.tensor_from_torch(t, &values)));
    }
    Ok((OptimizerState { kind: kind.to_string(), steps, slots }, lr))
}
