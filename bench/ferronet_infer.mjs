// Benchmark child: inference throughput of the seed network with ferronet's net.predict,
// batches of 1000 over the 10,000 Fashion-MNIST test images, on u8 pixels (the addon
// scales them by 1/255) and on pre-scaled Float32Array features.
//
//   RAYON_NUM_THREADS=1 node bench/ferronet_infer.mjs [--data DIR] [--runs 5] [--batch 1000] [--limit N]
//
// net.predict is synchronous and runs its matrix products on rayon's global pool, whose
// size is RAYON_NUM_THREADS (default: all cores); the orchestrator sets it per child.

import { performance } from 'node:perf_hooks'
import { FASHION_DIR, SEED, emit, log, maxRssKiB, median, parseArgv, runChild } from './lib.mjs'

await runChild('ferronet-infer', async () => {
  const args = parseArgv()
  const runs = Number(args.runs ?? 5)
  const batch = Number(args.batch ?? 1000)
  const dir = String(args.data ?? FASHION_DIR)
  const threads = process.env.RAYON_NUM_THREADS ? Number(process.env.RAYON_NUM_THREADS) : null

  const { Net, mnist } = await import('../dist/index.js')
  const full = await mnist.load(dir, 'test')
  const test = args.limit ? full.subset(0, Math.min(Number(args.limit), full.size)) : full
  const n = test.size
  const dim = test.inputDim
  const pixels = test.inputs
  const features = new Float32Array(pixels.length)
  for (let i = 0; i < pixels.length; i++) features[i] = pixels[i] / 255

  // Weights do not change the cost; a freshly initialised net is used.
  const net = Net.sequential(SEED.input, [Net.dense(SEED.hidden), Net.relu(), Net.dense(SEED.classes)], { seed: 0 })

  const pass = (input) => {
    let checksum = 0
    for (let start = 0; start < n; start += batch) {
      const end = Math.min(start + batch, n)
      const out = net.predict(input.subarray(start * dim, end * dim))
      checksum += out[0]
    }
    return checksum
  }
  const measure = (input, label) => {
    pass(input) // warm-up
    const seconds = []
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now()
      pass(input)
      seconds.push((performance.now() - t0) / 1000)
    }
    const med = median(seconds)
    log(`ferronet predict (${label}), threads ${threads ?? 'default'}: median ${(n / med).toFixed(0)} samples/s over ${runs} runs`)
    return { seconds, medianSeconds: med, samplesPerSecond: n / med }
  }
  const f32 = measure(features, 'Float32Array')
  const u8 = measure(pixels, 'Uint8Array')
  emit({
    kind: 'infer',
    framework: 'ferronet',
    config: `ferronet ${threads ?? 'default'}t`,
    threads,
    threadsNote: 'net.predict runs on rayon\'s global pool, sized by RAYON_NUM_THREADS',
    samples: n,
    batch,
    runs,
    medianSeconds: f32.medianSeconds,
    samplesPerSecond: f32.samplesPerSecond,
    runSeconds: f32.seconds,
    input: 'Float32Array (pixels/255, converted before timing)',
    u8: { input: 'Uint8Array pixels (scaled in the addon)', medianSeconds: u8.medianSeconds, samplesPerSecond: u8.samplesPerSecond, runSeconds: u8.seconds },
    maxRssKiB: maxRssKiB(),
  })
})
