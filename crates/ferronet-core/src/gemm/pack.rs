//! Packing: copy a block of A or B into the contiguous, zero-padded micro-panel
//! layout the micro-kernels stream through.
//!   A block [m, kc] → panels of MR rows:  ap[panel][p·MR + i] = A[panel·MR + i, pc + p]
//!   B block [kc, n] → panels of NR cols:  bp[panel][p·NR + j] = B[pc + p, panel·NR + j]
//! Rows/columns past the edge are zero, so one kernel serves every tile.

use super::matrix::MatRef;

/// Cache-line size: packed panels start on one, so no vector load of them splits two lines.
const ALIGN_BYTES: usize = 64;

/// `len` floats of `buf` starting on a cache line; `buf` grows once and is reused
/// (the allocator only guarantees 16-byte alignment).
pub fn aligned(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    let slack = ALIGN_BYTES / 4;
    if buf.len() < len + slack {
        buf.resize(len + slack, 0.0);
    }
    let skip = buf.as_ptr().align_offset(ALIGN_BYTES).min(slack);
    &mut buf[skip..skip + len]
}

/// One MR-row panel of A starting at row `i0`.
pub fn pack_a_panel(a: MatRef, i0: usize, pc: usize, kc: usize, mr: usize, dst: &mut [f32]) {
    let rows = mr.min(a.rows - i0);
    if rows < mr {
        dst.fill(0.0);
    }
    unsafe {
        if a.rs == 1 {
            // Column-contiguous A (e.g. a transposed view): each k step is one short copy.
            for p in 0..kc {
                let src = std::slice::from_raw_parts(a.ptr_at(i0, pc + p), rows);
                dst[p * mr..p * mr + rows].copy_from_slice(src);
            }
        } else if a.cs == 1 && rows == mr && matches!(mr, 4 | 6 | 8) {
            // Row-major A, full panel: walk its rows side by side with the row count
            // known at compile time, so the inner loop unrolls and dst is written in order.
            match mr {
                4 => interleave_rows::<4>(a, i0, pc, kc, dst),
                6 => interleave_rows::<6>(a, i0, pc, kc, dst),
                _ => interleave_rows::<8>(a, i0, pc, kc, dst),
            }
        } else {
            for i in 0..rows {
                for p in 0..kc {
                    dst[p * mr + i] = a.at(i0 + i, pc + p);
                }
            }
        }
    }
}

/// dst[p·MR + i] = A[i0 + i, pc + p] for a row-major A (unit column stride).
#[inline]
unsafe fn interleave_rows<const MR: usize>(
    a: MatRef,
    i0: usize,
    pc: usize,
    kc: usize,
    dst: &mut [f32],
) {
    debug_assert!(dst.len() >= kc * MR);
    let rows: [*const f32; MR] = std::array::from_fn(|i| a.ptr_at(i0 + i, pc));
    let out = dst.as_mut_ptr();
    for p in 0..kc {
        for (i, row) in rows.iter().enumerate() {
            *out.add(p * MR + i) = *row.add(p);
        }
    }
}

/// One NR-column panel of a column-contiguous B (a transposed view) starting at column
/// `j0`: each column is read along k.
fn pack_b_panel_by_columns(b: MatRef, j0: usize, pc: usize, kc: usize, nr: usize, dst: &mut [f32]) {
    let cols = nr.min(b.cols - j0);
    if cols < nr {
        dst.fill(0.0);
    }
    let out = dst.as_mut_ptr();
    unsafe {
        for j in 0..cols {
            let src = b.ptr_at(pc, j0 + j);
            for p in 0..kc {
                *out.add(p * nr + j) = *src.offset(p as isize * b.rs);
            }
        }
    }
}

/// Panels `first..first + dst.len() / (nr·kc)` of B for one KC slice. A row-major B is
/// read row by row, each row once from start to end (panel by panel, every row of a
/// large B would be a new page: measured 5% of a 2048² product); any other B column by
/// column, panel by panel.
pub fn pack_b_panels(b: MatRef, first: usize, pc: usize, kc: usize, nr: usize, dst: &mut [f32]) {
    let panels = dst.len() / (nr * kc);
    if b.cs != 1 {
        for (q, d) in dst.chunks_exact_mut(nr * kc).enumerate() {
            pack_b_panel_by_columns(b, (first + q) * nr, pc, kc, nr, d);
        }
        return;
    }
    let j0 = first * nr;
    let width = (b.cols - j0).min(panels * nr);
    if width < panels * nr {
        // A ragged last panel: its padding columns stay zero.
        dst[(panels - 1) * nr * kc..].fill(0.0);
    }
    let out = dst.as_mut_ptr();
    for p in 0..kc {
        // Safety: row pc + p < b.rows, columns j0..j0 + width < b.cols.
        let row = unsafe { std::slice::from_raw_parts(b.ptr_at(pc + p, j0), width) };
        for (q, chunk) in row.chunks(nr).enumerate() {
            unsafe {
                std::ptr::copy_nonoverlapping(
                    chunk.as_ptr(),
                    out.add(q * nr * kc + p * nr),
                    chunk.len(),
                )
            };
        }
    }
}
