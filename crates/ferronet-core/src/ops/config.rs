//! Reading an op's JSON config: serde with PyTorch's defaults, unknown fields
//! rejected, every error naming the node and the field.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Parses node `name`'s config (`null` or absent = every default).
pub fn parse<T: DeserializeOwned>(name: &str, kind: &str, config: &serde_json::Value) -> Result<T> {
    let value = if config.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        config.clone()
    };
    serde_json::from_value(value).map_err(|e| {
        Error::config(
            &format!("nodes[{name}].config"),
            format!("{name} ({kind}): {e}"),
        )
    })
}

/// A size given as one number (used for both dimensions) or as [h, w], as PyTorch's
/// `int or tuple` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pair(pub usize, pub usize);

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(usize),
            Two([usize; 2]),
        }
        match Either::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a non-negative integer or a pair [h, w]")
        })? {
            Either::One(n) => Ok(Pair(n, n)),
            Either::Two([h, w]) => Ok(Pair(h, w)),
        }
    }
}

pub fn default_true() -> bool {
    true
}

/// A required size field (declared `Option<Pair>` with `#[serde(default)]`, since a
/// missing `Pair` would otherwise be reported as a malformed one).
pub fn required(name: &str, kind: &str, field: &str, v: Option<Pair>) -> Result<Pair> {
    v.ok_or_else(|| {
        Error::config(&format!("nodes[{name}].config.{field}"), format!("{name} ({kind}): missing field `{field}`"))
    })
}

/// A `dim` counted as PyTorch counts it with the batch as dimension 0 (negative from
/// the end) → the per-sample axis it names. The batch dimension itself is refused:
/// ops here work on one sample at a time.
pub fn resolve_dim(name: &str, kind: &str, dim: i64, rank: usize) -> crate::error::Result<usize> {
    let full = rank as i64 + 1;
    let field = format!("nodes[{name}].config.dim");
    if dim < -full || dim >= full {
        return Err(Error::config(
            &field,
            format!("{name} ({kind}): dim {dim} is out of range for a {full}-d batch (per-sample rank {rank}, batch = dim 0); use -{full}..={}", full - 1),
        ));
    }
    let d = if dim < 0 { dim + full } else { dim };
    if d == 0 {
        return Err(Error::config(&field, format!("{name} ({kind}): dim {dim} is the batch dimension, which is not supported")));
    }
    Ok(d as usize - 1)
}
