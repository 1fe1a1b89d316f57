/**
 * Checkpoints: train for a while, write a checkpoint with `trainer.save`, rebuild the
 * trainer from the file alone with `Trainer.resume` (as a new process would), train on,
 * and check that the result is the run that was never interrupted: the same loss in
 * every epoch and the same weights, bit for bit.
 *
 * A checkpoint carries more than the weights: the optimizer state (Adam's moments),
 * the position in the learning-rate schedule (cosine here), the shuffle and dropout
 * random streams, the epoch count and the trainer's options. The model has dropout so
 * that a lost dropout stream would show.
 *
 *   npx tsx examples/resume.ts [--before 2] [--epochs 2] [--limit N]
 *                              [--threads 0] [--seed 0] [--out examples/out] [--json]
 *
 *   --before N   epochs before the checkpoint (default 2)
 *   --epochs N   epochs after resuming (default 2); the uninterrupted run trains before + epochs
 *   --limit N    train on the first N of the 8,000 training digits
 *   --threads N  worker threads, 0 = every core (default 0); both runs use the same
 *   --seed N     initialisation, shuffle and dropout seed (default 0)
 *   --out DIR    where to write resume.ckpt.safetensors (default examples/out)
 *   --json       print one JSON object of the results as the last line
 *
 * Exits with status 1 if the resumed run differs.
 */

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Net, Trainer, mnist, type TrainerOptions } from '../src/index.js'

const { values: flags } = parseArgs({
  options: {
    before: { type: 'string', default: '2' },
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
const before = int('before', flags.before, 1)
const after = int('epochs', flags.epochs, 1)
const seed = int('seed', flags.seed, 0)
const log = flags.json ? () => {} : (line: string) => console.log(line)

let [train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
if (flags.limit !== undefined) train = train.subset(0, Math.min(train.size, int('limit', flags.limit, 1)))

const build = (): Net => Net.sequential([28, 28], [
  Net.flatten(), Net.dense(256), Net.relu(), Net.dropout(0.2), Net.dense(10),
], { seed })
const stepsPerEpoch = Math.ceil(train.size / 64)
const options: TrainerOptions = {
  optimizer: { type: 'adamw', lr: 2e-3 },
  schedule: { type: 'cosine', totalSteps: (before + after) * stepsPerEpoch, warmupSteps: stepsPerEpoch >> 1 },
  batchSize: 64,
  threads: int('threads', flags.threads, 0),
  seed,
}
const losses = (r: { epochs: { loss: number }[] }) => r.epochs.map((e) => e.loss)

// 1. The reference: one run of before + after epochs.
const reference = new Trainer(build(), options)
const uninterrupted = losses(await reference.fit(train, { epochs: before + after }))
log(`uninterrupted, ${before + after} epochs: losses ${uninterrupted.map((l) => l.toFixed(6)).join(', ')}`)

// 2. The same start, stopped after `before` epochs and saved.
await mkdir(flags.out, { recursive: true })
const checkpoint = join(flags.out, 'resume.ckpt.safetensors')
const first = new Trainer(build(), options)
const part1 = losses(await first.fit(train, { epochs: before }))
await first.save(checkpoint)
log(`interrupted after ${before}: losses ${part1.map((l) => l.toFixed(6)).join(', ')}; checkpoint ${checkpoint}`)

// 3. Resumed from the file alone: the net, the optimizer and the schedule come back.
const resumed = await Trainer.resume(checkpoint)
const part2 = losses(await resumed.fit(train, { epochs: after }))
log(`resumed for ${after}: losses ${part2.map((l) => l.toFixed(6)).join(', ')}`)

// 4. Compare: losses with ===, weights value by value.
const interrupted = [...part1, ...part2]
const lossesEqual = interrupted.length === uninterrupted.length && interrupted.every((l, i) => l === uninterrupted[i])
const a = reference.net.parameters()
const b = resumed.net.parameters()
let maxWeightDiff = 0
a.forEach((p, i) => p.data.forEach((v, j) => (maxWeightDiff = Math.max(maxWeightDiff, Math.abs(v - b[i]!.data[j]!)))))
const weightsEqual = maxWeightDiff === 0 && a.length === b.length
const accuracy = (await resumed.evaluate(test)).accuracy!
log(lossesEqual && weightsEqual
  ? `the resumed run equals the uninterrupted one: every epoch's loss and every weight, bit for bit (test accuracy ${(accuracy * 100).toFixed(2)} %)`
  : `MISMATCH: losses ${lossesEqual ? 'equal' : 'differ'}, largest weight difference ${maxWeightDiff}`)

if (flags.json) {
  console.log(JSON.stringify({ checkpoint, before, after, trainSamples: train.size, uninterrupted, interrupted, lossesEqual, weightsEqual, maxWeightDiff, testAccuracy: accuracy }))
}
if (!lossesEqual || !weightsEqual) process.exitCode = 1
