//! GFLOP/s of each kernel at the seed network's products and at squares:
//! `cargo run --release --example profile [threads] [only]`, `only` a substring of the
//! rows' names (e.g. `sq2048`).
use ferronet_core::bench::{gemm_timing, peak_gflops, GemmImpl};
use ferronet_core::gemm;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let only = std::env::args().nth(2).unwrap_or_default();
    let (peak, isa) = peak_gflops(threads);
    println!("peak {peak:.1} GFLOP/s ({isa}, {threads} threads)");
    for (m, k, n, ta, tb, what) in [
        (64, 784, 500, false, false, "fwd1 X·W1t"),
        (784, 64, 500, true, false, "dW1t Xᵀ·dY"),
        (64, 500, 10, false, false, "fwd2"),
        (64, 500, 10, false, true, "fwd2 Bᵀ"),
        (500, 64, 10, true, false, "dW2t"),
        (64, 10, 500, false, true, "dX2 dY·W2tᵀ"),
        (512, 512, 512, false, false, "sq512"),
        (1024, 1024, 1024, false, false, "sq1024"),
        (2048, 2048, 2048, false, false, "sq2048"),
    ]
    .into_iter()
    .filter(|row| row.5.contains(only.as_str()))
    {
        // Each kernel, and those with skinny routes also without them (register-blocked only).
        let kernels = gemm::available().into_iter().flat_map(|k| {
            let blocked = k.skinny.map(|_| gemm::Kernel {
                skinny: None,
                name: if k.name == "avx512" { "512-blk" } else { "blk" },
                ..k
            });
            std::iter::once(k).chain(blocked)
        });
        for kernel in kernels.filter(|k| k.name != "scalar") {
            let t = gemm_timing(
                GemmImpl::Ferronet,
                Some(kernel),
                m,
                k,
                n,
                ta,
                tb,
                threads,
                20,
            );
            print!(
                "{what:12} {m}x{k}x{n} {:7}: {:6.1} GFLOP/s  ",
                t.kernel, t.gflops
            );
        }
        let t = gemm_timing(GemmImpl::Matrixmultiply, None, m, k, n, ta, tb, 1, 20);
        println!("mm: {:6.1}", t.gflops);
    }
}
