//! Measurements for `ferronet bench` and `npm run bench`: GEMM GFLOP/s (ours and the
//! `matrixmultiply` crate's, for comparison) and the machine's peak FMA rate.

use crate::gemm::{self, Epilogue, Kernel, MatMut, MatRef};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmImpl {
    Ferronet,
    Matrixmultiply,
}

#[derive(Debug, Clone)]
pub struct GemmTiming {
    pub gflops: f64,
    pub best_seconds: f64,
    pub median_seconds: f64,
    pub kernel: String,
    pub threads: usize,
}

/// Times C[m,n] = A[m,k]·B[k,n] (A or B transposed in memory when asked) on a rayon
/// pool of `threads`: one warm-up, then `repetitions` timed runs; GFLOP/s from the best.
#[allow(clippy::too_many_arguments)]
pub fn gemm_timing(
    which: GemmImpl,
    kernel: Option<Kernel>,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    threads: usize,
    repetitions: usize,
) -> GemmTiming {
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut c = vec![0.0f32; m * n];
    let kernel = kernel.unwrap_or_else(gemm::selected);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    // Transposed storage: A stored [k, m], B stored [n, k].
    let (rsa, csa) = if trans_a { (1, m) } else { (k, 1) };
    let (rsb, csb) = if trans_b { (1, k) } else { (n, 1) };
    let mut run = || match which {
        GemmImpl::Ferronet => {
            let av = if trans_a {
                MatRef::from_slice(&a, k, m, m).t()
            } else {
                MatRef::from_slice(&a, m, k, k)
            };
            let bv = if trans_b {
                MatRef::from_slice(&b, n, k, k).t()
            } else {
                MatRef::from_slice(&b, k, n, n)
            };
            gemm::gemm_with(
                kernel,
                true,
                1.0,
                av,
                bv,
                0.0,
                MatMut::from_slice(&mut c, m, n, n),
                Epilogue::None,
            );
        }
        GemmImpl::Matrixmultiply => unsafe {
            // matrixmultiply threads itself (std threads) when built with its "threading" feature; here: 1 thread.
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        },
    };
    // Everything runs inside the pool with its threads kept hot (as during training),
    // and each timed repetition repeats the product until it lasts ≥ 2 ms, so small
    // shapes measure the product, not the call.
    let times: Vec<f64> = pool.install(|| {
        crate::team::with_team(|| {
            run();
            let t = Instant::now();
            run();
            let once = t.elapsed().as_secs_f64().max(1e-7);
            let inner = ((2e-3 / once).ceil() as usize).clamp(1, 100_000);
            let mut times: Vec<f64> = (0..repetitions.max(1))
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..inner {
                        run();
                    }
                    t.elapsed().as_secs_f64() / inner as f64
                })
                .collect();
            times.sort_by(|x, y| x.partial_cmp(y).unwrap());
            times
        })
    });
    let flops = 2.0 * m as f64 * k as f64 * n as f64;
    GemmTiming {
        gflops: flops / times[0] / 1e9,
        best_seconds: times[0],
        median_seconds: times[times.len() / 2],
        kernel: match which {
            GemmImpl::Ferronet => kernel.name.to_string(),
            GemmImpl::Matrixmultiply => "matrixmultiply".to_string(),
        },
        threads: if which == GemmImpl::Ferronet {
            threads
        } else {
            1
        },
    }
}

/// Peak single-precision FMA rate of `threads` cores, measured: each thread runs
/// long chains of independent vector FMAs (enough accumulators to hide latency).
pub fn peak_gflops(threads: usize) -> (f64, &'static str) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let (per_call_flops, name): (f64, &'static str) = peak::flops_per_call();
    let iterations = 4_000_000usize;
    // Inside one broadcast, each thread times its own runs after a warm-up, so thread
    // wake-up never counts; the slowest thread's best time sets the rate.
    let per_thread: Vec<f64> = pool.broadcast(|_| {
        peak::run(iterations / 4);
        (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(peak::run(iterations));
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    });
    let best = per_thread.into_iter().fold(0.0, f64::max);
    (
        per_call_flops * iterations as f64 * threads as f64 / best / 1e9,
        name,
    )
}

mod peak {
    /// FLOPs per loop iteration and the ISA used.
    pub fn flops_per_call() -> (f64, &'static str) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return (ACC as f64 * 16.0 * 2.0, "avx512");
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return (ACC as f64 * 8.0 * 2.0, "avx2");
            }
        }
        (ACC as f64 * 2.0, "scalar")
    }

    const ACC: usize = 12;

    pub fn run(iterations: usize) -> f32 {
        #[cfg(target_arch = "x86_64")]
        unsafe {
            if is_x86_feature_detected!("avx512f") {
                return run_avx512(iterations);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return run_avx2(iterations);
            }
        }
        let mut acc = [1.0f32; ACC];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = std::hint::black_box(*a).mul_add(0.999_999, 1e-7);
            }
        }
        acc.iter().sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(iterations: usize) -> f32 {
        use std::arch::x86_64::*;
        let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); ACC];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        let mut s = _mm512_setzero_ps();
        for a in acc {
            s = _mm512_add_ps(s, a);
        }
        _mm512_reduce_add_ps(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(iterations: usize) -> f32 {
        use std::arch::x86_64::*;
        let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); ACC];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut out = [0.0f32; 8];
        let mut s = _mm256_setzero_ps();
        for a in acc {
            s = _mm256_add_ps(s, a);
        }
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }
}
