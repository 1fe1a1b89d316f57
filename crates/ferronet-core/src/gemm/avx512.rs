//! AVX-512F micro-kernels: 8×32 tiles (16 zmm accumulators), and 8×16 tiles for
//! products with at most 16 columns (e.g. a 10-class output layer).

use super::kernel::{micro_kernel_tile, Kernel, Tile};

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Floats per vector register.
const LANES: usize = 16;

pub const KERNEL: Kernel = Kernel {
    name: "avx512",
    // Deeper than the usual 256: measured best here (fewer passes over C).
    kc: 512,
    wide: WIDE,
    narrow: NARROW,
    skinny: Some(super::skinny::isa::AVX512),
};

/// C[MR, 16·H] = alpha · A · B + beta · C, A(i, p) at a + i·rsa + p·csa.
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
    let mut acc = [[_mm512_setzero_ps(); H]; MR];
    // C is read only after the k loop: start fetching it now (a large C misses cache,
    // its rows a page apart; measured +3% at 2048², interleaved A/B).
    if beta != 0.0 {
        for i in 0..MR {
            for h in 0..H {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + 16 * h) as *const i8);
            }
        }
    }
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let mut bv = [_mm512_setzero_ps(); H];
        for (h, v) in bv.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(b.add(16 * h));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a.add(i * rsa));
            for h in 0..H {
                row[h] = _mm512_fmadd_ps(ai, bv[h], row[h]);
            }
        }
        a = a.add(csa);
        b = b.add(rsb);
    }
    let alpha_v = _mm512_set1_ps(alpha);
    let beta_v = _mm512_set1_ps(beta);
    // Lane masks for the valid columns of each vector.
    let mut masks = [0 as __mmask16; H];
    for (h, m) in masks.iter_mut().enumerate() {
        let valid = nc.saturating_sub(16 * h).min(16);
        *m = ((1u32 << valid) - 1) as __mmask16;
    }
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * rsc);
        for (h, v) in row.iter().enumerate() {
            let ch = c.add(16 * h);
            let mut out = _mm512_mul_ps(alpha_v, *v);
            if masks[h] == 0xffff {
                if beta != 0.0 {
                    out = _mm512_fmadd_ps(beta_v, _mm512_loadu_ps(ch), out);
                }
                _mm512_storeu_ps(ch, out);
            } else if masks[h] != 0 {
                if beta != 0.0 {
                    out = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(masks[h], ch), out);
                }
                _mm512_mask_storeu_ps(ch, masks[h], out);
            }
        }
    }
}

micro_kernel_tile!(
    #[target_feature(enable = "avx512f")]
    WIDE,
    wide_packed,
    wide_strided,
    8,
    2
);
micro_kernel_tile!(
    #[target_feature(enable = "avx512f")]
    NARROW,
    narrow_packed,
    narrow_strided,
    8,
    1
);
