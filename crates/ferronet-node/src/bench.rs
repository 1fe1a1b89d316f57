//! Measurements for `ferronet bench`: GEMM GFLOP/s and the peak FMA rate.
//! Synchronous on purpose: a benchmark wants the machine to itself.

use ferronet_core::bench::{self as core_bench, gemm_timing, GemmImpl};
use ferronet_core::gemm;
use napi::Result;
use napi_derive::napi;

use crate::error::{coded, guard};

/// Names of the GEMM micro-kernels this CPU can run, best first.
#[napi(catch_unwind)]
pub fn gemm_kernels() -> Vec<String> {
    gemm::available()
        .iter()
        .map(|k| k.name.to_string())
        .collect()
}

/// The kernel ferronet uses by default (after `FERRONET_GEMM_KERNEL`).
#[napi(catch_unwind)]
pub fn gemm_selected_kernel() -> String {
    gemm::selected().name.to_string()
}

#[napi(object)]
pub struct GemmBenchmarkOptions {
    pub m: u32,
    pub k: u32,
    pub n: u32,
    pub threads: u32,
    /// A kernel name from `gemmKernels()`; default: the selected kernel.
    pub kernel: Option<String>,
    /// "ferronet" (default) or "matrixmultiply" (the crate, single-threaded, for comparison).
    pub implementation: Option<String>,
    /// Timed repetitions (best is reported), default 5.
    pub repetitions: Option<u32>,
    /// A stored transposed ([k, m]) and/or B stored transposed ([n, k]).
    pub trans_a: Option<bool>,
    pub trans_b: Option<bool>,
}

#[napi(object)]
pub struct GemmBenchmarkResult {
    pub gflops: f64,
    pub best_seconds: f64,
    pub median_seconds: f64,
    pub kernel: String,
    pub threads: u32,
}

/// Times C = A·B of the given shape.
#[napi(catch_unwind)]
pub fn gemm_benchmark(options: GemmBenchmarkOptions) -> Result<GemmBenchmarkResult> {
    guard("gemmBenchmark", || {
        let GemmBenchmarkOptions {
            m, k, n, threads, ..
        } = options;
        if m == 0 || k == 0 || n == 0 || threads == 0 {
            return Err(coded(
                "ERR_INVALID_OPTION",
                "invalid option `m/k/n/threads`: must all be >= 1",
            ));
        }
        let which = match options.implementation.as_deref().unwrap_or("ferronet") {
            "ferronet" => GemmImpl::Ferronet,
            "matrixmultiply" => GemmImpl::Matrixmultiply,
            other => return Err(coded("ERR_INVALID_OPTION", format!("invalid option `implementation`: {other:?}, expected \"ferronet\" or \"matrixmultiply\""))),
        };
        let kernel = match &options.kernel {
            None => None,
            Some(name) => Some(gemm::by_name(name).ok_or_else(|| {
                let names: Vec<_> = gemm::available().iter().map(|k| k.name).collect();
                coded("ERR_INVALID_OPTION", format!("invalid option `kernel`: {name:?} does not run on this CPU (available: {})", names.join(", ")))
            })?),
        };
        let t = gemm_timing(
            which,
            kernel,
            m as usize,
            k as usize,
            n as usize,
            options.trans_a.unwrap_or(false),
            options.trans_b.unwrap_or(false),
            threads as usize,
            options.repetitions.unwrap_or(5).max(1) as usize,
        );
        Ok(GemmBenchmarkResult {
            gflops: t.gflops,
            best_seconds: t.best_seconds,
            median_seconds: t.median_seconds,
            kernel: t.kernel,
            threads: t.threads as u32,
        })
    })
}

#[napi(object)]
pub struct PeakResult {
    pub gflops: f64,
    pub kernel: String,
    pub threads: u32,
}

/// The machine's measured peak single-precision FMA rate on `threads` threads.
#[napi(catch_unwind)]
pub fn peak_gflops(threads: u32) -> Result<PeakResult> {
    if threads == 0 {
        return Err(coded(
            "ERR_INVALID_OPTION",
            "invalid option `threads`: must be >= 1",
        ));
    }
    let (gflops, kernel) = core_bench::peak_gflops(threads as usize);
    Ok(PeakResult {
        gflops,
        kernel: kernel.to_string(),
        threads,
    })
}
