/**
 * Bad data met during training: NaN written into a dataset after it was made, a
 * label changed mid-fit. Each is a typed error naming the sample, epoch and batch,
 * raised before the batch trains; the weights stay finite; no panic dump on stderr.
 */

import { spawnSync } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import { Dataset, NativeError, Net, Trainer, mnist } from '../src/index.js'

describe('bad data during training', () => {
  it('NaN written into a dataset after it was created stops fit at that batch, naming the sample', async () => {
    const digits = (await mnist.loadDigits()).subset(0, 640)
    const inputs = Float32Array.from(digits.inputs as Uint8Array, (v) => v / 255)
    const data = Dataset.fromArrays({ inputs, labels: digits.labels!, sampleShape: [784], numClasses: 10 })
    inputs[200 * 784 + 300] = Number.NaN // after fromArrays validated it
    const net = Net.sequential(784, [Net.dense(32), Net.relu(), Net.dense(10)], { seed: 1 })
    const trainer = new Trainer(net, { batchSize: 64, threads: 1 })
    const error = await trainer.fit(data, { epochs: 1, shuffle: false }).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(NativeError)
    expect((error as NativeError).code).toBe('ERR_NON_FINITE_DATA')
    expect((error as Error).message).toMatch(/input of sample 200 holds NaN.*epoch 1, batch 4/)
    for (const p of net.parameters()) expect(p.data.every(Number.isFinite)).toBe(true)
    // Through trainBatch too.
    const batch = inputs.slice(199 * 784, 201 * 784)
    expect(() => trainer.trainBatch(batch, new Uint32Array([1, 2]))).toThrow(/sample 1 holds NaN/)
  })

  it('a gradient that overflows while the loss stays finite stops the fit at that batch (no update), or is skipped with onNonFinite: skip', async () => {
    // Regression on 4 inputs; batch 2 of 4 holds inputs of 3e19: its MSE (~1e38, summed in f64) is finite,
    // but dW = Σ x·dy overflows to ±∞ in backward. Nothing is NaN in the data itself.
    const n = 64, dim = 4
    const inputs = new Float32Array(n * dim).map((_, i) => Math.sin(i))
    const targets = new Float32Array(n).map((_, i) => Math.cos(i))
    for (let i = 16 * dim; i < 32 * dim; i++) inputs[i] = 3e19
    const data = Dataset.fromArrays({ inputs, targets, sampleShape: [dim] })
    const make = () => Net.sequential(dim, [Net.dense(1)], { seed: 3 })

    const net = make()
    const before = net.parameters().map((p) => Float32Array.from(p.data))
    const stop = new Trainer(net, { batchSize: 16, threads: 1, loss: { type: 'mse' }, optimizer: { type: 'sgd', lr: 1e-3 } })
    const error = await stop.fit(data, { epochs: 1, shuffle: false }).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(NativeError)
    expect((error as NativeError).code).toBe('ERR_NON_FINITE_GRADIENT')
    expect((error as Error).message).toMatch(/gradient of 0\.(weight|bias) became NaN or infinite at epoch 1, batch 2 \(the loss was finite\); no update was made/)
    // Batch 1 trained; batch 2 made no update: every weight is finite.
    const after = net.parameters()
    for (const p of after) expect(p.data.every(Number.isFinite)).toBe(true)
    expect(after.some((p, k) => p.data.some((v, i) => v !== before[k]![i]))).toBe(true)

    const skipNet = make()
    const skip = new Trainer(skipNet, { batchSize: 16, threads: 1, loss: { type: 'mse' }, optimizer: { type: 'sgd', lr: 1e-3 }, onNonFinite: 'skip' })
    const fit = await skip.fit(data, { epochs: 2, shuffle: false })
    expect(fit.epochs.map((e) => e.skippedBatches)).toEqual([1, 1])
    for (const p of skipNet.parameters()) expect(p.data.every(Number.isFinite)).toBe(true)
    // The three other batches trained: the same as a fit on them alone.
    const clean = Dataset.fromArrays({ inputs: Float32Array.from([...inputs.subarray(0, 16 * dim), ...inputs.subarray(32 * dim)]), targets: Float32Array.from([...targets.subarray(0, 16), ...targets.subarray(32)]), sampleShape: [dim] })
    const ref = make()
    const refFit = await new Trainer(ref, { batchSize: 16, threads: 1, loss: { type: 'mse' }, optimizer: { type: 'sgd', lr: 1e-3 } }).fit(clean, { epochs: 2, shuffle: false })
    expect(refFit.epochs.map((e) => e.skippedBatches)).toEqual([0, 0])
    expect(skipNet.parameters().map((p) => Array.from(p.data))).toEqual(ref.parameters().map((p) => Array.from(p.data)))
    expect(() => new Trainer(make(), { onNonFinite: 'ignore' as 'skip' })).toThrow(/onNonFinite.*must be 'stop' or 'skip', got "ignore"/)
  })

  it('a label changed to one out of range during fit is a typed error, with no panic dump on stderr', () => {
    // In a child process, so that its stderr can be read whole.
    const script = `
      import { Dataset, Net, Trainer } from './dist/index.js'
      const n = 4000
      const inputs = new Float32Array(n * 8).map((_, i) => Math.sin(i))
      const labels = new Uint8Array(n).map((_, i) => i % 3)
      const data = Dataset.fromArrays({ inputs, labels, sampleShape: [8], numClasses: 3 })
      const net = Net.sequential(8, [Net.dense(64), Net.relu(), Net.dense(3)])
      const trainer = new Trainer(net, { batchSize: 8, threads: 1 })
      let changed = false
      const run = trainer.fit(data, { epochs: 20, progressEvery: 1, onProgress: () => { if (!changed) { labels[n - 1] = 200; changed = true } } })
      run.then(() => console.log(JSON.stringify({ ok: true, changed })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message, name: e.name })))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8', timeout: 120_000 })
    expect(r.status, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!)
    expect(out.code).toBe('ERR_LABEL_OUT_OF_RANGE')
    expect(out.message).toMatch(/label 200 of sample 3999 is out of range for a network with 3 outputs/)
    expect(r.stderr).not.toMatch(/panicked|RUST_BACKTRACE|stack backtrace/)
  })

  it('a net too large for memory is a typed error before any work, not an abort of Node', () => {
    let error: unknown
    try {
      Net.sequential(784, [Net.dense(1e8)])
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(NativeError)
    expect((error as NativeError).code).toBe('ERR_OUT_OF_MEMORY')
    expect((error as Error).message).toMatch(/could not allocate 292\.1 GiB for parameter 0\.weight/)
    // The process is alive and builds the next net.
    expect(Net.sequential(784, [Net.dense(10)]).parameterCount).toBe(7850)
  })

  it('process.exit() and an uncaught exception during a long fit end the process within a batch, not after the fit', () => {
    for (const ending of ['process.exit(0)', "throw new Error('boom')"]) {
      const script = `
        import { Net, Trainer, mnist } from './dist/index.js'
        const digits = await mnist.loadDigits()
        const net = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)])
        new Trainer(net, { threads: 1 }).fit(digits, { epochs: 100000 })   // hours of work
        setTimeout(() => { ${ending} }, 300)
      `
      const started = Date.now()
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8', timeout: 60_000 })
      // Without the exit hook this waits for all 100,000 epochs (the spawn's 60 s timeout kills it).
      expect(r.signal, ending).toBeNull()
      expect(Date.now() - started, ending).toBeLessThan(30_000)
      if (ending.startsWith('throw')) expect(r.stderr).toContain('boom')
    }
  })

  it('worker.terminate() during a fit, an evaluate or a generate returns within a batch, not after the epoch', async () => {
    // One epoch here is many seconds (10,000 digits through 784→4096→4096→10 on one
    // thread); a batch of 32 is tens of milliseconds. Before the work ran on threads of
    // its own, Node waited for the libuv request (the whole epoch) before the worker's
    // clean-up hooks could stop it.
    const dist = new URL('../dist/index.js', import.meta.url).href
    const jobs: Record<string, string> = {
      fit: `await new Trainer(net, { threads: 1, batchSize: 32 }).fit(digits, { epochs: 1000, progressEvery: 1, onProgress: () => { if (!told) { told = true; parentPort.postMessage('running') } } })`,
      evaluate: `const t = new Trainer(net, { threads: 1 }); setTimeout(() => parentPort.postMessage('running'), 200); for (;;) await t.evaluate(digits, { batchSize: 10000 })`,
      generate: `const lm = Net.sequential([64], [Net.embedding(64, 256), Net.dense(4096), Net.relu(), Net.dense(64)]); setTimeout(() => parentPort.postMessage('running'), 200); await lm.generate(new Uint32Array([1]), { maxNewTokens: 100000, threads: 1 })`,
    }
    for (const [job, code] of Object.entries(jobs)) {
      const script = `
        const { parentPort } = require('node:worker_threads')
        import(${JSON.stringify(dist)}).then(async ({ Net, Trainer, mnist }) => {
          const digits = await mnist.loadDigits()
          const net = Net.sequential(784, [Net.dense(4096), Net.relu(), Net.dense(4096), Net.relu(), Net.dense(10)])
          let told = false
          ${code}
        })
      `
      const worker = new Worker(script, { eval: true })
      const failed = new Promise<never>((_, reject) => worker.once('error', reject))
      await Promise.race([new Promise((resolve) => worker.once('message', resolve)), failed])
      await new Promise((resolve) => setTimeout(resolve, 300)) // well inside the work
      const started = performance.now()
      await worker.terminate()
      const took = performance.now() - started
      console.info(`[robustness] worker.terminate() during ${job}: ${took.toFixed(0)} ms`)
      expect(took, job).toBeLessThan(3000)
    }
  }, 120_000)

  it('dispose() frees a net now; every later use is ERR_DISPOSED; V8 is told the native size', async () => {
    const net = Net.sequential(784, [Net.dense(256), Net.relu(), Net.dense(10)])
    expect(net.nativeBytes).toBeGreaterThanOrEqual(2 * 4 * (784 * 256 + 256 + 2570)) // weights + gradients
    const digits = (await mnist.loadDigits()).subset(0, 256)
    const trainer = new Trainer(net, { threads: 1 })
    await trainer.fit(digits, { epochs: 1 })
    const trained = net.nativeBytes
    expect(trained).toBeGreaterThan(2 * 4 * (784 * 256)) // + the batch arena
    net.dispose()
    expect(net.nativeBytes).toBe(0)
    net.dispose() // a second dispose is a no-op
    for (const use of [() => net.predict(new Float32Array(784)), () => net.parameters(), () => net.setParameter('0.bias', new Float32Array(256))]) {
      expect(use).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }))
    }
    await expect(trainer.fit(digits, { epochs: 1 })).rejects.toMatchObject({ code: 'ERR_DISPOSED' })
    await expect(net.save('/tmp/x.safetensors')).rejects.toMatchObject({ code: 'ERR_DISPOSED' })
    let outer: Net | undefined
    {
      using scoped = Net.sequential(4, [Net.dense(2)])
      expect(scoped.predict(new Float32Array(4))).toHaveLength(2)
      outer = scoped
    }
    // `using` disposed it at the end of the block.
    expect(() => outer!.parameters()).toThrow(/disposed/)
  })

  it('an unknown option is named with the closest valid one', async () => {
    const net = Net.sequential(4, [Net.dense(2)])
    const trainer = new Trainer(net)
    const data = Dataset.fromArrays({ inputs: new Float32Array(8), labels: new Uint8Array([0, 1]), sampleShape: [4], numClasses: 2 })
    await expect(trainer.fit(data, { epoch: 5 } as never)).rejects.toThrow(/`epoch`: is not an option here; did you mean `epochs`\?/)
    await expect(trainer.fit(data, { validationsplit: 0.1 } as never)).rejects.toThrow(/did you mean `validationSplit`/)
    expect(() => new Trainer(net, { optimiser: { type: 'sgd' } } as never)).toThrow(/`optimiser`.*did you mean `optimizer`/)
    expect(() => new Trainer(net, { lrSchedule: 1 } as never)).toThrow(/`lrSchedule`: is not an option here; did you mean `schedule`/)
    await expect(net.save('/tmp/x.safetensors', { metdata: {} } as never)).rejects.toThrow(/did you mean `metadata`/)
    // Trainer.dispose frees the optimizer state; the trainer keeps working from a fresh one.
    await trainer.fit(data, { epochs: 1 })
    trainer.dispose()
    expect((await trainer.fit(data, { epochs: 1 })).epochs).toHaveLength(1)
  })
})
