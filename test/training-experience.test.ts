/**
 * Training you can watch and control: validation metrics, callbacks and their stop(),
 * the built-in callbacks (early stopping restoring the best weights, checkpoints,
 * reduce-on-plateau), the metrics log, the live view's fallback, and bad options.
 * Real data: subsets of the 10,000 digits of the `mnist` package, small MLPs, 1 thread.
 */

import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as callbacks from '../src/callbacks.js'
import type { Callback, EpochEndInfo } from '../src/callbacks.js'
import { liveView } from '../src/cli/progress.js'
import { BATCH_KEYS, EPOCH_KEYS } from '../src/metrics-log.js'
import { Dataset, FerronetError, Net, OptionError, ShapeError, Trainer, mnist, type Progress } from '../src/index.js'

const digits = await mnist.loadDigits()
const train = digits.subset(0, 3000)
const heldOut = digits.subset(8000, 9000)
const dir = mkdtempSync(join(tmpdir(), 'ferronet-experience-'))

const mlp = (seed = 0, hidden = 32) => Net.sequential(784, [Net.dense(hidden), Net.relu(), Net.dense(10)], { seed })
const trainerOf = (net = mlp(), options: ConstructorParameters<typeof Trainer>[1] = {}) => new Trainer(net, { threads: 1, batchSize: 64, ...options })
const weights = (net: Net) => net.parameters().map((p) => p.data)

/** Records the weights at every epoch end. */
function recorder(): Callback & { at: Map<number, Float32Array[]> } {
  const at = new Map<number, Float32Array[]>()
  return { at, onEpochEnd: ({ epoch, trainer }: EpochEndInfo) => void at.set(epoch, weights(trainer.net)) }
}

describe('validation', () => {
  it('validationSplit holds out the last part after a shuffle seeded with the trainer seed, and reports its metrics each epoch', async () => {
    const net = mlp(4)
    const trainer = trainerOf(net, { seed: 9 })
    const result = await trainer.fit(train, { epochs: 3, validationSplit: 0.2 })
    expect(result.trainSamples).toBe(2400)
    expect(result.validationSamples).toBe(600)
    expect(result.stopped).toBe(false)
    for (const e of result.epochs) {
      expect(Object.keys(e)).toEqual(['epoch', 'loss', 'accuracy', 'valLoss', 'valAccuracy', 'lr', 'samplesPerSecond', 'gradNorm', 'seconds', 'skippedBatches'])
      expect(e.valLoss).toBeGreaterThan(0)
      expect(e.valAccuracy).toBeGreaterThanOrEqual(0)
      expect(e.valAccuracy).toBeLessThanOrEqual(1)
    }
    const [first, , last] = result.epochs
    expect(last!.valLoss).toBeLessThan(first!.valLoss!)
    expect(last!.valAccuracy).toBeGreaterThan(0.8)
    // The held-out part is exactly split(2400, { seed: 9 })[1], evaluated after the last epoch.
    const [, validation] = train.split(2400, { seed: 9 })
    const check = await trainer.evaluate(validation)
    expect(last!.valLoss).toBe(check.loss)
    expect(last!.valAccuracy).toBe(check.accuracy)
    // …and it was not trained on: 2400 samples per epoch.
    expect(Math.round(last!.samplesPerSecond * last!.seconds)).toBe(2400)
  })

  it('validationData is evaluated in eval mode (dropout off): valLoss equals evaluate()', async () => {
    const net = Net.sequential(784, [Net.dense(64), Net.relu(), Net.dropout(0.5), Net.dense(10)], { seed: 2 })
    const trainer = trainerOf(net)
    const { epochs, validationSamples } = await trainer.fit(train, { epochs: 2, validationData: heldOut })
    expect(validationSamples).toBe(1000)
    const check = await trainer.evaluate(heldOut)
    expect(epochs[1]!.valLoss).toBe(check.loss)
    expect(epochs[1]!.valAccuracy).toBe(check.accuracy)
    expect(epochs[1]!.valAccuracy).toBeGreaterThan(0.7)
  })

  it('regression losses report valMse and valMae, not accuracy', async () => {
    // Predict the mean pixel brightness of each of the 10 image rows bands: a regression on real inputs.
    const n = 1000
    const inputs = new Float32Array(n * 784)
    const targets = new Float32Array(n * 10)
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 784; j++) inputs[i * 784 + j] = digits.inputs[i * 784 + j]! / 255
      for (let b = 0; b < 10; b++) {
        let sum = 0
        for (let j = b * 78; j < (b + 1) * 78; j++) sum += inputs[i * 784 + j]!
        targets[i * 10 + b] = sum / 78
      }
    }
    const data = Dataset.fromArrays({ inputs, targets, sampleShape: [784], targetShape: [10] })
    const trainer = trainerOf(mlp(1, 16), { loss: { type: 'mse' }, optimizer: { type: 'adam', lr: 1e-3 } })
    const { epochs } = await trainer.fit(data, { epochs: 3, validationSplit: 0.25 })
    for (const e of epochs) {
      expect(e.accuracy).toBeUndefined()
      expect(e.valAccuracy).toBeUndefined()
      expect(e.valMse).toBeGreaterThanOrEqual(0)
      expect(e.valMae).toBeGreaterThanOrEqual(0)
      expect(e.valMse).toBeCloseTo(e.valLoss!, 10)
    }
    expect(epochs[2]!.valMse).toBeLessThan(epochs[0]!.valMse!)
  })

  it('a plateau schedule follows the validation loss (labels it cannot learn: it rises, the lr halves)', async () => {
    // Validation on the training images with shuffled labels: the more the net learns, the worse.
    const labels = Uint8Array.from(train.labels!)
    for (let i = labels.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1)
      ;[labels[i], labels[j]] = [labels[j]!, labels[i]!]
    }
    const noise = Dataset.fromArrays({ inputs: train.inputs, labels, sampleShape: [784] })
    const schedule = { type: 'plateau', factor: 0.5, patience: 0 } as const
    const run = async (validationData?: Dataset) => {
      const trainer = trainerOf(mlp(3), { schedule, optimizer: { type: 'adam', lr: 0.002 } })
      const { epochs } = await trainer.fit(train, { epochs: 3, ...(validationData ? { validationData } : {}) })
      return { lrs: epochs.map((e) => e.lr), valLosses: epochs.map((e) => e.valLoss), last: trainer.learningRate }
    }
    const plain = await run()
    // The training loss falls every epoch: no reduction.
    expect(plain.lrs).toEqual([Math.fround(0.002), Math.fround(0.002), Math.fround(0.002)])
    const validated = await run(noise)
    expect(validated.valLosses[1]).toBeGreaterThan(validated.valLosses[0]!)
    // Epoch 1's validation loss is the first reference (no reduction after it); epoch 2's is worse: halved.
    expect(validated.lrs[0]).toBeCloseTo(0.002, 9)
    expect(validated.lrs[1]).toBeCloseTo(0.002, 9)
    expect(validated.lrs[2]).toBeCloseTo(0.001, 9)
    expect(validated.last).toBeLessThan(0.001 + 1e-9)
  })
})

describe('callbacks', () => {
  it('see every epoch with its metrics, the history and the trainer, in order', async () => {
    const trainer = trainerOf()
    const events: string[] = []
    let begin: unknown
    let end: unknown
    const result = await trainer.fit(train, {
      epochs: 3,
      validationSplit: 0.1,
      progressEvery: 10,
      callbacks: [{
        onTrainBegin: (info) => { begin = info; events.push('begin') },
        onBatchEnd: (info) => { events.push(`batch ${info.epoch}.${info.batch}`); expect(info.metrics.loss).toBeGreaterThan(0) },
        onEpochEnd: async (info) => {
          events.push(`epoch ${info.epoch}`)
          expect(info.history.at(-1)).toBe(info.metrics)
          expect(info.history).toHaveLength(info.epoch)
          expect(info.trainer).toBe(trainer)
          expect(info.metrics.valAccuracy).toBeDefined()
          // The trainer may be used between epochs.
          await trainer.evaluate(heldOut)
        },
        onTrainEnd: (info) => { end = info; events.push('end') },
      }],
    })
    expect(begin).toMatchObject({ firstEpoch: 1, lastEpoch: 3, trainSamples: 2700, validationSamples: 300, metrics: ['loss', 'accuracy', 'valLoss', 'valAccuracy'] })
    expect(end).toMatchObject({ epoch: 3, stopped: false })
    // 43 batches per epoch: reports at 10, 20, 30, 40.
    expect(events).toEqual(['begin', ...[1, 2, 3].flatMap((e) => [...[10, 20, 30, 40].map((b) => `batch ${e}.${b}`), `epoch ${e}`]), 'end'])
    expect(result.epochs).toHaveLength(3)
  })

  it('stop() in onEpochEnd ends the fit after that epoch: resolves with what was done, stopped and the reason', async () => {
    const trainer = trainerOf()
    const seen: number[] = []
    let ended = false
    const result = await trainer.fit(train, {
      epochs: 6,
      callbacks: [
        { onEpochEnd: ({ epoch, stop }) => { if (epoch === 2) stop('enough for today') } },
        { onEpochEnd: ({ epoch }) => void seen.push(epoch), onTrainEnd: ({ stopped, stopReason }) => { ended = stopped && stopReason === 'enough for today' } },
      ],
    })
    expect(result.epochs.map((e) => e.epoch)).toEqual([1, 2])
    expect(result.stopped).toBe(true)
    expect(result.stopReason).toBe('enough for today')
    expect(seen).toEqual([1, 2]) // the later callbacks still see the epoch that stopped
    expect(ended).toBe(true)
    expect(trainer.epochsDone).toBe(2)
    // The next fit continues normally.
    const next = await trainer.fit(train, { epochs: 1 })
    expect(next.epochs[0]!.epoch).toBe(3)
    expect(next.stopped).toBe(false)
  })

  it('stop() in onBatchEnd ends the fit within the epoch, not as an error', async () => {
    const trainer = trainerOf(mlp(0, 128), { batchSize: 16 })
    const batches: number[] = []
    const result = await trainer.fit(digits, {
      epochs: 5,
      progressEvery: 5,
      callbacks: [{ onBatchEnd: ({ batch, stop }) => { batches.push(batch); if (batch === 10) stop() } }],
    })
    expect(result.stopped).toBe(true)
    expect(result.stopReason).toBe('stopped by a callback')
    // Stopped in epoch 1 (or, if the core finished it before the stop arrived, right after it).
    expect(result.epochs.length).toBeLessThanOrEqual(1)
    expect(trainer.epochsDone).toBe(result.epochs.length)
    expect(batches.filter((b) => b > 10)).toEqual([])
    // Usable afterwards.
    expect((await trainer.fit(train, { epochs: 1 })).epochs).toHaveLength(1)
  })

  it('an error thrown by a callback rejects the fit (onTrainEnd does not run)', async () => {
    const trainer = trainerOf()
    const boom = new Error('callback failed')
    let ended = false
    await expect(trainer.fit(train, { epochs: 3, callbacks: [{ onEpochEnd: () => { throw boom }, onTrainEnd: () => { ended = true } }] })).rejects.toBe(boom)
    expect(ended).toBe(false)
    await expect(trainer.fit(train, { epochs: 3, progressEvery: 1, callbacks: [{ onBatchEnd: () => { throw boom } }] })).rejects.toBe(boom)
    // Not busy afterwards.
    expect((await trainer.fit(train, { epochs: 1 })).epochs).toHaveLength(1)
  })
})

describe('callbacks.earlyStopping', () => {
  it('stops when nothing counts as an improvement and restores the best epoch’s weights exactly', async () => {
    const trainer = trainerOf(mlp(5))
    const rec = recorder()
    const early = callbacks.earlyStopping({ monitor: 'valLoss', patience: 0, minDelta: 10, restoreBestWeights: true })
    const result = await trainer.fit(train, { epochs: 8, validationSplit: 0.2, callbacks: [rec, early] })
    // Epoch 1 sets the best; epoch 2 cannot beat it by 10: stop after epoch 2.
    expect(result.epochs.map((e) => e.epoch)).toEqual([1, 2])
    expect(result.stopped).toBe(true)
    expect(result.stopReason).toMatch(/early stopping: valLoss did not improve by more than 10 for 1 epoch \(best [\d.]+ at epoch 1\)/)
    expect(early.bestEpoch).toBe(1)
    expect(early.best).toBe(result.epochs[0]!.valLoss)
    expect(early.stoppedEpoch).toBe(2)
    expect(early.restored).toBe(true)
    expect(weights(trainer.net)).toEqual(rec.at.get(1))
    expect(weights(trainer.net)).not.toEqual(rec.at.get(2))
  })

  it('with patience waits that many epochs without improvement; the best epoch is the lowest valLoss', async () => {
    // A learning rate far too high for SGD on raw pixels: the validation loss jumps around.
    const trainer = trainerOf(mlp(6), { optimizer: { type: 'sgd', lr: 0.5 }, batchSize: 32 })
    const rec = recorder()
    const early = callbacks.earlyStopping({ patience: 2 })
    const result = await trainer.fit(train, { epochs: 30, validationSplit: 0.2, callbacks: [rec, early] })
    const losses = result.epochs.map((e) => e.valLoss!)
    const bestIndex = losses.indexOf(Math.min(...losses))
    expect(early.monitor).toBe('valLoss') // the default with validation data
    expect(early.bestEpoch).toBe(bestIndex + 1)
    // Stopped after exactly 2 epochs without a new best (with this seed: best at epoch 5 of 7).
    expect(result.stopped).toBe(true)
    expect(result.epochs.length).toBe(bestIndex + 1 + 2)
    expect(result.epochs.length).toBeLessThan(30)
    expect(weights(trainer.net)).toEqual(rec.at.get(early.bestEpoch!))
  })

  it('restoreBestWeights: false keeps the last weights; monitor accuracy is maximised', async () => {
    const trainer = trainerOf(mlp(5))
    const rec = recorder()
    const early = callbacks.earlyStopping({ monitor: 'accuracy', patience: 0, minDelta: 1, restoreBestWeights: false })
    const result = await trainer.fit(train, { epochs: 5, callbacks: [rec, early] })
    expect(result.epochs).toHaveLength(2)
    expect(early.restored).toBe(false)
    expect(weights(trainer.net)).toEqual(rec.at.get(2))
  })
})

describe('callbacks.checkpoint', () => {
  it('writes a checkpoint every N epochs that Trainer.resume continues exactly', async () => {
    const trainer = trainerOf(mlp(8))
    const rec = recorder()
    const path = join(dir, 'run-{epoch}.ckpt.safetensors')
    const ckpt = callbacks.checkpoint({ path, every: 2 })
    const original = await trainer.fit(train, { epochs: 5, callbacks: [ckpt, rec] })
    const files = [2, 4].map((e) => join(dir, `run-${e}.ckpt.safetensors`))
    expect(ckpt.saved).toEqual(files)
    for (const e of [1, 3, 5]) expect(existsSync(join(dir, `run-${e}.ckpt.safetensors`))).toBe(false)
    const resumed = await Trainer.resume(files[1]!)
    expect(resumed.epochsDone).toBe(4)
    expect(weights(resumed.net)).toEqual(rec.at.get(4))
    // Epoch 5 again from the checkpoint: the same loss and weights, bit for bit.
    const again = await resumed.fit(train, { epochs: 1 })
    expect(again.epochs[0]!.epoch).toBe(5)
    expect(again.epochs[0]!.loss).toBe(original.epochs[4]!.loss)
    expect(weights(resumed.net)).toEqual(rec.at.get(5))
  })

  it('onlyBest saves only when the monitored metric improves', async () => {
    const trainer = trainerOf(mlp(8))
    const ckpt = callbacks.checkpoint({ path: join(dir, 'best.ckpt.safetensors'), onlyBest: true, monitor: 'loss' })
    const saved: number[] = []
    let before = 0
    const { epochs } = await trainer.fit(train, { epochs: 3, callbacks: [ckpt, { onEpochEnd: ({ epoch }) => { if (ckpt.saved.length > before) saved.push(epoch); before = ckpt.saved.length } }] })
    // The training loss falls every epoch here: saved each time, into one file.
    expect(epochs[2]!.loss).toBeLessThan(epochs[1]!.loss)
    expect(saved).toEqual([1, 2, 3])
    expect((await Trainer.resume(join(dir, 'best.ckpt.safetensors'))).epochsDone).toBe(3)
  })
})

describe('callbacks.reduceLrOnPlateau', () => {
  it('lowers the learning rate through setLearningRate when the metric stalls', async () => {
    const trainer = trainerOf(mlp(2), { optimizer: { type: 'adam', lr: 0.004 } })
    const reduce = callbacks.reduceLrOnPlateau({ monitor: 'valLoss', factor: 0.5, patience: 0, minDelta: 10 })
    const { epochs } = await trainer.fit(train, { epochs: 4, validationSplit: 0.2, callbacks: [reduce] })
    // Epoch 1 is the reference; after epochs 2 and 3 (no improvement by 10) the lr halves; after 4 again.
    expect(reduce.reductions.map((r) => r.epoch)).toEqual([2, 3, 4])
    expect(epochs.map((e) => e.lr)).toEqual([0.004, 0.004, 0.002, 0.001].map(Math.fround))
    expect(trainer.learningRate).toBeCloseTo(0.0005, 9)
  })

  it('respects minLr and cooldown', async () => {
    const trainer = trainerOf(mlp(2), { optimizer: { type: 'adam', lr: 0.004 } })
    const reduce = callbacks.reduceLrOnPlateau({ monitor: 'loss', factor: 0.5, patience: 0, minDelta: 10, cooldown: 1, minLr: 0.0015 })
    await trainer.fit(train, { epochs: 6, callbacks: [reduce] })
    // Reductions after epoch 2 (→ 0.002), cooldown at 3, after 4 (→ 0.0015, the floor), none after.
    expect(reduce.reductions.map((r) => [r.epoch, Number(r.lr.toPrecision(6))])).toEqual([[2, 0.002], [4, 0.0015]])
    expect(trainer.learningRate).toBeCloseTo(0.0015, 9)
  })

  it('is refused for a trainer with a schedule, naming the callback', async () => {
    const trainer = trainerOf(mlp(), { schedule: { type: 'cosine', totalSteps: 100 } })
    await expect(trainer.fit(train, { callbacks: [callbacks.reduceLrOnPlateau()] })).rejects.toMatchObject({ field: 'reduceLrOnPlateau' })
    expect(() => trainer.setLearningRate(0.1)).toThrow(/schedule/)
    expect(trainer.epochsDone).toBe(0)
  })
})

describe('metrics log', () => {
  it('writes a run line, batch lines every logEvery batches and an epoch line per epoch, in the documented format', async () => {
    const file = join(dir, 'metrics.jsonl')
    const trainer = trainerOf(mlp(3))
    const result = await trainer.fit(train, { epochs: 2, validationSplit: 0.1, log: { path: file, model: 'mlp-32' }, logEvery: 20 })
    expect(result.logError).toBeUndefined()
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    const [run, ...rest] = lines
    expect(Object.keys(run!)).toEqual(['kind', 'started', 'model', 'spec', 'options', 'trainSamples', 'validationSamples'])
    expect(run).toMatchObject({ kind: 'run', model: 'mlp-32', spec: trainer.net.spec, trainSamples: 2700, validationSamples: 300 })
    expect(new Date(run!.started as string).toISOString()).toBe(run!.started)
    expect(run!.options).toMatchObject({ optimizer: { type: 'adam' }, loss: { type: 'cross_entropy' }, batchSize: 64, threads: 1, seed: 3, epochs: 2, validationSplit: 0.1, logEvery: 20 })
    // 43 batches per epoch: batch lines at 20 and 40, then the epoch line.
    expect(rest.map((l) => `${l.kind} ${l.epoch}${l.batch ? `.${l.batch}` : ''}`)).toEqual(['batch 1.20', 'batch 1.40', 'epoch 1', 'batch 2.20', 'batch 2.40', 'epoch 2'])
    for (const l of rest) {
      const keys = l.kind === 'batch' ? BATCH_KEYS : EPOCH_KEYS
      expect(Object.keys(l)).toEqual(['kind', ...keys.filter((k) => k in l)])
      for (const [k, v] of Object.entries(l)) if (k !== 'kind') expect(typeof v, k).toBe('number')
    }
    expect(Object.keys(rest[0]!)).toEqual(['kind', 'epoch', 'batch', 'batches', 'loss', 'accuracy', 'lr', 'samplesPerSecond', 'gradNorm'])
    expect(Object.keys(rest[2]!)).toEqual(['kind', 'epoch', 'loss', 'accuracy', 'valLoss', 'valAccuracy', 'lr', 'samplesPerSecond', 'gradNorm', 'seconds', 'skippedBatches'])
    expect(rest[0]).toMatchObject({ batches: 43, lr: 0.001 })
    // The epoch lines carry the fit's numbers.
    const epochLines = rest.filter((l) => l.kind === 'epoch')
    epochLines.forEach((l, i) => {
      const e = result.epochs[i]!
      expect(l).toMatchObject({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy, seconds: e.seconds, gradNorm: e.gradNorm })
    })
    // Appends: a second fit adds a run line.
    await trainer.fit(train, { epochs: 1, log: file })
    const after = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; model?: string })
    expect(after.map((l) => l.kind)).toEqual(['run', 'batch', 'batch', 'epoch', 'batch', 'batch', 'epoch', 'run', 'epoch'])
    expect(after[7]!.model).toBe('net [784]→[10]')
  })

  it('regression logs mse and mae instead of accuracy', async () => {
    const data = Dataset.fromArrays({ inputs: digits.subset(0, 500).inputs, targets: new Float32Array(500).fill(0.5), sampleShape: [784], targetShape: [1] })
    const file = join(dir, 'regression.jsonl')
    const trainer = trainerOf(Net.sequential(784, [Net.dense(1)], { seed: 0 }), { loss: { type: 'huber' } })
    await trainer.fit(data, { epochs: 1, validationSplit: 0.2, log: file })
    const epoch = JSON.parse(readFileSync(file, 'utf8').trim().split('\n')[1]!) as Record<string, unknown>
    expect(Object.keys(epoch)).toEqual(['kind', 'epoch', 'loss', 'mse', 'mae', 'valLoss', 'valMse', 'valMae', 'lr', 'samplesPerSecond', 'gradNorm', 'seconds', 'skippedBatches'])
  })

  it('a write error does not lose the training: reported once, in the result and as one warning', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const trainer = trainerOf()
      // /dev/full opens fine and fails every write with ENOSPC.
      const result = await trainer.fit(train, { epochs: 2, log: '/dev/full', logEvery: 1 })
      expect(result.epochs).toHaveLength(2)
      expect(result.logError).toMatch(/\/dev\/full: .*ENOSPC/)
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => (w as { code?: string }).code === 'FERRONET_LOG_WRITE')).toHaveLength(1)
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('a log file that cannot be opened rejects before any training, naming it', async () => {
    const trainer = trainerOf()
    const before = weights(trainer.net)
    const file = join(dir, 'missing', 'metrics.jsonl')
    const error = (await trainer.fit(train, { log: file }).catch((e: unknown) => e)) as FerronetError
    expect(error).toBeInstanceOf(FerronetError)
    expect(error.code).toBe('ERR_LOG_FILE')
    expect(error.message).toContain(file)
    expect(weights(trainer.net)).toEqual(before)
    expect(trainer.epochsDone).toBe(0)
  })
})

describe('bad options name the option', () => {
  it('in fit', async () => {
    const trainer = trainerOf()
    const before = weights(trainer.net)
    const cases: [Record<string, unknown>, string][] = [
      [{ validationSplit: 0 }, 'validationSplit'],
      [{ validationSplit: 1 }, 'validationSplit'],
      [{ validationSplit: 1.5 }, 'validationSplit'],
      [{ validationSplit: '0.1' }, 'validationSplit'],
      [{ validationSplit: 0.0001 }, 'validationSplit'], // holds out 0 of 3000
      [{ validationSplit: 0.1, validationData: heldOut }, 'validationSplit'],
      [{ validationData: [1, 2] }, 'validationData'],
      [{ callbacks: {} }, 'callbacks'],
      [{ callbacks: [null] }, 'callbacks[0]'],
      [{ callbacks: [{ onEpochEnded: () => {} }] }, 'callbacks[0]'],
      [{ callbacks: [{ onEpochEnd: 'yes' }] }, 'callbacks[0].onEpochEnd'],
      [{ log: '' }, 'log'],
      [{ log: { path: 'm.jsonl', name: 'x' } }, 'log.name'],
      [{ log: { model: 'x' } }, 'log.path'],
      [{ logEvery: 10 }, 'logEvery'],
      [{ log: 'm.jsonl', logEvery: -1 }, 'logEvery'],
      [{ validationSplt: 0.1 }, 'validationSplt'],
      [{ callbacks: [callbacks.earlyStopping({ monitor: 'valLoss' })] }, 'earlyStopping.monitor'],
      [{ callbacks: [callbacks.checkpoint({ path: 'x', onlyBest: true, monitor: 'valAccuracy' })] }, 'checkpoint.monitor'],
      [{ callbacks: [callbacks.earlyStopping({ monitor: 'mse' })] }, 'earlyStopping.monitor'],
    ]
    for (const [options, field] of cases) {
      const error = await trainer.fit(train, options as never).catch((e: unknown) => e)
      expect(error, JSON.stringify(options)).toBeInstanceOf(OptionError)
      expect((error as OptionError).field, JSON.stringify(options)).toBe(field)
    }
    const narrow = Dataset.fromArrays({ inputs: new Uint8Array(20), labels: [0], sampleShape: [20] })
    await expect(trainer.fit(train, { validationData: narrow })).rejects.toThrow(ShapeError)
    await expect(trainer.fit(train, { validationData: narrow })).rejects.toThrow(/validationData: dataset samples have shape \[20\]/)
    expect(weights(trainer.net)).toEqual(before)
    expect(trainer.epochsDone).toBe(0)
  })

  it('in the built-in callbacks and setLearningRate', () => {
    const cases: [() => unknown, string][] = [
      [() => callbacks.earlyStopping({ patience: -1 }), 'earlyStopping.patience'],
      [() => callbacks.earlyStopping({ patience: 1.5 }), 'earlyStopping.patience'],
      [() => callbacks.earlyStopping({ minDelta: -1 }), 'earlyStopping.minDelta'],
      [() => callbacks.earlyStopping({ monitor: 'valLos' as never }), 'earlyStopping.monitor'],
      [() => callbacks.earlyStopping({ mode: 'up' as never }), 'earlyStopping.mode'],
      [() => callbacks.earlyStopping({ restoreBestWeights: 'yes' as never }), 'earlyStopping.restoreBestWeights'],
      [() => callbacks.earlyStopping({ patiance: 2 } as never), 'earlyStopping.patiance'],
      [() => callbacks.checkpoint({ path: '' }), 'checkpoint.path'],
      [() => callbacks.checkpoint(undefined as never), 'checkpoint.path'],
      [() => callbacks.checkpoint({ path: 'x', every: 0 }), 'checkpoint.every'],
      [() => callbacks.reduceLrOnPlateau({ factor: 1 }), 'reduceLrOnPlateau.factor'],
      [() => callbacks.reduceLrOnPlateau({ factor: 0 }), 'reduceLrOnPlateau.factor'],
      [() => callbacks.reduceLrOnPlateau({ minLr: -1 }), 'reduceLrOnPlateau.minLr'],
      [() => callbacks.reduceLrOnPlateau({ cooldown: -1 }), 'reduceLrOnPlateau.cooldown'],
      [() => trainerOf().setLearningRate(0), 'lr'],
      [() => trainerOf().setLearningRate(NaN), 'lr'],
    ]
    for (const [fn, field] of cases) {
      let caught: unknown
      try { fn() } catch (e) { caught = e }
      expect(caught, field).toBeInstanceOf(OptionError)
      expect((caught as OptionError).field).toBe(field)
    }
  })
})

describe('the live view of ferronet train', () => {
  const progress = (batch: number, epochEnd = false): Progress => ({
    epoch: 1, lastEpoch: 2, batch, batches: 4, loss: 1.5 - batch / 10, accuracy: 0.5, samples: batch * 64,
    samplesPerSecond: 1000, seconds: batch / 10, epochEnd, lr: 1e-3,
  })
  const terminal = () => {
    const chunks: string[] = []
    return { chunks, stream: { isTTY: true, columns: 120, write: (s: string) => (chunks.push(s), true) } }
  }

  it('draws a cli-progress bar when the package is installed', () => {
    const { chunks, stream } = terminal()
    const view = liveView(stream)
    expect(view.kind).toBe('bar')
    for (let b = 1; b <= 4; b++) view.update(progress(b, b === 4))
    const out = chunks.join('')
    expect(out).toMatch(/epoch 1\/2 \[[=-]+\] \d\/4 \| 1000 samples\/s \| ETA .* \| loss 1\.\d{4} acc 0\.5000/)
    expect(out).toContain('\x1b[1G') // back to column 1 for each redraw
  })

  it('falls back to a carriage-return status line without cli-progress', () => {
    const { chunks, stream } = terminal()
    const view = liveView(stream, () => undefined)
    expect(view.kind).toBe('line')
    view.update(progress(1))
    view.update(progress(2))
    view.clear()
    expect(chunks.join('')).toMatch(/^\repoch 1\/2 {2}1\/4 {2}loss 1\.4000 {2}acc 0\.5000 {2}1000 samples\/s\x1b\[K\repoch 1\/2 {2}2\/4 .*\r\x1b\[K$/)
  })
})
