import { describe, expect, it } from 'vitest'
import { AbortError, Dataset, Net, NativeError, OptionError, ShapeError, Trainer, mnist, type Progress } from '../src/index.js'
import { blobs } from './helpers/blobs.js'

const makeNet = (seed = 0) => Net.sequential(784, [Net.dense(64), Net.relu(), Net.dense(10)], { seed })
const digits = await mnist.loadDigits()

describe('Trainer options', () => {
  const net = makeNet()
  it('rejects bad options before any work, naming the field', () => {
    const cases: [() => unknown, string][] = [
      [() => new Trainer(net, { optimizer: { type: 'adam', lr: -1 } }), 'optimizer.lr'],
      [() => new Trainer(net, { optimizer: { type: 'adam', lr: 0 } }), 'optimizer.lr'],
      [() => new Trainer(net, { optimizer: { type: 'adam', lr: NaN } }), 'optimizer.lr'],
      [() => new Trainer(net, { optimizer: { type: 'adam', betas: [0.9, 1] } }), 'optimizer.betas[1]'],
      [() => new Trainer(net, { optimizer: { type: 'adam', eps: -1e-8 } }), 'optimizer.eps'],
      [() => new Trainer(net, { optimizer: { type: 'sgd', lr: 0.1, momentum: -0.5 } }), 'optimizer.momentum'],
      [() => new Trainer(net, { optimizer: { type: 'sgd', lr: 0.1, nesterov: true } }), 'optimizer.nesterov'],
      [() => new Trainer(net, { optimizer: { type: 'adagrad' } as never }), 'optimizer.type'],
      [() => new Trainer(net, { optimizer: { type: 'adam', momentum: 0.9 } as never }), 'optimizer.momentum'],
      [() => new Trainer(net, { optimizer: { type: 'rmsprop', alpha: 1.5 } }), 'optimizer.alpha'],
      [() => new Trainer(net, { loss: { type: 'hinge' } as never }), 'loss.type'],
      [() => new Trainer(net, { loss: { type: 'huber', delta: 0 } }), 'loss.delta'],
      [() => new Trainer(net, { loss: { type: 'mse', beta: 1 } as never }), 'loss.beta'],
      [() => new Trainer(net, { loss: { type: 'cross_entropy', labelSmoothing: 2 } }), 'loss.labelSmoothing'],
      [() => new Trainer(net, { loss: { type: 'cross_entropy', classWeights: [1, 2] } }), 'loss.classWeights'],
      [() => new Trainer(net, { loss: { type: 'bce_with_logits', posWeight: -1 } }), 'loss.posWeight'],
      [() => new Trainer(net, { schedule: { type: 'cosine' } as never }), 'schedule.totalSteps'],
      [() => new Trainer(net, { schedule: { type: 'cosine', totalSteps: 10, warmupSteps: 10 } }), 'schedule.warmupSteps'],
      [() => new Trainer(net, { schedule: { type: 'step', stepSize: 0 } }), 'schedule.stepSize'],
      [() => new Trainer(net, { schedule: { type: 'exponential', gamma: 1.5 } }), 'schedule.gamma'],
      [() => new Trainer(net, { schedule: { type: 'one_cycle', maxLr: 0.1, totalSteps: 10, pctStart: 1 } }), 'schedule.pctStart'],
      [() => new Trainer(net, { schedule: { type: 'plateau', patience: -1 } }), 'schedule.patience'],
      [() => new Trainer(net, { schedule: { type: 'linear' } as never }), 'schedule.type'],
      [() => new Trainer(net, { clipNorm: 0 }), 'clipNorm'],
      [() => new Trainer(net, { group: 'generator' }), 'group'],
      [() => new Trainer(net, { batchsize: 32 } as never), 'batchsize'],
      [() => new Trainer(net, { batchSize: 0 }), 'batchSize'],
      [() => new Trainer(net, { batchSize: 2.5 }), 'batchSize'],
      [() => new Trainer(net, { threads: -1 }), 'threads'],
      [() => new Trainer(net, { seed: -3 }), 'seed'],
    ]
    for (const [fn, field] of cases) {
      let caught: unknown
      try { fn() } catch (e) { caught = e }
      expect(caught, field).toBeInstanceOf(OptionError)
      expect((caught as OptionError).field).toBe(field)
    }
  })

  it('rejects fit options and mismatched data before training starts', async () => {
    const trainer = new Trainer(net)
    const before = net.parameters()[0]!.data
    await expect(trainer.fit(digits, { epochs: 0 })).rejects.toThrow(OptionError)
    await expect(trainer.fit(digits, { progressEvery: -1 })).rejects.toThrow(/progressEvery/)
    await expect(trainer.fit(digits, { signal: {} as never })).rejects.toThrow(/signal/)
    await expect(trainer.fit({} as never)).rejects.toThrow(/needs a Dataset/)
    const narrow = blobs(100, 20, 3)
    await expect(trainer.fit(narrow)).rejects.toThrow(ShapeError)
    await expect(trainer.fit(narrow)).rejects.toThrow(/shape \[20\] \(20 values\) but the network's input shape is \[784\]/)
    await expect(trainer.fit(digits, { epoch: 2 } as never)).rejects.toMatchObject({ field: 'epoch' })
    const manyClasses = Dataset.fromArrays({ inputs: new Uint8Array(784 * 12), labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], sampleShape: [784] })
    await expect(trainer.evaluate(manyClasses)).rejects.toThrow(/12 classes but the network has 10 outputs/)
    expect(net.parameters()[0]!.data).toEqual(before)
  })
})

describe('Trainer.fit', () => {
  it('learns a simple problem with SGD and with Adam', async () => {
    const data = blobs(600, 20, 3)
    for (const optimizer of [{ type: 'sgd', lr: 0.1, momentum: 0.9 }, { type: 'adam', lr: 0.01 }] as const) {
      const net = Net.sequential(20, [Net.dense(16), Net.relu(), Net.dense(3)], { seed: 1 })
      const trainer = new Trainer(net, { optimizer, batchSize: 32 })
      const first = await trainer.evaluate(data)
      const { epochs } = await trainer.fit(data, { epochs: 5 })
      const after = await trainer.evaluate(data)
      expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5])
      expect(after.loss).toBeLessThan(first.loss * 0.5)
      expect(after.accuracy).toBeGreaterThan(0.95)
    }
  })

  it('keeps the event loop ticking while it trains', async () => {
    const trainer = new Trainer(makeNet(), { batchSize: 64 })
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    const started = performance.now()
    await trainer.fit(digits, { epochs: 3 })
    const elapsed = performance.now() - started
    clearInterval(timer)
    // A blocked loop would tick ~0 times; a free one ticks about once per ms.
    expect(ticks).toBeGreaterThan(Math.min(20, elapsed / 10))
  })

  it('reports progress at every epoch end and every N batches', async () => {
    const trainer = new Trainer(makeNet(), { batchSize: 100 })
    const reports: Progress[] = []
    await trainer.fit(digits.subset(0, 2000), { epochs: 2, progressEvery: 5, onProgress: (p) => reports.push(p) })
    // 20 batches per epoch: batches 5, 10, 15, 20 in each of 2 epochs.
    expect(reports.map((p) => [p.epoch, p.batch, p.epochEnd])).toEqual([
      [1, 5, false], [1, 10, false], [1, 15, false], [1, 20, true],
      [2, 5, false], [2, 10, false], [2, 15, false], [2, 20, true],
    ])
    for (const p of reports) {
      expect(p.batches).toBe(20)
      expect(p.lastEpoch).toBe(2)
      expect(p.samples).toBe(p.batch * 100)
      expect(p.loss).toBeGreaterThan(0)
      expect(p.accuracy).toBeGreaterThanOrEqual(0)
      expect(p.accuracy).toBeLessThanOrEqual(1)
      expect(p.samplesPerSecond).toBeGreaterThan(0)
    }
    expect(reports[7]!.loss).toBeLessThan(reports[0]!.loss)
  })

  it('stops within one batch on abort and leaves a usable network', async () => {
    const net = makeNet(7)
    const trainer = new Trainer(net, { batchSize: 50 })
    const controller = new AbortController()
    const seen: Progress[] = []
    const fit = trainer.fit(digits, {
      epochs: 5,
      progressEvery: 1,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p)
        if (p.batch === 3) controller.abort()
      },
    })
    const error = (await fit.catch((e: unknown) => e)) as AbortError
    expect(error).toBeInstanceOf(AbortError)
    // Stopped before the next batch: at most the batch in progress when abort() ran completed.
    expect(error.stepsAtRequest).toBeGreaterThanOrEqual(3)
    expect(error.stepsDone! - error.stepsAtRequest!).toBeGreaterThanOrEqual(0)
    expect(error.stepsDone! - error.stepsAtRequest!).toBeLessThanOrEqual(1)
    expect(error.stepsDone).toBeLessThan(5 * 200)
    expect(seen.every((p) => p.batch <= error.stepsDone!)).toBe(true)
    // Usable: predicts, evaluates and trains again.
    const logits = net.predict(digits.subset(0, 4))
    expect(logits.every(Number.isFinite)).toBe(true)
    const evaluation = await trainer.evaluate(digits)
    expect(evaluation.samples).toBe(10000)
    await expect(trainer.fit(digits.subset(0, 500), { epochs: 1 })).resolves.toBeTruthy()
  })

  it('rejects at once when the signal is already aborted', async () => {
    const trainer = new Trainer(makeNet())
    await expect(trainer.fit(digits, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
  })

  it('turns a throwing progress callback into the rejection and stops', async () => {
    const trainer = new Trainer(makeNet(), { batchSize: 50 })
    let calls = 0
    const boom = new Error('boom from callback')
    await expect(
      trainer.fit(digits, { epochs: 3, progressEvery: 1, onProgress: () => { calls++; throw boom } }),
    ).rejects.toBe(boom)
    expect(calls).toBe(1)
  })

  it('refuses concurrent use instead of blocking the JS thread', async () => {
    const net = makeNet()
    const trainer = new Trainer(net, { batchSize: 64 })
    const running = trainer.fit(digits, { epochs: 2 })
    await expect(trainer.fit(digits)).rejects.toMatchObject({ code: 'ERR_BUSY' })
    let busy: unknown
    // The fit may hold the net's lock already or a moment later.
    for (let i = 0; i < 100 && !busy; i++) {
      try { net.predict(new Float32Array(784)) } catch (e) { busy = e }
      await new Promise((r) => setTimeout(r, 2))
    }
    expect(busy).toBeInstanceOf(NativeError)
    expect((busy as NativeError).code).toBe('ERR_BUSY')
    await running
    expect(net.predict(new Float32Array(784)).length).toBe(10)
  })

  it('is reproducible bit for bit from the seed, whatever the thread count', async () => {
    const run = async (threads: number, seed: number) => {
      const net = makeNet(seed)
      const trainer = new Trainer(net, { threads, batchSize: 32 })
      await trainer.fit(digits.subset(0, 3000), { epochs: 2 })
      return net.parameters().map((p) => p.data)
    }
    const a = await run(1, 11)
    expect(await run(1, 11)).toEqual(a)
    expect(await run(2, 11)).toEqual(a)
    expect(await run(1, 12)).not.toEqual(a)
  })

  it('stops with a clear error when the loss diverges, keeping finite weights', async () => {
    const inputs = Float32Array.from({ length: 64 * 4 }, (_, i) => (i % 7) * 1e18)
    const data = Dataset.fromArrays({ inputs, labels: Array.from({ length: 64 }, (_, i) => i % 2), sampleShape: [4] })
    const net = Net.sequential(4, [Net.dense(8), Net.relu(), Net.dense(2)], { seed: 0 })
    const trainer = new Trainer(net, { optimizer: { type: 'sgd', lr: 1e6 }, batchSize: 8 })
    await expect(trainer.fit(data, { epochs: 3 })).rejects.toMatchObject({ code: 'ERR_NON_FINITE_LOSS' })
    await expect(trainer.fit(data, { epochs: 3 })).rejects.toThrow(/lower the learning rate/)
    for (const p of net.parameters()) expect(p.data.every(Number.isFinite)).toBe(true)
  })
})

describe('Trainer.trainBatch', () => {
  it('takes one step and returns the loss before it', () => {
    const net = Net.sequential(20, [Net.dense(16), Net.relu(), Net.dense(3)], { seed: 1 })
    const trainer = new Trainer(net, { optimizer: { type: 'sgd', lr: 0.5 } })
    const data = blobs(30, 20, 3)
    const x = data.inputs as Float32Array
    const first = trainer.trainBatch(x, data.labels)
    let last = first
    for (let i = 0; i < 20; i++) last = trainer.trainBatch(x, data.labels)
    expect(last).toBeLessThan(first)
    expect(() => trainer.trainBatch(x.subarray(1), data.labels)).toThrow(ShapeError)
    expect(() => trainer.trainBatch(x, Uint8Array.from(data.labels, () => 9))).toThrow(/label 9 of sample 0 is out of range/)
  })
})

describe('panics', () => {
  it('never abort Node: sync and async panics become errors', async () => {
    const { native } = await import('../src/native.js')
    const { fromNative } = await import('../src/native.js')
    let sync: unknown
    try { native.__debugPanicSync() } catch (e) { sync = fromNative(e) }
    expect(sync).toBeInstanceOf(NativeError)
    expect((sync as NativeError).code).toBe('ERR_PANIC')
    expect((sync as Error).message).toMatch(/deliberate test panic \(sync\)/)
    const asyncError = await native.__debugPanicAsync().then(() => undefined, (e: unknown) => fromNative(e))
    expect((asyncError as NativeError).code).toBe('ERR_PANIC')
    expect((asyncError as Error).message).toMatch(/rayon worker/)
    // The process and the addon still work.
    const net = Net.sequential(4, [Net.dense(2)])
    expect(net.predict(new Float32Array(4)).length).toBe(2)
  })
})
