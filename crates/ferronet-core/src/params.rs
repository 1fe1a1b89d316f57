//! One parameter store: every tensor of a model (values, gradients) in two contiguous
//! arrays, each with its PyTorch `state_dict` name, its shape in PyTorch's layout and
//! its group. Optimizers walk a selection of tensors (a group, or everything not
//! frozen) and key their state by the tensor's index here, never by order.

use crate::ops::ParamKind;

/// Tensors start on a 64-byte boundary, so vector loops over one never straddle.
const ALIGN: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// `state_dict` name: "<node>.<param>", e.g. "0.weight".
    pub name: String,
    /// PyTorch's shape (the stored layout may differ; the node's op converts).
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
    /// The node that owns it and its index among that node's tensors.
    pub node: usize,
    pub index: usize,
    pub kind: ParamKind,
    /// Parameter group (the node's `group` in the spec, "" if none).
    pub group: String,
    /// Frozen tensors keep their values: no optimizer updates them.
    pub frozen: bool,
    /// A tied tensor (weight tying): the index of the tensor it shares storage with.
    /// It holds no values of its own, is exported under its own name too, and is never
    /// handed to optimizers (the owner is, with the summed gradient).
    pub tied: Option<usize>,
}

impl TensorInfo {
    pub fn trainable(&self) -> bool {
        self.kind == ParamKind::Trainable
    }
    /// Trainable and not another tensor's alias: what optimizers update and counts count.
    pub fn owns_values(&self) -> bool {
        self.trainable() && self.tied.is_none()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    pub(crate) values: Vec<f32>,
    pub(crate) grads: Vec<f32>,
    pub(crate) tensors: Vec<TensorInfo>,
}

impl ParamStore {
    /// Adds a tensor of `len` floats; returns its index.
    pub(crate) fn push(&mut self, mut info: TensorInfo) -> usize {
        let offset = self.values.len().div_ceil(ALIGN) * ALIGN;
        info.offset = offset;
        self.values.resize(offset + info.len, 0.0);
        self.tensors.push(info);
        self.tensors.len() - 1
    }

    /// Adds tensor `info` as another name of tensor `owner` (same offset and length: no
    /// new values); returns its index.
    pub(crate) fn push_alias(&mut self, mut info: TensorInfo, owner: usize) -> usize {
        let o = &self.tensors[owner];
        info.offset = o.offset;
        info.len = o.len;
        info.tied = Some(owner);
        self.tensors.push(info);
        self.tensors.len() - 1
    }

    /// Makes room for one more tensor of `len` floats (and its alignment), or says
    /// how much memory it needed.
    pub(crate) fn reserve(&mut self, len: usize, name: &str) -> crate::error::Result<()> {
        let need = len.checked_add(ALIGN).unwrap_or(usize::MAX);
        self.values.try_reserve(need).map_err(|_| crate::error::Error::OutOfMemory {
            what: format!("parameter {name}"),
            gib: (self.values.len() as f64 + len as f64) * 4.0 / (1u64 << 30) as f64,
        })
    }

    /// Sizes the gradients once every tensor is in.
    pub(crate) fn finish(&mut self) -> crate::error::Result<()> {
        self.grads = crate::error::Error::try_zeros(self.values.len(), "the parameters' gradients")?;
        Ok(())
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn value(&self, t: usize) -> &[f32] {
        let i = &self.tensors[t];
        &self.values[i.offset..i.offset + i.len]
    }

    pub fn value_mut(&mut self, t: usize) -> &mut [f32] {
        let i = &self.tensors[t];
        &mut self.values[i.offset..i.offset + i.len]
    }

    pub fn grad(&self, t: usize) -> &[f32] {
        let i = &self.tensors[t];
        &self.grads[i.offset..i.offset + i.len]
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }

    /// Number of scalars in trainable tensors.
    pub fn trainable_count(&self) -> usize {
        self.tensors.iter().filter(|t| t.owns_values()).map(|t| t.len).sum()
    }
}
