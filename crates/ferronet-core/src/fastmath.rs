//! Elementary functions in plain arithmetic for the hot loops of pointwise ops and
//! losses: no libm call, no `mul_add` or `round` (software fallbacks on the x86-64
//! baseline the crate is compiled for), only multiplies, adds, compares and bit
//! operations, so that LLVM vectorises the loops that call them (4 doubles wide in
//! the AVX2 + FMA copies the callers pick at run time). f64 throughout: the error is
//! far below f32's rounding, so results match PyTorch's to f32 precision.

/// 0 for a finite x, NaN for NaN or ±∞: x − x on purpose, so a loop that sums it or
/// compares it with 0 checks finiteness without a branch per element (it vectorises).
#[inline(always)]
#[allow(clippy::eq_op)]
pub fn zero_if_finite(x: f32) -> f32 {
    x - x
}

/// e^x in f64 without libm (vectorises): 2^n · e^r, n = x·log₂e rounded by the
/// 1.5·2^52 trick (its low mantissa bits are n), r = x − n·ln 2 in ±0.35, e^r by its
/// degree-11 Taylor polynomial (relative error ≲1e-13); x is clamped to ±700.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let x = x.clamp(-700.0, 700.0);
    let shifted = x * std::f64::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = x - n * 0.693_147_180_369_123_8 - n * 1.908_214_929_270_587_7e-10;
    let mut p = 1.0 / 39_916_800.0;
    for c in [1.0 / 3_628_800.0, 1.0 / 362_880.0, 1.0 / 40_320.0, 1.0 / 5_040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    let k = (shifted.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    p * f64::from_bits(((k + 1023) << 52) as u64)
}

/// ln x in f64 without libm (vectorises), for x > 0 (x ≤ 0 gives a large negative
/// number; callers clamp, as PyTorch's BCE clamps its logs at −100): x = m·2^e with m in
/// [√½, √2), ln m = 2·atanh s, s = (m − 1)/(m + 1), |s| ≤ 0.172, by its series to s¹³
/// (error ≲1e-12); the exponent read as a double by the 2^52 trick.
#[inline(always)]
pub fn ln_f64(x: f64) -> f64 {
    let x = x.max(1e-300);
    let bits = x.to_bits();
    let exponent = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - 4_503_599_627_370_496.0 - 1023.0;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let (m, e) = if big { (0.5 * m, exponent + 1.0) } else { (m, exponent) };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 13.0;
    for c in [1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0] {
        p = p * s2 + c;
    }
    e * std::f64::consts::LN_2 + 2.0 * s * p
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_and_ln_match_libm() {
        for i in -20_000..=20_000 {
            let x = i as f64 * 1e-3;
            let (got, want) = (super::exp_f64(x), x.exp());
            assert!((got - want).abs() <= 1e-12 * want, "exp({x}) = {got}, want {want}");
        }
        for i in 1..=200_000 {
            let x = i as f64 * 1e-5 * (1.0 + (i % 7) as f64);
            let (got, want) = (super::ln_f64(x), x.ln());
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "ln({x}) = {got}, want {want}");
        }
        for x in [1e-300, 1e-30, 1e-8, 0.5, 1.0, 2.0, 1e10] {
            assert!((super::ln_f64(x) - x.ln()).abs() <= 1e-12 * x.ln().abs().max(1.0), "ln({x})");
        }
        assert!(super::ln_f64(0.0) < -690.0);
    }
}
