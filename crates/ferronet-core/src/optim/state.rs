//! An optimizer's state as data, for checkpoints: its step count and its per-tensor
//! buffers by slot name (PyTorch's: `exp_avg`, `exp_avg_sq`, `momentum_buffer`,
//! `square_avg`, `grad_avg`), keyed by the tensor's id in the parameter store and
//! in the store's layout. Only buffers that exist are listed: PyTorch creates SGD's
//! momentum buffer at a tensor's first step, and so do we.

use super::Optimizer;

#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    /// "sgd", "adam", "adamw" or "rmsprop".
    pub kind: String,
    pub steps: u64,
    /// (tensor id, slot, values).
    pub slots: Vec<(usize, String, Vec<f32>)>,
}

pub(crate) fn export(slot: &str, buffers: &[Vec<f32>], present: impl Fn(usize) -> bool, out: &mut Vec<(usize, String, Vec<f32>)>) {
    for (id, b) in buffers.iter().enumerate() {
        if !b.is_empty() && present(id) {
            out.push((id, slot.to_string(), b.clone()));
        }
    }
}

pub(crate) fn import(buffers: &mut Vec<Vec<f32>>, id: usize, values: Vec<f32>) {
    if buffers.len() <= id {
        buffers.resize_with(id + 1, Vec::new);
    }
    buffers[id] = values;
}

impl Optimizer {
    pub fn kind(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(_) => "adam",
            Optimizer::AdamW(_) => "adamw",
            Optimizer::Rmsprop(_) => "rmsprop",
        }
    }

    /// Bytes of the optimizer's per-tensor buffers.
    pub fn state_bytes(&self) -> usize {
        4 * match self {
            Optimizer::Sgd(o) => o.state_floats(),
            Optimizer::Adam(o) => o.state_floats(),
            Optimizer::AdamW(o) => o.adam_ref().state_floats(),
            Optimizer::Rmsprop(o) => o.state_floats(),
        }
    }

    pub fn export_state(&self) -> OptimizerState {
        let (steps, slots) = match self {
            Optimizer::Sgd(o) => (0, o.export_slots()),
            Optimizer::Adam(o) => (o.steps(), o.export_slots()),
            Optimizer::AdamW(o) => (o.steps(), o.adam_ref().export_slots()),
            Optimizer::Rmsprop(o) => (0, o.export_slots()),
        };
        OptimizerState { kind: self.kind().to_string(), steps, slots }
    }

    /// Replaces the state with `state` (from `export_state` of the same kind of
    /// optimizer). The caller checks tensor ids and lengths against the model.
    pub fn import_state(&mut self, state: OptimizerState) -> std::result::Result<(), String> {
        if state.kind != self.kind() {
            return Err(format!("holds {} optimizer state but this trainer's optimizer is {}", state.kind, self.kind()));
        }
        let r = match self {
            Optimizer::Sgd(o) => o.import_slots(state.slots),
            Optimizer::Adam(o) => o.import_slots(state.steps, state.slots),
            Optimizer::AdamW(o) => o.adam_mut().import_slots(state.steps, state.slots),
            Optimizer::Rmsprop(o) => o.import_slots(state.slots),
        };
        r
    }
}
