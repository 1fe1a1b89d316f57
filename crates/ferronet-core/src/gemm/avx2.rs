//! AVX2 + FMA micro-kernel: 6×16 tile, 12 ymm accumulators.

use super::kernel::Kernel;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

pub const KERNEL: Kernel = Kernel {
    name: "avx2",
    mr: MR,
    nr: NR,
    kc: 256,
    micro: micro_kernel,
};

const MR: usize = 6;
const NR: usize = 16;

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
    kernel_avx2_fma(k, alpha, a, b, rsb, beta, c, rsc)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2_fma(
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    rsb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let b0 = _mm256_loadu_ps(b);
        let b1 = _mm256_loadu_ps(b.add(8));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm256_broadcast_ss(&*a.add(i));
            row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
        }
        a = a.add(MR);
        b = b.add(rsb);
    }
    let alpha_v = _mm256_set1_ps(alpha);
    let beta_v = _mm256_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * rsc);
        for (h, v) in row.iter().enumerate() {
            let ch = c.add(8 * h);
            let mut out = _mm256_mul_ps(alpha_v, *v);
            if beta != 0.0 {
                out = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(ch), out);
            }
            _mm256_storeu_ps(ch, out);
        }
    }
}
