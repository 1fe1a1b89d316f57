//! AVX-512F skinny-product kernels (16 lanes), one instance per column count 1..=12
//! so the accumulators live in registers.
#![allow(clippy::needless_range_loop)] // register arrays are indexed in lockstep

use super::Skinny;
use std::arch::x86_64::*;

const LANES: usize = 16;

pub const SKINNY: Skinny = Skinny {
    lanes: LANES,
    max_n: 12,
    dot,
    columns,
};

/// Lanes `0..valid` of a 16-lane mask.
#[inline(always)]
fn mask(valid: usize) -> __mmask16 {
    ((1u32 << valid.min(LANES)) - 1) as __mmask16
}

/// C(i, j) = alpha·s (+ beta·C(i, j)), rounded as the vector kernels round it.
#[inline(always)]
unsafe fn store(c: *mut f32, s: f32, alpha: f32, beta: f32) {
    let v = alpha * s;
    *c = if beta == 0.0 { v } else { beta.mul_add(*c, v) };
}

/// Calls the instance of `$f` for `n` columns, with `$gN` rows (Dot) or vectors (Columns)
/// per block for N columns.
macro_rules! by_columns {
    ($f:ident, $n:expr, ($($arg:expr),*), [$g1:literal, $g2:literal, $g3:literal, $g4:literal, $g5:literal, $g6:literal, $g7:literal, $g8:literal, $g9:literal, $g10:literal, $g11:literal, $g12:literal]) => {
        match $n {
            1 => $f::<$g1, 1>($($arg),*),
            2 => $f::<$g2, 2>($($arg),*),
            3 => $f::<$g3, 3>($($arg),*),
            4 => $f::<$g4, 4>($($arg),*),
            5 => $f::<$g5, 5>($($arg),*),
            6 => $f::<$g6, 6>($($arg),*),
            7 => $f::<$g7, 7>($($arg),*),
            8 => $f::<$g8, 8>($($arg),*),
            9 => $f::<$g9, 9>($($arg),*),
            10 => $f::<$g10, 10>($($arg),*),
            11 => $f::<$g11, 11>($($arg),*),
            12 => $f::<$g12, 12>($($arg),*),
            _ => unreachable!("skinny kernels take 1..=12 columns"),
        }
    };
}

// ---- Dot: A rows contiguous -------------------------------------------------------

/// Σ_p A[r, p]·Bᵀ[j, p] for R rows and N columns: R·N vectors of 16 partial sums,
/// then one horizontal sum each.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn dot_block<const R: usize, const N: usize>(
    k: usize,
    a: *const f32,
    rsa: isize,
    bt: *const f32,
    rsbt: isize,
) -> [[f32; N]; R] {
    let mut acc = [[_mm512_setzero_ps(); N]; R];
    for p in (0..k).step_by(LANES) {
        // Lanes past k read as zero.
        let m = mask(k - p);
        let mut av = [_mm512_setzero_ps(); R];
        for (r, v) in av.iter_mut().enumerate() {
            *v = _mm512_maskz_loadu_ps(m, a.offset(r as isize * rsa).add(p));
        }
        for j in 0..N {
            let bv = _mm512_maskz_loadu_ps(m, bt.offset(j as isize * rsbt).add(p));
            for r in 0..R {
                acc[r][j] = _mm512_fmadd_ps(av[r], bv, acc[r][j]);
            }
        }
    }
    let mut out = [[0.0; N]; R];
    for r in 0..R {
        for j in 0..N {
            out[r][j] = _mm512_reduce_add_ps(acc[r][j]);
        }
    }
    out
}

/// Rows in blocks of R, the last few one at a time.
#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_rows<const R: usize, const N: usize>(
    k: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    bt: *const f32,
    rsbt: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let mut i = 0;
    while i < rows {
        let (a, c) = (a.offset(i as isize * rsa), c.offset(i as isize * rsc));
        if i + R <= rows {
            let s = dot_block::<R, N>(k, a, rsa, bt, rsbt);
            for (r, row) in s.iter().enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    store(
                        c.offset(r as isize * rsc + j as isize * csc),
                        x,
                        alpha,
                        beta,
                    );
                }
            }
            i += R;
        } else {
            let [row] = dot_block::<1, N>(k, a, rsa, bt, rsbt);
            for (j, &x) in row.iter().enumerate() {
                store(c.offset(j as isize * csc), x, alpha, beta);
            }
            i += 1;
        }
    }
}

/// See [`super::DotKernel`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn dot(
    k: usize,
    n: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    bt: *const f32,
    rsbt: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    by_columns!(
        dot_rows,
        n,
        (k, rows, alpha, a, rsa, bt, rsbt, beta, c, rsc, csc),
        // R·N ≤ 16 accumulators: with more, LLVM spills them inside the loop (20 for
        // N = 10 measured 10% slower than 10).
        [4, 4, 4, 4, 3, 2, 2, 2, 1, 1, 1, 1]
    )
}

// ---- Columns: A columns contiguous -------------------------------------------------

/// C[0..rows, 0..N] for rows ≤ 16·V: V vectors down each of N columns, one FMA per
/// vector per column per p, B(p, j) broadcast.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn columns_block<const V: usize, const N: usize>(
    k: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let mut masks = [0 as __mmask16; V];
    for (v, m) in masks.iter_mut().enumerate() {
        *m = mask(rows.saturating_sub(v * LANES));
    }
    let mut acc = [[_mm512_setzero_ps(); N]; V];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let mut av = [_mm512_setzero_ps(); V];
        for v in 0..V {
            av[v] = _mm512_maskz_loadu_ps(masks[v], a.add(v * LANES));
        }
        for j in 0..N {
            let bj = _mm512_set1_ps(*b.offset(j as isize * csb));
            for v in 0..V {
                acc[v][j] = _mm512_fmadd_ps(av[v], bj, acc[v][j]);
            }
        }
        a = a.offset(csa);
        b = b.offset(rsb);
    }
    let (alpha_v, beta_v) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    if rsc == 1 {
        // Column-major C: each accumulator is a run of C.
        for j in 0..N {
            let cj = c.offset(j as isize * csc);
            for v in 0..V {
                let p = cj.add(v * LANES);
                let mut out = _mm512_mul_ps(alpha_v, acc[v][j]);
                if beta != 0.0 {
                    out = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(masks[v], p), out);
                }
                _mm512_mask_storeu_ps(p, masks[v], out);
            }
        }
    } else {
        // Row-major C: scaled sums through a buffer, written row by row.
        let mut buf = [[[0.0f32; LANES]; V]; N];
        for j in 0..N {
            for v in 0..V {
                _mm512_storeu_ps(buf[j][v].as_mut_ptr(), _mm512_mul_ps(alpha_v, acc[v][j]));
            }
        }
        for i in 0..rows {
            let ci = c.offset(i as isize * rsc);
            for (j, col) in buf.iter().enumerate() {
                let d = ci.offset(j as isize * csc);
                let x = col[i / LANES][i % LANES];
                *d = if beta == 0.0 { x } else { beta.mul_add(*d, x) };
            }
        }
    }
}

/// Rows in blocks of 16·V.
#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn columns_rows<const V: usize, const N: usize>(
    k: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    for i in (0..rows).step_by(V * LANES) {
        columns_block::<V, N>(
            k,
            (rows - i).min(V * LANES),
            alpha,
            a.add(i),
            csa,
            b,
            rsb,
            csb,
            beta,
            c.offset(i as isize * rsc),
            rsc,
            csc,
        );
    }
}

/// See [`super::ColumnsKernel`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn columns(
    k: usize,
    n: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    by_columns!(
        columns_rows,
        n,
        (k, rows, alpha, a, csa, b, rsb, csb, beta, c, rsc, csc),
        // V·N accumulators + V operands + a broadcast ≤ 32 registers (checked: no spills).
        [4, 4, 4, 4, 4, 4, 3, 3, 2, 2, 2, 2]
    )
}
