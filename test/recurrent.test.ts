/**
 * LSTM and GRU through the TypeScript API: small classifiers learn Fashion-MNIST read
 * as 28 steps of 28 pixels (the digits of the `mnist` package where Fashion-MNIST is
 * not installed), a save/load round trip predicts identically, the ONNX export equals
 * net.predict in ONNX Runtime for every `returns` mode and stacked layers, and bad
 * options and shapes are typed errors naming the field.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Net, OptionError, ShapeError, Trainer, mnist, type Dataset, type LayerSpec } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'
const dir = mkdtempSync(join(tmpdir(), 'ferronet-recurrent-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Deterministic values in [lo, hi) (mulberry32). */
function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296)
  }
  return out
}

let train: Dataset
let test: Dataset
beforeAll(async () => {
  if (existsSync(FASHION)) {
    const [tr, te] = await Promise.all([mnist.load(FASHION, 'train'), mnist.load(FASHION, 'test')])
    ;[train, test] = [tr.subset(0, 4000), te.subset(0, 1000)]
  } else {
    ;[train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
    ;[train, test] = [train.subset(0, 4000), test.subset(0, 1000)]
  }
})

const cells: [string, (h: number, o?: { numLayers?: number; bias?: boolean; returns?: 'sequence' | 'last' | 'state' }) => LayerSpec][] = [
  ['LSTM', (h, o) => Net.lstm(h, o)],
  ['GRU', (h, o) => Net.gru(h, o)],
]

interface FixtureTensor { shape: number[]; data: number[] }
interface FixtureCase {
  name: string
  spec: { inputs: { name: string }[]; nodes: { op: string }[] }
  input: FixtureTensor
  extraInputs?: Record<string, FixtureTensor>
  params: Record<string, FixtureTensor>
  output: FixtureTensor
}
const fixture = JSON.parse(readFileSync('test/fixtures/parity/rnn.json', 'utf8')) as { cases: FixtureCase[] }

describe('initial states (graph inputs h0, c0)', () => {
  const cases = fixture.cases.filter((c) => c.extraInputs)
  it('the fixture has cases with initial states for both cells', () => {
    expect(new Set(cases.map((c) => c.spec.nodes[0]!.op))).toEqual(new Set(['LSTM', 'GRU']))
  })
  for (const c of cases) {
    it(`${c.name}: the ONNX export, fed x, h0 (and c0), gives PyTorch's float64 output within 1e-5`, async () => {
      const net = Net.fromSpec(c.spec)
      for (const [name, t] of Object.entries(c.params)) net.setParameter(name, Float32Array.from(t.data))
      const session = await ort.InferenceSession.create(net.toOnnx())
      const feed: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', Float32Array.from(c.input.data), c.input.shape) }
      for (const [name, t] of Object.entries(c.extraInputs!)) feed[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape)
      const out = (await session.run(feed))['0']!
      expect(out.dims).toEqual(c.output.shape)
      const got = out.data as Float32Array
      c.output.data.forEach((want, i) => expect(Math.abs(got[i]! - want), `element ${i}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want))))
    })
  }

  it('the functional API takes [x, h0, c0] (LSTM) and [x, h0] (GRU), checking their shapes', () => {
    const x = Net.input([6, 3], { name: 'x' })
    const h0 = Net.input([2, 5], { name: 'h0' })
    const c0 = Net.input([2, 5], { name: 'c0' })
    const lstm = Net.graph({ inputs: [x, h0, c0], outputs: Net.lstm(5, { numLayers: 2, returns: 'state' }).apply([x, h0, c0]) })
    expect(lstm.outputShape).toEqual([2, 2, 5])
    const gru = Net.graph({ inputs: [x, h0], outputs: Net.gru(5, { numLayers: 2 }).apply([x, h0]) })
    expect(gru.outputShape).toEqual([6, 5])
    expect(() => Net.lstm(5, { numLayers: 2 }).apply([x, h0])).toThrow(/takes 1 or 3 inputs, got 2/)
    expect(() => Net.gru(5).apply([x, h0])).toThrow(/h0.*\[1, 5\].*got \[2, 5\]/)
  })
})

describe.each(cells)('%s', (op, make) => {
  it('learns 28×28 images read row by row (4,000 images, 5 epochs: well above chance), and a save/load round trip predicts identically', async () => {
    expect(train.sampleShape).toEqual([28, 28])
    const net = Net.sequential([28, 28], [make(32, { returns: 'last' }), Net.dense(10)], { seed: 0 })
    expect(net.parameters().map((p) => [p.name, p.shape])).toEqual([
      ['0.weight_ih_l0', [(op === 'LSTM' ? 4 : 3) * 32, 28]],
      ['0.weight_hh_l0', [(op === 'LSTM' ? 4 : 3) * 32, 32]],
      ['0.bias_ih_l0', [(op === 'LSTM' ? 4 : 3) * 32]],
      ['0.bias_hh_l0', [(op === 'LSTM' ? 4 : 3) * 32]],
      ['1.weight', [10, 32]],
      ['1.bias', [10]],
    ])
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 3e-3 }, batchSize: 64, seed: 0 })
    const { epochs } = await trainer.fit(train, { epochs: 5 })
    expect(epochs[4]!.loss).toBeLessThan(epochs[0]!.loss)
    const { accuracy } = await trainer.evaluate(test)
    console.log(`${op}(32) on ${train.size} images, 5 epochs: test accuracy ${accuracy}`)
    expect(accuracy).toBeGreaterThan(0.65) // chance: 0.1
    const file = join(dir, `${op}.safetensors`)
    await net.save(file)
    const loaded = await Net.load(file)
    expect(loaded.spec).toEqual(net.spec)
    expect(loaded.predict(test.subset(0, 100))).toEqual(net.predict(test.subset(0, 100)))
  })

  const onnxCases: [string, () => Net][] = [
    ['sequence, 1 layer', () => Net.sequential([5, 3], [make(4)])],
    ['last, 2 layers, then Linear', () => Net.sequential([6, 3], [make(5, { numLayers: 2, returns: 'last' }), Net.dense(2)])],
    ['state, 2 layers', () => Net.sequential([4, 3], [make(4, { numLayers: 2, returns: 'state' })])],
    ['sequence, 2 layers, no bias', () => Net.sequential([5, 2], [make(3, { numLayers: 2, bias: false })])],
    ['Linear on each step, then the layer', () => Net.sequential([5, 4], [Net.dense(3), make(4, { returns: 'last' })])],
  ]
  for (const [name, build] of onnxCases) {
    it(`ONNX export (${name}) equals net.predict in ONNX Runtime at batch 1 and 3`, async () => {
      const net = build()
      // Weights beyond the default init: the gates saturate somewhere.
      net.parameters().forEach((p, i) => net.setParameter(p.name, uniform(p.data.length, 7 + i, -0.8, 0.8)))
      const session = await ort.InferenceSession.create(net.toOnnx())
      for (const rows of [1, 3]) {
        const x = uniform(rows * net.inputDim, 100 + rows, -2, 2)
        const want = net.predict(x)
        const out = (await session.run({ input: new ort.Tensor('float32', x, [rows, ...net.inputShape]) }))[net.spec.outputs[0]!]!
        expect(out.dims).toEqual([rows, ...net.outputShape])
        const got = out.data as Float32Array
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[i]!)))
      }
    })
  }

  it('output shapes per returns mode, and typed errors naming the field', () => {
    expect(Net.sequential([7, 3], [make(4)]).outputShape).toEqual([7, 4])
    expect(Net.sequential([7, 3], [make(4, { returns: 'last' })]).outputShape).toEqual([4])
    expect(Net.sequential([7, 3], [make(4, { numLayers: 3, returns: 'state' })]).outputShape).toEqual(op === 'LSTM' ? [2, 3, 4] : [3, 4])
    expect(() => make(0)).toThrow(OptionError)
    expect(() => make(0)).toThrow(/hiddenSize/)
    expect(() => make(4, { numLayers: 1.5 })).toThrow(/numLayers/)
    expect(() => make(4, { returns: 'all' as never })).toThrow(/returns.*"sequence", "last" or "state"/)
    expect(() => make(4, { dropout: 0.1 } as never)).toThrow(/dropout/)
    expect(() => Net.sequential(28, [make(4)])).toThrow(ShapeError)
    expect(() => Net.sequential([1, 28, 28], [make(4)])).toThrow(/\[steps, features\]/)
    const spec = (config: unknown) => ({
      format: 'ferronet-graph', version: 1, inputs: [{ name: 'input', shape: [5, 3] }],
      nodes: [{ name: 'rnn', op, inputs: ['input'], config }], outputs: ['rnn'],
    })
    expect(() => Net.fromSpec(spec({ hiddenSize: 4, numLayer: 2 }))).toThrow(/nodes\[rnn\]\.config\.numLayer/)
    expect(() => Net.fromSpec(spec({}))).toThrow(/hiddenSize/)
    expect(Net.fromSpec(spec({ hiddenSize: 4, returns: 'state' })).outputShape).toEqual(op === 'LSTM' ? [2, 1, 4] : [1, 4])
  })
})
