/**
 * MultiHeadAttention from TypeScript: the builder and its errors, learning on real
 * data, save/load, and ONNX export through onnxruntime-node. (Gradient checks and
 * PyTorch parity are in the Rust core: ops/attention.rs and tests/parity_attn.rs.)
 *
 * The learning task: digits (the mnist package's 10,000 real images) read as sequences
 * of 28 rows of 28 pixels. The attention net, h = Linear(28→32) per row, h + attention(h)
 * (a transformer's residual), Flatten → Linear(10), is compared with the same net
 * without the attention branch, a linear classifier: the only non-linearity, and the
 * only mixing of rows before the classifier, is the attention's, so beating the
 * baseline is attention at work (measured 0.933 against 0.910; a per-row MLP in place
 * of the attention does as well on digits, 0.926, since row content alone says a lot).
 *
 * A task that needs attention: key-value lookup. Seven steps each hold a key (one of 8,
 * distinct) and a value (one of 10), the last step a query key; the class is the value
 * stored under the query. The answer is a product of features of two steps chosen by
 * content, which nothing position-wise before a linear readout can form: the same net
 * with a per-step MLP instead of the attention stays near chance (0.30), attention
 * solves it (1.0 on held-out sequences).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Dataset, Net, OptionError, ShapeError, SymbolicTensor, Trainer, mnist } from '../src/index.js'
import { toOnnx } from '../src/onnx.js'
import { layerTable } from '../src/report/analysis.js'

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

/** Every tensor of `net` set to deterministic values in [-1, 1) (the biases are 0 at init). */
function randomize(net: Net, seed = 7): Net {
  net.parameters().forEach((p, i) => net.setParameter(p.name, uniform(p.data.length, seed + i)))
  return net
}

/** Largest |got − want| / max(1, |want|). */
function worst(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!))
    if (!(e <= err)) err = e
  }
  return err
}

/** ONNX Runtime's output 0 for `x` (rows × inputDim) against net.predict, at opset `opset`. */
async function onnxError(net: Net, x: Float32Array, opset = 17): Promise<number> {
  const s = await ort.InferenceSession.create(toOnnx(net, { opset }))
  const rows = x.length / net.inputDim
  const out = await s.run({ [net.spec.inputs[0]!.name]: new ort.Tensor('float32', x, [rows, ...net.inputShape]) })
  const got = out[net.spec.outputs[0]!]!
  expect(got.dims).toEqual([rows, ...net.outputShape])
  return worst(got.data as Float32Array, net.predict(x))
}

const LOOKUP_STEPS = 8, LOOKUP_KEYS = 8, LOOKUP_VALUES = 10, LOOKUP_FEATURES = LOOKUP_KEYS + LOOKUP_VALUES + 1

/**
 * `n` lookup sequences [8 steps, 19 features]: steps 0..6 a distinct key (one-hot of 8)
 * and a value (one-hot of 10), step 7 a query key and a query flag; the label is the
 * value stored under the query.
 */
function lookupTask(n: number, seed: number): Dataset {
  const r = uniform(n * 16, seed, 0, 1)
  let k = 0
  const [T, K, F] = [LOOKUP_STEPS, LOOKUP_KEYS, LOOKUP_FEATURES]
  const x = new Float32Array(n * T * F), y = new Uint8Array(n)
  for (let s = 0; s < n; s++) {
    const keys = [...Array(K).keys()]
    for (let i = K - 1; i > 0; i--) {
      const j = Math.floor(r[k++]! * (i + 1))
      ;[keys[i], keys[j]] = [keys[j]!, keys[i]!]
    }
    const values = keys.map(() => Math.floor(r[k++]! * LOOKUP_VALUES))
    for (let t = 0; t < T - 1; t++) {
      x[(s * T + t) * F + keys[t]!] = 1
      x[(s * T + t) * F + K + values[t]!] = 1
    }
    const q = Math.floor(r[k++]! * (T - 1))
    x[(s * T + T - 1) * F + keys[q]!] = 1
    x[(s * T + T - 1) * F + F - 1] = 1
    y[s] = values[q]!
  }
  return Dataset.fromArrays({ inputs: x, labels: y, sampleShape: [T, F], numClasses: LOOKUP_VALUES })
}

describe('Net.multiHeadAttention', () => {
  it('builds the spec and infers [steps, C] → [steps, C]', () => {
    const layer = Net.multiHeadAttention(4, { causal: true, dropout: 0.1 })
    expect(layer).toMatchObject({ op: 'MultiHeadAttention', numHeads: 4, causal: true, dropout: 0.1 })
    const net = Net.sequential([5, 8], [layer], { seed: 0 })
    expect(net.outputShape).toEqual([5, 8])
    expect(net.parameters().map((p) => [p.name, p.shape])).toEqual([
      ['0.in_proj_weight', [24, 8]],
      ['0.in_proj_bias', [24]],
      ['0.out_proj.weight', [8, 8]],
      ['0.out_proj.bias', [8]],
    ])
    const nobias = Net.sequential([5, 8], [Net.multiHeadAttention(2, { bias: false })])
    expect(nobias.parameters().map((p) => p.name)).toEqual(['0.in_proj_weight', '0.out_proj.weight'])
    expect(layerTable(net)[0]).toMatchObject({ op: 'MultiHeadAttention', details: '4 heads of 2, causal, dropout 0.1', outputShape: [5, 8], parameters: 4 * 8 * 8 + 4 * 8 })
  })

  it('bad options and shapes: typed errors naming the field or the node and the numbers', () => {
    expect(() => Net.multiHeadAttention(0)).toThrow(OptionError)
    expect(() => Net.multiHeadAttention(2, { dropout: 1 })).toThrow(/multiHeadAttention\.dropout/)
    expect(() => Net.multiHeadAttention(2, { causal: 1 as unknown as boolean })).toThrow(/multiHeadAttention\.causal/)
    expect(() => Net.multiHeadAttention(2, { heads: 2 } as never)).toThrow(OptionError)
    expect(() => Net.sequential([5, 10], [Net.multiHeadAttention(3)])).toThrow(ShapeError)
    expect(() => Net.sequential([5, 10], [Net.multiHeadAttention(3)])).toThrow(/embedding size 10.*numHeads 3/)
    expect(() => Net.sequential([10], [Net.multiHeadAttention(2)])).toThrow(/\[steps, embedding\]/)
  })

  it('causal: the output at step t does not depend on later steps', () => {
    const net = randomize(Net.sequential([6, 4], [Net.multiHeadAttention(2, { causal: true })], { seed: 1 }))
    const x = uniform(24, 3)
    const y = net.predict(x)
    const x2 = x.slice()
    for (let i = 4 * 4; i < 24; i++) x2[i] = x2[i]! + 1 // steps 4 and 5
    const y2 = net.predict(x2)
    expect(Array.from(y2.subarray(0, 16))).toEqual(Array.from(y.subarray(0, 16)))
    expect(Array.from(y2.subarray(16))).not.toEqual(Array.from(y.subarray(16)))
  })
})

describe('MultiHeadAttention learns, saves, loads and exports', () => {
  let train: Dataset, test: Dataset, dir: string
  beforeAll(async () => {
    ;[train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
    dir = await mkdtemp(join(tmpdir(), 'ferronet-attn-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const fit = async (net: Net, data: Dataset, held: Dataset, epochs: number): Promise<number> => {
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 2e-3 }, batchSize: 64, seed: 0 })
    await trainer.fit(data, { epochs })
    return (await trainer.evaluate(held)).accuracy!
  }
  const fitDigits = (net: Net) => fit(net, train, test, 3)

  let trained: Net
  it('digits as sequences of rows: attention beats the same net without it (a linear classifier)', async () => {
    const rows = [28, 28]
    const x = Net.input(rows)
    const h = Net.dense(32).apply(x)
    const mixed = Net.add().apply([h, Net.multiHeadAttention(4, { dropout: 0.1 }).apply(h)])
    trained = Net.graph({ inputs: x, outputs: Net.dense(10).apply(Net.flatten().apply(mixed)) }, { seed: 0 })
    const baseline = Net.sequential(rows, [Net.dense(32), Net.flatten(), Net.dense(10)], { seed: 0 })
    const [withAttention, linear] = [await fitDigits(trained), await fitDigits(baseline)]
    console.log(`digits as row sequences, 3 epochs: attention ${withAttention}, linear baseline ${linear}`)
    expect(withAttention).toBeGreaterThanOrEqual(0.925)
    expect(withAttention).toBeGreaterThanOrEqual(linear + 0.015)
  }, 120_000)

  it('key-value lookup, which needs attention: solved by it, near chance without it', async () => {
    const [data, held] = [lookupTask(8000, 1), lookupTask(2000, 2)]
    const model = (mix: (h: SymbolicTensor) => SymbolicTensor) => {
      const x = Net.input([LOOKUP_STEPS, LOOKUP_FEATURES])
      const h = Net.dense(32).apply(x)
      return Net.graph({ inputs: x, outputs: Net.dense(LOOKUP_VALUES).apply(Net.flatten().apply(Net.add().apply([h, mix(h)]))) }, { seed: 0 })
    }
    const attention = await fit(model((h) => Net.multiHeadAttention(2, { causal: true }).apply(h)), data, held, 5)
    const perStep = await fit(model((h) => Net.dense(32).apply(Net.relu().apply(Net.dense(32).apply(h)))), data, held, 5)
    console.log(`key-value lookup, 5 epochs: attention ${attention}, per-step MLP ${perStep}`)
    expect(attention).toBeGreaterThanOrEqual(0.95)
    expect(perStep).toBeLessThanOrEqual(0.5)
  }, 120_000)

  it('save and load give identical predictions', async () => {
    const path = join(dir, 'attn.safetensors')
    await trained.save(path)
    const back = await Net.load(path)
    expect(back.spec).toEqual(trained.spec)
    const x = test.subset(0, 50)
    expect(back.predict(x)).toEqual(trained.predict(x))
  })

  it('ONNX Runtime equals predict on the trained net', async () => {
    expect(await onnxError(trained, uniform(3 * 784, 11, 0, 1))).toBeLessThanOrEqual(1e-5)
  })

  const variants: [string, Parameters<typeof Net.multiHeadAttention>[1], number, number][] = [
    ['full, with bias', {}, 7, 8],
    ['causal, with bias', { causal: true }, 7, 8],
    ['full, no bias', { bias: false }, 5, 12],
    ['causal, no bias, one head', { causal: true, bias: false }, 5, 6],
    ['causal, 37 steps (more than one row block)', { causal: true }, 37, 16],
  ]
  for (const [name, options, t, c] of variants) {
    it(`ONNX Runtime equals predict: ${name}, batch 1 and 3, opset 17 and 20`, async () => {
      const heads = name.includes('one head') ? 1 : c === 12 ? 3 : 2
      const net = randomize(Net.sequential([t, c], [Net.dense(c), Net.multiHeadAttention(heads, options)], { seed: 2 }))
      for (const rows of [1, 3]) {
        for (const opset of [17, 20]) expect(await onnxError(net, uniform(rows * t * c, 100 + rows), opset)).toBeLessThanOrEqual(1e-5)
      }
    })
  }
})
