//! The few vector operations the skinny kernels need, per instruction set. Every method
//! is `#[inline(always)]` without a `target_feature` of its own: it is only ever inlined
//! into an entry point that carries the feature (see `skinny_kernels!`).

/// A vector of `LANES` f32 and a mask selecting its first lanes.
pub trait Simd {
    const LANES: usize;
    type V: Copy;
    type Mask: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Lanes `0..valid` (valid ≤ LANES).
    unsafe fn mask(valid: usize) -> Self::Mask;
    /// Masked-off lanes read as zero and their memory is not touched (slower than
    /// `load` on some CPUs: AVX2's maskload).
    unsafe fn load_masked(m: Self::Mask, p: *const f32) -> Self::V;
    unsafe fn store_masked(m: Self::Mask, p: *mut f32, v: Self::V);
    /// a·b + c, one rounding.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// The sum of all lanes.
    unsafe fn sum(v: Self::V) -> f32;
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

/// One lane: the portable fallback (and the reference when a scalar kernel is forced).
pub struct Scalar;

impl Simd for Scalar {
    const LANES: usize = 1;
    type V = f32;
    type Mask = bool;
    #[inline(always)]
    unsafe fn zero() -> f32 {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        *p = v
    }
    #[inline(always)]
    unsafe fn mask(valid: usize) -> bool {
        valid > 0
    }
    #[inline(always)]
    unsafe fn load_masked(m: bool, p: *const f32) -> f32 {
        if m {
            *p
        } else {
            0.0
        }
    }
    #[inline(always)]
    unsafe fn store_masked(m: bool, p: *mut f32, v: f32) {
        if m {
            *p = v
        }
    }
    #[inline(always)]
    unsafe fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn sum(v: f32) -> f32 {
        v
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    pub struct Avx512;

    impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;
        type Mask = __mmask16;
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn mask(valid: usize) -> __mmask16 {
            ((1u32 << valid.min(16)) - 1) as __mmask16
        }
        #[inline(always)]
        unsafe fn load_masked(m: __mmask16, p: *const f32) -> __m512 {
            _mm512_maskz_loadu_ps(m, p)
        }
        #[inline(always)]
        unsafe fn store_masked(m: __mmask16, p: *mut f32, v: __m512) {
            _mm512_mask_storeu_ps(p, m, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sum(v: __m512) -> f32 {
            _mm512_reduce_add_ps(v)
        }
    }

    pub struct Avx2;

    impl Simd for Avx2 {
        const LANES: usize = 8;
        type V = __m256;
        /// All ones in the lanes to keep (the form `maskload` takes).
        type Mask = __m256i;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn mask(valid: usize) -> __m256i {
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(valid.min(8) as i32), lane)
        }
        #[inline(always)]
        unsafe fn load_masked(m: __m256i, p: *const f32) -> __m256 {
            _mm256_maskload_ps(p, m)
        }
        #[inline(always)]
        unsafe fn store_masked(m: __m256i, p: *mut f32, v: __m256) {
            _mm256_maskstore_ps(p, m, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sum(v: __m256) -> f32 {
            let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub use arm::Neon;

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::Simd;
    use std::arch::aarch64::*;

    pub struct Neon;

    impl Simd for Neon {
        const LANES: usize = 4;
        type V = float32x4_t;
        /// The number of lanes to keep: NEON has no masked loads, so partial vectors
        /// go through a small buffer.
        type Mask = usize;
        #[inline(always)]
        unsafe fn zero() -> float32x4_t {
            vdupq_n_f32(0.0)
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> float32x4_t {
            vdupq_n_f32(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> float32x4_t {
            vld1q_f32(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: float32x4_t) {
            vst1q_f32(p, v)
        }
        #[inline(always)]
        unsafe fn mask(valid: usize) -> usize {
            valid.min(4)
        }
        #[inline(always)]
        unsafe fn load_masked(m: usize, p: *const f32) -> float32x4_t {
            if m == 4 {
                return vld1q_f32(p);
            }
            let mut buf = [0.0f32; 4];
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), m);
            vld1q_f32(buf.as_ptr())
        }
        #[inline(always)]
        unsafe fn store_masked(m: usize, p: *mut f32, v: float32x4_t) {
            if m == 4 {
                return vst1q_f32(p, v);
            }
            let mut buf = [0.0f32; 4];
            vst1q_f32(buf.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, m);
        }
        #[inline(always)]
        unsafe fn fma(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
            vfmaq_f32(c, a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vmulq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn sum(v: float32x4_t) -> f32 {
            vaddvq_f32(v)
        }
    }
}
