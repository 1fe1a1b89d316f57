//! AVX-512F micro-kernel: 8×32 tile, 16 zmm accumulators.

use super::kernel::Kernel;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

pub const KERNEL: Kernel = Kernel {
    name: "avx512",
    mr: MR,
    nr: NR,
    kc: 256,
    micro: micro_kernel,
};

const MR: usize = 8;
const NR: usize = 32;

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
    kernel_avx512(k, alpha, a, b, rsb, beta, c, rsc)
}

#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512(
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    rsb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let b0 = _mm512_loadu_ps(b);
        let b1 = _mm512_loadu_ps(b.add(16));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a.add(i));
            row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
        }
        a = a.add(MR);
        b = b.add(rsb);
    }
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * rsc);
        for (h, v) in row.iter().enumerate() {
            let ch = c.add(16 * h);
            let mut out = _mm512_mul_ps(alpha_v, *v);
            if beta != 0.0 {
                out = _mm512_fmadd_ps(beta_v, _mm512_loadu_ps(ch), out);
            }
            _mm512_storeu_ps(ch, out);
        }
    }
}
