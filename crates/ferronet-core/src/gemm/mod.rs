//! ferronet's own single-precision GEMM, BLIS style:
//!
//!   C = alpha · A · B + beta · C,   then an optional fused epilogue
//!
//! with A, B, C given by strides (so transposes cost nothing). The loop nest:
//!   for each KC-deep slice of k            (sequential: the K sum is never split)
//!     pack A[:, slice] into MR-row panels; pack B[slice, :] into NR-column panels
//!     unless B is row-major, in which case its full panels are read in place
//!     for each MC row block, each NR panel, each MR panel: the micro-kernel on one MR×NR tile
//! In parallel, C is first cut into one block per thread (rayon), each running the above.
//! Micro-kernels per ISA (`avx512`, `avx2`, `neon`, `scalar`) are chosen at run time.
//! Products with at most 12 output columns (a 10-class layer) take the `skinny` kernels
//! instead where they suit, vectorised along A's contiguous side (see `skinny/mod.rs`).
//! Every element of C is produced by the same sequence of operations whatever the
//! thread count, so results are bit-identical for 1 or N threads.

mod epilogue;
mod kernel;
mod matrix;
mod pack;
pub mod scalar;
mod skinny;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

pub use epilogue::Epilogue;
pub use kernel::{available, by_name, selected, Kernel, Tile, KERNEL_ENV};
pub use matrix::{MatMut, MatRef};
pub use scalar::reference_gemm;
pub use skinny::{Route as SkinnyRoute, Skinny};
pub(crate) use skinny::simd;

use std::cell::RefCell;

/// Products below this many multiply-adds stay on the calling thread: waking
/// rayon workers costs tens of µs on a small VM ...
const PARALLEL_MIN_MACS: usize = 1 << 20;
/// ... but handing parts to a spinning team (during training) costs about 1 µs.
const PARALLEL_MIN_MACS_IN_TEAM: usize = 1 << 16;
/// Up to this many column panels, A is read without packing.
const DIRECT_A_MAX_N_PANELS: usize = 2;
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
pub fn gemm_with(
    kernel: Kernel,
    parallel: bool,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: MatMut,
    epilogue: Epilogue,
) {
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
    let min_macs = if crate::team::active() {
        PARALLEL_MIN_MACS_IN_TEAM
    } else {
        PARALLEL_MIN_MACS
    };
    let threads = if parallel && m * n * k >= min_macs {
        crate::team::threads()
    } else {
        1
    };
    // A skinny route, like the tile shape, is chosen from the whole product, so every
    // block computes each element exactly as one thread would.
    let skinny = kernel
        .skinny
        .and_then(|s| s.route(a, b).map(|route| (s, route)));
    let (shape, kc) = (kernel.tile_for(n), kernel.kc_for(n));
    let run_block = |a: MatRef, b: MatRef, c: &MatMut, e: &Epilogue| match skinny {
        Some((s, route)) => with_pack_buffers(|(_, bt)| s.run(route, alpha, a, b, beta, c, e, bt)),
        None => with_pack_buffers(|bufs| blocked(shape, kc, alpha, a, b, beta, c, e, bufs)),
    };
    if threads <= 1 {
        return run_block(a, b, &c, &epilogue);
    }
    // One fork-join per product: C is cut into one block per thread along its longer
    // side (whole MR/NR panels; always rows for a skinny product), and each block runs
    // the serial algorithm with its own packing. Waking threads once per product, not
    // once per KC slice, matters for the small products of a training step.
    let split_rows = m >= n || skinny.is_some();
    let (len, align) = if split_rows {
        (m, shape.mr)
    } else {
        (n, shape.nr)
    };
    let parts = threads.min(len.div_ceil(align));
    let step = len.div_ceil(parts).div_ceil(align) * align;
    crate::team::run_parts(parts, &|p| {
        let (s0, s1) = (p * step, ((p + 1) * step).min(len));
        if s0 >= s1 {
            return;
        }
        if split_rows {
            run_block(
                a.block(s0, s1, 0, k),
                b,
                &c.block(s0, s1, 0, n),
                &epilogue.block(s0, s1, 0, n),
            )
        } else {
            run_block(
                a,
                b.block(0, k, s0, s1),
                &c.block(0, m, s0, s1),
                &epilogue.block(0, m, s0, s1),
            )
        }
    });
}

/// Runs `f` with the calling thread's reusable packing buffers (A panels, B panels).
fn with_pack_buffers(f: impl FnOnce(&mut (Vec<f32>, Vec<f32>))) {
    // A reentrant call on this thread (a stolen rayon job) gets fresh buffers instead.
    PACK_BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => f(&mut bufs),
        Err(_) => f(&mut (Vec::new(), Vec::new())),
    });
}

/// A micro-panel of A or B for one KC slice: where it starts and its strides.
#[derive(Clone, Copy)]
struct Panel {
    ptr: *const f32,
    /// A: row stride and k stride. B: k (row) stride in `rs`; `cs` unused.
    rs: usize,
    cs: usize,
}

#[allow(clippy::too_many_arguments)]
fn blocked(
    shape: Tile,
    kc_max: usize,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &MatMut,
    epilogue: &Epilogue,
    bufs: &mut (Vec<f32>, Vec<f32>),
) {
    let Tile { mr, nr, .. } = shape;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (m_panels, n_panels) = (m.div_ceil(mr), n.div_ceil(nr));
    let kc_max = kc_max.min(k);
    let (a_pack, b_pack) = bufs;
    // Operands are read in place when packing would cost more than it saves; only a
    // ragged last panel is then packed (zero-padded), so no kernel reads past the edge.
    // A row-major B is read in place when few row panels of A reuse it (row strides
    // of a multiple of 2 KiB are always packed: their rows collide in the same L1 sets).
    let direct_b = b.cs == 1 && m <= DIRECT_B_MAX_M && !(b.rs as usize * 4).is_multiple_of(2048);
    // A is read in place when at most two column panels use it (e.g. a 13–16-column
    // output, or a 10-class one on a kernel without skinny routes), where packing A
    // would cost as much as the product.
    let direct_a = n_panels <= DIRECT_A_MAX_N_PANELS && (a.cs == 1 || a.rs == 1);
    let packed_b_panels = if direct_b {
        usize::from(n % nr != 0)
    } else {
        n_panels
    };
    let packed_a_panels = if direct_a {
        usize::from(m % mr != 0)
    } else {
        m_panels
    };
    let a_pack = pack::aligned(a_pack, packed_a_panels * mr * kc_max);
    let b_pack = pack::aligned(b_pack, packed_b_panels * nr * kc_max);
    let (first_packed_a, first_packed_b) = (m_panels - packed_a_panels, n_panels - packed_b_panels);

    let mc_panels = (MC / mr).max(1);

    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        let beta_here = if pc == 0 { beta } else { 1.0 };
        let last = pc + kc == k;
        let a_panels = &mut a_pack[..packed_a_panels * mr * kc];
        let b_panels = &mut b_pack[..packed_b_panels * nr * kc];
        for (p, dst) in a_panels.chunks_exact_mut(mr * kc).enumerate() {
            pack::pack_a_panel(a, (first_packed_a + p) * mr, pc, kc, mr, dst);
        }
        pack::pack_b_panels(b, first_packed_b, pc, kc, nr, b_panels);
        let (a_panels, b_panels) = (&*a_panels, &*b_panels);
        let a_panel = |ip: usize| match ip.checked_sub(first_packed_a) {
            None => Panel {
                ptr: unsafe { a.ptr_at(ip * mr, pc) },
                rs: a.rs as usize,
                cs: a.cs as usize,
            },
            Some(p) => Panel {
                ptr: a_panels[p * mr * kc..].as_ptr(),
                rs: 1,
                cs: mr,
            },
        };
        let b_panel = |jp: usize| match jp.checked_sub(first_packed_b) {
            None => Panel {
                ptr: unsafe { b.ptr_at(pc, jp * nr) },
                rs: b.rs as usize,
                cs: 1,
            },
            Some(p) => Panel {
                ptr: b_panels[p * nr * kc..].as_ptr(),
                rs: nr,
                cs: 1,
            },
        };
        // Row blocks of MC rows (an A block that stays in L2); within one, each B
        // panel (in L1) meets every A panel.
        for ip0 in (0..m_panels).step_by(mc_panels) {
            for jp in 0..n_panels {
                let bp = b_panel(jp);
                for ip in ip0..(ip0 + mc_panels).min(m_panels) {
                    let ap = a_panel(ip);
                    let packed_a = ip >= first_packed_a;
                    unsafe {
                        tile(
                            shape,
                            packed_a,
                            kc,
                            alpha,
                            ap,
                            bp,
                            beta_here,
                            c,
                            ip * mr,
                            jp * nr,
                            last.then_some(epilogue),
                        )
                    };
                }
            }
        }
    }
}

/// One MR×NR tile of C at (i0, j0); the kernel never touches C outside it.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile(
    shape: Tile,
    packed_a: bool,
    kc: usize,
    alpha: f32,
    ap: Panel,
    bp: Panel,
    beta: f32,
    c: &MatMut,
    i0: usize,
    j0: usize,
    epilogue: Option<&Epilogue>,
) {
    let (mr, nr) = (shape.mr, shape.nr);
    let micro = if packed_a {
        shape.packed
    } else {
        shape.strided
    };
    let rows = mr.min(c.rows - i0);
    let cols = nr.min(c.cols - j0);
    // Full rows and unit column stride go straight to C (a ragged right edge is
    // masked by the kernel); a ragged bottom edge or strided C goes through a buffer.
    if rows == mr && c.cs == 1 {
        micro(
            kc,
            alpha,
            ap.ptr,
            ap.rs,
            ap.cs,
            bp.ptr,
            bp.rs,
            beta,
            c.ptr_at(i0, j0),
            c.rs as usize,
            cols,
        );
    } else {
        // The kernel writes every element of the tile (beta = 0 never reads), so the
        // buffer needs no clearing.
        let mut buf = std::mem::MaybeUninit::<[f32; 32 * 32]>::uninit();
        debug_assert!(mr * nr <= 32 * 32);
        let buf = buf.as_mut_ptr() as *mut f32;
        micro(
            kc, alpha, ap.ptr, ap.rs, ap.cs, bp.ptr, bp.rs, 0.0, buf, nr, nr,
        );
        for i in 0..rows {
            let src = buf.add(i * nr);
            let dst = c.ptr_at(i0 + i, j0);
            for j in 0..cols {
                let d = dst.offset(j as isize * c.cs);
                *d = if beta == 0.0 {
                    *src.add(j)
                } else {
                    *src.add(j) + beta * *d
                };
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
