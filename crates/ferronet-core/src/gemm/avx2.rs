//! AVX2 + FMA micro-kernels: 6×16 tiles (12 ymm accumulators), and 8×8 tiles for
//! products with at most 8 columns.

use super::kernel::{micro_kernel_tile, Kernel, Tile};

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Floats per vector register.
const LANES: usize = 8;

pub const KERNEL: Kernel = Kernel {
    name: "avx2",
    kc: 256,
    wide: WIDE,
    narrow: NARROW,
    skinny: Some(super::skinny::isa::AVX2),
};

/// C[MR, 8·H] = alpha · A · B + beta · C, A(i, p) at a + i·rsa + p·csa.
// No target_feature here: always inlined into the entry points, which carry it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn body<const MR: usize, const H: usize>(
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
    let mut acc = [[_mm256_setzero_ps(); H]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let mut bv = [_mm256_setzero_ps(); H];
        for (h, v) in bv.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(b.add(8 * h));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm256_broadcast_ss(&*a.add(i * rsa));
            for h in 0..H {
                row[h] = _mm256_fmadd_ps(ai, bv[h], row[h]);
            }
        }
        a = a.add(csa);
        b = b.add(rsb);
    }
    let alpha_v = _mm256_set1_ps(alpha);
    let beta_v = _mm256_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * rsc);
        for (h, v) in row.iter().enumerate() {
            let ch = c.add(8 * h);
            let valid = nc.saturating_sub(8 * h).min(8);
            let mut out = _mm256_mul_ps(alpha_v, *v);
            if valid == 8 {
                if beta != 0.0 {
                    out = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(ch), out);
                }
                _mm256_storeu_ps(ch, out);
            } else if valid > 0 {
                // Ragged edge: through a lane buffer, same arithmetic per element.
                let mut lanes = [0.0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), out);
                for (j, &x) in lanes.iter().enumerate().take(valid) {
                    let d = ch.add(j);
                    *d = if beta != 0.0 { beta.mul_add(*d, x) } else { x };
                }
            }
        }
    }
}

micro_kernel_tile!(
    #[target_feature(enable = "avx2,fma")]
    WIDE,
    wide_packed,
    wide_strided,
    6,
    2
);
micro_kernel_tile!(
    #[target_feature(enable = "avx2,fma")]
    NARROW,
    narrow_packed,
    narrow_strided,
    8,
    1
);
