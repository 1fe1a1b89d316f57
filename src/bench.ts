/**
 * Measurements of this machine, for `ferronet bench` and `npm run bench`: GEMM
 * GFLOP/s per micro-kernel, the peak FMA rate, and seconds per training epoch.
 * Exported from the package as the `bench` namespace. The GEMM and peak functions are
 * synchronous and busy the calling thread: they are meant for benchmark scripts, not
 * servers.
 *
 * ```ts
 * import { bench } from 'ferronet'
 * console.log(bench.gemmKernels(), bench.peakGflops(1).gflops)
 * ```
 *
 * @module bench
 */

import { Dataset } from './dataset.js'
import { callNative, native } from './native.js'
import { Net } from './net.js'
import { Trainer } from './trainer.js'
import { OptionError } from './errors.js'
import { describe, integerInRange } from './validate.js'

/** The GEMM micro-kernels this CPU can run, best first (e.g. `['avx512', 'avx2', 'scalar']`). */
export function gemmKernels(): string[] {
  return callNative(() => native.gemmKernels())
}

/** The kernel used by default: the best one, unless the `FERRONET_GEMM_KERNEL` environment variable names another. */
export function gemmSelectedKernel(): string {
  return callNative(() => native.gemmSelectedKernel())
}

/** Options of {@link gemmBenchmark}: the product `C[m, n] = A[m, k] · B[k, n]` in f32. */
export interface GemmBenchmarkOptions {
  /** Rows of A and C. */
  m: number
  /** Columns of A, rows of B (the shared dimension). */
  k: number
  /** Columns of B and C. */
  n: number
  /** Worker threads, an integer >= 1. */
  threads: number
  /** A name from {@link gemmKernels}; default: the selected kernel. */
  kernel?: string
  /** `'ferronet'` (default) or `'matrixmultiply'` (the Rust crate, 1 thread, for comparison). */
  implementation?: 'ferronet' | 'matrixmultiply'
  /** Timed repetitions; the best is reported. Default 5. */
  repetitions?: number
  /** A stored as [k, m] (used transposed). */
  transA?: boolean
  /** B stored as [n, k] (used transposed). */
  transB?: boolean
}

/** What {@link gemmBenchmark} measured. */
export interface GemmBenchmarkResult {
  /** 2·m·n·k / {@link GemmBenchmarkResult.bestSeconds}, in 10⁹ FLOP/s. */
  gflops: number
  /** The fastest repetition, seconds per product. */
  bestSeconds: number
  /** The median repetition, seconds per product. */
  medianSeconds: number
  /** The micro-kernel that ran (e.g. `'avx2'`). */
  kernel: string
  /** The threads that ran. */
  threads: number
}

/**
 * Times one product shape; each repetition repeats it until it lasts at least 2 ms.
 * Synchronous: blocks the calling thread for the whole measurement.
 *
 * ```ts
 * const r = bench.gemmBenchmark({ m: 64, k: 784, n: 500, threads: 1 })
 * console.log(`${r.gflops.toFixed(1)} GFLOP/s with ${r.kernel}`)
 * ```
 * @throws {@link OptionError} for a bad size, thread count or kernel name.
 */
export function gemmBenchmark(options: GemmBenchmarkOptions): GemmBenchmarkResult {
  return callNative(() => native.gemmBenchmark(options))
}

/**
 * The measured peak single-precision FMA rate of `threads` threads, in GFLOP/s
 * (synchronous, blocks the calling thread).
 * @throws {@link OptionError} (`threads`) unless an integer in 1..1024.
 */
export function peakGflops(threads: number): {
  /** The peak rate, 10⁹ FLOP/s (an FMA counts as 2). */
  gflops: number
  /** The micro-kernel's instruction set (e.g. `'avx2'`). */
  kernel: string
  /** The threads that ran. */
  threads: number
} {
  integerInRange('threads', threads, 1, 1024)
  return callNative(() => native.peakGflops(threads))
}

/** The product shapes of one training step of the seed network (784→500→10, batch 64). */
export const SEED_NETWORK_SHAPES: readonly (Omit<GemmBenchmarkOptions, 'threads'> & {
  /** Which product of the step this is (`'forward X·W1'`). */
  what: string
})[] = [
  { what: 'forward X·W1', m: 64, k: 784, n: 500 },
  { what: 'grad W1 = Xᵀ·dH', m: 784, k: 64, n: 500, transA: true },
  { what: 'forward H·W2', m: 64, k: 500, n: 10 },
  { what: 'grad W2 = Hᵀ·dY', m: 500, k: 64, n: 10, transA: true },
  { what: 'grad H = dY·W2ᵀ', m: 64, k: 10, n: 500, transB: true },
]

/**
 * Forward + backward FLOPs of one epoch of a dense network, counting the products
 * only (2 per multiply-add) and no input gradient for the first layer.
 */
export function epochFlops(samples: number, widths: readonly number[]): number {
  integerInRange('samples', samples, 0)
  if (!Array.isArray(widths)) throw new OptionError('widths', `must be an array of layer widths, got ${describe(widths)}`)
  widths.forEach((w, i) => integerInRange(`widths[${i}]`, w, 1))
  let perSample = 0
  for (let l = 0; l + 1 < widths.length; l++) {
    const macs = widths[l]! * widths[l + 1]!
    perSample += 2 * macs /* forward */ + 2 * macs /* weight grad */ + (l > 0 ? 2 * macs : 0) /* input grad */
  }
  return perSample * samples
}

/** A dataset of MNIST's size and type (`size` (60,000) × `[28, 28]` uint8 pixels, 10 classes) with deterministic pseudo-random content, for timing only. */
export function syntheticMnist(size = 60_000): Dataset {
  integerInRange('size', size, 1, 2 ** 31 - 1)
  const pixels = new Uint8Array(size * 784)
  let state = 0x9e3779b9
  for (let i = 0; i < pixels.length; i++) {
    state = (state ^ (state << 13)) >>> 0
    state = (state ^ (state >>> 17)) >>> 0
    state = (state ^ (state << 5)) >>> 0
    pixels[i] = state & 0xff
  }
  const labels = Uint8Array.from({ length: size }, (_, i) => i % 10)
  return Dataset.fromArrays({ inputs: pixels, labels, sampleShape: [28, 28], numClasses: 10 })
}

/**
 * Seconds per epoch of the seed network (784→500→10, ReLU, Adam 1e-3, batch 64) on
 * `data`, one entry per timed epoch (`epochs`, default 3), after `warmup` (default 1)
 * untimed epochs.
 * @throws {@link OptionError} for a bad `threads`, `epochs` or `warmup`.
 */
export async function trainEpochSeconds(data: Dataset, options: { threads: number; epochs?: number; warmup?: number }): Promise<number[]> {
  const epochs = integerInRange('epochs', options.epochs ?? 3, 1)
  const warmup = integerInRange('warmup', options.warmup ?? 1, 0)
  const net = Net.sequential(data.inputDim, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 0 })
  const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads: options.threads })
  if (warmup > 0) await trainer.fit(data, { epochs: warmup })
  const { epochs: stats } = await trainer.fit(data, { epochs })
  return stats.map((s) => s.seconds)
}
