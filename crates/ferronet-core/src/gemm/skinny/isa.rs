//! Each instruction set's skinny kernels: how many columns they take, and how many rows
//! (Dot) or vectors (Columns) one block holds for each column count 1..=12, chosen so
//! the accumulators fit the register file (measured with `examples/profile`).

use super::kernels::skinny_kernels;

// 32 zmm registers. Dot: R·N ≤ 16 accumulators — with more, LLVM spills them inside
// the loop (R = 2 at N = 10 measured 10% slower than R = 1). Columns: V·N accumulators
// + V operands + a broadcast ≤ 32 (checked in the disassembly: no spills).
#[cfg(target_arch = "x86_64")]
skinny_kernels!(
    AVX512,
    super::simd::Avx512,
    "avx512f",
    max_n: 12,
    columns_max_n: 12,
    dot: [4, 4, 4, 4, 3, 2, 2, 2, 1, 1, 1, 1],
    columns: [4, 4, 4, 4, 4, 4, 3, 3, 2, 2, 2, 2]
);

// 16 ymm registers: the same rules with half the room. Columns with one vector per
// column (N > 6) is broadcast-bound: measured even with the blocked 8×8 kernel at N = 8
// and slower above (10 columns: 64 vs 81 GFLOP/s).
#[cfg(target_arch = "x86_64")]
skinny_kernels!(
    AVX2,
    super::simd::Avx2,
    "avx2,fma",
    max_n: 12,
    columns_max_n: 8,
    dot: [4, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1],
    columns: [3, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1]
);

// 32 q registers of 4 lanes: AVX-512's register budget (not timed on NEON hardware:
// tested for correctness under qemu only).
#[cfg(target_arch = "aarch64")]
skinny_kernels!(
    NEON,
    super::simd::Neon,
    "neon",
    max_n: 12,
    columns_max_n: 12,
    dot: [4, 4, 4, 4, 3, 2, 2, 2, 1, 1, 1, 1],
    columns: [4, 4, 4, 4, 4, 4, 3, 3, 2, 2, 2, 2]
);
