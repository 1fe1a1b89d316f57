/**
 * A VAE end to end (PyTorch's examples/vae, smaller): Reparameterize + KLDivergence,
 * a loss of two terms (BCE summed per sample on the reconstruction of the inputs, and
 * the KL node's value), trained in one fit on Fashion-MNIST; every term reported; the
 * model saved and loaded; the decoder cut out with subnet and exported to ONNX.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { Dataset, Net, OptionError, ShapeError, Trainer, mnist, randomNormal, type LossTerm } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'
const dir = mkdtempSync(join(tmpdir(), 'ferronet-vae-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** 784 → hidden → (mean, logvar) [latent] → z → hidden → 784 → Sigmoid; outputs [recon, kl]. */
function vae(hidden: number, latent: number, options: { sampleInEval?: boolean; seed?: number } = {}): Net {
  const x = Net.input(784)
  const h = Net.relu().apply(Net.dense(hidden).apply(x, { name: 'fc1' }))
  const mu = Net.dense(latent).apply(h, { name: 'fc21' })
  const logvar = Net.dense(latent).apply(h, { name: 'fc22' })
  const z = Net.reparameterize({ sampleInEval: options.sampleInEval }).apply([mu, logvar], { name: 'z' })
  const kl = Net.klDivergence().apply([mu, logvar], { name: 'kl' })
  const h3 = Net.relu().apply(Net.dense(hidden).apply(z, { name: 'fc3' }))
  const recon = Net.sigmoid().apply(Net.dense(784).apply(h3, { name: 'fc4' }), { name: 'recon' })
  return Net.graph({ inputs: x, outputs: [recon, kl] }, { seed: options.seed ?? 0 })
}

const LOSS: LossTerm[] = [
  { output: 'recon', loss: 'bce', reduction: 'sum' },
  { output: 'kl', loss: 'value', reduction: 'sum' },
]

function maxRelErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length)
  let e = 0
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)))
  return e
}

describe('VAE', () => {
  it('builders, shapes and the spec', () => {
    const net = vae(16, 3)
    expect(net.spec.outputs).toEqual(['recon', 'kl'])
    expect(net.shapeOf('z')).toEqual([3])
    expect(net.shapeOf('kl')).toEqual([1])
    expect(net.spec.nodes.find((n) => n.name === 'z')).toMatchObject({ op: 'Reparameterize', inputs: ['fc21', 'fc22'] })
    expect(vae(16, 3, { sampleInEval: true }).spec.nodes.find((n) => n.name === 'z')!.config).toEqual({ sampleInEval: true })
    const x = Net.input(4)
    const a = Net.dense(3).apply(x)
    expect(() => Net.klDivergence().apply([a, x])).toThrow(ShapeError)
    expect(() => Net.reparameterize().apply(a)).toThrow(/takes 2 inputs/)
    expect(() => Net.sequential(4, [Net.klDivergence()])).toThrow(/two inputs/)
    expect(() => Net.reparameterize({ sample: true } as never)).toThrow(OptionError)
  })

  it('loss terms are checked, naming the term', () => {
    const net = vae(8, 2)
    expect(() => new Trainer(net, { loss: [{ output: 'nope', loss: 'bce' }] })).toThrow(/loss\[0\]\.output/)
    expect(() => new Trainer(net, { loss: [{ output: 'recon', loss: 'bce' }, { output: 'recon', loss: 'mse' }] })).toThrow(/loss\[1\]\.name/)
    expect(() => new Trainer(net, { loss: [{ output: 'recon', loss: 'bce', reduction: 'all' as never }] })).toThrow(/loss\[0\]\.reduction/)
    expect(() => new Trainer(net, { loss: [{ output: 'kl', loss: 'value', weight: Number.NaN }] })).toThrow(/loss\[0\]\.weight/)
    expect(() => new Trainer(net, { loss: [] })).toThrow(OptionError)
    const t = new Trainer(net, { loss: LOSS })
    expect(t.loss).toBeUndefined()
    expect(t.lossTerms!.map((x) => x.name)).toEqual(['recon', 'kl'])
  })

  it('the decoder subnet has the trained weights: decoder(mean) = the VAE\'s eval output', () => {
    const net = vae(16, 3)
    const x = new Float32Array(5 * 784).map((_, i) => (i % 13) / 13)
    const encoder = net.subnet({ from: 'input', to: 'fc21' })
    const decoder = net.subnet({ from: 'z', to: 'recon' })
    expect(decoder.inputShape).toEqual([3])
    expect(decoder.spec.inputs).toEqual([{ name: 'z', shape: [3] }])
    expect(decoder.parameters().map((p) => p.name)).toEqual(['fc3.weight', 'fc3.bias', 'fc4.weight', 'fc4.bias'])
    // Eval mode: z = mean, so the VAE's reconstruction is decoder(encoder(x)).
    expect(maxRelErr(decoder.predict(encoder.predict(x)), net.predict(x))).toBeLessThan(1e-6)
    expect(() => net.subnet({ from: 'fc21', to: 'recon' })).toThrow(/fc22/)
    expect(() => net.subnet({ from: 'zz', to: 'recon' })).toThrow(OptionError)
  })

  it('a checkpoint of a trainer with loss terms resumes with them, exactly', async () => {
    const data = Dataset.fromArrays({ inputs: new Float32Array(96 * 784).map((_, i) => ((i * 7) % 23) / 23), labels: new Uint8Array(96) }).withInputsAsTargets()
    const a = new Trainer(vae(16, 3), { loss: LOSS, batchSize: 32, seed: 2 })
    await a.fit(data, { epochs: 1 })
    const path = join(dir, 'vae-checkpoint.safetensors')
    await a.save(path)
    const b = await Trainer.resume(path)
    expect(b.lossTerms).toEqual(a.lossTerms)
    const [ea, eb] = [await a.fit(data, { epochs: 1 }), await b.fit(data, { epochs: 1 })]
    expect(eb.epochs[0]!.terms).toEqual(ea.epochs[0]!.terms)
    expect(b.net.parameters().map((p) => p.data)).toEqual(a.net.parameters().map((p) => p.data))
  })

  it('randomNormal is seeded and standard normal', () => {
    const a = randomNormal(20001, { seed: 3 })
    expect(a).toEqual(randomNormal(20001, { seed: 3 }))
    expect(a).not.toEqual(randomNormal(20001, { seed: 4 }))
    const mean = a.reduce((s, v) => s + v, 0) / a.length
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length
    expect(Math.abs(mean)).toBeLessThan(0.03)
    expect(Math.abs(variance - 1)).toBeLessThan(0.05)
  })

  it('a dataset whose targets are its inputs trains a plain autoencoder with one loss', async () => {
    const inputs = new Float32Array(64 * 6).map((_, i) => ((i * 7) % 11) / 11)
    const data = Dataset.fromArrays({ inputs, labels: new Uint8Array(64) }).withInputsAsTargets()
    expect(data.targetsAreInputs).toBe(true)
    expect(data.subset(0, 10).targetsAreInputs).toBe(true)
    const net = Net.sequential(6, [Net.dense(4), Net.tanh(), Net.dense(6), Net.sigmoid()], { seed: 1 })
    const t = new Trainer(net, { loss: { type: 'bce' }, batchSize: 16 })
    const before = (await t.evaluate(data)).loss
    await t.fit(data, { epochs: 30 })
    expect((await t.evaluate(data)).loss).toBeLessThan(before)
    const wide = Net.sequential(6, [Net.dense(5)], { seed: 1 })
    await expect(new Trainer(wide, { loss: { type: 'mse' } }).fit(data)).rejects.toThrow(ShapeError)
  })

  it.skipIf(!existsSync(FASHION))('trains on 3000 Fashion-MNIST images: test loss per sample falls clearly, each term reported', async () => {
    const [train, test] = await Promise.all([mnist.load(FASHION, 'train'), mnist.load(FASHION, 'test')])
    const trainData = train.subset(0, 3000).withInputsAsTargets()
    const testData = test.subset(0, 1000).withInputsAsTargets()
    const net = vae(200, 10, { sampleInEval: true })
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, loss: LOSS, batchSize: 128 })
    const before = await trainer.evaluate(testData)
    // An untrained decoder outputs ≈ 0.5 everywhere: BCE ≈ 784·ln 2 ≈ 543 per image.
    expect(before.loss).toBeGreaterThan(450)
    const reports: Record<string, number>[] = []
    const log = join(dir, 'metrics.jsonl')
    const fit = await trainer.fit(trainData, { epochs: 3, progressEvery: 10, onProgress: (p) => reports.push(p.terms!), log })
    const after = await trainer.evaluate(testData)
    console.log(`VAE on 3000 Fashion-MNIST images, 3 epochs: test loss per sample ${before.loss.toFixed(1)} → ${after.loss.toFixed(1)} (recon ${after.terms!.recon!.toFixed(1)}, kl ${after.terms!.kl!.toFixed(1)})`)
    expect(after.loss).toBeLessThan(0.62 * before.loss)
    expect(Object.keys(after.terms!)).toEqual(['recon', 'kl'])
    expect(after.terms!.recon! + after.terms!.kl!).toBeCloseTo(after.loss, 6)
    expect(after.terms!.kl!).toBeGreaterThan(1)
    for (const e of fit.epochs) {
      expect(e.terms!.recon! + e.terms!.kl!).toBeCloseTo(e.loss, 6)
      expect(e.accuracy).toBeUndefined()
    }
    expect(fit.epochs[2]!.loss).toBeLessThan(fit.epochs[0]!.loss)
    expect(reports.length).toBeGreaterThanOrEqual(6)
    expect(reports.every((r) => r.recon! > 0 && r.kl! >= 0)).toBe(true)
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    const epochs = lines.filter((l) => l.kind === 'epoch')
    expect(epochs).toHaveLength(3)
    expect(Object.keys(epochs[0]!.terms as object)).toEqual(['recon', 'kl'])
    expect((lines[0]!.options as { loss: unknown[] }).loss).toHaveLength(2)

    // Save and load: the same tensors, and the same encoding and decoding (this net
    // samples in eval mode, with ε from its step count: compare the deterministic parts).
    const path = join(dir, 'vae.safetensors')
    await net.save(path)
    const loaded = await Net.load(path)
    expect(loaded.spec).toEqual(net.spec)
    expect(loaded.parameters().map((p) => [p.name, p.data])).toEqual(net.parameters().map((p) => [p.name, p.data]))
    const x = new Float32Array(test.inputs.subarray(0, 8 * 784)).map((v) => v / 255)
    const meanOf = (n: Net) => n.subnet({ from: 'input', to: 'fc21' }).predict(x)
    expect(meanOf(loaded)).toEqual(meanOf(net))
    expect(loaded.subnet({ from: 'input', to: 'kl' }).predict(x)).toEqual(net.subnet({ from: 'input', to: 'kl' }).predict(x))
    expect(loaded.subnet({ from: 'z', to: 'recon' }).predict(meanOf(net))).toEqual(net.subnet({ from: 'z', to: 'recon' }).predict(meanOf(net)))

    // The decoder to ONNX: onnxruntime gives decoder.predict's images.
    const decoder = loaded.subnet({ from: 'z', to: 'recon' })
    const z = randomNormal(16 * 10, { seed: 5 })
    const session = await ort.InferenceSession.create(decoder.toOnnx())
    const out = await session.run({ z: new ort.Tensor('float32', z, [16, 10]) })
    expect(maxRelErr(out.recon!.data as Float32Array, decoder.predict(z))).toBeLessThan(1e-5)
  }, 120_000)

  it('ONNX: Reparameterize is the mean at inference (or samples), KLDivergence its formula', async () => {
    const net = vae(16, 3)
    const x = new Float32Array(6 * 784).map((_, i) => ((i * 31) % 17) / 17)
    const session = await ort.InferenceSession.create(net.toOnnx())
    const out = await session.run({ input: new ort.Tensor('float32', x, [6, 784]) })
    expect(maxRelErr(out.recon!.data as Float32Array, net.predict(x))).toBeLessThan(1e-5)
    const kl = net.subnet({ from: 'input', to: 'kl' })
    expect(out.kl!.dims).toEqual([6, 1])
    expect(maxRelErr(out.kl!.data as Float32Array, kl.predict(x))).toBeLessThan(1e-5)
    // Sampling in eval mode: RandomNormalLike, so only shapes and finiteness compare.
    const sampling = vae(16, 3, { sampleInEval: true })
    const s = await ort.InferenceSession.create(sampling.toOnnx())
    const r = await s.run({ input: new ort.Tensor('float32', x, [6, 784]) })
    expect(r.recon!.dims).toEqual([6, 784])
    expect([...(r.recon!.data as Float32Array)].every(Number.isFinite)).toBe(true)
    expect(maxRelErr(r.recon!.data as Float32Array, sampling.predict(x))).toBeGreaterThan(1e-4)
  })
})
