// Benchmark child: trains the seed network with ferronet's public API and reports
// seconds per epoch (measured inside Rust, plus the wall time of each fit call seen
// from JS) and this process's peak RSS.
//
//   node bench/ferronet_train.mjs --threads 1 [--data DIR] [--warmup 1] [--epochs 3] [--limit N]
//
// Prints JSON lines (see bench/lib.mjs). Run by bench/run.mjs; usable on its own.

import { performance } from 'node:perf_hooks'
import { FASHION_DIR, SEED, emit, log, maxRssKiB, median, paramCount, parseArgv, rssKiB, runChild } from './lib.mjs'

await runChild('ferronet-train', async () => {
  const args = parseArgv()
  const threads = Number(args.threads ?? 1)
  const warmup = Number(args.warmup ?? 1)
  const epochs = Number(args.epochs ?? 3)
  const dir = String(args.data ?? FASHION_DIR)

  const { Net, Trainer, mnist } = await import('../dist/index.js')
  const rssAfterImport = rssKiB()

  const full = await mnist.load(dir, 'train')
  const train = args.limit ? full.subset(0, Math.min(Number(args.limit), full.size)) : full
  const rssAfterLoad = rssKiB()
  log(`ferronet: ${train.size} samples (${train.dtype}) from ${dir}, threads ${threads}`)

  const net = Net.sequential(SEED.input, [Net.dense(SEED.hidden), Net.relu(), Net.dense(SEED.classes)], { seed: 0 })
  const trainer = new Trainer(net, { threads, batchSize: SEED.batchSize, optimizer: { type: 'adam', lr: SEED.lr } })

  const runs = []
  for (let i = 0; i < warmup + epochs; i++) {
    const t0 = performance.now()
    const { epochs: stats } = await trainer.fit(train, { epochs: 1 })
    const wall = (performance.now() - t0) / 1000
    const s = stats[0]
    runs.push({ warmup: i < warmup, seconds: s.seconds, wallSeconds: wall, loss: s.loss, accuracy: s.accuracy })
    log(`  epoch ${i + 1}${i < warmup ? ' (warm-up)' : ''}: ${s.seconds.toFixed(3)} s (Rust), ${wall.toFixed(3)} s (wall), loss ${s.loss.toFixed(4)}`)
  }
  const timed = runs.filter((r) => !r.warmup)

  const params = paramCount(SEED)
  // What the RSS target counts: the training data as the process holds it, and the
  // model's parameters, their gradients and Adam's two moment buffers (f32 each).
  const datasetBytes = full.inputs.byteLength + full.labels.byteLength
  emit({
    kind: 'train',
    framework: 'ferronet',
    config: `ferronet ${threads}t`,
    threadsRequested: threads,
    threads: trainer.threads,
    samples: train.size,
    batchSize: SEED.batchSize,
    warmupEpochs: warmup,
    epochSeconds: timed.map((r) => r.seconds),
    wallSeconds: timed.map((r) => r.wallSeconds),
    medianEpochSeconds: median(timed.map((r) => r.seconds)),
    medianWallSeconds: median(timed.map((r) => r.wallSeconds)),
    timing: 'seconds measured inside Rust for each epoch (fit({ epochs: 1 })); wallSeconds = the whole fit() call seen from JS',
    extrapolated: false,
    lossPerEpoch: runs.map((r) => r.loss),
    inputDType: full.dtype,
    datasetBytes,
    datasetNote: `train inputs (${full.dtype}, ${full.inputs.byteLength} B) + labels (${full.labels.byteLength} B)`,
    paramCount: params,
    stateBytes: params * 4 * 4,
    stateNote: 'parameters + gradients + Adam m + Adam v, f32',
    rssAfterImportKiB: rssAfterImport,
    rssAfterLoadKiB: rssAfterLoad,
    rssEndKiB: rssKiB(),
    maxRssKiB: maxRssKiB(),
  })
})
