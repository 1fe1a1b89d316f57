//! NEON micro-kernel for aarch64: 8×8 tile, 16 q-register accumulators.
//! NEON is baseline on aarch64, so this kernel is always runnable there.

use super::kernel::Kernel;

#[cfg(target_arch = "aarch64")]
use std::arch::aarch64::*;

pub const KERNEL: Kernel = Kernel {
    name: "neon",
    mr: MR,
    nr: NR,
    kc: 256,
    micro: micro_kernel,
};

const MR: usize = 8;
const NR: usize = 8;

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
    kernel_neon(k, alpha, a, b, rsb, beta, c, rsc)
}

#[target_feature(enable = "neon")]
unsafe fn kernel_neon(
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    rsb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    let mut acc = [[vdupq_n_f32(0.0); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let b0 = vld1q_f32(b);
        let b1 = vld1q_f32(b.add(4));
        let a_lo = vld1q_f32(a);
        let a_hi = vld1q_f32(a.add(4));
        macro_rules! row {
            ($i:expr, $src:expr, $lane:expr) => {
                acc[$i][0] = vfmaq_laneq_f32::<$lane>(acc[$i][0], b0, $src);
                acc[$i][1] = vfmaq_laneq_f32::<$lane>(acc[$i][1], b1, $src);
            };
        }
        row!(0, a_lo, 0);
        row!(1, a_lo, 1);
        row!(2, a_lo, 2);
        row!(3, a_lo, 3);
        row!(4, a_hi, 0);
        row!(5, a_hi, 1);
        row!(6, a_hi, 2);
        row!(7, a_hi, 3);
        a = a.add(MR);
        b = b.add(rsb);
    }
    let alpha_v = vdupq_n_f32(alpha);
    for (i, row) in acc.iter().enumerate() {
        let c = c.add(i * rsc);
        for (h, v) in row.iter().enumerate() {
            let ch = c.add(4 * h);
            let mut out = vmulq_f32(alpha_v, *v);
            if beta != 0.0 {
                out = vfmaq_n_f32(out, vld1q_f32(ch), beta);
            }
            vst1q_f32(ch, out);
        }
    }
}
