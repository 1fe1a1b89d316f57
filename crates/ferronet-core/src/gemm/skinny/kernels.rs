//! The skinny kernels, written once over [`Simd`] and instantiated per instruction set
//! (and per column count, so the accumulators live in registers) by `skinny_kernels!`.
#![allow(clippy::needless_range_loop)] // register arrays are indexed in lockstep
#![allow(clippy::too_many_arguments)]

use super::simd::Simd;

/// C(i, j) = alpha·s (+ beta·C(i, j)), rounded as the vector paths round it.
#[inline(always)]
unsafe fn store_scalar(c: *mut f32, s: f32, alpha: f32, beta: f32) {
    let v = alpha * s;
    *c = if beta == 0.0 { v } else { beta.mul_add(*c, v) };
}

// ---- Dot: A rows contiguous -------------------------------------------------------

/// Σ_p A[r, p]·Bᵀ[j, p] for R rows and N columns: R·N vectors of partial sums, then
/// one horizontal sum each. Lanes past k read as zero.
#[inline(always)]
unsafe fn dot_block<S: Simd, const R: usize, const N: usize>(
    k: usize,
    a: *const f32,
    rsa: isize,
    bt: *const f32,
    rsbt: isize,
) -> [[f32; N]; R] {
    let mut acc = [[S::zero(); N]; R];
    let full = k - k % S::LANES;
    for p in (0..full).step_by(S::LANES) {
        dot_step::<S, R, N, true>(a.add(p), rsa, bt.add(p), rsbt, S::mask(S::LANES), &mut acc);
    }
    if full < k {
        dot_step::<S, R, N, false>(
            a.add(full),
            rsa,
            bt.add(full),
            rsbt,
            S::mask(k - full),
            &mut acc,
        );
    }
    let mut out = [[0.0; N]; R];
    for r in 0..R {
        for j in 0..N {
            out[r][j] = S::sum(acc[r][j]);
        }
    }
    out
}

/// One vector's worth of p; lanes outside `m` read as zero unless FULL.
#[inline(always)]
unsafe fn dot_step<S: Simd, const R: usize, const N: usize, const FULL: bool>(
    a: *const f32,
    rsa: isize,
    bt: *const f32,
    rsbt: isize,
    m: S::Mask,
    acc: &mut [[S::V; N]; R],
) {
    let load = |p: *const f32| {
        if FULL {
            S::load(p)
        } else {
            S::load_masked(m, p)
        }
    };
    let mut av = [S::zero(); R];
    for (r, v) in av.iter_mut().enumerate() {
        *v = load(a.offset(r as isize * rsa));
    }
    for j in 0..N {
        let bv = load(bt.offset(j as isize * rsbt));
        for r in 0..R {
            acc[r][j] = S::fma(av[r], bv, acc[r][j]);
        }
    }
}

/// Rows in blocks of R, the last few one at a time.
#[inline(always)]
pub(super) unsafe fn dot_rows<S: Simd, const R: usize, const N: usize>(
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
            let s = dot_block::<S, R, N>(k, a, rsa, bt, rsbt);
            for (r, row) in s.iter().enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    store_scalar(
                        c.offset(r as isize * rsc + j as isize * csc),
                        x,
                        alpha,
                        beta,
                    );
                }
            }
            i += R;
        } else {
            let [row] = dot_block::<S, 1, N>(k, a, rsa, bt, rsbt);
            for (j, &x) in row.iter().enumerate() {
                store_scalar(c.offset(j as isize * csc), x, alpha, beta);
            }
            i += 1;
        }
    }
}

// ---- Columns: A columns contiguous -------------------------------------------------

/// C[0..rows, 0..N] for rows ≤ V·LANES (= when FULL): V vectors down each of N columns,
/// one FMA per vector per column per p, B(p, j) broadcast.
#[inline(always)]
unsafe fn columns_block<S: Simd, const V: usize, const N: usize, const FULL: bool>(
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
    let masks: [S::Mask; V] = std::array::from_fn(|v| S::mask(rows.saturating_sub(v * S::LANES)));
    let mut acc = [[S::zero(); N]; V];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        let mut av = [S::zero(); V];
        for v in 0..V {
            let p = a.add(v * S::LANES);
            av[v] = if FULL {
                S::load(p)
            } else {
                S::load_masked(masks[v], p)
            };
        }
        for j in 0..N {
            let bj = S::splat(*b.offset(j as isize * csb));
            for v in 0..V {
                acc[v][j] = S::fma(av[v], bj, acc[v][j]);
            }
        }
        a = a.offset(csa);
        b = b.offset(rsb);
    }
    let (alpha_v, beta_v) = (S::splat(alpha), S::splat(beta));
    if rsc == 1 {
        // Column-major C: each accumulator is a run of C.
        for j in 0..N {
            let cj = c.offset(j as isize * csc);
            for v in 0..V {
                let p = cj.add(v * S::LANES);
                let mut out = S::mul(alpha_v, acc[v][j]);
                if beta != 0.0 {
                    out = S::fma(beta_v, S::load_masked(masks[v], p), out);
                }
                S::store_masked(masks[v], p, out);
            }
        }
    } else {
        // Row-major C: the sums through a buffer, written row by row.
        let mut buf = [[[0.0f32; 16]; V]; N];
        debug_assert!(S::LANES <= 16);
        for j in 0..N {
            for v in 0..V {
                S::store(buf[j][v].as_mut_ptr(), acc[v][j]);
            }
        }
        for i in 0..rows {
            let ci = c.offset(i as isize * rsc);
            for (j, col) in buf.iter().enumerate() {
                let s = col[i / S::LANES][i % S::LANES];
                store_scalar(ci.offset(j as isize * csc), s, alpha, beta);
            }
        }
    }
}

/// Rows in blocks of V·LANES.
#[inline(always)]
pub(super) unsafe fn columns_rows<S: Simd, const V: usize, const N: usize>(
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
    let block = V * S::LANES;
    let full = rows - rows % block;
    for i in (0..full).step_by(block) {
        let c = c.offset(i as isize * rsc);
        columns_block::<S, V, N, true>(
            k,
            block,
            alpha,
            a.add(i),
            csa,
            b,
            rsb,
            csb,
            beta,
            c,
            rsc,
            csc,
        );
    }
    if full < rows {
        let c = c.offset(full as isize * rsc);
        columns_block::<S, V, N, false>(
            k,
            rows - full,
            alpha,
            a.add(full),
            csa,
            b,
            rsb,
            csb,
            beta,
            c,
            rsc,
            csc,
        );
    }
}

/// Calls the instance of `$f` for `n` columns, with `$gN` rows (Dot) or vectors
/// (Columns) per block for N columns.
macro_rules! by_columns {
    ($f:ident, $s:ty, $n:expr, ($($arg:expr),*), [$g1:literal, $g2:literal, $g3:literal, $g4:literal, $g5:literal, $g6:literal, $g7:literal, $g8:literal, $g9:literal, $g10:literal, $g11:literal, $g12:literal]) => {
        match $n {
            1 => $f::<$s, $g1, 1>($($arg),*),
            2 => $f::<$s, $g2, 2>($($arg),*),
            3 => $f::<$s, $g3, 3>($($arg),*),
            4 => $f::<$s, $g4, 4>($($arg),*),
            5 => $f::<$s, $g5, 5>($($arg),*),
            6 => $f::<$s, $g6, 6>($($arg),*),
            7 => $f::<$s, $g7, 7>($($arg),*),
            8 => $f::<$s, $g8, 8>($($arg),*),
            9 => $f::<$s, $g9, 9>($($arg),*),
            10 => $f::<$s, $g10, 10>($($arg),*),
            11 => $f::<$s, $g11, 11>($($arg),*),
            12 => $f::<$s, $g12, 12>($($arg),*),
            _ => unreachable!("skinny kernels take 1..=12 columns"),
        }
    };
}
pub(super) use by_columns;

/// Declares one instruction set's [`super::Skinny`] as `$name`: entry points carrying
/// `$feature` (so every generic piece inlines into them), the most columns each route
/// takes, and the rows per Dot block and vectors per Columns block for each column count.
macro_rules! skinny_kernels {
    ($name:ident, $simd:ty, $feature:literal, max_n: $max_n:literal, columns_max_n: $col_max_n:literal, dot: $dot_groups:tt, columns: $col_groups:tt) => {
        pub const $name: $crate::gemm::skinny::Skinny = {
            use $crate::gemm::skinny::kernels::{by_columns, columns_rows, dot_rows};
            use $crate::gemm::skinny::simd::Simd;

            #[target_feature(enable = $feature)]
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
                    $simd,
                    n,
                    (k, rows, alpha, a, rsa, bt, rsbt, beta, c, rsc, csc),
                    $dot_groups
                )
            }

            #[target_feature(enable = $feature)]
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
                    $simd,
                    n,
                    (k, rows, alpha, a, csa, b, rsb, csb, beta, c, rsc, csc),
                    $col_groups
                )
            }

            $crate::gemm::skinny::Skinny {
                lanes: <$simd as Simd>::LANES,
                max_n: $max_n,
                columns_max_n: $col_max_n,
                dot,
                columns,
            }
        };
    };
}
pub(crate) use skinny_kernels;
