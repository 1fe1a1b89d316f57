//! Borrowed training data: inputs as u8 pixels (normalised to [0,1] on the fly)
//! or f32 features, plus class labels or float targets. Nothing is copied until a batch is gathered.

use crate::fastmath::zero_if_finite;
use crate::error::{Error, Result};

/// The batch buffer shared with the gather threads, which write disjoint rows.
struct SharedRows(*mut f32);
unsafe impl Sync for SharedRows {}
impl SharedRows {
    /// Start of row `i` of width `dim`.
    unsafe fn row(&self, i: usize, dim: usize) -> *mut f32 {
        self.0.add(i * dim)
    }
}

/// Row-major inputs [N, dim].
#[derive(Debug, Clone, Copy)]
pub enum Inputs<'a> {
    /// Pixels; each becomes `v / 255` as f32.
    U8(&'a [u8]),
    /// Features used as they are.
    F32(&'a [f32]),
}

impl Inputs<'_> {
    /// Number of values (samples × width).
    pub fn len(&self) -> usize {
        match self {
            Inputs::U8(x) => x.len(),
            Inputs::F32(x) => x.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `r` of width `dim` as f32 into `dst` (u8 → v/255): the one place inputs
    /// become what the network sees, for training, evaluation and prediction alike.
    ///
    /// Returns whether every value was finite: the check rides on the copy (one
    /// compare per value, vectorised with it), so data written with NaN after it was
    /// validated is caught before it reaches the weights.
    pub fn copy_row(&self, r: usize, dim: usize, dst: &mut [f32]) -> bool {
        match self {
            Inputs::U8(x) => {
                for (d, &v) in dst.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
                    *d = v as f32 / 255.0;
                }
                true
            }
            Inputs::F32(x) => copy_checked(&x[r * dim..(r + 1) * dim], dst),
        }
    }

    /// Sample `r`, given as [C, H, W], into `dst` as [H, W, C] (the stored layout).
    /// Returns whether every value was finite.
    pub fn copy_row_channels_last(&self, r: usize, [c, h, w]: [usize; 3], dst: &mut [f32]) -> bool {
        let dim = c * h * w;
        let hw = h * w;
        let mut bad = false;
        for ch in 0..c {
            for p in 0..hw {
                let i = r * dim + ch * hw + p;
                dst[p * c + ch] = match self {
                    Inputs::U8(x) => x[i] as f32 / 255.0,
                    Inputs::F32(x) => {
                        let v = x[i];
                        bad |= zero_if_finite(v) != 0.0;
                        v
                    }
                };
            }
        }
        !bad
    }
}

/// `dst = src`, and whether every value is finite (see `zero_if_finite`).
fn copy_checked(src: &[f32], dst: &mut [f32]) -> bool {
    let mut bad = false;
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = v;
        bad |= zero_if_finite(v) != 0.0;
    }
    !bad
}

/// Class ids, one per sample: bytes (MNIST's IDX labels, read in place) or u32
/// (any class count).
#[derive(Debug, Clone, Copy)]
pub enum Labels<'a> {
    U8(&'a [u8]),
    U32(&'a [u32]),
}

impl Labels<'_> {
    pub fn len(&self) -> usize {
        match self {
            Labels::U8(l) => l.len(),
            Labels::U32(l) => l.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Labels::U8(l) => l[i] as u32,
            Labels::U32(l) => l[i],
        }
    }
}

/// What a sample is trained towards.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    Classes(Labels<'a>),
    /// Float targets, `dim` per sample (regression, multi-label 0/1).
    Values { data: &'a [f32], dim: usize },
    /// The inputs themselves, as the network sees them (u8 → v/255): an autoencoder's
    /// reconstruction target, read from the input rows, never copied whole.
    Inputs,
}

/// The targets of one gathered batch, kept by the trainer across batches.
#[derive(Debug, Clone, Default)]
pub struct TargetBuffer {
    pub classes: Vec<u32>,
    pub values: Vec<f32>,
    /// Class labels per sample: 1, or T for a sequence model's [T, classes] output
    /// (one label per position, as PyTorch's `logits.view(-1, V)` against `targets.view(-1)`).
    pub labels_per_sample: usize,
}

impl TargetBuffer {
    /// `labels_per_sample` as a divisor (0 in a default buffer means 1).
    pub fn per_sample(&self) -> usize {
        self.labels_per_sample.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DataView<'a> {
    pub inputs: Inputs<'a>,
    pub targets: Targets<'a>,
    /// Floats per sample.
    pub dim: usize,
    /// Class labels per sample: 1, or T for per-position labels of a [T, classes] output.
    pub labels_per_sample: usize,
    len: usize,
}

impl<'a> DataView<'a> {
    /// Inputs with u8 class labels.
    pub fn new(inputs: Inputs<'a>, labels: &'a [u8], dim: usize) -> Result<Self> {
        Self::with_targets(inputs, Targets::Classes(Labels::U8(labels)), dim)
    }

    /// Checks that inputs hold exactly one sample of `dim` values per target.
    pub fn with_targets(inputs: Inputs<'a>, targets: Targets<'a>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::shape("dataset inputs", "a sample width > 0", 0));
        }
        let mut labels_per_sample = 1;
        let n = match targets {
            // One label per sample, or the same number k > 1 per sample (a sequence
            // model's per-position labels): the inputs say how many samples there are.
            Targets::Classes(l) => {
                let samples = inputs.len() / dim;
                if inputs.len() % dim == 0 && samples > 0 && l.len() > samples && l.len() % samples == 0 {
                    labels_per_sample = l.len() / samples;
                    samples
                } else {
                    l.len()
                }
            }
            Targets::Values { data, dim: tdim } => {
                if tdim == 0 || data.len() % tdim != 0 {
                    return Err(Error::shape(
                        "dataset targets",
                        format!("a multiple of {tdim} values per sample"),
                        format!("{} values", data.len()),
                    ));
                }
                data.len() / tdim
            }
            Targets::Inputs => inputs.len() / dim,
        };
        let len = inputs.len();
        if len != n * dim {
            return Err(Error::shape(
                "dataset inputs",
                format!("{} values ({} targets × {} per sample)", n * dim, n, dim),
                format!("{len} values"),
            ));
        }
        Ok(DataView { inputs, targets, dim, labels_per_sample, len: n })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every label must be below `classes`; names the first offender.
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        if let Targets::Classes(labels) = self.targets {
            if let Some(index) = (0..labels.len()).find(|&i| labels.get(i) as usize >= classes) {
                return Err(Error::LabelOutOfRange {
                    index,
                    label: labels.get(index),
                    classes,
                });
            }
        }
        Ok(())
    }

    /// Copy samples `rows` into out[rows.len() × dim] as f32 (u8 → v/255). With `chw`,
    /// each sample is given as [C, H, W] and stored channels-last, [H, W, C].
    /// Returns the position in `rows` of the first sample holding NaN or ±∞, if any.
    pub fn gather(&self, rows: &[usize], out: &mut [f32], chw: Option<[usize; 3]>) -> Option<usize> {
        assert_eq!(out.len(), rows.len() * self.dim, "gather: output size");
        // Inside a training team the rows are split across its threads: otherwise the
        // other thread would idle through this serial part of every step.
        let parts = if crate::team::active() {
            crate::team::threads().min(rows.len())
        } else {
            1
        };
        let out = SharedRows(out.as_mut_ptr());
        let per = rows.len().div_ceil(parts.max(1));
        let first_bad = std::sync::atomic::AtomicUsize::new(usize::MAX);
        let copy_rows = |part: usize| {
            for i in (part * per)..((part + 1) * per).min(rows.len()) {
                // Safety: row i of a [rows, dim] buffer; parts own disjoint rows.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.row(i, self.dim), self.dim) };
                let finite = match chw {
                    None => self.inputs.copy_row(rows[i], self.dim, dst),
                    Some([c, h, w]) => self.inputs.copy_row_channels_last(rows[i], [c, h, w], dst),
                };
                if !finite {
                    first_bad.fetch_min(i, std::sync::atomic::Ordering::Relaxed);
                }
            }
        };
        if parts > 1 {
            crate::team::run_parts(parts, &copy_rows);
        } else {
            copy_rows(0);
        }
        let bad = first_bad.into_inner();
        (bad != usize::MAX).then_some(bad)
    }

    /// Asks the CPU to start loading `rows` into cache (into L2), so that a later
    /// `gather` of a shuffled batch does not wait on memory row by row. A hint only.
    pub fn prefetch(&self, rows: &[usize]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            let (base, row_bytes) = match self.inputs {
                Inputs::U8(x) => (x.as_ptr(), self.dim),
                Inputs::F32(x) => (x.as_ptr() as *const u8, self.dim * 4),
            };
            for &r in rows {
                let row = unsafe { base.add(r * row_bytes) };
                for offset in (0..row_bytes).step_by(64) {
                    // Safety: prefetch never faults, and the address is inside the row anyway.
                    unsafe { _mm_prefetch::<_MM_HINT_T1>(row.add(offset) as *const i8) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = rows;
    }

    /// Targets of `rows`, into `out`.
    /// Copies the targets of `rows`, checking each again (class ids below `classes`,
    /// float targets finite): the arrays are read in place and may have been changed
    /// since `check_data` validated them. Returns the first bad one as an error.
    /// `classes` is the model's output size per sample; with k labels per sample the
    /// class count is that over k (the output is [k, classes]).
    pub fn gather_targets(&self, rows: &[usize], out: &mut TargetBuffer, classes: usize) -> crate::error::Result<()> {
        out.classes.clear();
        out.values.clear();
        let k = self.labels_per_sample;
        out.labels_per_sample = k;
        match self.targets {
            Targets::Classes(l) => {
                let classes = classes / k;
                out.classes.extend(rows.iter().flat_map(|&r| (r * k..(r + 1) * k).map(|i| l.get(i))));
                if let Some(p) = out.classes.iter().position(|&c| c as usize >= classes) {
                    let index = rows[p / k] * k + p % k;
                    return Err(crate::error::Error::LabelOutOfRange { index, label: out.classes[p], classes });
                }
            }
            Targets::Values { data, dim } => {
                for &r in rows {
                    out.values.extend_from_slice(&data[r * dim..(r + 1) * dim]);
                }
                if let Some(k) = out.values.iter().position(|v| !v.is_finite()) {
                    return Err(crate::error::Error::NonFiniteData { what: "target".into(), sample: rows[k / dim], epoch: 0, batch: 0 });
                }
            }
            Targets::Inputs => {
                // Logical order (PyTorch's), as the loss compares it with a flat output;
                // a non-finite input is already reported by `gather`.
                out.values.resize(rows.len() * self.dim, 0.0);
                for (k, &r) in rows.iter().enumerate() {
                    self.inputs.copy_row(r, self.dim, &mut out.values[k * self.dim..(k + 1) * self.dim]);
                }
            }
        }
        Ok(())
    }

    /// Floats per target sample (1 for class labels).
    pub fn target_dim(&self) -> usize {
        match self.targets {
            Targets::Classes(_) => 1,
            Targets::Values { dim, .. } => dim,
            Targets::Inputs => self.dim,
        }
    }
}
