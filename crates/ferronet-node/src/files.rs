//! Model files and checkpoints: saving and loading run as AsyncTasks (disk and
//! encoding off the JS thread); the core does the format and its checks.

use ferronet_core::io::{self, Checkpoint, LoadOptions, Metadata};
use ferronet_core::{Model, TrainerState};
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Result, Task};
use napi_derive::napi;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crate::error::{coded, guard, to_js};
use crate::net::{try_lock, NativeNet, SharedModel};
use crate::trainer::NativeTrainer;

fn to_metadata(m: Option<HashMap<String, String>>) -> Metadata {
    m.unwrap_or_default().into_iter().collect()
}

pub struct SaveTask {
    model: SharedModel,
    trainer: Option<std::sync::Arc<Mutex<ferronet_core::Trainer>>>,
    path: PathBuf,
    metadata: Metadata,
}

impl Task for SaveTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> Result<()> {
        guard("save", || {
            let model = try_lock(&self.model)?;
            match &self.trainer {
                None => io::save_model(&model, &self.path, &self.metadata).map_err(to_js),
                Some(t) => {
                    let t = t.lock().unwrap_or_else(|p| p.into_inner());
                    io::save_checkpoint(&model, &t, &self.path, &self.metadata).map_err(to_js)
                }
            }
        })
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

pub struct LoadTask {
    path: PathBuf,
}

impl Task for LoadTask {
    type Output = (Model, Metadata);
    type JsValue = NativeNet;
    fn compute(&mut self) -> Result<Self::Output> {
        guard("load", || io::load_model(&self.path).map_err(to_js))
    }
    fn resolve(&mut self, env: Env, (model, meta): Self::Output) -> Result<NativeNet> {
        let net = NativeNet::from_model(model, meta.into_iter().collect());
        net.account_now(&env);
        Ok(net)
    }
}

pub struct LoadWeightsTask {
    model: SharedModel,
    path: PathBuf,
    strict: bool,
}

impl Task for LoadWeightsTask {
    type Output = Metadata;
    type JsValue = HashMap<String, String>;
    fn compute(&mut self) -> Result<Metadata> {
        guard("loadWeights", || {
            let mut model = try_lock(&self.model)?;
            io::load_weights(&mut model, &self.path, LoadOptions { strict: self.strict }).map_err(to_js)
        })
    }
    fn resolve(&mut self, _env: Env, meta: Metadata) -> Result<Self::JsValue> {
        Ok(meta.into_iter().collect())
    }
}

#[napi]
impl NativeNet {
    /// Writes weights, buffers and spec to a safetensors file, atomically.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save(&self, path: String, metadata: Option<HashMap<String, String>>) -> AsyncTask<SaveTask> {
        AsyncTask::new(SaveTask { model: self.model.clone(), trainer: None, path: path.into(), metadata: to_metadata(metadata) })
    }

    /// Rebuilds a net from a file ferronet saved (model file or checkpoint).
    #[napi(ts_return_type = "Promise<NativeNet>")]
    pub fn load(path: String) -> AsyncTask<LoadTask> {
        AsyncTask::new(LoadTask { path: path.into() })
    }

    /// Loads a safetensors state_dict (e.g. saved by PyTorch) into this net, by name;
    /// resolves with the file's metadata. All or nothing.
    #[napi(ts_return_type = "Promise<Record<string, string>>")]
    pub fn load_weights(&self, path: String, strict: bool) -> AsyncTask<LoadWeightsTask> {
        AsyncTask::new(LoadWeightsTask { model: self.model.clone(), path: path.into(), strict })
    }

    /// The `__metadata__` of the file this net was loaded from ({} otherwise).
    #[napi(getter)]
    pub fn file_metadata(&self) -> HashMap<String, String> {
        self.file_metadata.clone()
    }

    /// Copies every tensor and the dropout step of `other` (same architecture).
    #[napi(catch_unwind)]
    pub fn assign_from(&self, other: &NativeNet) -> Result<()> {
        if std::sync::Arc::ptr_eq(&self.model, &other.model) {
            return Ok(());
        }
        if self.spec() != other.spec() {
            return Err(coded("ERR_MODEL_FILE", "the checkpoint holds another architecture than this net (their specs differ)"));
        }
        let src = try_lock(&other.model)?;
        try_lock(&self.model)?.assign_from(&src).map_err(to_js)
    }
}

/// A checkpoint read from disk: its net (taken once) and its trainer state (taken
/// once by `NativeTrainer.restore`).
#[napi]
pub struct NativeCheckpoint {
    model: Mutex<Option<Model>>,
    state: Mutex<Option<TrainerState>>,
    metadata: HashMap<String, String>,
}

pub struct LoadCheckpointTask {
    path: PathBuf,
}

impl Task for LoadCheckpointTask {
    type Output = Checkpoint;
    type JsValue = NativeCheckpoint;
    fn compute(&mut self) -> Result<Checkpoint> {
        guard("resume", || io::load_checkpoint(&self.path).map_err(to_js))
    }
    fn resolve(&mut self, _env: Env, c: Checkpoint) -> Result<NativeCheckpoint> {
        Ok(NativeCheckpoint {
            model: Mutex::new(Some(c.model)),
            state: Mutex::new(Some(c.state)),
            metadata: c.metadata.into_iter().collect(),
        })
    }
}

#[napi]
impl NativeCheckpoint {
    #[napi(ts_return_type = "Promise<NativeCheckpoint>")]
    pub fn load(path: String) -> AsyncTask<LoadCheckpointTask> {
        AsyncTask::new(LoadCheckpointTask { path: path.into() })
    }

    #[napi(getter)]
    pub fn metadata(&self) -> HashMap<String, String> {
        self.metadata.clone()
    }

    /// The checkpoint's net (once).
    #[napi(catch_unwind)]
    pub fn take_net(&self, env: Env) -> Result<NativeNet> {
        let model = self.model.lock().unwrap_or_else(|p| p.into_inner()).take();
        let model = model.ok_or_else(|| coded("ERR_MODEL_FILE", "this checkpoint's net was already taken"))?;
        let net = NativeNet::from_model(model, self.metadata.clone());
        net.account_now(&env);
        Ok(net)
    }
}

#[napi]
impl NativeTrainer {
    /// Writes a checkpoint (the net, optimizer state, schedule, random streams,
    /// epoch), atomically.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save(&self, path: String, metadata: Option<HashMap<String, String>>) -> AsyncTask<SaveTask> {
        AsyncTask::new(SaveTask {
            model: self.model.clone(),
            trainer: Some(self.trainer.clone()),
            path: path.into(),
            metadata: to_metadata(metadata),
        })
    }

    /// Continues from `checkpoint`'s trainer state (once).
    #[napi(catch_unwind)]
    pub fn restore(&self, checkpoint: &NativeCheckpoint) -> Result<()> {
        if self.running.load(Ordering::SeqCst) {
            return Err(coded("ERR_BUSY", "the trainer is running a fit() or evaluate(); await it first"));
        }
        let state = checkpoint.state.lock().unwrap_or_else(|p| p.into_inner()).take();
        let state = state.ok_or_else(|| coded("ERR_MODEL_FILE", "this checkpoint's trainer state was already used"))?;
        let mut t = self.trainer.lock().unwrap_or_else(|p| p.into_inner());
        let lens: Vec<usize> = try_lock(&self.model)?.store().tensors().iter().map(|i| i.len).collect();
        for (id, slot, v) in &state.optimizer.slots {
            if lens.get(*id) != Some(&v.len()) {
                return Err(coded("ERR_MODEL_FILE", format!("optimizer state `{slot}` of tensor {id} does not fit this net")));
            }
        }
        t.restore_state(state).map_err(|m| coded("ERR_MODEL_FILE", format!("the checkpoint {m}")))
    }
}
