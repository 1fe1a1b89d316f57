/**
 * FERRONET_GEMM_KERNEL forces a micro-kernel for the whole process: every kernel this
 * CPU runs trains the same small network to (nearly) the same result.
 */

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { bench } from '../src/index.js'

const run = promisify(execFile)
const script = `
  import { Net, Trainer, mnist, bench } from './dist/index.js'
  const data = (await mnist.loadDigits()).subset(0, 2000)
  const net = Net.sequential(784, [Net.dense(32), Net.relu(), Net.dense(10)], { seed: 3 })
  const trainer = new Trainer(net, { batchSize: 50, threads: 2 })
  await trainer.fit(data, { epochs: 1 })
  const { loss } = await trainer.evaluate(data)
  console.log(JSON.stringify({ kernel: bench.gemmSelectedKernel(), loss }))
`

describe('seed-network GEMM shapes', () => {
  it('are the same in `ferronet bench` and in `npm run bench` (kept apart so bench children need not load the addon)', async () => {
    // @ts-expect-error: plain JS module without types
    const { GEMM_SEED_SHAPES } = await import('../bench/lib.mjs')
    const key = (s: { m: number; k: number; n: number; transA?: boolean; transB?: boolean }) => [s.m, s.k, s.n, !!s.transA, !!s.transB]
    expect(GEMM_SEED_SHAPES.map(key)).toEqual(bench.SEED_NETWORK_SHAPES.map(key))
  })
})

describe('FERRONET_GEMM_KERNEL', () => {
  it('forces each available kernel, and all train alike', async () => {
    const kernels = bench.gemmKernels()
    expect(kernels.at(-1)).toBe('scalar')
    const results: { kernel: string; loss: number }[] = []
    for (const kernel of kernels) {
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: new URL('..', import.meta.url),
        env: { ...process.env, FERRONET_GEMM_KERNEL: kernel },
      })
      results.push(JSON.parse(stdout.trim().split('\n').at(-1)!))
    }
    expect(results.map((r) => r.kernel)).toEqual(kernels)
    for (const r of results) expect(Math.abs(r.loss - results[0]!.loss)).toBeLessThan(1e-3)
  })
})
