/**
 * Model files and checkpoints through the TypeScript API: PyTorch reads our files
 * and we read PyTorch's (fixtures made by scripts/make_model_file_fixtures.py),
 * round trips, hostile files, atomic saves, and resumed training bit for bit.
 */

import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'

import { mnist, ModelFileError, Net, OptionError, Trainer, type Dataset } from '../src/index.js'
import { native } from '../src/native.js'

const FIXTURES = new URL('./fixtures/model-files/', import.meta.url).pathname
const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as {
  models: Record<'mlp' | 'cnn', { fromFerronetFile: number[]; fromTorchFile: number[]; stateDictKeys: string[] }>
}
const inputs = new Float32Array((JSON.parse(await readFile(join(FIXTURES, 'inputs.json'), 'utf8')) as { data: number[] }).data)

// The same architectures as scripts/make_model_files.mjs and the Python script's nn.Sequential.
const ARCHITECTURES = {
  mlp: () => Net.sequential(784, [Net.dense(32), Net.batchNorm1d(), Net.relu(), Net.dropout(0.2), Net.dense(10)], { seed: 1 }),
  cnn: () => Net.sequential([1, 28, 28], [Net.conv2d(4, 3), Net.batchNorm2d(), Net.relu(), Net.maxPool2d(2), Net.flatten(), Net.dense(10)], { seed: 1 }),
}

function expectClose(actual: Float32Array, reference: number[], tolerance = 1e-5): void {
  expect(actual.length).toBe(reference.length)
  let worst = 0
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - reference[i]!) / Math.max(1, Math.abs(reference[i]!)))
  expect(worst).toBeLessThan(tolerance)
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ferronet-files-'))
}

async function rejection(p: Promise<unknown>): Promise<ModelFileError> {
  const error = await p.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ModelFileError)
  return error as ModelFileError
}

describe('files PyTorch reads and writes', () => {
  for (const name of ['mlp', 'cnn'] as const) {
    it(`${name}: a file ferronet saved gives PyTorch's outputs for it (load_state_dict strict)`, async () => {
      const net = await Net.load(join(FIXTURES, `ferronet-${name}.safetensors`))
      expectClose(net.predict(inputs), expected.models[name].fromFerronetFile)
      expect(net.metadata).toEqual({ note: 'fixture: see scripts/make_model_files.mjs' })
      // What we write today has PyTorch's state_dict names, in its order.
      expect(net.parameters().map((p) => p.name)).toEqual(expected.models[name].stateDictKeys)
    })

    it(`${name}: a state_dict PyTorch saved loads into the same architecture and predicts the same`, async () => {
      const net = ARCHITECTURES[name]()
      const before = net.predict(inputs)
      await net.loadWeights(join(FIXTURES, `torch-${name}.safetensors`))
      expectClose(net.predict(inputs), expected.models[name].fromTorchFile)
      expect(net.predict(inputs)).not.toEqual(before)
      const counter = net.parameters().find((p) => p.name === '1.num_batches_tracked')!
      expect(Array.from(counter.data)).toEqual([30])
      // Without a spec in its header, the file alone cannot say what it holds.
      const error = await rejection(Net.load(join(FIXTURES, `torch-${name}.safetensors`)))
      expect(error.message).toMatch(/has no `ferronet.spec`.*loadWeights/)
    })
  }

  it('a state_dict of another architecture is refused, naming the tensor, and the net is unchanged', async () => {
    const net = Net.sequential(784, [Net.dense(16), Net.batchNorm1d(), Net.relu(), Net.dropout(0.2), Net.dense(10)])
    const before = net.parameters()
    const error = await rejection(net.loadWeights(join(FIXTURES, 'torch-mlp.safetensors')))
    expect(error.message).toContain('tensor `0.weight` has shape [32, 784] but the model\'s is [16, 784]')
    expect(error.path).toBe(join(FIXTURES, 'torch-mlp.safetensors'))
    expect(net.parameters()).toEqual(before)
    const cnn = ARCHITECTURES.cnn()
    const unexpected = await rejection(cnn.loadWeights(join(FIXTURES, 'torch-mlp.safetensors')))
    expect(unexpected.message).toMatch(/shape|lacks/)
  })
})

describe('saving and loading', () => {
  let digits: Dataset
  beforeAll(async () => {
    digits = (await mnist.loadDigits()).subset(0, 1500)
  })

  it('a trained net round-trips: same tensors, predictions, spec and metadata', async () => {
    const net = ARCHITECTURES.cnn()
    await new Trainer(net, { batchSize: 50, threads: 1 }).fit(digits, { epochs: 1 })
    const dir = await tempDir()
    const path = join(dir, 'm.safetensors')
    await net.save(path, { metadata: { classNames: JSON.stringify([...'0123456789']) } })
    const back = await Net.load(path)
    expect(back.parameters()).toEqual(net.parameters())
    expect(back.predict(digits)).toEqual(net.predict(digits))
    expect(back.spec).toEqual(net.spec)
    expect(back.inputShape).toEqual([1, 28, 28])
    expect(back.metadata).toEqual({ classNames: JSON.stringify([...'0123456789']) })
    expect(net.metadata).toEqual({})
    // The loaded net trains on like the original.
    const t = new Trainer(back, { threads: 1 })
    expect((await t.fit(digits.subset(0, 200), { epochs: 1 })).epochs[0]!.loss).toBeGreaterThan(0)
    expect(await readdir(dir)).toEqual(['m.safetensors'])
  })

  it('bad arguments are named', async () => {
    const net = ARCHITECTURES.mlp()
    await expect(net.save('')).rejects.toThrow(OptionError)
    await expect(net.save(42 as never)).rejects.toThrow(/`path`/)
    await expect(net.save('/tmp/x.safetensors', { metadata: { a: 1 as never } })).rejects.toThrow(/`metadata.a`/)
    await expect(net.save('/tmp/x.safetensors', { metadata: { 'ferronet.spec': 'x' } })).rejects.toThrow(/reserved/)
    await expect(net.save('/tmp/x.safetensors', { meta: {} } as never)).rejects.toThrow(/`save.meta`/)
    await expect(Net.load(undefined as never)).rejects.toThrow(OptionError)
    await expect(net.loadWeights('/tmp/x', { strict: 'yes' as never })).rejects.toThrow(/`strict`/)
  })

  it('a save that fails midway leaves the previous file intact and no temporary file', async () => {
    const dir = await tempDir()
    const path = join(dir, 'm.safetensors')
    const first = ARCHITECTURES.mlp()
    await first.save(path)
    const old = await readFile(path)
    native.__debugFailNextSave(path, 4096)
    const error = await rejection(ARCHITECTURES.cnn().save(path))
    expect(error.message).toMatch(/simulated write failure after 4096 bytes.*previous file.*unchanged/)
    expect(error.path).toBe(path)
    expect(await readFile(path)).toEqual(old)
    expect(await readdir(dir)).toEqual(['m.safetensors'])
    // A path that is a folder, or inside a missing one.
    await rejection(first.save(dir))
    await rejection(first.save(join(dir, 'no', 'such', 'm.safetensors')))
    expect((await Net.load(path)).predict(inputs)).toEqual(first.predict(inputs))
  })

  it('hostile, truncated and foreign files are ModelFileErrors naming the file, never a crash', async () => {
    const dir = await tempDir()
    const good = join(dir, 'good.safetensors')
    await ARCHITECTURES.mlp().save(good)
    const bytes = await readFile(good)
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(0), /too short/],
      ['huge-header', new Uint8Array(new BigUint64Array([2n ** 62n]).buffer), /over the format's/],
      ['truncated', bytes.subarray(0, bytes.length - 100), /truncated/],
      ['header-only', bytes.subarray(0, 200), /truncated/],
      ['text', new TextEncoder().encode('this is not a model, just some text that is long enough'), /over the format's|truncated/],
      ['png', await readFile(new URL('../node_modules/sharp/package.json', import.meta.url)), /over the format's|truncated|not/],
    ]
    for (const [name, content, pattern] of cases) {
      const path = join(dir, `${name}.safetensors`)
      await writeFile(path, content)
      const error = await rejection(Net.load(path))
      expect(error.message).toMatch(pattern)
      expect(error.message.startsWith(path)).toBe(true)
      expect(error.path).toBe(path)
    }
    await rejection(Net.load(join(dir, 'missing.safetensors')))
    // A ferronet file whose spec was tampered with.
    const tampered = Buffer.from(bytes)
    // The spec is a JSON string inside the JSON header: its quotes are escaped.
    const at = tampered.indexOf('\\"op\\":\\"Linear\\"')
    expect(at).toBeGreaterThan(0)
    tampered.write('\\"op\\":\\"Lineax\\"', at)
    await writeFile(join(dir, 'tampered.safetensors'), tampered)
    expect((await rejection(Net.load(join(dir, 'tampered.safetensors')))).message).toMatch(/spec that does not compile.*Lineax/)
  })
})

describe('checkpoints', () => {
  let digits: Dataset
  beforeAll(async () => {
    digits = (await mnist.loadDigits()).subset(0, 1200)
  })

  const options = {
    optimizer: { type: 'adamw', lr: 2e-3, weightDecay: 0.05 },
    schedule: { type: 'cosine', totalSteps: 100, warmupSteps: 5 },
    batchSize: 64,
    clipNorm: 5,
    threads: 1,
    seed: 11,
  } as const

  function params(net: Net): Float32Array[] {
    return net.parameters().map((p) => p.data)
  }

  it('a resumed run continues bit for bit: same losses and weights as an uninterrupted one', async () => {
    const straight = ARCHITECTURES.mlp()
    const a = await new Trainer(straight, options).fit(digits, { epochs: 4 })

    const net = ARCHITECTURES.mlp()
    const first = new Trainer(net, options)
    const b1 = await first.fit(digits, { epochs: 2 })
    const dir = await tempDir()
    const path = join(dir, 'run.ckpt.safetensors')
    await first.save(path)
    // A new trainer and net, as another process would make them.
    const resumed = await Trainer.resume(path)
    expect(resumed.batchSize).toBe(64)
    expect(resumed.optimizer).toEqual(options.optimizer)
    const b2 = await resumed.fit(digits, { epochs: 2 })
    const losses = [...b1.epochs, ...b2.epochs].map((e) => e.loss)
    expect(losses).toEqual(a.epochs.map((e) => e.loss))
    expect(b2.epochs.map((e) => e.epoch)).toEqual([3, 4])
    expect(params(resumed.net)).toEqual(params(straight))

    // Resuming into a net given by the caller copies the weights into it.
    const target = ARCHITECTURES.mlp()
    const intoTarget = await Trainer.resume(path, target)
    expect(intoTarget.net).toBe(target)
    await intoTarget.fit(digits, { epochs: 2 })
    expect(params(target)).toEqual(params(straight))
    // The checkpoint is a model file too.
    expect((await Net.load(path)).parameters().length).toBe(straight.parameters().length)
  })

  it('a model file is not a checkpoint; another architecture is refused', async () => {
    const dir = await tempDir()
    const model = join(dir, 'm.safetensors')
    await ARCHITECTURES.mlp().save(model)
    expect((await rejection(Trainer.resume(model))).message).toMatch(/is a model file, not a checkpoint/)
    const ck = join(dir, 'ck.safetensors')
    await new Trainer(ARCHITECTURES.mlp(), options).save(ck)
    expect((await rejection(Trainer.resume(ck, ARCHITECTURES.cnn()))).message).toMatch(/another architecture/)
    await expect(Trainer.resume(ck, {} as never)).rejects.toThrow(/`net`/)
    await copyFile(ck, join(dir, 'copy.safetensors'))
    expect((await Trainer.resume(join(dir, 'copy.safetensors'))).schedule).toEqual(options.schedule)
  })
})
