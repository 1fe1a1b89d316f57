// Benchmark child: TensorFlow.js (tfjs-core + tfjs-layers, no tfjs-node) training and
// inference of the seed network, on the `wasm` or the `cpu` backend.
//
//   node bench/tfjs_train.mjs --backend wasm|cpu --mode train [--epochs 3] [--batches B] [--warmup-batches W] [--limit N]
//   node bench/tfjs_train.mjs --backend wasm|cpu --mode infer [--runs 5] [--batch 1000] [--limit N]
//   node bench/tfjs_train.mjs --backend wasm|cpu --mode baseline
//
// Training: tf.sequential([dense(500, relu), dense(10)]), softmax cross-entropy on the
// logits, tf.train.adam(1e-3, 0.9, 0.999, 1e-8), model.fit(x, y, { batchSize: 64,
// epochs: 1, shuffle: true }) on the whole training set held as a float32 tensor
// (pixels/255) with one-hot float32 labels. Each timed repetition is one fit() call,
// timed from JS. With --batches B a repetition trains on the first B·64 samples only
// and its time is scaled to 60,000 samples (reported as extrapolated).
// Under Node, tfjs-backend-wasm never uses threads (its WASM_HAS_MULTITHREAD_SUPPORT
// flag is hard-coded false when IS_NODE); this child reports the flags it found and the
// .wasm file it loaded.

import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { FASHION_DIR, SEED, emit, log, maxRssKiB, median, paramCount, parseArgv, readFashion, rssKiB, runChild } from './lib.mjs'

await runChild('tfjs', async () => {
  const args = parseArgv()
  const backend = String(args.backend ?? 'wasm')
  const mode = String(args.mode ?? 'train')
  const dir = String(args.data ?? FASHION_DIR)

  // Record which .wasm binary the backend reads (it loads it from node_modules with fs).
  const wasmFiles = []
  const readFileSync = fs.readFileSync
  fs.readFileSync = function (path, ...rest) {
    if (String(path).endsWith('.wasm')) wasmFiles.push(String(path))
    return readFileSync.call(this, path, ...rest)
  }
  // tfjs prints hints (e.g. about tfjs-node) with console.log/warn; keep stdout for JSON lines only.


  console.log = (...a) => log('[tfjs]', ...a)
  console.warn = (...a) => log('[tfjs]', ...a)

  const tf = await import('@tensorflow/tfjs-core')
  await import('@tensorflow/tfjs-backend-cpu')
  const wasm = backend === 'wasm' ? await import('@tensorflow/tfjs-backend-wasm') : null
  const layers = await import('@tensorflow/tfjs-layers')
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} did not initialise`)
  await tf.ready()
  fs.readFileSync = readFileSync

  const info = {
    tfjsCore: tf.version_core,
    tfjsLayers: layers.version_layers,
    tfjsBackendWasm: wasm?.version_wasm ?? null,
    backend: tf.getBackend(),
    prodMode: tf.env().getBool('PROD'),
  }
  if (wasm) {
    info.wasmSimd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')
    info.wasmMultithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')
    info.wasmThreads = wasm.getThreadsCount()
    info.wasmFile = wasmFiles.map((p) => p.replace(/^.*node_modules\//, 'node_modules/'))
  }
  const threads = wasm ? info.wasmThreads : 1
  info.threadsNote = wasm
    ? 'tfjs-backend-wasm disables its threaded build under Node (WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE)'
    : 'the cpu backend is plain JavaScript on the main thread'
  emit({ kind: 'meta', child: `tfjs-${backend}`, ...info })
  log(`tfjs ${info.tfjsCore} backend ${info.backend}${wasm ? ` simd ${info.wasmSimd} threads ${info.wasmThreads} ${info.wasmFile.join(' ')}` : ''}`)

  // pixels/255 as float32, as a user would feed tfjs.
  const scaled = (images, count) => {
    const out = new Float32Array(count * 784)
    for (let i = 0; i < out.length; i++) out[i] = images[i] / 255
    return out
  }

  const buildModel = () => {
    const model = layers.sequential({
      layers: [
        layers.layers.dense({ inputShape: [SEED.input], units: SEED.hidden, activation: 'relu' }),
        layers.layers.dense({ units: SEED.classes }),
      ],
    })
    model.compile({
      optimizer: tf.train.adam(SEED.lr, 0.9, 0.999, 1e-8),
      loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
    })
    return model
  }

  if (mode === 'baseline') {
    buildModel()
    emit({ kind: 'baseline', what: `node + tfjs (${backend})`, framework: `tfjs-${backend}`, maxRssKiB: maxRssKiB(), rssKiB: rssKiB() })
    return
  }

  if (mode === 'infer') {
    const runs = Number(args.runs ?? 5)
    const batch = Number(args.batch ?? 1000)
    const data = readFashion(dir, 'test')
    const n = args.limit ? Math.min(Number(args.limit), data.count) : data.count
    const x = tf.tensor2d(scaled(data.images, n), [n, 784], 'float32')
    const model = buildModel()
    const pass = () => {
      const out = model.predict(x, { batchSize: batch })
      const v = out.dataSync()
      out.dispose()
      return v[0]
    }
    pass() // warm-up
    const seconds = []
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now()
      pass()
      seconds.push((performance.now() - t0) / 1000)
    }
    const med = median(seconds)
    log(`tfjs-${backend} predict: median ${(n / med).toFixed(0)} samples/s over ${runs} runs`)
    emit({
      kind: 'infer',
      framework: `tfjs-${backend}`,
      config: `tfjs-${backend} ${threads}t`,
      threads,
      samples: n,
      batch,
      runs,
      medianSeconds: med,
      samplesPerSecond: n / med,
      runSeconds: seconds,
      input: 'float32 tensor (pixels/255), model.predict(x, { batchSize }) + dataSync()',
      maxRssKiB: maxRssKiB(),
    })
    return
  }

  // ---- training
  const epochs = Number(args.epochs ?? 3)
  let data = readFashion(dir, 'train')
  const total = args.limit ? Math.min(Number(args.limit), data.count) : data.count
  const x = tf.tensor2d(scaled(data.images, total), [total, 784], 'float32')
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(data.labels.subarray(0, total), 'int32'), SEED.classes), 'float32'))
  data = null // only the tensors stay
  const rssAfterLoad = rssKiB()
  const datasetBytes = total * 784 * 4 + total * SEED.classes * 4

  const batches = args.batches ? Number(args.batches) : null
  const repSamples = batches ? Math.min(batches * SEED.batchSize, total) : total
  const [xs, ys] = repSamples < total ? [tf.slice(x, [0, 0], [repSamples, 784]), tf.slice(y, [0, 0], [repSamples, SEED.classes])] : [x, y]
  const warmupBatches = args.warmupBatches ? Number(args.warmupBatches) : null
  const warmSamples = warmupBatches ? Math.min(warmupBatches * SEED.batchSize, total) : repSamples
  const [xw, yw] = warmSamples < repSamples ? [tf.slice(x, [0, 0], [warmSamples, 784]), tf.slice(y, [0, 0], [warmSamples, SEED.classes])] : [xs, ys]

  const model = buildModel()
  const fit = async (xa, ya) => {
    const t0 = performance.now()
    const h = await model.fit(xa, ya, { batchSize: SEED.batchSize, epochs: 1, shuffle: true, verbose: 0 })
    return { seconds: (performance.now() - t0) / 1000, loss: h.history.loss[0] }
  }
  const warm = await fit(xw, yw)
  log(`  warm-up (${warmSamples} samples): ${warm.seconds.toFixed(3)} s, loss ${warm.loss.toFixed(4)}`)
  const reps = []
  for (let e = 0; e < epochs; e++) {
    const r = await fit(xs, ys)
    reps.push(r)
    log(`  rep ${e + 1} (${repSamples} samples): ${r.seconds.toFixed(3)} s, loss ${r.loss.toFixed(4)}`)
  }
  // Scale each repetition to one epoch of the full training set (a no-op for full epochs).
  const fullSamples = total // the epoch size in use (60,000, or --limit in quick runs)
  const scale = fullSamples / repSamples
  const epochSeconds = reps.map((r) => r.seconds * scale)
  const params = paramCount(SEED)
  emit({
    kind: 'train',
    framework: `tfjs-${backend}`,
    config: `tfjs-${backend} ${threads}t`,
    threadsRequested: threads,
    threads,
    samples: fullSamples,
    samplesPerRepetition: repSamples,
    batchesPerRepetition: Math.ceil(repSamples / SEED.batchSize),
    warmupSamples: warmSamples,
    batchSize: SEED.batchSize,
    warmupEpochs: warmSamples / total,
    extrapolated: repSamples < fullSamples,
    scaleFactor: scale,
    measuredSeconds: reps.map((r) => r.seconds),
    epochSeconds,
    medianEpochSeconds: median(epochSeconds),
    timing: repSamples < fullSamples
      ? `model.fit() on the first ${repSamples} samples (${Math.ceil(repSamples / SEED.batchSize)} batches), wall time from JS, ×${scale.toFixed(3)} to ${fullSamples} samples`
      : 'model.fit({ epochs: 1 }) wall time from JS',
    lossPerEpoch: [warm.loss, ...reps.map((r) => r.loss)],
    inputDType: 'float32',
    datasetBytes,
    datasetNote: `train inputs as a float32 tensor [${total},784] + one-hot float32 labels [${total},10]`,
    paramCount: params,
    stateBytes: params * 4 * 4,
    stateNote: 'parameters + gradients + Adam m + Adam v, f32',
    rssAfterLoadKiB: rssAfterLoad,
    rssEndKiB: rssKiB(),
    tensors: tf.memory().numTensors,
    maxRssKiB: maxRssKiB(),
  })
})
