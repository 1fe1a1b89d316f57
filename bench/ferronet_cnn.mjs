// Benchmark child: trains the two CNNs of the `cnn` section (bench/cnn_lib.mjs) with
// ferronet's public API and reports seconds per epoch (measured inside Rust, plus the
// wall time of each fit call seen from JS); with --mode accuracy, the test accuracy
// after every epoch.
//
//   node bench/ferronet_cnn.mjs --net lenet|cnn --threads 1 [--warmup 1] [--epochs 3] [--limit N] [--data DIR]
//   node bench/ferronet_cnn.mjs --mode accuracy --net lenet|cnn --threads 2 [--epochs 10] [--seed 0] [--limit N]
//
// The API used (what a user writes):
//   const net = Net.sequential([1, 28, 28], [Net.conv2d(6, 5, { padding: 2 }), Net.relu(), Net.maxPool2d(2), ...], { seed })
//   const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads })
//   await trainer.fit(train, { epochs: 1 })            // once per timed epoch
// If dist/ is missing or does not have the conv layers yet, the child prints a `skip`
// line saying why and exits 0. Prints JSON lines (see bench/lib.mjs).

import { existsSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { CNN_INPUT, CNN_TRAINING, FERRONET_CNN_API, cnnCost, ferronetLayers } from './cnn_lib.mjs'
import { FASHION_DIR, emit, log, maxRssKiB, median, parseArgv, rssKiB, runChild } from './lib.mjs'

await runChild('ferronet-cnn', async () => {
  const args = parseArgv()
  const mode = String(args.mode ?? 'train')
  const netName = String(args.net ?? 'lenet')
  const cost = cnnCost(netName)
  const threads = Number(args.threads ?? 1)
  const warmup = Number(args.warmup ?? 1)
  const epochs = Number(args.epochs ?? (mode === 'train' ? 3 : 10))
  const seed = Number(args.seed ?? 0)
  const dir = String(args.data ?? FASHION_DIR)
  const what = `ferronet ${netName} ${mode === 'train' ? `${threads}t` : 'accuracy'}`
  const skip = (reason) => {
    emit({ kind: 'skip', what, reason })
    log(`SKIP ${what}: ${reason}`)
  }

  const dist = new URL('../dist/index.js', import.meta.url)
  if (!existsSync(dist)) return skip('dist/index.js is missing: run npm run build (npm run bench runs build:ts)')
  let api
  try {
    api = await import(dist.href)
  } catch (error) {
    return skip(`dist/index.js did not load: ${String(error?.message ?? error).split('\n')[0]}`)
  }
  const { Net, Trainer, mnist } = api
  const missing = FERRONET_CNN_API.filter((f) => typeof Net?.[f] !== 'function')
  if (missing.length) return skip(`this build of ferronet has no ${missing.map((f) => `Net.${f}()`).join(', ')} yet (the conv-layer API is not built)`)
  const rssAfterImport = rssKiB()

  let net
  try {
    net = Net.sequential([...CNN_INPUT], ferronetLayers(Net, netName), { seed })
  } catch (error) {
    return skip(`Net.sequential([${CNN_INPUT}], ...) failed, so this build cannot express the ${netName} network: ${String(error?.message ?? error).split('\n')[0]}`)
  }

  const full = await mnist.load(dir, 'train')
  const limit = args.limit ? Math.min(Number(args.limit), full.size) : full.size
  const train = limit < full.size ? full.subset(0, limit) : full
  const rssAfterLoad = rssKiB()
  log(`ferronet: ${netName}, ${train.size} samples (${train.dtype}, sampleShape [${train.sampleShape}]) from ${dir}, threads ${threads}`)

  const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: CNN_TRAINING.lr }, batchSize: CNN_TRAINING.batchSize, threads })
  const common = {
    framework: 'ferronet',
    net: netName,
    config: `ferronet ${netName} ${trainer.threads}t`,
    threadsRequested: threads,
    threads: trainer.threads,
    samples: train.size,
    batchSize: CNN_TRAINING.batchSize,
    lr: CNN_TRAINING.lr,
    seed,
    sampleShape: [...train.sampleShape],
    inputDType: train.dtype,
    forwardMacsPerSample: cost.forwardMacsPerSample,
    trainFlopsPerSample: cost.trainFlopsPerSample,
    paramCount: cost.params,
  }

  if (mode === 'accuracy') {
    let test = await mnist.load(dir, 'test')
    if (args.limit) test = test.subset(0, Math.min(Number(args.limit), test.size))
    const acc = []
    const secs = []
    const evalSecs = []
    const losses = []
    for (let e = 1; e <= epochs; e++) {
      const { epochs: stats } = await trainer.fit(train, { epochs: 1 })
      const t1 = performance.now()
      const r = await trainer.evaluate(test)
      evalSecs.push((performance.now() - t1) / 1000)
      acc.push(r.accuracy)
      secs.push(stats[0].seconds)
      losses.push(stats[0].loss)
      log(`  epoch ${String(e).padStart(2)}: train loss ${stats[0].loss.toFixed(4)}, test accuracy ${r.accuracy.toFixed(4)}, ${stats[0].seconds.toFixed(2)} s`)
    }
    emit({ kind: 'cnn-accuracy', ...common, epochs, testSamples: test.size, accuracyPerEpoch: acc, testAccuracy: acc.at(-1) ?? null,
      trainLossPerEpoch: losses, epochSeconds: secs, evalSeconds: evalSecs, maxRssKiB: maxRssKiB() })
    return
  }
  if (mode !== 'train') throw new Error(`--mode must be train or accuracy, got ${mode}`)

  const runs = []
  for (let i = 0; i < warmup + epochs; i++) {
    const t0 = performance.now()
    const { epochs: stats } = await trainer.fit(train, { epochs: 1 })
    const wall = (performance.now() - t0) / 1000
    const s = stats[0]
    runs.push({ warmup: i < warmup, seconds: s.seconds, wallSeconds: wall, loss: s.loss })
    log(`  epoch ${i + 1}${i < warmup ? ' (warm-up)' : ''}: ${s.seconds.toFixed(3)} s (Rust), ${wall.toFixed(3)} s (wall), loss ${s.loss.toFixed(4)}`)
  }
  const timed = runs.filter((r) => !r.warmup)
  const med = median(timed.map((r) => r.seconds))
  emit({
    kind: 'cnn-train',
    ...common,
    warmupEpochs: warmup,
    epochSeconds: timed.map((r) => r.seconds),
    wallSeconds: timed.map((r) => r.wallSeconds),
    medianEpochSeconds: med,
    medianWallSeconds: median(timed.map((r) => r.wallSeconds)),
    gflops: med ? (cost.trainFlopsPerSample * train.size) / med / 1e9 : null,
    timing: 'seconds measured inside Rust for each epoch (fit({ epochs: 1 })); wallSeconds = the whole fit() call seen from JS',
    extrapolated: false,
    lossPerEpoch: runs.map((r) => r.loss),
    rssAfterImportKiB: rssAfterImport,
    rssAfterLoadKiB: rssAfterLoad,
    rssEndKiB: rssKiB(),
    maxRssKiB: maxRssKiB(),
  })
})
