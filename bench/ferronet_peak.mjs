// Benchmark child: the machine's peak FMA rate only (the addon's peakGflops), for runs
// that need "% of peak" without the GEMM section (e.g. --only cnn). Same `peak` lines as
// bench/ferronet_gemm.mjs.
//
//   node bench/ferronet_peak.mjs [--threads 1,2]

import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { emit, log, parseArgv, runChild } from './lib.mjs'

await runChild('ferronet-peak', async () => {
  const threadList = String(parseArgv().threads ?? '1,2').split(',').map(Number)
  const candidates = []
  const distBench = new URL('../dist/bench.js', import.meta.url)
  if (existsSync(distBench)) {
    try {
      const m = await import(distBench.href)
      candidates.push({ source: 'dist/bench.js', api: m }, ...(m.native ? [{ source: 'dist/bench.js (native)', api: m.native }] : []))
    } catch (error) {
      log(`dist/bench.js did not load: ${error.message}`)
    }
  }
  try {
    candidates.push({ source: 'native/binding.cjs', api: createRequire(import.meta.url)('../native/binding.cjs') })
  } catch (error) {
    log(`native/binding.cjs did not load: ${error.message.split('\n')[0]}`)
  }
  const found = candidates.find((c) => typeof c.api.peakGflops === 'function')
  emit({ kind: 'meta', child: 'ferronet-peak', apiSource: found?.source ?? 'none' })
  if (!found) {
    emit({ kind: 'skip', what: 'ferronet peakGflops', reason: 'peakGflops() is not exported by dist/bench.js or native/binding.cjs (no addon built, or built before the benchmark API)' })
    return
  }
  for (const threads of threadList) {
    const r = found.api.peakGflops(threads)
    emit({ kind: 'peak', threads, requestedThreads: threads, gflops: r.gflops, kernel: r.kernel, actualThreads: r.threads })
    log(`peak FMA ${threads}t: ${r.gflops.toFixed(1)} GFLOP/s (${r.kernel})`)
  }
})
