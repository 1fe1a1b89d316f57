//! The portable micro-kernel (any CPU) and the naive reference product used by tests.

use super::kernel::{micro_kernel_tile, Kernel, Tile};

/// Floats per vector register.
const LANES: usize = 1;

pub const KERNEL: Kernel = Kernel {
    name: "scalar",
    kc: 256,
    wide: WIDE,
    narrow: NARROW,
    skinny: None,
};

/// Plain Rust; the compiler may vectorise it with the baseline ISA (SSE2 on x86-64).
/// Multiply then add (not `mul_add`): without an FMA unit `mul_add` is a slow libm call.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn body<const MR: usize, const NR: usize>(
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    nc: usize,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..k {
        let b = std::slice::from_raw_parts(b.add(p * rsb), NR);
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = *a.add(i * rsa + p * csa);
            for j in 0..NR {
                row[j] += ai * b[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        let c = std::slice::from_raw_parts_mut(c.add(i * rsc), nc);
        for j in 0..nc {
            c[j] = if beta == 0.0 {
                alpha * row[j]
            } else {
                alpha * row[j] + beta * c[j]
            };
        }
    }
}

micro_kernel_tile!(WIDE, wide_packed, wide_strided, 4, 8);
micro_kernel_tile!(NARROW, narrow_packed, narrow_strided, 4, 4);

/// C = alpha·A·B + beta·C by the textbook triple loop, accumulating in f64.
/// Slow and obviously right: every kernel is tested against it.
#[allow(clippy::too_many_arguments)]
pub fn reference_gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c[i * rsc + j * csc] as f64
            };
            c[i * rsc + j * csc] = (alpha as f64 * s + old) as f32;
        }
    }
}
