//! NEON micro-kernels for aarch64: 8×8 tiles (16 q-register accumulators), and 8×4
//! tiles for products with at most 4 columns. NEON is baseline on aarch64.
//! Not compiled on the x86-64 development machine (no aarch64 toolchain there).

use super::kernel::{micro_kernel_tile, Kernel, Tile};

#[cfg(target_arch = "aarch64")]
use std::arch::aarch64::*;

/// Floats per vector register.
const LANES: usize = 4;

pub const KERNEL: Kernel = Kernel {
    name: "neon",
    kc: 256,
    wide: WIDE,
    narrow: NARROW,
    skinny: Some(super::skinny::isa::NEON),
};

/// C[MR, 4·H] = alpha · A · B + beta · C, A(i, p) at a + i·rsa + p·csa.
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
    let mut acc = [[vdupq_n_f32(0.0); H]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let mut bv = [vdupq_n_f32(0.0); H];
        for (h, v) in bv.iter_mut().enumerate() {
            *v = vld1q_f32(b.add(4 * h));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = *a.add(i * rsa);
            for h in 0..H {
                row[h] = vfmaq_n_f32(row[h], bv[h], ai);
            }
        }
        a = a.add(csa);
        b = b.add(rsb);
    }
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * rsc);
        for (h, v) in row.iter().enumerate() {
            let ch = c.add(4 * h);
            let valid = nc.saturating_sub(4 * h).min(4);
            let mut out = vmulq_n_f32(*v, alpha);
            if valid == 4 {
                if beta != 0.0 {
                    out = vfmaq_n_f32(out, vld1q_f32(ch), beta);
                }
                vst1q_f32(ch, out);
            } else if valid > 0 {
                let mut lanes = [0.0f32; 4];
                vst1q_f32(lanes.as_mut_ptr(), out);
                for (j, &x) in lanes.iter().enumerate().take(valid) {
                    let d = ch.add(j);
                    *d = if beta != 0.0 { beta.mul_add(*d, x) } else { x };
                }
            }
        }
    }
}

micro_kernel_tile!(
    #[target_feature(enable = "neon")]
    WIDE,
    wide_packed,
    wide_strided,
    8,
    2
);
micro_kernel_tile!(
    #[target_feature(enable = "neon")]
    NARROW,
    narrow_packed,
    narrow_strided,
    8,
    1
);
