//! A model file: every tensor of the model under its PyTorch `state_dict` name and
//! shape (F32; counters such as BatchNorm's `num_batches_tracked` as I64, as PyTorch
//! writes them), and the graph spec in `__metadata__`, so `load_model` rebuilds the
//! model from the file alone and `safetensors.torch.load_file` + `load_state_dict`
//! load it into the same architecture in PyTorch.

use super::atomic::write_atomic;
use super::safetensors_file::{self, Contents, Tensor};
use crate::error::{Error, Result};
use crate::graph::Model;
use crate::ops::ParamKind;
use std::collections::BTreeMap;
use std::path::Path;

/// String metadata of a file's header (`__metadata__`).
pub type Metadata = BTreeMap<String, String>;

/// The graph spec (JSON, docs/graph-spec.md).
pub const SPEC_KEY: &str = "ferronet.spec";
/// The seed the model was built with (its dropout streams use it).
pub const SEED_KEY: &str = "ferronet.seed";
/// "model" or "checkpoint".
pub const KIND_KEY: &str = "ferronet.kind";
pub const VERSION_KEY: &str = "ferronet.version";

/// How `load_weights` treats a file.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Tensors in the file that the model does not have are an error (PyTorch's
    /// `strict=True`); missing tensors always are.
    pub strict: bool,
}

/// The model's tensors as a file holds them.
pub(crate) fn model_tensors(model: &Model) -> Vec<(String, Tensor)> {
    let infos = model.store().tensors();
    model
        .params()
        .into_iter()
        .zip(infos)
        .map(|(p, info)| {
            let t = match info.kind {
                ParamKind::Counter => Tensor::i64(&p.shape, &p.data.iter().map(|&v| v as i64).collect::<Vec<_>>()),
                _ => Tensor::f32(&p.shape, &p.data),
            };
            (p.name, t)
        })
        .collect()
}

/// The header every ferronet file has, plus the caller's keys.
pub(crate) fn base_metadata(model: &Model, kind: &str, user: &Metadata) -> Result<Metadata> {
    let mut m = Metadata::new();
    for (k, v) in user {
        if k.starts_with("ferronet.") || k == "format" {
            return Err(Error::config(
                &format!("metadata.{k}"),
                "is reserved (keys `format` and `ferronet.*` are written by ferronet)",
            ));
        }
        m.insert(k.clone(), v.clone());
    }
    // safetensors.torch writes and checks "pt" here.
    m.insert("format".into(), "pt".into());
    m.insert(SPEC_KEY.into(), model.spec().to_json());
    m.insert(SEED_KEY.into(), model.seed().to_string());
    m.insert(KIND_KEY.into(), kind.into());
    m.insert(VERSION_KEY.into(), env!("CARGO_PKG_VERSION").into());
    Ok(m)
}

pub(crate) fn write(path: &Path, tensors: &[(String, Tensor)], metadata: &Metadata) -> Result<()> {
    let bytes = safetensors_file::encode(path, tensors, metadata)?;
    write_atomic(path, &bytes).map_err(|e| {
        Error::model_file(path, format!("could not be written ({e}); the previous file, if there was one, is unchanged"))
    })
}

/// Saves `model` (weights, buffers, spec) to `path`, atomically.
pub fn save_model(model: &Model, path: &Path, user: &Metadata) -> Result<()> {
    let metadata = base_metadata(model, "model", user)?;
    write(path, &model_tensors(model), &metadata)
}

/// Rebuilds a model from a file ferronet saved (a model file or a checkpoint);
/// returns it with the file's metadata.
pub fn load_model(path: &Path) -> Result<(Model, Metadata)> {
    load_model_contents(path, safetensors_file::read(path)?)
}

/// `load_model` of a file's bytes already in memory; `path` only names it in errors.
pub fn load_model_bytes(path: &Path, bytes: Vec<u8>) -> Result<(Model, Metadata)> {
    load_model_contents(path, safetensors_file::from_bytes(path, bytes)?)
}

fn load_model_contents(path: &Path, contents: Contents) -> Result<(Model, Metadata)> {
    let model = model_from_contents(path, &contents)?;
    Ok((model, contents.metadata))
}

pub(crate) fn model_from_contents(path: &Path, contents: &Contents) -> Result<Model> {
    let Some(spec) = contents.metadata.get(SPEC_KEY) else {
        return Err(Error::model_file(
            path,
            format!(
                "has no `{SPEC_KEY}` in its __metadata__, so it does not say which model it holds (a state_dict saved by PyTorch?): \
                 build the same architecture in ferronet and load the weights into it (net.loadWeights)"
            ),
        ));
    };
    let seed = match contents.metadata.get(SEED_KEY) {
        Some(s) => s.parse::<u64>().map_err(|_| Error::model_file(path, format!("has `{SEED_KEY}` = {s:?}, not an integer")))?,
        None => 0,
    };
    // Every tensor of the model must be in the file with its shape, so the spec cannot
    // need more values than the file's tensors hold: checked before allocating them.
    // With slack (twice, plus 64 Ki), so that a file lacking a tensor or two still gets
    // the message naming them.
    let held = contents.tensors.values().fold(0usize, |a, e| a.saturating_add(e.shape.iter().fold(1usize, |p, &d| p.saturating_mul(d))));
    let mut model = Model::from_json_within(spec, seed, held.saturating_mul(2).saturating_add(1 << 16))
        .map_err(|e| Error::model_file(path, format!("holds a model spec that does not compile: {e}")))?;
    apply_weights(path, contents, &mut model, LoadOptions { strict: true }, Some("optimizer."))?;
    Ok(model)
}

/// Loads the tensors of any safetensors file (one PyTorch saved with
/// `safetensors.torch.save_file(model.state_dict(), ...)`, or one of ours) into
/// `model`, by `state_dict` name. All-or-nothing: on any error the model is unchanged.
pub fn load_weights(model: &mut Model, path: &Path, options: LoadOptions) -> Result<Metadata> {
    load_weights_contents(model, path, safetensors_file::read(path)?, options)
}

/// `load_weights` of a file's bytes already in memory; `path` only names it in errors.
pub fn load_weights_bytes(model: &mut Model, path: &Path, bytes: Vec<u8>, options: LoadOptions) -> Result<Metadata> {
    load_weights_contents(model, path, safetensors_file::from_bytes(path, bytes)?, options)
}

fn load_weights_contents(model: &mut Model, path: &Path, contents: Contents, options: LoadOptions) -> Result<Metadata> {
    apply_weights(path, &contents, model, options, Some("optimizer."))?;
    Ok(contents.metadata)
}

/// Checks every tensor (present, shape, dtype, finite), then writes them all.
/// Names starting with `ignore_prefix` (a checkpoint's optimizer state) are skipped.
pub(crate) fn apply_weights(
    path: &Path,
    contents: &Contents,
    model: &mut Model,
    options: LoadOptions,
    ignore_prefix: Option<&str>,
) -> Result<()> {
    let fail = |m: String| Error::model_file(path, m);
    let infos = model.store().tensors().to_vec();
    let mut missing = Vec::new();
    let mut values = Vec::with_capacity(infos.len());
    for (t, info) in infos.iter().enumerate() {
        let Some(entry) = contents.tensors.get(&info.name) else {
            missing.push(info.name.clone());
            continue;
        };
        let shape_ok = entry.shape == info.shape || (info.kind == ParamKind::Counter && entry.shape.iter().product::<usize>() == 1);
        if !shape_ok {
            return Err(fail(format!(
                "tensor `{}` has shape {:?} but the model's is {:?}",
                info.name, entry.shape, info.shape
            )));
        }
        let v = contents.values(path, &info.name)?;
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            return Err(fail(format!("tensor `{}` holds {} at index {j}: weights must be finite", info.name, v[j])));
        }
        values.push((t, v));
    }
    if !missing.is_empty() {
        return Err(fail(format!("lacks {} tensor(s) the model has: {}", missing.len(), name_list(&missing))));
    }
    if options.strict {
        let unexpected: Vec<&String> = contents
            .tensors
            .keys()
            .filter(|n| !infos.iter().any(|i| &i.name == *n) && !ignore_prefix.is_some_and(|p| n.starts_with(p)))
            .collect();
        if !unexpected.is_empty() {
            return Err(fail(format!(
                "has {} tensor(s) the model does not: {} (a different architecture?)",
                unexpected.len(),
                name_list(&unexpected)
            )));
        }
    }
    // Tied tensors (weight tying) are one tensor under two names: the file must hold
    // the same values under both.
    for (t, v) in &values {
        if let Some(owner) = infos[*t].tied {
            let theirs = values.iter().find(|(o, _)| *o == owner).map(|(_, v)| v);
            if theirs.is_some_and(|w| w != v) {
                return Err(fail(format!(
                    "tensors `{}` and `{}` are tied (one tensor: {} has tiedTo) but the file holds different values for them",
                    infos[*t].name, infos[owner].name, infos[*t].name.rsplit_once('.').map_or("", |p| p.0)
                )));
            }
        }
    }
    for (t, v) in values {
        if infos[t].tied.is_none() {
            model.set_param(t, &v).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

/// "`a`, `b`, …": the first eight names, for messages.
fn name_list<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{}`", n.as_ref())).collect();
    format!("{}{}", shown.join(", "), if names.len() > 8 { ", …" } else { "" })
}
