//! Reading and writing safetensors files, bounds-checked.
//!
//! The `safetensors` crate does the format's own checks: the header-size cap
//! (100 MB), UTF-8 and JSON, offsets in order, contiguous, inside the file and
//! covering it exactly, byte lengths matching shape × dtype without overflow. Here
//! we add what it leaves out or reports without a name: the file's size against the
//! claimed header before reading anything else, duplicate tensor names (JSON
//! objects may repeat a key; the crate would keep the last), and the tensor at
//! fault. Every problem is an `Error::ModelFile` naming the file.

use crate::error::{Error, Result};
pub use safetensors::tensor::Dtype;
use safetensors::tensor::{SafeTensorError, SafeTensors, View};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::ops::Range;
use std::path::Path;

/// The format's own cap on the JSON header.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A tensor to write: dtype, shape and little-endian bytes.
pub struct Tensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Tensor {
    pub fn f32(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor { dtype: Dtype::F32, shape: shape.to_vec(), bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
    pub fn i64(shape: &[usize], data: &[i64]) -> Tensor {
        Tensor { dtype: Dtype::I64, shape: shape.to_vec(), bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The whole file's bytes, header included.
pub fn encode(path: &Path, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| Error::model_file(path, format!("could not be encoded: {e}")))?;
    Ok(canonical_header(bytes))
}

/// The crate writes `__metadata__` from a HashMap, so its keys come out in a random
/// order and two saves of one model differ: the header is rewritten with every
/// object's keys sorted (serde_json's Map is a BTreeMap), padded with spaces to
/// 8 bytes as the format asks. Offsets count from the data section, so they stay.
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + n]) else {
        return bytes;
    };
    let mut text = header.to_string().into_bytes();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// One tensor of a file that was read: where its bytes are.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    range: Range<usize>,
}

/// A file read whole and validated.
pub struct Contents {
    pub metadata: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, Entry>,
    bytes: Vec<u8>,
}

impl Contents {
    /// Tensor `name` as f32 values (F32 as is; F64 and integer types converted).
    pub fn values(&self, path: &Path, name: &str) -> Result<Vec<f32>> {
        let e = &self.tensors[name];
        let b = &self.bytes[e.range.clone()];
        Ok(match e.dtype {
            Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::F64 => b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            Dtype::I64 => b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            Dtype::I32 => b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            other => {
                return Err(Error::model_file(
                    path,
                    format!("tensor `{name}` has dtype {other}; ferronet reads F32 (and F64, I64, I32) tensors"),
                ))
            }
        })
    }
}

/// Reads and validates `path`. Nothing is allocated from a size the file claims
/// before that size is checked against the file's real length.
pub fn read(path: &Path) -> Result<Contents> {
    let fail = |m: String| Error::model_file(path, m);
    let mut file = std::fs::File::open(path).map_err(|e| fail(format!("cannot be opened: {e}")))?;
    let size = file.metadata().map_err(|e| fail(format!("cannot be read: {e}")))?.len();
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(fail("is not a regular file".into()));
    }
    if size < 8 {
        return Err(short(path, size));
    }
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| fail(format!("cannot be read: {e}")))?;
    check_header_len(path, u64::from_le_bytes(len), size)?;
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&len);
    file.read_to_end(&mut bytes).map_err(|e| fail(format!("cannot be read: {e}")))?;
    from_bytes(path, bytes)
}

fn short(path: &Path, size: u64) -> Error {
    Error::model_file(
        path,
        format!("is {size} bytes long, too short for a safetensors file (it starts with an 8-byte header length)"),
    )
}

fn check_header_len(path: &Path, n: u64, size: u64) -> Result<()> {
    let fail = |m: String| Error::model_file(path, m);
    if n > MAX_HEADER_BYTES {
        return Err(fail(format!(
            "claims a {n}-byte header, over the format's {MAX_HEADER_BYTES}-byte limit: not a safetensors file, or a damaged one"
        )));
    }
    if 8 + n > size {
        return Err(fail(format!("is truncated: its header claims {n} bytes but the file has {} after the length", size - 8)));
    }
    Ok(())
}

/// Validates a whole file's `bytes` already in memory (what `read` does once it has
/// read them); `path` only names the file in errors. Allocates nothing beyond the
/// header's parse and the tensor table: the bytes are kept, not copied.
pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Contents> {
    let fail = |m: String| Error::model_file(path, m);
    let size = bytes.len() as u64;
    if size < 8 {
        return Err(short(path, size));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    check_header_len(path, n, size)?;
    let header = std::str::from_utf8(&bytes[8..8 + n as usize]).map_err(|e| fail(format!("has a header that is not UTF-8: {e}")))?;
    check_unique_keys(header).map_err(fail)?;
    // One parse and validation of the header (what `SafeTensors::deserialize` runs too);
    // the tensors' byte ranges follow from their offsets after it.
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fail(describe(e, header)))?;
    let base = 8 + n as usize;
    let tensors = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let (s, e) = info.data_offsets;
            (name, Entry { dtype: info.dtype, shape: info.shape.clone(), range: base + s..base + e })
        })
        .collect();
    let metadata = meta.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok(Contents { metadata, tensors, bytes })
}

fn describe(e: SafeTensorError, header: &str) -> String {
    match e {
        SafeTensorError::MetadataIncompleteBuffer => {
            "is truncated or has bytes past its last tensor: the tensors' data does not cover the file exactly".into()
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor `{name}` has data offsets that are out of order, overlap another tensor or lie outside the file")
        }
        SafeTensorError::TensorInvalidInfo => match tensor_with_bad_length(header) {
            Some(name) => format!("tensor `{name}`: its byte length does not match its shape and dtype"),
            None => "a tensor's byte length does not match its shape and dtype".into(),
        },
        SafeTensorError::ValidationOverflow => "a tensor's shape is so large that its size overflows".into(),
        SafeTensorError::InvalidHeaderDeserialization(j) => format!("has a header that is not a safetensors header: {j}"),
        other => format!("is not a valid safetensors file: {other}"),
    }
}

/// The first tensor whose offsets disagree with its shape and dtype, for the message.
fn tensor_with_bad_length(header: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(header).ok()?;
    for (name, t) in v.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let bits: u64 = match t["dtype"].as_str()? {
            "F64" | "I64" | "U64" => 64,
            "F32" | "I32" | "U32" => 32,
            "F16" | "BF16" | "I16" | "U16" => 16,
            _ => 8,
        };
        let numel = t["shape"].as_array()?.iter().try_fold(1u64, |a, d| a.checked_mul(d.as_u64()?))?;
        let off = t["data_offsets"].as_array()?;
        let (s, e) = (off.first()?.as_u64()?, off.get(1)?.as_u64()?);
        if numel.checked_mul(bits).map(|b| b / 8) != e.checked_sub(s) {
            return Some(name.clone());
        }
    }
    None
}

/// Rejects a header whose JSON object repeats a key.
fn check_unique_keys(header: &str) -> std::result::Result<(), String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(k) = m.next_key::<String>()? {
                        m.next_value::<IgnoredAny>()?;
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    let Keys(keys) = serde_json::from_str::<Keys>(header).map_err(|e| format!("has a header that is not a JSON object: {e}"))?;
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k.clone()) {
            return Err(format!("names tensor `{k}` twice in its header"));
        }
    }
    Ok(())
}
