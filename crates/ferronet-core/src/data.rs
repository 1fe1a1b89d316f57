//! Borrowed training data: inputs as u8 pixels (normalised to [0,1] on the fly)
//! or f32 features, plus u8 class labels. Nothing is copied until a batch is gathered.

use crate::error::{Error, Result};
use ndarray::ArrayViewMut2;

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
    pub fn copy_row(&self, r: usize, dim: usize, dst: &mut [f32]) {
        match self {
            Inputs::U8(x) => {
                for (d, &v) in dst.iter_mut().zip(&x[r * dim..(r + 1) * dim]) {
                    *d = v as f32 / 255.0;
                }
            }
            Inputs::F32(x) => dst.copy_from_slice(&x[r * dim..(r + 1) * dim]),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DataView<'a> {
    pub inputs: Inputs<'a>,
    pub labels: &'a [u8],
    pub dim: usize,
}

impl<'a> DataView<'a> {
    /// Checks that inputs hold exactly `labels.len()` rows of `dim` values.
    pub fn new(inputs: Inputs<'a>, labels: &'a [u8], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::shape("dataset inputs", "a sample width > 0", 0));
        }
        let len = inputs.len();
        if len != labels.len() * dim {
            return Err(Error::shape(
                "dataset inputs",
                format!(
                    "{} values ({} labels × {} per sample)",
                    labels.len() * dim,
                    labels.len(),
                    dim
                ),
                format!("{len} values"),
            ));
        }
        Ok(DataView {
            inputs,
            labels,
            dim,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Every label must be below `classes`; names the first offender.
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        match self.labels.iter().position(|&l| l as usize >= classes) {
            Some(index) => Err(Error::LabelOutOfRange {
                index,
                label: self.labels[index] as u32,
                classes,
            }),
            None => Ok(()),
        }
    }

    /// Copy rows `rows` into out[rows.len(), dim] as f32 (u8 → v/255).
    pub fn gather(&self, rows: &[usize], mut out: ArrayViewMut2<f32>) {
        assert_eq!(out.dim(), (rows.len(), self.dim), "gather: output shape");
        assert!(
            out.is_standard_layout(),
            "gather: output rows must be contiguous"
        );
        // Inside a training team the rows are split across its threads: otherwise the
        // other thread would idle through this serial part of every step.
        let parts = if crate::team::active() {
            rayon::current_num_threads().min(rows.len())
        } else {
            1
        };
        let out = SharedRows(out.as_mut_ptr());
        let per = rows.len().div_ceil(parts.max(1));
        let copy_rows = |part: usize| {
            for i in (part * per)..((part + 1) * per).min(rows.len()) {
                // Safety: row i of a standard-layout [rows, dim] buffer; parts own disjoint rows.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.row(i, self.dim), self.dim) };
                self.inputs.copy_row(rows[i], self.dim, dst);
            }
        };
        if parts > 1 {
            crate::team::run_parts(parts, &copy_rows);
        } else {
            copy_rows(0);
        }
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

    /// Labels of `rows`, into `out`.
    pub fn gather_labels(&self, rows: &[usize], out: &mut Vec<u8>) {
        out.clear();
        out.extend(rows.iter().map(|&r| self.labels[r]));
    }
}
