/** `ferronet bench`: GEMM GFLOP/s, peak FMA rate and epoch times on this machine. */

import * as bench from '../bench.js'
import { OptionError } from '../errors.js'
import * as mnist from '../mnist/index.js'
import { numberFlag } from './common.js'

export interface BenchFlags {
  threads?: string
  data?: string
  json: boolean
}

export async function benchCommand(values: BenchFlags): Promise<void> {
  const cores = (await import('node:os')).availableParallelism()
  const threadCounts = values.threads !== undefined ? [numberFlag('--threads', values.threads, 1, true)] : [...new Set([1, cores])]
  for (const t of threadCounts) if (t < 1) throw new OptionError('--threads', `must be >= 1, got ${t}`)
  const emit = (record: Record<string, unknown>, line: string) =>
    process.stdout.write((values.json ? JSON.stringify(record) : line) + '\n')
  const peaks = new Map<number, number>()
  for (const threads of threadCounts) {
    const peak = bench.peakGflops(threads)
    peaks.set(threads, peak.gflops)
    emit({ kind: 'peak', ...peak }, `peak FMA rate, ${threads} thread(s): ${peak.gflops.toFixed(1)} GFLOP/s (${peak.kernel})`)
  }
  for (const threads of threadCounts) {
    for (const { what, ...shape } of bench.SEED_NETWORK_SHAPES) {
      const r = bench.gemmBenchmark({ ...shape, threads, repetitions: 5 })
      emit(
        { kind: 'gemm', m: shape.m, k: shape.k, n: shape.n, transA: !!shape.transA, transB: !!shape.transB, threads, gflops: r.gflops, kernel: r.kernel, fractionOfPeak: r.gflops / peaks.get(threads)! },
        `gemm ${`${shape.m}×${shape.k}×${shape.n}`.padEnd(12)} ${what.padEnd(18)} ${threads}t: ${r.gflops.toFixed(1).padStart(6)} GFLOP/s (${r.kernel}, ${((100 * r.gflops) / peaks.get(threads)!).toFixed(0)}% of peak)`,
      )
    }
  }
  const data = values.data !== undefined ? await mnist.load(values.data, 'train') : bench.syntheticMnist()
  const flops = bench.epochFlops(data.size, [data.inputDim, 500, 10])
  for (const threads of threadCounts) {
    const epochSeconds = await bench.trainEpochSeconds(data, { threads, epochs: 3, warmup: 1 })
    const median = [...epochSeconds].sort((a, b) => a - b)[1]!
    const gflops = flops / median / 1e9
    emit(
      { kind: 'train', threads, data: values.data ?? 'synthetic 60000×784', epochSeconds, medianEpochSeconds: median, samplesPerSecond: data.size / median, gflops, fractionOfPeak: gflops / peaks.get(threads)! },
      `train 784→500→10, batch 64, ${threads}t: ${median.toFixed(3)} s/epoch (median of ${epochSeconds.map((s) => s.toFixed(3)).join(', ')}), ${Math.round(data.size / median)} samples/s, ${gflops.toFixed(0)} GFLOP/s = ${((100 * gflops) / peaks.get(threads)!).toFixed(0)}% of peak`,
    )
  }
}

