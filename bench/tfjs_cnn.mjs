// Benchmark child: TensorFlow.js (tfjs-core + tfjs-layers, no tfjs-node) training of the
// two CNNs of the `cnn` section (bench/cnn_lib.mjs), on the `wasm` (default) or `cpu` backend.
//
//   node bench/tfjs_cnn.mjs --net lenet|cnn [--backend wasm|cpu] [--epochs 3] [--samples N] [--warmup-samples W] [--limit N]
//   (wasm: --no-shim leaves out the Conv2DBackpropFilter kernel the benchmark registers, see below)
//
// Model: tf.sequential with channels-last input [28, 28, 1] (tfjs's layout), the same
// layers as PyTorch's: conv2d (padding 'same' for LeNet's first 5×5 conv = PyTorch's
// padding=2, 'valid' otherwise) with activation 'relu' (what a tfjs user writes; the
// backends fuse bias + ReLU into the convolution), maxPooling2d, dropout, flatten, dense.
// Softmax cross-entropy on the logits, tf.train.adam(1e-3, 0.9, 0.999, 1e-8), batch 64,
// model.fit(x, y, { batchSize: 64, epochs: 1, shuffle: true }) on float32 pixels/255 and
// one-hot float32 labels. One warm-up fit on --warmup-samples samples, then --epochs
// timed fit() calls, each timed from JS.
//
// TF.js is slow on these networks: with --samples N each timed repetition trains on the
// first N samples only, and its time is scaled to one epoch of the training set (60,000,
// or --limit): the result says extrapolated: true and the factor.
// Under Node, tfjs-backend-wasm never uses threads (see bench/README.md).

import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { cnnCost, cnnNet, CNN_TRAINING } from './cnn_lib.mjs'
import { FASHION_DIR, emit, log, maxRssKiB, median, parseArgv, readFashion, rssKiB, runChild } from './lib.mjs'

await runChild('tfjs-cnn', async () => {
  const args = parseArgv()
  const backend = String(args.backend ?? 'wasm')
  const netName = String(args.net ?? 'lenet')
  const net = cnnNet(netName)
  const cost = cnnCost(netName)
  const dir = String(args.data ?? FASHION_DIR)
  const epochs = Number(args.epochs ?? 3)

  const wasmFiles = []
  const readFileSync = fs.readFileSync
  fs.readFileSync = function (path, ...rest) {
    if (String(path).endsWith('.wasm')) wasmFiles.push(String(path))
    return readFileSync.call(this, path, ...rest)
  }
  // tfjs prints hints with console.log/warn; stdout is for JSON lines only.
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
  // tfjs-backend-wasm 4.x has no Conv2DBackpropFilter kernel (tensorflow/tfjs#8474): a
  // conv layer cannot be trained on it. Unless --no-shim, register one made of the wasm
  // backend's own Transpose and Conv2D (XNNPACK) kernels, and check it against the cpu
  // backend on this network's conv shapes before timing anything.
  info.kernelMissing = backend === 'wasm' && !tf.getKernel('Conv2DBackpropFilter', 'wasm') ? ['Conv2DBackpropFilter'] : []
  info.shim = null
  if (info.kernelMissing.length && !args.noShim) {
    registerConv2DBackpropFilterShim(tf)
    info.shim = 'Conv2DBackpropFilter registered by the benchmark: dW = transpose(Conv2D(transpose(x, [3,1,2,0]), transpose(dy, [1,2,0,3])), [1,2,0,3]) with the wasm backend\'s Transpose and Conv2D kernels'
    info.shimCheck = await checkShim(tf, netName)
    log(`Conv2DBackpropFilter shim: max relative error vs the cpu backend ${info.shimCheck.maxRelError.toExponential(2)}`)
  }
  emit({ kind: 'meta', child: `tfjs-cnn-${backend}`, net: netName, ...info })
  log(`tfjs ${info.tfjsCore} backend ${info.backend}${wasm ? ` simd ${info.wasmSimd} threads ${info.wasmThreads}` : ''}, net ${netName}`)

  const L = layers.layers
  const buildModel = () => {
    const list = []
    const spec = net.layers
    for (let i = 0; i < spec.length; i++) {
      const l = spec[i]
      const extra = list.length === 0 ? { inputShape: [28, 28, 1] } : {}
      // A ReLU right after a conv/dense becomes that layer's activation.
      const fuseRelu = spec[i + 1]?.type === 'relu'
      if (l.type === 'conv') {
        let padding = 'valid'
        if (l.padding) {
          if (2 * l.padding !== l.kernel - 1) throw new Error(`padding ${l.padding} with kernel ${l.kernel} is not 'same'`)
          padding = 'same'
        }
        list.push(L.conv2d({ ...extra, filters: l.filters, kernelSize: l.kernel, strides: 1, padding, activation: fuseRelu ? 'relu' : 'linear', dataFormat: 'channelsLast' }))
      } else if (l.type === 'dense') {
        list.push(L.dense({ ...extra, units: l.units, activation: fuseRelu ? 'relu' : 'linear' }))
      } else if (l.type === 'relu') {
        if (!['conv', 'dense'].includes(spec[i - 1]?.type)) list.push(L.reLU(extra))
        else continue
      } else if (l.type === 'maxpool') {
        list.push(L.maxPooling2d({ ...extra, poolSize: l.size, strides: l.size }))
      } else if (l.type === 'dropout') {
        list.push(L.dropout({ ...extra, rate: l.rate }))
      } else if (l.type === 'flatten') {
        list.push(L.flatten(extra))
      } else {
        throw new Error(`unknown layer ${l.type}`)
      }
    }
    const model = layers.sequential({ layers: list })
    model.compile({
      optimizer: tf.train.adam(CNN_TRAINING.lr, 0.9, 0.999, 1e-8),
      loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
    })
    return model
  }

  let data = readFashion(dir, 'train')
  const total = args.limit ? Math.min(Number(args.limit), data.count) : data.count
  const repSamples = args.samples ? Math.min(Number(args.samples), total) : total
  const warmSamples = Math.min(Number(args.warmupSamples ?? Math.min(640, repSamples)), total)
  const held = Math.max(repSamples, warmSamples)
  // Only the samples trained on are turned into tensors: pixels/255, NHWC [n, 28, 28, 1].
  const pixels = new Float32Array(held * 784)
  for (let i = 0; i < pixels.length; i++) pixels[i] = data.images[i] / 255
  const x = tf.tensor4d(pixels, [held, 28, 28, 1], 'float32')
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(data.labels.subarray(0, held), 'int32'), CNN_TRAINING.classes), 'float32'))
  data = null
  const rssAfterLoad = rssKiB()
  const slice = (n) => (n === held ? [x, y] : [tf.slice(x, [0, 0, 0, 0], [n, 28, 28, 1]), tf.slice(y, [0, 0], [n, CNN_TRAINING.classes])])
  const [xs, ys] = slice(repSamples)
  const [xw, yw] = slice(warmSamples)

  const model = buildModel()
  const params = model.countParams()
  if (params !== cost.params) throw new Error(`tfjs model has ${params} parameters, expected ${cost.params}`)
  const fit = async (xa, ya) => {
    const t0 = performance.now()
    const h = await model.fit(xa, ya, { batchSize: CNN_TRAINING.batchSize, epochs: 1, shuffle: true, verbose: 0 })
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
  const scale = total / repSamples
  const epochSeconds = reps.map((r) => r.seconds * scale)
  const med = median(epochSeconds)
  const batches = Math.ceil(repSamples / CNN_TRAINING.batchSize)
  emit({
    kind: 'cnn-train',
    framework: `tfjs-${backend}`,
    net: netName,
    config: `tfjs-${backend} ${netName} ${threads}t`,
    threadsRequested: threads,
    threads,
    samples: total,
    samplesPerRepetition: repSamples,
    batchesPerRepetition: batches,
    warmupSamples: warmSamples,
    batchSize: CNN_TRAINING.batchSize,
    extrapolated: repSamples < total,
    scaleFactor: scale,
    measuredSeconds: reps.map((r) => r.seconds),
    epochSeconds,
    medianEpochSeconds: med,
    gflops: med ? (cost.trainFlopsPerSample * total) / med / 1e9 : null,
    forwardMacsPerSample: cost.forwardMacsPerSample,
    timing: repSamples < total
      ? `model.fit() on the first ${repSamples} samples (${batches} batches), wall time from JS, ×${scale.toFixed(3)} to ${total} samples`
      : 'model.fit({ epochs: 1 }) wall time from JS',
    lossPerEpoch: [warm.loss, ...reps.map((r) => r.loss)],
    layout: 'channels-last NHWC [n, 28, 28, 1], float32',
    paramCount: params,
    rssAfterLoadKiB: rssAfterLoad,
    rssEndKiB: rssKiB(),
    tensors: tf.memory().numTensors,
    maxRssKiB: maxRssKiB(),
  })
})

/**
 * Conv2DBackpropFilter for the wasm backend (NHWC, stride 1, dilation 1), from the
 * backend's own kernels: dW[kh,kw,ci,co] = Σ_{n,h,w} x[n,h+kh-pt,w+kw-pl,ci]·dy[n,h,w,co]
 * is a convolution of x with channels and batch swapped ([Ci,H,W,N]) by dy as the
 * filter ([Ho,Wo,N,Co]), with x's padding, giving [Ci,KH,KW,Co].
 */
function registerConv2DBackpropFilterShim(tf) {
  const transpose = tf.getKernel('Transpose', 'wasm').kernelFunc
  const conv2d = tf.getKernel('Conv2D', 'wasm').kernelFunc
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs
      const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat))
      if (info.dataFormat !== 'channelsLast' || info.strideHeight !== 1 || info.strideWidth !== 1) {
        throw new Error('the benchmark\'s Conv2DBackpropFilter shim handles NHWC with stride 1 only')
      }
      const { top, bottom, left, right } = info.padInfo
      const xt = transpose({ inputs: { x }, backend, attrs: { perm: [3, 1, 2, 0] } })
      const dyt = transpose({ inputs: { x: dy }, backend, attrs: { perm: [1, 2, 0, 3] } })
      const r = conv2d({ inputs: { x: xt, filter: dyt }, backend, attrs: { strides: 1, dilations: 1, pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dimRoundingMode } })
      const out = transpose({ inputs: { x: r }, backend, attrs: { perm: [1, 2, 0, 3] } })
      for (const t of [xt, dyt, r]) backend.disposeData(t.dataId)
      return out
    },
  })
}

/** The filter gradient of each conv layer of `netName` (batch 3), shim on wasm vs the cpu backend. */
async function checkShim(tf, netName) {
  const convs = cnnCost(netName).layers.map((l, i) => ({ ...l, spec: cnnNet(netName).layers[i] })).filter((l) => l.type === 'conv')
  const results = []
  let maxRelError = 0
  for (const c of convs) {
    const [ci, h, w] = c.input
    const { filters, kernel, padding } = c.spec
    const pad = padding ? 'same' : 'valid'
    const rand = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5)
    const xv = rand(3 * h * w * ci, 1)
    const wv = rand(kernel * kernel * ci * filters, 2)
    const [oh, ow] = [c.output[1], c.output[2]]
    const rv = rand(3 * oh * ow * filters, 3)
    const grad = () => tf.tidy(() => {
      const x = tf.tensor4d(xv, [3, h, w, ci])
      const r = tf.tensor4d(rv, [3, oh, ow, filters])
      const g = tf.grad((f) => tf.sum(tf.mul(tf.conv2d(x, f, 1, pad), r)))(tf.tensor4d(wv, [kernel, kernel, ci, filters]))
      return g.dataSync().slice()
    })
    const wasmGrad = grad()
    await tf.setBackend('cpu')
    const cpuGrad = grad()
    await tf.setBackend('wasm')
    let num = 0
    let den = 0
    for (let i = 0; i < cpuGrad.length; i++) {
      num = Math.max(num, Math.abs(wasmGrad[i] - cpuGrad[i]))
      den = Math.max(den, Math.abs(cpuGrad[i]))
    }
    const rel = num / (den || 1)
    maxRelError = Math.max(maxRelError, rel)
    results.push({ input: c.input, filters, kernel, pad, maxRelError: rel })
  }
  if (!(maxRelError < 1e-4)) throw new Error(`Conv2DBackpropFilter shim disagrees with the cpu backend (max relative error ${maxRelError})`)
  return { maxRelError, convs: results }
}
