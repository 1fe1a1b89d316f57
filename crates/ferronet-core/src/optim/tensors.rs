//! Parameter/gradient tensors as the optimizers see them, and a parallel,
//! vectorised loop over their elements.
//!
//! Updates are elementwise, so splitting them across threads or SIMD lanes
//! changes no result. The loop body is compiled once per ISA (AVX-512, AVX2,
//! baseline) and chosen at run time, like the GEMM kernels.

use std::ops::Range;

/// One parameter tensor and its gradient, by raw parts so that chunks of it can be
/// updated from several threads. Built by the model for the duration of one step.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef {
    /// The tensor's index in the model's parameter store: optimizer state is keyed by it.
    pub id: usize,
    pub param: *mut f32,
    pub grad: *const f32,
    pub len: usize,
}

unsafe impl Send for TensorRef {}
unsafe impl Sync for TensorRef {}

/// Elements per parallel chunk: big enough to amortise the hand-off.
pub(crate) const CHUNK: usize = 1 << 15;

/// Runs `f(tensor, range)` over every chunk of every tensor, in parallel.
pub fn for_each_chunk(tensors: &[TensorRef], f: &(dyn Fn(usize, Range<usize>) + Sync)) {
    let parts: usize = tensors.iter().map(|t| t.len.div_ceil(CHUNK)).sum();
    crate::team::run_parts(parts, &|mut p| {
        for (i, t) in tensors.iter().enumerate() {
            let n = t.len.div_ceil(CHUNK);
            if p < n {
                f(i, p * CHUNK..((p + 1) * CHUNK).min(t.len));
                return;
            }
            p -= n;
        }
    });
}

/// Compiles `$body` (a loop over slices) three times: AVX-512, AVX2+FMA-less AVX2,
/// and baseline, and runs the best this CPU has. No fused multiply-adds are
/// introduced by the compiler, so every variant gives the same bits.
macro_rules! multiversion {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) { body($($arg),*) }
                if is_x86_feature_detected!("avx512f") {
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") {
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;
