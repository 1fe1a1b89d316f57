//! Packing: copy a block of A or B into the contiguous, zero-padded micro-panel
//! layout the micro-kernels stream through.
//!   A block [m, kc] → panels of MR rows:  ap[panel][p·MR + i] = A[panel·MR + i, pc + p]
//!   B block [kc, n] → panels of NR cols:  bp[panel][p·NR + j] = B[pc + p, panel·NR + j]
//! Rows/columns past the edge are zero, so one kernel serves every tile.

use super::matrix::MatRef;

/// Packs A[:, pc..pc+kc] into `out` (len ≥ ceil(m/MR)·MR·kc), panel by panel.
pub fn pack_a(a: MatRef, pc: usize, kc: usize, mr: usize, out: &mut [f32]) {
    for (panel, dst) in out
        .chunks_exact_mut(mr * kc)
        .take(a.rows.div_ceil(mr))
        .enumerate()
    {
        pack_a_panel(a, panel * mr, pc, kc, mr, dst);
    }
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
        } else if a.cs == 1 {
            // Row-major A: walk the panel's rows side by side, writing dst in order.
            let mut src = [std::ptr::null::<f32>(); 32];
            for (i, s) in src.iter_mut().enumerate().take(rows) {
                *s = a.ptr_at(i0 + i, pc);
            }
            let out = dst.as_mut_ptr();
            for p in 0..kc {
                for (i, s) in src.iter().enumerate().take(rows) {
                    *out.add(p * mr + i) = *s.add(p);
                }
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

/// One NR-column panel of B starting at column `j0`.
pub fn pack_b_panel(b: MatRef, j0: usize, pc: usize, kc: usize, nr: usize, dst: &mut [f32]) {
    let cols = nr.min(b.cols - j0);
    if cols < nr {
        dst.fill(0.0);
    }
    unsafe {
        if b.cs == 1 {
            for p in 0..kc {
                let src = std::slice::from_raw_parts(b.ptr_at(pc + p, j0), cols);
                dst[p * nr..p * nr + cols].copy_from_slice(src);
            }
        } else {
            // Column-contiguous B (a transposed view): read each column along k.
            let out = dst.as_mut_ptr();
            for j in 0..cols {
                let src = b.ptr_at(pc, j0 + j);
                for p in 0..kc {
                    *out.add(p * nr + j) = *src.offset(p as isize * b.rs);
                }
            }
        }
    }
}
