/**
 * Load a saved model and classify image files: each PNG/JPEG becomes one input row
 * with `mnistImage` (grayscale, inverted to light ink on black, cropped to the ink,
 * fitted into 20×20 and centred by mass in 28×28, as the MNIST digits were prepared)
 * or `imageInput` (`preprocess: 'resize'`, for models trained on whole images such as
 * Fashion-MNIST); then `net.predict` gives logits, softmax gives probabilities.
 *
 * The model is `--model FILE`, else examples/out/mnist-mlp.safetensors as
 * examples/train-and-save.ts writes it; if that file does not exist yet, an MLP is
 * trained on the `mnist` package digits (`--epochs`, `--threads`, `--seed`) and saved
 * there first. The images are the arguments, else examples/images/digit-*.png|jpg (real test
 * digits drawn dark on light paper; their file names say the digit).
 *
 *   npx tsx examples/predict-image.ts [IMAGE...] [--model FILE] [--top 3]
 *                                     [--epochs 2] [--threads 0] [--seed 0] [--out examples/out] [--json]
 *
 *   --model FILE  a model file from Net.save / `ferronet train --save`
 *   --top K       how many classes to list per image (default 3)
 *   --epochs N, --threads N, --seed N   for training the fallback model (default 2, 0, 0)
 *   --out DIR     where the default model is read from / written to (default examples/out)
 *   --json        print one JSON object of the results as the last line
 */

import { existsSync } from 'node:fs'
import { mkdir, readdir } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Net, Trainer, imageInput, mnist, mnistImage, models } from '../src/index.js'

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    top: { type: 'string', default: '3' },
    epochs: { type: 'string', default: '2' },
    threads: { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: fileURLToPath(new URL('./out/', import.meta.url)) },
    json: { type: 'boolean', default: false },
  },
})
const int = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`)
  return n
}
const top = int('top', flags.top, 1)
const log = flags.json ? () => {} : (line: string) => console.log(line)

// 1. The model: a file, or a quickly trained MLP saved where train-and-save.ts saves it.
const file = flags.model ?? join(flags.out, 'mnist-mlp.safetensors')
if (flags.model === undefined && !existsSync(file)) {
  log(`${file} does not exist yet: training an MLP on the mnist package digits first`)
  const [train] = (await mnist.loadDigits()).split(8000, { seed: 0 })
  const net = models.mlp({ seed: int('seed', flags.seed, 0) })
  await new Trainer(net, { threads: int('threads', flags.threads, 0) }).fit(train, { epochs: int('epochs', flags.epochs, 1) })
  await mkdir(flags.out, { recursive: true })
  await net.save(file, { metadata: { classNames: JSON.stringify([...'0123456789']), 'input.preprocess': 'mnist' } })
}
const net = await Net.load(file)
// What train-and-save.ts (and `ferronet train --save`) store in the file's metadata.
const classNames: string[] | undefined = net.metadata.classNames ? JSON.parse(net.metadata.classNames) : undefined
const preprocess = net.metadata['input.preprocess'] === 'resize' ? 'resize' : 'mnist'
log(`model ${file}: input [${net.inputShape.join(', ')}], ${net.outputDim} classes, images → input by ${preprocess}`)

// 2. The images.
const imagesDir = fileURLToPath(new URL('./images/', import.meta.url))
const images = positionals.length > 0
  ? positionals
  : (await readdir(imagesDir)).filter((f) => /^digit-.*\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(imagesDir, f))

// 3. One row per image; predict; softmax; the top classes.
const predictions = []
for (const image of images) {
  const row = preprocess === 'mnist'
    ? await mnistImage(image)                                          // Float32Array(784) in [0, 1]
    : await imageInput(image, net.inputShape, { preprocess: 'resize' }) // inputDim values in [0, 1]
  const logits = net.predict(row)                                      // Float32Array(outputDim)
  const max = Math.max(...logits)
  const exp = Array.from(logits, (v) => Math.exp(v - max))
  const sum = exp.reduce((a, b) => a + b, 0)
  const ranked = exp.map((e, c) => ({ class: c, label: classNames?.[c] ?? String(c), probability: e / sum }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, top)
  const expected = /digit-(\d)/.exec(basename(image))?.[1]
  predictions.push({ file: image, ...ranked[0]!, top: ranked, ...(expected !== undefined ? { expected: Number(expected) } : {}) })
  log(`${basename(image)}: ${ranked[0]!.label}  (${ranked.map((r) => `${r.label} ${(r.probability * 100).toFixed(1)} %`).join(', ')})` +
    (expected !== undefined ? `  [file says ${expected}]` : ''))
}

const labelled = predictions.filter((p) => p.expected !== undefined)
const correct = labelled.filter((p) => p.class === p.expected).length
if (labelled.length) log(`${correct} of ${labelled.length} digits read as the digit their file name says`)
if (flags.json) console.log(JSON.stringify({ model: file, preprocess, predictions, correct, labelled: labelled.length }))
