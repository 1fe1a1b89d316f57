/**
 * Faults in the middle of training and saving:
 * - an abort mid-epoch leaves a usable net: a new fit continues, and a saved copy
 *   loaded with Net.load predicts exactly (bit for bit) what the live net predicts;
 * - a checkpoint is complete or absent, never half: read while training rewrites it
 *   every epoch, and with the writing process SIGKILLed in the middle of `trainer.save`.
 * No timing assertions: the kills and reads land wherever they land; every outcome is checked.
 */

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AbortError, Dataset, ModelFileError, Net, Trainer, callbacks, mnist } from '../src/index.js'

const root = new URL('..', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'ferronet-faults-'))
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)
/** A safetensors file's parsed header and its data bytes (throws on a truncated header). */
function safetensors(bytes: Buffer): { header: unknown; data: Buffer } {
  const n = Number(bytes.readBigUInt64LE(0))
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')), data: bytes.subarray(8 + n) }
}
const seedNet = () => Net.sequential(784, [Net.dense(64), Net.relu(), Net.dense(10)], { seed: 0 })

describe('abort mid-epoch, then fit again, save, load, predict', () => {
  it('the AbortError, a usable net, a fit that continues, and Net.load predicting === the live net on real digits', async () => {
    const digits = await mnist.loadDigits()
    const [train, test] = digits.split(8000, { shuffle: false })
    const net = seedNet()
    const trainer = new Trainer(net, { batchSize: 64 })
    const before = net.predict(test)
    const controller = new AbortController()
    const batchesSeen: number[] = []
    const aborted = await trainer.fit(train, {
      epochs: 3,
      progressEvery: 5,
      signal: controller.signal,
      onProgress: (p) => {
        batchesSeen.push(p.batch)
        if (batchesSeen.length === 4) controller.abort() // after 20 of the 125 batches of epoch 1
      },
    }).then(() => undefined, (error: unknown) => error)
    expect(aborted).toBeInstanceOf(AbortError)
    const abort = aborted as AbortError
    expect(abort.code).toBe('ABORT_ERR')
    // Stopped mid-epoch: after the 20th batch (at most one more), well before the end of epoch 1.
    expect(abort.stepsDone).toBeGreaterThanOrEqual(20)
    expect(abort.stepsDone).toBeLessThan(125)
    expect(trainer.epochsDone).toBe(0)

    // The net is usable and was trained by the finished steps.
    const afterAbort = net.predict(test)
    expect(afterAbort.every(Number.isFinite)).toBe(true)
    expect(bits(afterAbort).equals(bits(before))).toBe(false)

    // A new fit on the same trainer runs to the end and improves on the aborted net.
    const { accuracy: accAbort } = await trainer.evaluate(test)
    const result = await trainer.fit(train, { epochs: 2 })
    expect(result.epochs).toHaveLength(2)
    expect(result.epochs.every((e) => Number.isFinite(e.loss))).toBe(true)
    expect(trainer.epochsDone).toBe(2)
    const { accuracy } = await trainer.evaluate(test)
    expect(accuracy).toBeGreaterThan(0.85)
    expect(accuracy).toBeGreaterThanOrEqual(accAbort)

    // Save and load: identical predictions, bit for bit, on 2000 real digits.
    const file = join(dir, 'after-abort.safetensors')
    await net.save(file)
    const loaded = await Net.load(file)
    const live = net.predict(test)
    const copy = loaded.predict(test)
    expect(copy.length).toBe(2000 * 10)
    for (let i = 0; i < live.length; i++) if (copy[i] !== live[i]) expect.fail(`output ${i}: loaded ${copy[i]} !== live ${live[i]}`)
    expect(loaded.predictClasses(test)).toEqual(net.predictClasses(test))

    // And a checkpoint of the trainer resumes to the same net.
    const ckpt = join(dir, 'after-abort.ckpt.safetensors')
    await trainer.save(ckpt)
    const resumed = await Trainer.resume(ckpt)
    expect(bits(resumed.net.predict(test)).equals(bits(live))).toBe(true)
    expect(resumed.epochsDone).toBe(2)
  })
})

describe('a checkpoint written during training is complete or absent, never half', () => {
  it('read in a loop (Trainer.resume and Net.load) while callbacks.checkpoint rewrites it every epoch', async () => {
    const digits = await mnist.loadDigits()
    const train = digits.subset(0, 3000)
    const probe = digits.subset(9000, 9100)
    const path = join(dir, 'live.ckpt.safetensors')
    rmSync(path, { force: true })
    const net = Net.sequential(784, [Net.dense(256), Net.relu(), Net.dense(10)], { seed: 3 })
    const trainer = new Trainer(net, { batchSize: 32 })
    // What the net predicts at the end of each epoch, right after its checkpoint is written.
    const byEpoch = new Map<number, Buffer>()
    const recorder = { onEpochEnd: (info: { epoch: number }) => { byEpoch.set(info.epoch, Buffer.from(bits(net.predict(probe)))) } }

    const reads: { kind: 'absent' | 'ok'; epoch?: number; outputs?: Buffer; via: string }[] = []
    const failures: string[] = []
    let reading = true
    let useResume = true
    const readLoop = (async () => {
      while (reading) {
        const via = useResume ? 'Trainer.resume' : 'Net.load'
        useResume = !useResume
        try {
          if (via === 'Trainer.resume') {
            const t = await Trainer.resume(path)
            reads.push({ kind: 'ok', epoch: t.epochsDone, outputs: Buffer.from(bits(t.net.predict(probe))), via })
          } else {
            const n = await Net.load(path)
            reads.push({ kind: 'ok', outputs: Buffer.from(bits(n.predict(probe))), via })
          }
        } catch (error) {
          // Absent: only before the first checkpoint exists (the file may appear between the
          // failed open and this check, so the error's own reason is what counts).
          if (error instanceof ModelFileError && /No such file/.test(error.message) && reads.every((r) => r.kind === 'absent')) reads.push({ kind: 'absent', via })
          else failures.push(`${via}: ${(error as Error).constructor.name}: ${(error as Error).message}`)
        }
        await new Promise((r) => setImmediate(r))
      }
    })()
    const epochs = 6
    await trainer.fit(train, { epochs, callbacks: [callbacks.checkpoint({ path }), recorder] })
    reading = false
    await readLoop

    expect(failures, failures.join("\n")).toEqual([])
    const ok = reads.filter((r) => r.kind === 'ok')
    // The reads overlapped the writes: they saw several different checkpoints.
    expect(ok.length).toBeGreaterThanOrEqual(3)
    const snapshots = [...byEpoch.values()]
    for (const r of ok) {
      // Every read is exactly one epoch's checkpoint: its outputs are that epoch's, and a resumed trainer's epoch count matches them.
      const match = snapshots.findIndex((s) => s.equals(r.outputs!))
      if (match < 0) expect.fail(`${r.via} read a checkpoint that matches no epoch's weights`)
      if (r.epoch !== undefined) expect(byEpoch.get(r.epoch)!.equals(r.outputs!)).toBe(true)
    }
    const epochsSeen = new Set(ok.map((r) => r.epoch).filter((e) => e !== undefined))
    expect(epochsSeen.size).toBeGreaterThan(1)
    // The last checkpoint is the final net.
    expect((await Net.load(path)).predict(probe)).toEqual(net.predict(probe))
  })

  it('SIGKILL in the middle of trainer.save of a large model, many times: the file is the previous complete checkpoint or absent', async () => {
    const target = join(dir, 'killed.ckpt.safetensors')
    const reference = join(dir, 'reference.ckpt.safetensors')
    // A ~1.9M-parameter net with Adam state after one step: a checkpoint of ~23 MB.
    const script = `
      import { Net, Trainer } from './dist/index.js'
      const [mode, path] = process.argv.slice(1)
      const net = Net.sequential(784, [Net.dense(512), Net.relu(), Net.dense(512), Net.relu(), Net.dense(10)], { seed: 7 })
      const trainer = new Trainer(net, { batchSize: 8, threads: 2 })
      const x = new Float32Array(8 * 784).map((_, i) => (i % 97) / 97)
      trainer.trainBatch(x, [0, 1, 2, 3, 4, 5, 6, 7])
      if (mode === 'once') { await trainer.save(path); process.exit(0) }
      process.stdout.write('ready\\n')
      for (;;) { process.stdout.write('saving\\n'); await trainer.save(path); process.stdout.write('saved\\n') }
    `
    const run = (mode: string, path: string, onLine?: (line: string, count: number, kill: () => void) => void) =>
      new Promise<{ lastLine: string; sawSaved: boolean; signal: NodeJS.Signals | null; code: number | null }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, mode, path], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
        let lastLine = ''
        let sawSaved = false
        const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
        let count = 0
        let buffered = ''
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString()
          const lines = buffered.split('\n')
          buffered = lines.pop()!
          for (const line of lines) {
            lastLine = line
            if (line === 'saving') count++
            if (line === 'saved') sawSaved = true
            onLine?.(line, count, kill)
          }
        })
        child.on('error', reject)
        child.on('exit', (code, signal) => resolve({ lastLine, sawSaved, signal, code }))
      })
    expect((await run('once', reference)).code).toBe(0)
    const complete = readFileSync(reference)
    expect(complete.length).toBeGreaterThan(5e6)

    // Rounds of kill-during-save (each a child process that builds, steps and saves an 8 MB checkpoint).
    const ROUNDS = 6
    let inFlight = 0
    const outcomes: string[] = []
    for (let i = 0; i < ROUNDS; i++) {
      // Every fourth round starts without a file (the first save is the one killed or not).
      if (i % 4 === 0) rmSync(target, { force: true })
      const hadFile = existsSync(target)
      // Kill at the start of the 1st or 2nd save, after 0..~40 ms (varied, not asserted).
      const delay = (i * 7) % 41
      const r = await run('loop', target, (line, count, kill) => {
        if (line === 'saving' && count === 1 + (i % 2)) {
          if (delay === 0) kill()
          else setTimeout(kill, delay)
        }
      })
      expect(r.signal).toBe('SIGKILL')
      if (r.lastLine === 'saving') inFlight++
      if (!existsSync(target)) {
        // Absent only if no save had completed (and no file was there before).
        expect(hadFile).toBe(false)
        expect(r.sawSaved).toBe(false)
        outcomes.push('absent')
        continue
      }
      const bytes = readFileSync(target)
      // Same tensors bit for bit and the same header (its JSON keys come in no fixed order, so compared parsed).
      const [got, want] = [safetensors(bytes), safetensors(complete)]
      if (bytes.length !== complete.length || !got.data.equals(want.data)) expect.fail(`round ${i}: the checkpoint is ${bytes.length} bytes and its data differs from the complete one (${complete.length} bytes)`)
      expect(got.header).toEqual(want.header)
      const resumed = await Trainer.resume(target)
      expect(resumed.net.parameterCount).toBeGreaterThan(0.6e6)
      outcomes.push('complete')
    }
    // Kills landed inside a save (the last line the child wrote was "saving"), so the test tested something.
    expect(inFlight).toBeGreaterThan(0)
    expect(outcomes).toContain('complete')
    console.log(`SIGKILL rounds: ${outcomes.join(', ')}; ${inFlight}/${ROUNDS} killed with a save in flight`)
  }, 400_000)
})

void Dataset
