//! Every micro-kernel this CPU runs, against the naive reference, over many shapes,
//! transposes, strides, alpha/beta cases and epilogues; and thread-count independence.
//! Set FERRONET_TEST_REQUIRE_KERNELS=avx512,avx2 to fail when an expected kernel is missing.

use ferronet_core::gemm::{
    available, gemm_with, reference_gemm, Epilogue, Kernel, MatMut, MatRef, SkinnyRoute,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EDGE_SIZES: [usize; 10] = [1, 7, 15, 16, 17, 63, 64, 65, 500, 784];

/// A matrix stored with padding: element (i, j) at i·rs + j·cs.
struct Strided {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Strided {
    /// `layout`: 0 = row-major, 1 = column-major, 2 = row-major with padded rows.
    fn random(rng: &mut ChaCha8Rng, rows: usize, cols: usize, layout: u8) -> Self {
        let (rs, cs, len) = match layout {
            0 => (cols, 1, rows * cols),
            1 => (1, rows, rows * cols),
            _ => (cols + 3, 1, rows * (cols + 3)),
        };
        let data = (0..len.max(1))
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Strided {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
    fn view(&self) -> MatRef<'_> {
        // A column-major matrix is the transpose of a row-major one.
        if self.cs == 1 {
            MatRef::from_slice(&self.data, self.rows, self.cols, self.rs)
        } else {
            MatRef::from_slice(&self.data, self.cols, self.rows, self.cs).t()
        }
    }
}

fn kernels() -> Vec<Kernel> {
    let ks = available();
    if let Ok(required) = std::env::var("FERRONET_TEST_REQUIRE_KERNELS") {
        for name in required.split(',').filter(|s| !s.is_empty()) {
            assert!(
                ks.iter().any(|k| k.name == name),
                "kernel {name} required but not available on this CPU"
            );
        }
    }
    eprintln!(
        "testing kernels: {:?}",
        ks.iter().map(|k| k.name).collect::<Vec<_>>()
    );
    ks
}

#[allow(clippy::too_many_arguments)]
fn check(
    kernel: Kernel,
    rng: &mut ChaCha8Rng,
    m: usize,
    k: usize,
    n: usize,
    la: u8,
    lb: u8,
    alpha: f32,
    beta: f32,
) {
    check_with_c(kernel, rng, m, k, n, la, lb, false, alpha, beta)
}

/// As [`check`], with C stored column-major when `c_col_major`.
#[allow(clippy::too_many_arguments)]
fn check_with_c(
    kernel: Kernel,
    rng: &mut ChaCha8Rng,
    m: usize,
    k: usize,
    n: usize,
    la: u8,
    lb: u8,
    c_col_major: bool,
    alpha: f32,
    beta: f32,
) {
    let a = Strided::random(rng, m, k, la);
    let b = Strided::random(rng, k, n, lb);
    let c0: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut want = c0.clone();
    reference_gemm(
        m, k, n, alpha, &a.data, a.rs, a.cs, &b.data, b.rs, b.cs, beta, &mut want, n, 1,
    );
    let mut results = vec![];
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        // beta == 0 must not read C: poison it with NaN.
        // C(i, j) at i·n + j, or at j·m + i when column-major.
        let at = |i: usize, j: usize| if c_col_major { j * m + i } else { i * n + j };
        let mut stored = vec![f32::NAN; m * n];
        if beta != 0.0 {
            for i in 0..m {
                for j in 0..n {
                    stored[at(i, j)] = c0[i * n + j];
                }
            }
        }
        pool.install(|| {
            let c = if c_col_major {
                let nd = ndarray::ArrayViewMut2::from_shape((n, m), &mut stored).unwrap();
                MatMut::from_view(nd.reversed_axes())
            } else {
                MatMut::from_slice(&mut stored, m, n, n)
            };
            gemm_with(
                kernel,
                true,
                alpha,
                a.view(),
                b.view(),
                beta,
                c,
                Epilogue::None,
            )
        });
        let got: Vec<f32> = (0..m * n).map(|idx| stored[at(idx / n, idx % n)]).collect();
        for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
            let tol = 1e-5 * (k as f32).sqrt() * (1.0 + alpha.abs()) + 1e-6;
            assert!((g - w).abs() <= tol, "{} m={m} k={k} n={n} layouts=({la},{lb}) C col-major {c_col_major} alpha={alpha} beta={beta} threads={threads}: C[{idx}] = {g}, want {w}", kernel.name);
        }
        results.push(got);
    }
    assert!(
        results[0]
            .iter()
            .zip(&results[1])
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "{}: 1 and 2 threads differ at m={m} k={k} n={n}",
        kernel.name
    );
}

#[test]
fn every_kernel_matches_the_reference_at_edge_sizes() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for kernel in kernels() {
        for &m in &EDGE_SIZES {
            for &n in &EDGE_SIZES {
                // k over edge sizes too, but not the full cube of large ones.
                let k = EDGE_SIZES[(m * 7 + n * 3) % EDGE_SIZES.len()];
                if m * n * k > 60_000_000 {
                    continue;
                }
                check(kernel, &mut rng, m, k, n, 0, 0, 1.0, 0.0);
            }
        }
    }
}

#[test]
fn every_kernel_handles_transposes_strides_alpha_and_beta() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for kernel in kernels() {
        for case in 0..60 {
            let m = rng.random_range(1..90);
            let k = rng.random_range(1..300);
            let n = rng.random_range(1..90);
            let (la, lb) = (case % 3, (case / 3) % 3);
            let (alpha, beta) = [
                (1.0, 0.0),
                (1.0, 1.0),
                (0.5, -2.0),
                (-1.5, 0.25),
                (2.0, 0.0),
            ][case as usize % 5];
            check(kernel, &mut rng, m, k, n, la as u8, lb as u8, alpha, beta);
        }
        // Deeper than one KC block: the beta of later blocks must be 1.
        check(kernel, &mut rng, 33, 1000, 41, 1, 2, 1.0, 0.5);
        check(kernel, &mut rng, 64, 784, 500, 0, 1, 1.0, 0.0);
    }
}

/// Products with few columns take the skinny kernels (vectorised along A's contiguous
/// side) where the kernel has them: every column count they take, both routes, and the
/// shapes around where they stop applying.
#[test]
fn skinny_products_match_the_reference_for_every_column_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let ms = [1, 7, 15, 16, 17, 47, 63, 64, 65, 500];
    let ks = [1, 7, 31, 32, 33, 64, 500, 784];
    let cases = [(1.0, 0.0), (1.0, 1.0), (0.5, -2.0), (-1.5, 0.25)];
    for kernel in kernels() {
        if let Some(skinny) = kernel.skinny {
            // The seed network's 10-class products take them (Hᵀ·dY where the ISA's
            // Columns kernel takes 10 columns).
            let h = vec![0.0f32; 64 * 500];
            let w = vec![0.0f32; 500 * 10];
            let dy = vec![0.0f32; 64 * 10];
            let h = MatRef::from_slice(&h, 64, 500, 500);
            let w = MatRef::from_slice(&w, 500, 10, 10);
            let dy = MatRef::from_slice(&dy, 64, 10, 10);
            assert_eq!(skinny.route(h, w), Some(SkinnyRoute::Dot));
            let columns = (skinny.columns_max_n >= 10).then_some(SkinnyRoute::Columns);
            assert_eq!(skinny.route(h.t(), dy), columns, "{}", kernel.name);
            assert_eq!(skinny.route(dy, w.t()), None);
        }
        for n in 1..=13 {
            for case in 0..12 {
                let m = ms[rng.random_range(0..ms.len())];
                let k = ks[rng.random_range(0..ks.len())];
                let (la, lb) = ((case % 3) as u8, ((case / 3) % 3) as u8);
                let (alpha, beta) = cases[case % cases.len()];
                check_with_c(
                    kernel,
                    &mut rng,
                    m,
                    k,
                    n,
                    la,
                    lb,
                    case % 2 == 1,
                    alpha,
                    beta,
                );
            }
        }
    }
}

#[test]
fn k_zero_scales_c_by_beta() {
    for kernel in kernels() {
        let a: Vec<f32> = vec![];
        let mut c = vec![2.0f32; 6];
        gemm_with(
            kernel,
            false,
            1.0,
            MatRef::from_slice(&a, 2, 0, 0),
            MatRef::from_slice(&a, 0, 3, 3),
            0.5,
            MatMut::from_slice(&mut c, 2, 3, 3),
            Epilogue::None,
        );
        assert_eq!(c, vec![1.0; 6]);
    }
}

#[test]
fn epilogues_fuse_bias_relu_and_mask() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // A general product, and the two skinny routes (A row-major: Dot; A column-major: Columns).
    let shapes = [(37, 50, 45, 0), (37, 50, 10, 0), (37, 50, 10, 1)];
    for (kernel, (m, k, n, la)) in kernels()
        .into_iter()
        .flat_map(|kernel| shapes.map(|s| (kernel, s)))
    {
        let a = Strided::random(&mut rng, m, k, la);
        let b = Strided::random(&mut rng, k, n, 1);
        let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mask: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut plain = vec![0.0; m * n];
        reference_gemm(
            m, k, n, 1.0, &a.data, a.rs, a.cs, &b.data, b.rs, b.cs, 0.0, &mut plain, n, 1,
        );
        let run = |e: Epilogue| {
            let mut c = vec![f32::NAN; m * n];
            gemm_with(
                kernel,
                true,
                1.0,
                a.view(),
                b.view(),
                0.0,
                MatMut::from_slice(&mut c, m, n, n),
                e,
            );
            c
        };
        let close = |x: f32, y: f32| (x - y).abs() < 1e-4;
        // The same with C and the mask stored column-major (non-unit column stride).
        let run_strided = |relu_mask: bool| {
            let mut c_t = vec![f32::NAN; m * n];
            let mask_t: Vec<f32> = (0..m * n)
                .map(|idx| mask[(idx % m) * n + idx / m])
                .collect();
            let mask_view = MatRef::from_slice(&mask_t, n, m, m).t();
            let mut c_nd = ndarray::ArrayViewMut2::from_shape((n, m), &mut c_t).unwrap();
            let c_view = MatMut::from_view(c_nd.view_mut().reversed_axes());
            let e = if relu_mask {
                Epilogue::ReluMask(mask_view)
            } else {
                Epilogue::BiasRelu(&bias)
            };
            gemm_with(kernel, true, 1.0, a.view(), b.view(), 0.0, c_view, e);
            (0..m * n)
                .map(|idx| c_t[(idx % n) * m + idx / n])
                .collect::<Vec<f32>>()
        };
        let strided_relu = run_strided(false);
        let strided_mask = run_strided(true);
        let with_bias = run(Epilogue::Bias(&bias));
        let with_relu = run(Epilogue::BiasRelu(&bias));
        let masked = run(Epilogue::ReluMask(MatRef::from_slice(&mask, m, n, n)));
        for i in 0..m {
            for j in 0..n {
                let z = plain[i * n + j] + bias[j];
                assert!(close(with_bias[i * n + j], z));
                assert!(close(with_relu[i * n + j], z.max(0.0)));
                let want = if mask[i * n + j] > 0.0 {
                    plain[i * n + j]
                } else {
                    0.0
                };
                assert!(close(masked[i * n + j], want));
                assert!(close(strided_relu[i * n + j], z.max(0.0)));
                assert!(close(strided_mask[i * n + j], want));
            }
        }
    }
}
