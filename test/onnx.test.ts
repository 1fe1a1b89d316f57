/**
 * ONNX export: every op, and the preset models after some training, run through ONNX
 * Runtime at batch 1 and 3 (the batch dimension is symbolic) against `net.predict`;
 * the decoded model (opset, IR version, dims, initializers); options and errors; the
 * atomic file write.
 */

import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Net, OptionError, Trainer, mnist, models } from '../src/index.js'
import { OPS, type LayerSpec } from '../src/layers.js'
import { writeFileAtomic } from '../src/files.js'
import { exportOnnx, MAX_OPSET, OnnxExportError, toOnnx, type OnnxOptions } from '../src/onnx.js'
import { onnx } from '../src/onnx/builder.js'
import { buildModel } from '../src/onnx/export.js'
import { CONVERTERS } from '../src/onnx/ops.js'

/** Deterministic values in [lo, hi) (mulberry32). */
function uniform(n: number, seed: number, lo = -2, hi = 2): Float32Array {
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

/** The fields of a decoded model these tests read (int64 fields as numbers). */
interface Decoded {
  irVersion: number
  producerName: string
  producerVersion: string
  opsetImport: { domain: string; version: number }[]
  graph: {
    node: { name: string; opType: string; input: string[]; output: string[]; attribute: { name: string; i: number; f: number; ints: number[] }[] }[]
    initializer: { name: string; dims: number[]; dataType: number; rawData: Uint8Array }[]
    input: DecodedValue[]
    output: DecodedValue[]
  }
}
interface DecodedValue { name: string; type: { tensorType: { elemType: number; shape: { dim: { dimValue: number; dimParam: string }[] } } } }

/** Parses ONNX bytes with onnx-proto. */
function decode(bytes: Uint8Array): Decoded {
  return onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, arrays: true, defaults: true }) as unknown as Decoded
}

/** A graph input's or output's dims: sizes, or the symbolic name. */
const dims = (v: DecodedValue) => v.type.tensorType.shape.dim.map((d) => d.dimParam || d.dimValue)

/** Largest |got − want| / max(1, |want|), and where. */
function worst(got: ArrayLike<number>, want: ArrayLike<number>): { err: number; at: number } {
  let err = 0, at = -1
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!))
    if (!(e <= err)) { err = e; at = i } // NaN counts as the worst
  }
  return { err, at }
}

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes)
}

/** Runs the model's first input on `x` (rows × inputDim) and returns every output. */
async function run(s: ort.InferenceSession, net: Net, x: Float32Array): Promise<ort.InferenceSession.ReturnType> {
  const rows = x.length / net.inputDim
  return s.run({ [net.spec.inputs[0]!.name]: new ort.Tensor('float32', x, [rows, ...net.inputShape]) })
}

/** Decodes `bytes` and checks what every export must have: opset, IR, names, batch dims, initializers = state_dict. */
function checkStructure(bytes: Uint8Array, net: Net, opset: number): Decoded {
  const model = decode(bytes)
  expect(model.opsetImport.map((o) => [o.domain, o.version])).toEqual([['', opset]])
  expect(model.irVersion).toBe(opset <= 18 ? 8 : opset <= 20 ? 9 : opset <= 22 ? 10 : 11)
  const g = model.graph
  expect([...g.input, ...g.output].every((v) => v.type.tensorType.elemType === onnx.TensorProto.DataType.FLOAT)).toBe(true)
  expect(g.input.map((v) => [v.name, dims(v)])).toEqual(net.spec.inputs.map((i) => [i.name, ['batch', ...i.shape]]))
  expect(g.output[0]!.name).toBe(net.spec.outputs[0])
  expect(dims(g.output[0]!)).toEqual(['batch', ...net.outputShape])
  expect(g.output.map((v) => v.name)).toEqual(net.spec.outputs)
  // A tied tensor (weight tying) is one initializer, under its owner's name.
  const params = net.parameters().filter((p) => p.tiedTo === undefined)
  expect(g.initializer.map((t) => t.name)).toEqual(params.map((p) => p.name))
  g.initializer.forEach((t, i) => {
    expect(t.dims).toEqual(params[i]!.shape)
    expect(t.dataType).toBe(onnx.TensorProto.DataType.FLOAT)
    const raw = t.rawData
    expect(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))).toEqual(params[i]!.data)
  })
  return model
}

/**
 * Exports `net`, checks the decoded structure, and compares ONNX Runtime's first
 * output with `net.predict` at batch 1 and batch 3 (within 1e-5 relative to max(1, |value|)).
 */
async function expectSame(net: Net, options: OnnxOptions = {}, inputs?: (rows: number) => Float32Array): Promise<void> {
  const opset = options.opset ?? 17
  const bytes = toOnnx(net, options)
  checkStructure(bytes, net, opset)
  const s = await session(bytes)
  for (const rows of [1, 3]) {
    const x = inputs ? inputs(rows) : uniform(rows * net.inputDim, 1000 + rows)
    const want = net.predict(x)
    const out = (await run(s, net, x))[net.spec.outputs[0]!]!
    expect(out.dims).toEqual([rows, ...net.outputShape])
    const { err, at } = worst(out.data as Float32Array, want)
    expect(err, `batch ${rows}, element ${at}: onnx ${(out.data as Float32Array)[at]} vs predict ${want[at]}`).toBeLessThanOrEqual(1e-5)
  }
}

/** Gives every tensor of `net` deterministic, non-trivial values: running_var in [0.5, 2), the rest in [-1, 1). */
function randomize(net: Net, seed = 7): Net {
  net.parameters().forEach((p, i) => {
    const variance = p.name.endsWith('running_var')
    net.setParameter(p.name, uniform(p.data.length, seed + i, variance ? 0.5 : -1, variance ? 2 : 1))
  })
  return net
}

const seq = (input: number | number[], layers: LayerSpec[]) => randomize(Net.sequential(input, layers, { seed: 3 }))

/** Integer ids in 0..vocab for `rows` samples of `steps` ids (an Embedding's input). */
const ids = (steps: number, vocab: number) => (rows: number): Float32Array =>
  Float32Array.from({ length: rows * steps }, (_, i) => (i * 7 + rows * 3 + (i % 3)) % vocab)

/** One small net per op and variant (and, for ids, how to make its inputs). */
const OP_CASES: [string, () => Net, ((rows: number) => Float32Array)?][] = [
  // Linear: Gemm on [batch, in], MatMul + Add on [batch, steps, in]
  ['Linear', () => seq(5, [Net.dense(4)])],
  ['Linear without bias', () => seq(5, [Net.dense(4, { bias: false })])],
  ['Linear on [steps, features]', () => seq([3, 5], [Net.dense(4)])],
  ['Linear on [steps, features] without bias', () => seq([3, 5], [Net.dense(4, { bias: false })])],
  ['Linear + ReLU (fused by the core)', () => seq(6, [Net.dense(8), Net.relu(), Net.dense(3)])],
  // Conv2d
  ['Conv2d 3×3', () => seq([2, 7, 7], [Net.conv2d(3, 3)])],
  ['Conv2d stride 2, padding 1', () => seq([2, 8, 8], [Net.conv2d(4, 3, { stride: 2, padding: 1 })])],
  ['Conv2d kernel [3, 2], stride [2, 1], padding [1, 0]', () => seq([3, 7, 6], [Net.conv2d(2, [3, 2], { stride: [2, 1], padding: [1, 0] })])],
  ['Conv2d dilation 2, padding 2', () => seq([2, 9, 9], [Net.conv2d(3, 3, { dilation: 2, padding: 2 })])],
  ['Conv2d dilation [1, 2], stride 2', () => seq([2, 9, 10], [Net.conv2d(3, 3, { dilation: [1, 2], stride: 2 })])],
  ['Conv2d groups 2', () => seq([4, 6, 6], [Net.conv2d(6, 3, { groups: 2, padding: 1 })])],
  ['Conv2d depthwise (groups = channels)', () => seq([4, 6, 6], [Net.conv2d(8, 3, { groups: 4 })])],
  ['Conv2d without bias', () => seq([2, 6, 6], [Net.conv2d(3, 3, { bias: false })])],
  ['Conv2d 1×1', () => seq([3, 5, 5], [Net.conv2d(4, 1)])],
  ['Conv2d single channel 5×5 pad 2 + ReLU', () => seq([1, 9, 9], [Net.conv2d(4, 5, { padding: 2 }), Net.relu()])],
  // Pools (inputs have negative values, so max-pool padding must not act as zeros)
  ['MaxPool2d 2', () => seq([3, 6, 6], [Net.maxPool2d(2)])],
  ['MaxPool2d 3, stride 2, padding 1', () => seq([2, 7, 7], [Net.maxPool2d(3, { stride: 2, padding: 1 })])],
  ['MaxPool2d [3, 2], stride [1, 2], padding [1, 1]', () => seq([2, 5, 6], [Net.maxPool2d([3, 2], { stride: [1, 2], padding: [1, 1] })])],
  ['AvgPool2d 2', () => seq([3, 6, 6], [Net.avgPool2d(2)])],
  ['AvgPool2d 3, stride 2, padding 1 (count_include_pad)', () => seq([2, 7, 7], [Net.avgPool2d(3, { stride: 2, padding: 1 })])],
  ['AvgPool2d [2, 3], stride 1, padding [1, 1]', () => seq([2, 5, 6], [Net.avgPool2d([2, 3], { stride: 1, padding: [1, 1] })])],
  ['AdaptiveAvgPool2d 1 (global)', () => seq([3, 5, 7], [Net.adaptiveAvgPool2d(1)])],
  ['AdaptiveAvgPool2d [2, 3] on 6×6', () => seq([3, 6, 6], [Net.adaptiveAvgPool2d([2, 3])])],
  ['AdaptiveAvgPool2d [1, 3] on 4×6', () => seq([2, 4, 6], [Net.adaptiveAvgPool2d([1, 3])])],
  ['AdaptiveAvgPool2d same size', () => seq([2, 4, 4], [Net.adaptiveAvgPool2d(4)])],
  // BatchNorm with running statistics set
  ['BatchNorm1d on [F]', () => seq(6, [Net.batchNorm1d()])],
  ['BatchNorm1d on [C, L], eps 1e-3', () => seq([3, 5], [Net.batchNorm1d({ eps: 1e-3 })])],
  ['BatchNorm1d affine false', () => seq(6, [Net.batchNorm1d({ affine: false })])],
  ['BatchNorm1d affine false on [C, L]', () => seq([3, 5], [Net.batchNorm1d({ affine: false })])],
  ['Linear + BatchNorm1d (folded by the core)', () => seq(5, [Net.dense(6), Net.batchNorm1d(), Net.relu(), Net.dense(2)])],
  ['BatchNorm2d', () => seq([3, 4, 5], [Net.batchNorm2d()])],
  ['BatchNorm2d affine false, eps 0.1', () => seq([3, 4, 4], [Net.batchNorm2d({ affine: false, eps: 0.1 })])],
  ['Conv2d + BatchNorm2d + ReLU (folded by the core)', () => seq([2, 6, 6], [Net.conv2d(4, 3, { padding: 1 }), Net.batchNorm2d(), Net.relu(), Net.maxPool2d(2)])],
  // Dropout: identity
  ['Dropout', () => seq(6, [Net.dense(5), Net.dropout(0.5)])],
  ['Dropout on images', () => seq([2, 3, 3], [Net.dropout(0.3), Net.flatten()])],
  // Flatten
  ['Flatten [C, H, W]', () => seq([2, 3, 4], [Net.flatten()])],
  ['Flatten [T, F] then Linear', () => seq([3, 4], [Net.flatten(), Net.dense(2)])],
  // Activations
  ['ReLU', () => seq([2, 3, 4], [Net.relu()])],
  ['Sigmoid', () => seq(7, [Net.sigmoid()])],
  ['Tanh', () => seq([3, 4], [Net.tanh()])],
  ['SiLU', () => seq(7, [Net.silu()])],
  ['SiLU on images', () => seq([2, 3, 3], [Net.silu()])],
  ['LeakyReLU default slope', () => seq(7, [Net.leakyRelu()])],
  ['LeakyReLU 0.2', () => seq([2, 3, 3], [Net.leakyRelu(0.2)])],
  ['GELU exact', () => seq(9, [Net.gelu()])],
  ['GELU tanh', () => seq(9, [Net.gelu({ approximate: 'tanh' })])],
  ['Linear + GELU exact', () => seq(5, [Net.dense(6), Net.gelu()])],
  ['Softmax', () => seq(6, [Net.softmax()])],
  ['Softmax dim 1 on [T, F]', () => seq([3, 4], [Net.softmax(1)])],
  ['Softmax dim -2 on [C, H, W]', () => seq([2, 3, 4], [Net.softmax(-2)])],
  ['LogSoftmax', () => seq(6, [Net.dense(5), Net.logSoftmax()])],
  ['LogSoftmax dim 2 on [T, F]', () => seq([3, 4], [Net.logSoftmax(2)])],
  ['LogSoftmax dim 1 on [C, H, W]', () => seq([3, 2, 2], [Net.logSoftmax(1)])],
  // Add and Concat (functional graphs: fan out, join)
  ['Add of two branches', () => {
    const x = Net.input(6)
    return randomize(Net.graph({ inputs: x, outputs: Net.add().apply([Net.dense(4).apply(x), Net.dense(4).apply(x)]) }))
  }],
  ['Add of three, including the input (residual)', () => {
    const x = Net.input([2, 4, 4])
    const c = Net.conv2d(2, 3, { padding: 1 }).apply(x, { name: 'block1.conv' })
    const r = Net.relu().apply(c, { name: 'block1.relu' })
    return randomize(Net.graph({ inputs: x, outputs: Net.flatten().apply(Net.add().apply([x, c, r], { name: 'block1.sum' })) }))
  }],
  ['Concat of two Linear branches', () => {
    const x = Net.input(6)
    return randomize(Net.graph({ inputs: x, outputs: Net.concat().apply([Net.dense(3).apply(x), Net.dense(5).apply(x)]) }))
  }],
  ['Concat channels of convolutions', () => {
    const x = Net.input([2, 5, 5])
    const a = Net.conv2d(3, 3, { padding: 1 }).apply(x)
    const b = Net.conv2d(2, 1).apply(x)
    return randomize(Net.graph({ inputs: x, outputs: Net.concat(1).apply([a, b, x]) }))
  }],
  ['Concat dim -1 on [T, F]', () => {
    const x = Net.input([3, 4])
    return randomize(Net.graph({ inputs: x, outputs: Net.concat(-1).apply([x, Net.dense(2).apply(x)]) }))
  }],
  // LSTM / GRU: one ONNX LSTM / GRU per layer (more cases in test/recurrent.test.ts)
  ['LSTM, 2 layers, sequence', () => seq([4, 3], [Net.lstm(5, { numLayers: 2 })])],
  ['LSTM last, then Linear', () => seq([5, 3], [Net.lstm(4, { returns: 'last' }), Net.dense(2)])],
  ['LSTM state', () => seq([3, 2], [Net.lstm(3, { numLayers: 2, returns: 'state' })])],
  ['GRU, 2 layers, sequence, no bias', () => seq([4, 3], [Net.gru(5, { numLayers: 2, bias: false })])],
  ['GRU last', () => seq([5, 3], [Net.gru(4, { returns: 'last' })])],
  ['GRU state', () => seq([3, 2], [Net.gru(3, { numLayers: 2, returns: 'state' })])],
  ['MultiHeadAttention', () => seq([5, 8], [Net.multiHeadAttention(2)])],
  ['MultiHeadAttention causal, no bias', () => seq([7, 6], [Net.dense(6), Net.multiHeadAttention(3, { causal: true, bias: false })])],
  ['Reparameterize (the mean at inference) and KLDivergence', () => {
    const x = Net.input(6)
    const mu = Net.dense(3).apply(x), logvar = Net.dense(3).apply(x)
    const z = Net.reparameterize().apply([mu, logvar]), kl = Net.klDivergence().apply([mu, logvar])
    return randomize(Net.graph({ inputs: x, outputs: Net.concat().apply([z, kl]) }))
  }],
  ['KLDivergence on [T, F]', () => {
    const x = Net.input([3, 4])
    return randomize(Net.graph({ inputs: x, outputs: Net.klDivergence().apply([x, Net.dense(4).apply(x)]) }))
  }],
  ['Concat dim 2 (height) of images', () => {
    const x = Net.input([2, 4, 4])
    return randomize(Net.graph({ inputs: x, outputs: Net.concat(2).apply([x, Net.maxPool2d([2, 1], { stride: 1 }).apply(x)]) }))
  }],
  // Token layers: Embedding (Gather), PositionEmbedding (Add of a sliced table), LayerNorm, tying
  ['Embedding', () => seq(5, [Net.embedding(7, 3)]), ids(5, 7)],
  ['Embedding with paddingIdx on repeated ids', () => seq(6, [Net.embedding(4, 2, { paddingIdx: 0 })]), ids(6, 4)],
  ['PositionEmbedding numPositions = T', () => seq([4, 3], [Net.positionEmbedding()])],
  ['PositionEmbedding numPositions > T (sliced)', () => seq([4, 3], [Net.positionEmbedding({ numPositions: 9 })])],
  ['LayerNorm on [T, F]', () => seq([3, 6], [Net.layerNorm()])],
  ['LayerNorm on [F], eps 1e-3, no bias', () => seq(6, [Net.layerNorm({ eps: 1e-3, bias: false })])],
  ['LayerNorm elementwiseAffine false', () => seq([2, 5], [Net.layerNorm({ elementwiseAffine: false })])],
  ['Linear tied to an Embedding (one initializer)', () => seq(5, [Net.embedding(7, 4), Net.dense(7, { bias: false, tiedTo: '0' })]), ids(5, 7)],
]

/** Every token op in one graph: a tiny GPT (ids in, tied logits out). */
function allTokenOps(): Net {
  const x = Net.input([6], { name: 'ids' })
  const e = Net.embedding(11, 8).apply(x, { name: 'wte' })
  const p = Net.positionEmbedding({ numPositions: 10 }).apply(e, { name: 'wpe' })
  const h = Net.layerNorm().apply(p, { name: 'ln_f' })
  return randomize(Net.graph({ inputs: x, outputs: Net.dense(11, { tiedTo: 'wte' }).apply(h, { name: 'lm_head' }) }))
}

/**
 * The ops on [steps, features] sequences, in one graph: allOps' image input cannot
 * reach them (the spec has no reshape to a rank-2 sample).
 */
function allSequenceOps(): Net {
  const x = Net.input([6, 8], { name: 'sequence' })
  const h = Net.dense(8).apply(x)
  const a = Net.multiHeadAttention(2, { causal: true }).apply(h)
  const s = Net.lstm(8, { numLayers: 2 }).apply(Net.add().apply([h, a]), { name: 'lstm' })
  const last = Net.gru(4, { returns: 'last' }).apply(s, { name: 'gru' })
  return randomize(Net.graph({ inputs: x, outputs: Net.add().apply([Net.dense(3).apply(Net.flatten().apply(s)), Net.dense(3).apply(last)]) }))
}

/** Every op of the spec but the sequence and token ops, in one graph (for the opset sweep). */
function allOps(): Net {
  const x = Net.input([2, 8, 8], { name: 'image' })
  const c = Net.conv2d(4, 3, { padding: 1, groups: 2 }).apply(x, { name: 'conv' })
  const bn = Net.batchNorm2d().apply(c, { name: 'bn' })
  const a = Net.relu().apply(bn)
  const m = Net.maxPool2d(2).apply(a)
  const v = Net.avgPool2d(2).apply(Net.silu().apply(a))
  const cat = Net.concat(1).apply([m, v])
  const pooled = Net.adaptiveAvgPool2d(2).apply(cat)
  const f = Net.flatten().apply(Net.dropout(0.2).apply(pooled))
  const h = Net.dense(6).apply(f)
  const s = Net.add().apply([Net.gelu().apply(h), Net.gelu({ approximate: 'tanh' }).apply(h), Net.tanh().apply(h), Net.sigmoid().apply(h), Net.leakyRelu(0.1).apply(h)])
  const b = Net.batchNorm1d({ affine: false }).apply(s)
  const g = Net.adaptiveAvgPool2d(1).apply(cat)
  const mu = Net.dense(2).apply(s), logvar = Net.dense(2).apply(s)
  const z = Net.reparameterize().apply([mu, logvar]), kl = Net.klDivergence().apply([mu, logvar])
  const logits = Net.dense(3).apply(Net.concat().apply([b, Net.flatten().apply(g), z, kl]), { name: 'logits' })
  return randomize(Net.graph({ inputs: x, outputs: Net.logSoftmax().apply(Net.softmax().apply(logits)) }))
}

describe('toOnnx: every op through ONNX Runtime', () => {
  it('covers every op of the spec', () => {
    const ops = new Set(OP_CASES.flatMap(([, make]) => make().spec.nodes.map((n) => n.op)))
    expect([...ops].sort()).toEqual(Object.keys(OPS).sort())
    expect(Object.keys(CONVERTERS).sort()).toEqual(Object.keys(OPS).sort())
    expect(new Set([...allOps().spec.nodes, ...allSequenceOps().spec.nodes, ...allTokenOps().spec.nodes].map((n) => n.op))).toEqual(ops)
  })

  for (const [name, make, inputs] of OP_CASES) {
    it(`${name}: equals predict at batch 1 and 3 (opset 17)`, async () => {
      await expectSame(make(), {}, inputs)
    })
  }

  for (let opset = 17; opset <= MAX_OPSET; opset++) {
    it(`a graph of every op at opset ${opset}`, async () => {
      await expectSame(allOps(), { opset })
      await expectSame(allSequenceOps(), { opset })
      await expectSame(allTokenOps(), { opset }, ids(6, 11))
    })
  }

  it('GELU is decomposed below opset 20 and ONNX Gelu from 20 on', async () => {
    for (const approximate of ['none', 'tanh'] as const) {
      const net = seq(9, [Net.dense(4), Net.gelu({ approximate })])
      const ops = (opset: number) => decode(toOnnx(net, { opset })).graph.node.map((n) => n.opType)
      expect(ops(17)).not.toContain('Gelu')
      expect(ops(17)).toContain(approximate === 'none' ? 'Erf' : 'Tanh')
      expect(ops(20)).toContain('Gelu')
      for (const opset of [17, 19, 20]) await expectSame(net, { opset })
    }
  })

  it('maps ops as documented (Gemm transB, MatMul + Add, Identity, GlobalAveragePool, AveragePool)', () => {
    const nodes = (net: Net) => decode(toOnnx(net)).graph.node
    const gemm = nodes(seq(5, [Net.dense(4)]))
    expect(gemm.map((n) => n.opType)).toEqual(['Gemm'])
    expect(gemm[0]!.attribute.map((a) => [a.name, a.i])).toEqual([['transB', 1]])
    expect(gemm[0]!.input).toEqual(['input', '0.weight', '0.bias'])
    expect(nodes(seq([3, 5], [Net.dense(4)])).map((n) => n.opType)).toEqual(['Transpose', 'MatMul', 'Add'])
    expect(nodes(seq(5, [Net.dropout()])).map((n) => n.opType)).toEqual(['Identity'])
    expect(nodes(seq([2, 4, 4], [Net.adaptiveAvgPool2d(1)])).map((n) => n.opType)).toEqual(['GlobalAveragePool'])
    const pool = nodes(seq([2, 6, 4], [Net.adaptiveAvgPool2d([3, 2])]))
    expect(pool.map((n) => [n.opType, n.attribute.map((a) => [a.name, a.ints])])).toEqual([
      ['AveragePool', [['kernel_shape', [2, 2]], ['strides', [2, 2]]]],
    ])
    const avg = nodes(seq([2, 6, 6], [Net.avgPool2d(3, { padding: 1 })]))[0]!
    expect(avg.attribute.find((a) => a.name === 'count_include_pad')?.i).toBe(1)
    const bn = nodes(seq(4, [Net.batchNorm1d({ affine: false, eps: 0.25 })]))
    expect(bn.map((n) => n.opType)).toEqual(['Constant', 'Constant', 'BatchNormalization'])
    expect(bn[2]!.attribute.map((a) => [a.name, a.f])).toEqual([['epsilon', 0.25]])
  })

  it('outputs every spec output, each equal to the net with that output first', async () => {
    const x = Net.input(5)
    const h = Net.dense(6).apply(x, { name: 'hidden' })
    const a = Net.dense(3).apply(Net.relu().apply(h), { name: 'head_a' })
    const b = Net.softmax().apply(Net.dense(2).apply(h), { name: 'head_b' })
    const net = randomize(Net.graph({ inputs: x, outputs: [a, b, h] }))
    const bytes = toOnnx(net)
    const model = checkStructure(bytes, net, 17)
    expect(model.graph.output.map(dims)).toEqual([['batch', 3], ['batch', 2], ['batch', 6]])
    const s = await session(bytes)
    const rows = 3
    const input = uniform(rows * 5, 42)
    const out = await run(s, net, input)
    for (const name of ['head_a', 'head_b', 'hidden']) {
      // predict returns the first output only: rebuild the net with `name` first, same tensors.
      const other = Net.fromSpec({ ...net.spec, outputs: [name, ...net.spec.outputs.filter((o) => o !== name)] })
      for (const p of net.parameters()) other.setParameter(p.name, p.data)
      const want = other.predict(input)
      expect(out[name]!.dims).toEqual([rows, ...other.outputShape])
      expect(worst(out[name]!.data as Float32Array, want).err, name).toBeLessThanOrEqual(1e-5)
    }
  })

  it('a stale export no longer matches after a weight changes (the comparison can fail)', async () => {
    const net = seq([2, 5, 5], [Net.conv2d(3, 3), Net.batchNorm2d(), Net.flatten(), Net.dense(2)])
    const s = await session(toOnnx(net))
    net.setParameter('1.running_mean', uniform(3, 99, 0.5, 1))
    const x = uniform(3 * net.inputDim, 5)
    const got = (await run(s, net, x))[net.spec.outputs[0]!]!.data as Float32Array
    expect(worst(got, net.predict(x)).err).toBeGreaterThan(1e-3)
    await expectSame(net)
  })
})

describe('toOnnx: the preset models after training', () => {
  let digits: Awaited<ReturnType<typeof mnist.loadDigits>>
  beforeAll(async () => {
    digits = await mnist.loadDigits()
  })
  const batch = (from: number, rows: number) => Float32Array.from(digits.inputs.subarray(from * 784, (from + rows) * 784), (v) => v / 255)

  for (const name of ['mlp', 'lenet', 'cnn'] as const) {
    it(`${name}: a few training steps, then ONNX Runtime equals predict`, async () => {
      const net = models[name]({ seed: 1 })
      const before = net.parameters()
      const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 16, threads: 1 })
      for (let step = 0; step < 3; step++) trainer.trainBatch(batch(step * 16, 16), digits.labels!.subarray(step * 16, step * 16 + 16))
      const after = net.parameters()
      // Every trainable tensor moved away from its initialisation.
      after.forEach((p, i) => expect(worst(p.data, before[i]!.data).err, p.name).toBeGreaterThan(0))
      // Real digits (after the training batches) and the dynamic batch.
      await expectSame(net, {}, (rows) => batch(100, rows))
    })
  }
})

describe('toOnnx: options and errors', () => {
  const net = () => seq(4, [Net.dense(3), Net.relu()])

  it('writes opset 17, IR version 8 and the producer by default', () => {
    const model = checkStructure(toOnnx(net()), net(), 17)
    expect(model.producerName).toBe('ferronet')
    expect(model.producerVersion).toMatch(/^\d+\.\d+\.\d+/)
    expect(model.irVersion).toBe(8)
    expect(decode(toOnnx(net(), { producerName: 'me' })).producerName).toBe('me')
  })

  it('rejects opsets below 17 and above the newest checked one, naming the option', () => {
    for (const opset of [16, 11, 0, MAX_OPSET + 1, 17.5, Number.NaN, '17' as unknown as number]) {
      let error: unknown
      try {
        toOnnx(net(), { opset })
      } catch (e) {
        error = e
      }
      expect(error, String(opset)).toBeInstanceOf(OptionError)
      expect((error as OptionError).field).toBe('opset')
    }
    expect(() => toOnnx(net(), { opsets: 17 } as OnnxOptions)).toThrow(/options\.opsets/)
    expect(() => toOnnx(net(), { producerName: '' })).toThrow(OptionError)
    expect(() => toOnnx(net(), null as unknown as OnnxOptions)).toThrow(OptionError)
  })

  it('AdaptiveAvgPool2d whose output size does not divide the input: a typed error naming the node', () => {
    const x = Net.input([2, 6, 5])
    const bad = Net.graph({ inputs: x, outputs: Net.flatten().apply(Net.adaptiveAvgPool2d([4, 5]).apply(x, { name: 'head.pool' })) })
    let error: unknown
    try {
      toOnnx(bad)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(OnnxExportError)
    expect(error).toMatchObject({ code: 'ERR_ONNX_UNSUPPORTED', node: 'head.pool', op: 'AdaptiveAvgPool2d' })
    expect((error as Error).message).toMatch(/^head\.pool \(AdaptiveAvgPool2d\): output size 4×5 does not divide the input's 6×5/)
  })

  it('an op without a converter: a typed error naming the node and the op', () => {
    const n = net()
    const { ReLU: _relu, ...withoutRelu } = CONVERTERS
    let error: unknown
    try {
      buildModel(n.spec, n.parameters(), { opset: 17, producerName: 'x', producerVersion: '0' }, withoutRelu)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(OnnxExportError)
    expect(error).toMatchObject({ code: 'ERR_ONNX_UNSUPPORTED', node: '1', op: 'ReLU' })
    expect((error as Error).message).toMatch(/^1 \(ReLU\): the ONNX exporter has no converter for op ReLU/)
  })

  it('refuses graphs ONNX cannot name: a node named as a tensor, an output listed twice, an input as output', () => {
    const spec = (nodes: unknown[], outputs: string[]) => Net.fromSpec({ format: 'ferronet-graph', version: 1, inputs: [{ name: 'input', shape: [3] }], nodes, outputs })
    const clash = spec([{ name: 'a.weight', op: 'ReLU', inputs: ['input'] }, { name: 'a', op: 'Linear', inputs: ['a.weight'], config: { outFeatures: 2 } }], ['a'])
    expect(() => toOnnx(clash)).toThrow(OnnxExportError)
    expect(() => toOnnx(clash)).toThrow(/"a\.weight" names both a tensor/)
    const twice = spec([{ name: 'a', op: 'ReLU', inputs: ['input'] }], ['a', 'a'])
    expect(() => toOnnx(twice)).toThrow(/output "a" is listed twice/)
    const identity = spec([], ['input'])
    expect(() => toOnnx(identity)).toThrow(/output "input" is a graph input/)
  })
})

describe('exportOnnx and writeFileAtomic', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferronet-onnx-'))
  })
  afterAll(async () => {
    await chmod(dir, 0o700).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })
  const temps = async (folder: string) => (await readdir(folder)).filter((f) => f.endsWith('.tmp'))
  const isRoot = process.getuid?.() === 0

  it('exportOnnx writes the bytes of toOnnx, loadable by ONNX Runtime, and replaces an old file', async () => {
    const net = seq([1, 6, 6], [Net.conv2d(2, 3), Net.flatten(), Net.dense(3)])
    const path = join(dir, 'model.onnx')
    await writeFile(path, 'old')
    await exportOnnx(net, path)
    const bytes = new Uint8Array(await readFile(path))
    expect(bytes).toEqual(toOnnx(net))
    expect(await temps(dir)).toEqual([])
    const s = await session(bytes)
    const x = uniform(2 * net.inputDim, 3)
    expect(worst((await run(s, net, x))[net.spec.outputs[0]!]!.data as Float32Array, net.predict(x)).err).toBeLessThanOrEqual(1e-5)
    await exportOnnx(net, path, { opset: 20 })
    expect(decode(await readFile(path)).opsetImport[0]!.version).toBe(20)
  })

  it('exportOnnx with a bad option writes nothing', async () => {
    const path = join(dir, 'keep.onnx')
    await writeFile(path, 'keep me')
    await expect(exportOnnx(seq(3, [Net.relu()]), path, { opset: 16 })).rejects.toThrow(OptionError)
    await expect(exportOnnx(seq(3, [Net.relu()]), '' as string)).rejects.toThrow(OptionError)
    expect(await readFile(path, 'utf8')).toBe('keep me')
  })

  it('writes a new file and replaces an existing one', async () => {
    const path = join(dir, 'a.bin')
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]))
    expect([...(await readFile(path))]).toEqual([1, 2, 3])
    await writeFileAtomic(path, 'text')
    expect(await readFile(path, 'utf8')).toBe('text')
    expect(await temps(dir)).toEqual([])
  })

  it('a target that is a directory: fails, the directory is untouched, no temp file remains', async () => {
    const target = join(dir, 'is-a-dir')
    await mkdir(target)
    await writeFile(join(target, 'inside'), 'x')
    await expect(writeFileAtomic(target, new Uint8Array([1]))).rejects.toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) })
    expect((await stat(target)).isDirectory()).toBe(true)
    expect(await readdir(target)).toEqual(['inside'])
    expect(await temps(dir)).toEqual([])
    await expect(exportOnnx(seq(3, [Net.relu()]), target)).rejects.toThrow()
    expect(await temps(dir)).toEqual([])
  })

  it('a write that fails after the temp file exists leaves the old file intact and removes the temp', async () => {
    const path = join(dir, 'old.bin')
    await writeFile(path, 'old contents')
    // Not a string or bytes: the write into the opened temp file throws.
    await expect(writeFileAtomic(path, 42 as unknown as Uint8Array)).rejects.toThrow()
    expect(await readFile(path, 'utf8')).toBe('old contents')
    expect(await temps(dir)).toEqual([])
  })

  it('a missing folder: ENOENT, nothing created', async () => {
    await expect(writeFileAtomic(join(dir, 'no', 'such', 'x.onnx'), 'x')).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await temps(dir)).toEqual([])
  })

  it.skipIf(isRoot)('a read-only folder: EACCES, the old file intact, no temp file', async () => {
    const ro = join(dir, 'ro')
    await mkdir(ro)
    const path = join(ro, 'model.onnx')
    await writeFile(path, 'old')
    await chmod(ro, 0o500)
    try {
      await expect(exportOnnx(seq(3, [Net.relu()]), path)).rejects.toMatchObject({ code: 'EACCES' })
      expect(await readFile(path, 'utf8')).toBe('old')
      expect(await readdir(ro)).toEqual(['model.onnx'])
    } finally {
      await chmod(ro, 0o700)
    }
  })
})
