// Benchmark child: GEMM GFLOP/s of ferronet's own GEMM and of the `matrixmultiply`
// crate (both timed inside Rust by the addon's gemmBenchmark), and the machine's peak
// FMA rate (peakGflops), for each thread count.
//
//   node bench/ferronet_gemm.mjs [--threads 1,2] [--repetitions 5] [--quick] [--all-kernels]
//
// The addon API (native/binding.d.cts after a build that has it):
//   gemmKernels(): string[]
//   gemmBenchmark({ m, k, n, threads, kernel?, implementation?, repetitions?, transA?, transB? })
//     -> { gflops, bestSeconds, medianSeconds, kernel, threads }
//   peakGflops(threads) -> { gflops, kernel, threads }
// Whatever is missing is reported as a `skip` line, and the rest still runs.

import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { emit, gemmShapes, log, parseArgv, runChild, shapeKey } from './lib.mjs'

const FUNCTIONS = ['gemmKernels', 'gemmBenchmark', 'peakGflops']

/** Finds the GEMM API: src/bench.ts (built to dist/bench.js) if present, else the raw binding. */
async function loadApi() {
  const candidates = []
  const distBench = new URL('../dist/bench.js', import.meta.url)
  if (existsSync(distBench)) {
    try {
      const m = await import(distBench.href)
      candidates.push({ source: 'dist/bench.js', api: m })
      if (m.native) candidates.push({ source: 'dist/bench.js (native)', api: m.native })
      if (m.default) candidates.push({ source: 'dist/bench.js (default)', api: m.default })
    } catch (error) {
      log(`dist/bench.js did not load: ${error.message}`)
    }
  }
  try {
    const require = createRequire(import.meta.url)
    candidates.push({ source: 'native/binding.cjs', api: require('../native/binding.cjs') })
  } catch (error) {
    log(`native/binding.cjs did not load: ${error.message}`)
  }
  const has = (c) => FUNCTIONS.filter((f) => typeof c.api[f] === 'function').length
  candidates.sort((a, b) => has(b) - has(a))
  return candidates[0] ?? { source: 'none', api: {} }
}

await runChild('ferronet-gemm', async () => {
  const args = parseArgv()
  const threadList = String(args.threads ?? '1,2').split(',').map(Number)
  const repetitions = Number(args.repetitions ?? 5)
  const shapes = gemmShapes({ quick: Boolean(args.quick) })

  const { source, api } = await loadApi()
  const missing = FUNCTIONS.filter((f) => typeof api[f] !== 'function')
  emit({ kind: 'meta', child: 'ferronet-gemm', apiSource: source, missing })
  for (const f of missing) {
    emit({ kind: 'skip', what: `ferronet ${f}`, reason: `${f}() is not exported by ${source} (the addon was built before the GEMM benchmark API; rebuild with npm run build:native)` })
  }

  let kernels = null
  if (typeof api.gemmKernels === 'function') {
    kernels = api.gemmKernels()
    emit({ kind: 'kernels', kernels })
    log(`ferronet GEMM kernels: ${kernels.join(', ')}`)
  }

  if (typeof api.peakGflops === 'function') {
    for (const threads of threadList) {
      const r = api.peakGflops(threads)
      emit({ kind: 'peak', threads, requestedThreads: threads, gflops: r.gflops, kernel: r.kernel, actualThreads: r.threads })
      log(`peak FMA ${threads}t: ${r.gflops.toFixed(1)} GFLOP/s (${r.kernel})`)
    }
  }

  if (typeof api.gemmBenchmark !== 'function') return
  const runs = [{ implementation: 'ferronet', kernel: undefined }, { implementation: 'matrixmultiply', kernel: undefined }]
  if (args.allKernels && kernels) {
    for (const kernel of kernels.slice(1)) runs.push({ implementation: 'ferronet', kernel })
  }
  for (const threads of threadList) {
    for (const { implementation, kernel } of runs) {
      for (const s of shapes) {
        const options = { m: s.m, k: s.k, n: s.n, threads, implementation, repetitions, transA: s.transA, transB: s.transB }
        if (kernel) options.kernel = kernel
        try {
          const r = api.gemmBenchmark(options)
          emit({
            kind: 'gemm',
            implementation,
            shape: shapeKey(s),
            role: s.role,
            m: s.m, k: s.k, n: s.n, transA: s.transA, transB: s.transB,
            threads,
            actualThreads: r.threads,
            kernel: r.kernel,
            kernelRequested: kernel ?? null,
            repetitions,
            gflops: r.gflops,
            bestSeconds: r.bestSeconds,
            medianSeconds: r.medianSeconds,
          })
          log(`${implementation}${kernel ? `[${kernel}]` : ''} ${shapeKey(s)} ${threads}t: ${r.gflops.toFixed(2)} GFLOP/s (${r.kernel})`)
        } catch (error) {
          emit({ kind: 'gemm-error', implementation, shape: shapeKey(s), threads, kernel: kernel ?? null, message: String(error?.message ?? error) })
        }
      }
    }
  }
})
