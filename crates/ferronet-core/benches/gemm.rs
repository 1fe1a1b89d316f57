//! `cargo bench -p ferronet-core`: every micro-kernel this CPU runs and the
//! `matrixmultiply` crate, at the seed network's shapes and squares, 1 thread and all
//! cores. Criterion reports time; throughput is set in FLOPs, so it prints GFLOP/s too.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferronet_core::gemm::{self, Epilogue, MatMut, MatRef};

const SHAPES: [(usize, usize, usize, bool, bool); 9] = [
    (64, 784, 500, false, false),
    (784, 64, 500, true, false),
    (64, 500, 10, false, false),
    (500, 64, 10, true, false),
    (64, 10, 500, false, true),
    (256, 256, 256, false, false),
    (512, 512, 512, false, false),
    (1024, 1024, 1024, false, false),
    (2048, 2048, 2048, false, false),
];

fn bench_gemm(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    for &(m, k, n, ta, tb) in &SHAPES {
        let mut group = c.benchmark_group(format!(
            "gemm {m}x{k}x{n}{}{}",
            if ta { " Aᵀ" } else { "" },
            if tb { " Bᵀ" } else { "" }
        ));
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        if m * k * n >= 1 << 30 {
            group.sample_size(10);
        }
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
        let mut out = vec![0.0f32; m * n];
        let av = if ta {
            MatRef::from_slice(&a, k, m, m).t()
        } else {
            MatRef::from_slice(&a, m, k, k)
        };
        let bv = if tb {
            MatRef::from_slice(&b, n, k, k).t()
        } else {
            MatRef::from_slice(&b, k, n, n)
        };
        for &threads in &thread_counts {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for kernel in gemm::available() {
                group.bench_function(
                    BenchmarkId::new(kernel.name, format!("{threads}t")),
                    |bencher| {
                        pool.install(|| {
                            ferronet_core::team::with_team(|| {
                                bencher.iter(|| {
                                    gemm::gemm_with(
                                        kernel,
                                        true,
                                        1.0,
                                        av,
                                        bv,
                                        0.0,
                                        MatMut::from_slice(&mut out, m, n, n),
                                        Epilogue::None,
                                    )
                                })
                            })
                        })
                    },
                );
            }
        }
        let (rsa, csa): (isize, isize) = if ta { (1, m as isize) } else { (k as isize, 1) };
        let (rsb, csb): (isize, isize) = if tb { (1, k as isize) } else { (n as isize, 1) };
        group.bench_function(BenchmarkId::new("matrixmultiply", "1t"), |bencher| {
            bencher.iter(|| unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    rsa,
                    csa,
                    b.as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    out.as_mut_ptr(),
                    n as isize,
                    1,
                )
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
