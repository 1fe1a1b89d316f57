//! ferronet's own single-precision GEMM, BLIS style:
//!
//!   C = alpha · A · B + beta · C,   then an optional fused epilogue
//!
//! with A, B, C given by strides (so transposes cost nothing). The loop nest:
//!   for each KC-deep slice of k            (sequential: the K sum is never split)
//!     pack A[:, slice] into MR-row panels; pack B[slice, :] into NR-column panels
//!     unless B is row-major, in which case its full panels are read in place
//!     for each (row block, column chunk) task, in parallel on the rayon pool
//!       for each NR panel, for each MR panel: the micro-kernel on one MR×NR tile
//! Micro-kernels per ISA (`avx512`, `avx2`, `neon`, `scalar`) are chosen at run time.
//! Every element of C is produced by the same sequence of operations whatever the
//! thread count, so results are bit-identical for 1 or N threads.

mod epilogue;
mod kernel;
mod matrix;
mod pack;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

pub use epilogue::Epilogue;
pub use kernel::{available, by_name, selected, Kernel, KERNEL_ENV};
pub use matrix::{MatMut, MatRef};
pub use scalar::reference_gemm;

use rayon::prelude::*;
use std::cell::RefCell;

/// Products below this many multiply-adds stay on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 20;
/// Up to this many rows of A, a row-major B is read without packing.
const DIRECT_B_MAX_M: usize = 256;
/// Rows of A per task: an MC×KC block of A (~128 KiB) stays in L2.
const MC: usize = 128;

thread_local! {
    /// Packing buffers of the calling thread, grown once and reused: no allocation per call.
    static PACK_BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// C = alpha·A·B + beta·C, then `epilogue`, with the default kernel on the current rayon pool.
pub fn gemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: MatMut, epilogue: Epilogue) {
    gemm_with(selected(), true, alpha, a, b, beta, c, epilogue)
}

/// As [`gemm`] with an explicit kernel; `parallel = false` keeps it on the calling thread.
#[allow(clippy::too_many_arguments)]
pub fn gemm_with(kernel: Kernel, parallel: bool, alpha: f32, a: MatRef, b: MatRef, beta: f32, c: MatMut, epilogue: Epilogue) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: A is {m}×{k} but B is {}×{n}", b.rows);
    assert_eq!((c.rows, c.cols), (m, n), "gemm: C must be {m}×{n}");
    epilogue.check(m, n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        scale_and_finish(&c, beta, &epilogue);
        return;
    }
    let threads = if parallel && m * n * k >= PARALLEL_MIN_MACS { rayon::current_num_threads() } else { 1 };
    let run = |bufs: &mut (Vec<f32>, Vec<f32>)| blocked(kernel, threads, alpha, a, b, beta, &c, &epilogue, bufs);
    // A reentrant call on this thread (a stolen rayon job) gets fresh buffers instead.
    PACK_BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => run(&mut bufs),
        Err(_) => run(&mut (Vec::new(), Vec::new())),
    });
}

#[allow(clippy::too_many_arguments)]
fn blocked(kernel: Kernel, threads: usize, alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &MatMut, epilogue: &Epilogue, bufs: &mut (Vec<f32>, Vec<f32>)) {
    let Kernel { mr, nr, kc: kc_max, .. } = kernel;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (m_panels, n_panels) = (m.div_ceil(mr), n.div_ceil(nr));
    let kc_max = kc_max.min(k);
    let (a_pack, b_pack) = bufs;
    // A row-major B is read in place (row stride rs) when few row panels of A reuse
    // it, so packing would cost more than it saves; only a ragged last panel is then
    // packed, zero-padded. Row strides of a multiple of 2 KiB are always packed: their
    // rows collide in the same L1 sets.
    let direct_b = b.cs == 1 && m <= DIRECT_B_MAX_M && (b.rs as usize * 4) % 2048 != 0;
    let packed_b_panels = if direct_b { usize::from(n % nr != 0) } else { n_panels };
    grow(a_pack, m_panels * mr * kc_max);
    grow(b_pack, packed_b_panels * nr * kc_max);

    // Task grid: row blocks of MC rows × column chunks of whole NR panels, enough
    // tasks to balance the threads.
    let mc_panels = (MC / mr).max(1);
    let row_blocks = m_panels.div_ceil(mc_panels);
    let col_chunks = if threads > 1 { (4 * threads).div_ceil(row_blocks).min(n_panels) } else { 1 };
    let chunk_panels = n_panels.div_ceil(col_chunks);
    let col_chunks = n_panels.div_ceil(chunk_panels);
    let tasks = row_blocks * col_chunks;

    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        let beta_here = if pc == 0 { beta } else { 1.0 };
        let last = pc + kc == k;
        let a_panels = &mut a_pack[..m_panels * mr * kc];
        let b_panels = &mut b_pack[..packed_b_panels * nr * kc];
        // Packed panel p holds B columns from first_packed·NR on.
        let first_packed = n_panels - packed_b_panels;
        if threads > 1 {
            a_panels.par_chunks_mut(mr * kc).enumerate().for_each(|(p, dst)| pack::pack_a_panel(a, p * mr, pc, kc, mr, dst));
            b_panels.par_chunks_mut(nr * kc).enumerate().for_each(|(p, dst)| pack::pack_b_panel(b, (first_packed + p) * nr, pc, kc, nr, dst));
        } else {
            pack::pack_a(a, pc, kc, mr, a_panels);
            for (p, dst) in b_panels.chunks_exact_mut(nr * kc).enumerate() {
                pack::pack_b_panel(b, (first_packed + p) * nr, pc, kc, nr, dst);
            }
        }
        let (a_panels, b_panels) = (&*a_panels, &*b_panels);
        let task = |t: usize| {
            let (rb, cb) = (t / col_chunks, t % col_chunks);
            let ip = rb * mc_panels..((rb + 1) * mc_panels).min(m_panels);
            let jp = cb * chunk_panels..((cb + 1) * chunk_panels).min(n_panels);
            for jpanel in jp {
                let (bp, rsb) = if jpanel < first_packed {
                    (unsafe { b.ptr_at(pc, jpanel * nr) }, b.rs as usize)
                } else {
                    let p = jpanel - first_packed;
                    (b_panels[p * nr * kc..(p + 1) * nr * kc].as_ptr(), nr)
                };
                for ipanel in ip.clone() {
                    let ap = &a_panels[ipanel * mr * kc..(ipanel + 1) * mr * kc];
                    unsafe { tile(kernel, kc, alpha, ap, bp, rsb, beta_here, c, ipanel * mr, jpanel * nr, last.then_some(epilogue)) };
                }
            }
        };
        if threads > 1 {
            (0..tasks).into_par_iter().for_each(task);
        } else {
            (0..tasks).for_each(task);
        }
    }
}

/// One MR×NR tile of C at (i0, j0), from a packed A panel and a B panel of row
/// stride `rsb`. Full tiles with unit column stride go straight to C; edge tiles go
/// through a small buffer so the kernel never writes outside C.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile(kernel: Kernel, kc: usize, alpha: f32, ap: &[f32], bp: *const f32, rsb: usize, beta: f32, c: &MatMut, i0: usize, j0: usize, epilogue: Option<&Epilogue>) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    let rows = mr.min(c.rows - i0);
    let cols = nr.min(c.cols - j0);
    if rows == mr && cols == nr && c.cs == 1 {
        (kernel.micro)(kc, alpha, ap.as_ptr(), bp, rsb, beta, c.ptr_at(i0, j0), c.rs as usize);
    } else {
        let mut buf = [0.0f32; 32 * 32];
        debug_assert!(mr * nr <= buf.len());
        (kernel.micro)(kc, alpha, ap.as_ptr(), bp, rsb, 0.0, buf.as_mut_ptr(), nr);
        for i in 0..rows {
            for j in 0..cols {
                let dst = c.ptr_at(i0 + i, j0 + j);
                *dst = if beta == 0.0 { buf[i * nr + j] } else { buf[i * nr + j] + beta * *dst };
            }
        }
    }
    if let Some(e) = epilogue {
        e.apply(c, i0, j0, rows, cols);
    }
}

/// k == 0: C = beta·C, then the epilogue.
fn scale_and_finish(c: &MatMut, beta: f32, epilogue: &Epilogue) {
    unsafe {
        for i in 0..c.rows {
            for j in 0..c.cols {
                let p = c.ptr_at(i, j);
                *p = if beta == 0.0 { 0.0 } else { beta * *p };
            }
        }
        epilogue.apply(c, 0, 0, c.rows, c.cols);
    }
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}
