//! The portable micro-kernel (any CPU) and the naive reference product used by tests.

use super::kernel::Kernel;

pub const KERNEL: Kernel = Kernel {
    name: "scalar",
    mr: MR,
    nr: NR,
    kc: 256,
    micro: micro_kernel,
};

const MR: usize = 4;
const NR: usize = 8;

/// Plain Rust; the compiler may vectorise it with the baseline ISA (SSE2 on x86-64).
/// Multiply then add (not `mul_add`): without an FMA unit `mul_add` is a slow libm call.
unsafe fn micro_kernel(
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    rsb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..k {
        let a = std::slice::from_raw_parts(a.add(p * MR), MR);
        let b = std::slice::from_raw_parts(b.add(p * rsb), NR);
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += a[i] * b[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        let c = std::slice::from_raw_parts_mut(c.add(i * rsc), NR);
        for j in 0..NR {
            c[j] = if beta == 0.0 {
                alpha * row[j]
            } else {
                alpha * row[j] + beta * c[j]
            };
        }
    }
}

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
