/**
 * The layer graph from TypeScript: shape inference before any native call, the
 * functional API, nn.Sequential naming, freezing, groups, spec round-trips, and
 * training on labels beyond 256 classes, float targets and multi-label targets.
 * Tests of ops or options the loaded addon does not compile yet are skipped by a
 * probe of the addon (they run as soon as it has them).
 */

import { describe, expect, it } from 'vitest'
import { Dataset, Net, OptionError, ShapeError, Trainer, mnist, models } from '../src/index.js'
import { checkSpec, sequentialSpec } from '../src/graph.js'

const digits = await mnist.loadDigits()

/** Features scaled to [0, 1], and the digit labels, of the first `n` digits. */
function slice(n: number): { x: Float32Array; labels: Uint8Array } {
  const pixels = digits.inputs.subarray(0, n * 784)
  return { x: Float32Array.from(pixels, (v) => v / 255), labels: digits.labels!.subarray(0, n) as Uint8Array }
}

function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a throw')
}

describe('shape inference in TypeScript', () => {
  it('names the layer and the shapes, before any native call', () => {
    {
      const cases: [() => unknown, RegExp, string][] = [
        [() => Net.sequential([1, 28, 28], [Net.conv2d(6, 5), Net.relu(), Net.maxPool2d(2), Net.dense(10)]),
          /^layer 3 \(Linear\) needs \[features\] or \[steps, features\], got \[6, 12, 12\]: add Net\.flatten\(\) before it$/, '3'],
        [() => Net.sequential(784, [Net.conv2d(6, 5)]), /layer 0 \(Conv2d\) needs \[channels, height, width\], got \[784\]/, '0'],
        [() => Net.sequential([1, 4, 4], [Net.conv2d(2, 5)]), /layer 0 \(Conv2d\) with kernel 5×5 .* does not fit input shape \[1, 4, 4\]/, '0'],
        [() => Net.sequential([3, 8, 8], [Net.maxPool2d(3, { stride: 2 }), Net.maxPool2d(4)]), /layer 1 \(MaxPool2d\) .* input shape \[3, 3, 3\]/, '1'],
        [() => Net.sequential([8], [Net.batchNorm2d()]), /layer 0 \(BatchNorm2d\) needs \[channels, height, width\], got \[8\]/, '0'],
        [() => Net.sequential([8], [Net.softmax(0)]), /layer 0 \(Softmax\) dim 0 is the batch dimension/, '0'],
        [() => Net.sequential([8], [Net.logSoftmax(2)]), /dim 2 is out of range/, '0'],
        [() => {
          const x = Net.input([6, 14, 14])
          return Net.conv2d(8, 3, { groups: 4 }).apply(x, { name: 'conv2' })
        }, /^conv2 \(Conv2d\) expects input channels divisible by groups 4, got 6 \(input shape \[6, 14, 14\]\)$/, 'conv2'],
        [() => {
          const x = Net.input([4])
          return Net.add().apply([Net.dense(3).apply(x), x], { name: 'sum' })
        }, /^sum \(Add\) needs inputs of one shape, got \[3\] and \[4\]/, 'sum'],
        [() => {
          const x = Net.input([2, 5, 5])
          return Net.concat(1).apply([x, Net.maxPool2d(2).apply(x)], { name: 'cat' })
        }, /cat \(Concat\) along dim 1 needs inputs equal in every other dim, got \[2, 5, 5\] and \[2, 2, 2\]/, 'cat'],
        [() => Net.fromSpec({ format: 'ferronet-graph', version: 1, inputs: [{ name: 'input', shape: [4] }], nodes: [{ name: 'a', op: 'Linear', inputs: ['nope'], config: { outFeatures: 2 } }], outputs: ['a'] }),
          /a \(Linear\) reads "nope", which is neither an input nor a node listed before it/, 'a'],
      ]
      for (const [fn, message, node] of cases) {
        const e = thrown(fn)
        expect(e, String(message)).toBeInstanceOf(ShapeError)
        expect(e.message).toMatch(message)
        expect((e as ShapeError).node).toBe(node)
        // Errors of the addon carry the native error as their cause; these come from TypeScript.
        expect(e.cause).toBeUndefined()
      }
    }
  })

  it('follows PyTorch formulas: LeNet-5, the CNN, strides, dilation, padding, adaptive pooling, concat', () => {
    const x = Net.input([1, 28, 28])
    const c1 = Net.conv2d(6, 5, { padding: 2 }).apply(x)
    const p1 = Net.maxPool2d(2).apply(Net.relu().apply(c1))
    const c2 = Net.conv2d(16, 5).apply(p1)
    const p2 = Net.maxPool2d(2).apply(c2)
    expect([c1.shape, p1.shape, c2.shape, p2.shape, Net.flatten().apply(p2).shape]).toEqual([[6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 5, 5], [400]])
    const shapeOf = (input: number[], layers: Parameters<typeof Net.sequential>[1]) => checkSpec(sequentialSpec(input, layers).spec).outputShape
    expect(shapeOf([1, 28, 28], [Net.conv2d(32, 3), Net.relu(), Net.conv2d(64, 3), Net.relu(), Net.maxPool2d(2), Net.dropout(0.25), Net.flatten()])).toEqual([9216])
    expect(shapeOf([3, 32, 32], [Net.conv2d(8, 3, { stride: 2, padding: 1 })])).toEqual([8, 16, 16])
    expect(shapeOf([3, 32, 32], [Net.conv2d(8, [3, 5], { dilation: 2 })])).toEqual([8, 28, 24])
    expect(shapeOf([3, 7, 7], [Net.avgPool2d(3, { stride: 2, padding: 1 })])).toEqual([3, 4, 4])
    expect(shapeOf([3, 7, 9], [Net.adaptiveAvgPool2d([2, 3])])).toEqual([3, 2, 3])
    expect(shapeOf([5, 12], [Net.dense(4)])).toEqual([5, 4])
    expect(shapeOf([5, 12], [Net.batchNorm1d(), Net.softmax(-1), Net.gelu({ approximate: 'tanh' }), Net.leakyRelu(0.2)])).toEqual([5, 12])
    const a = Net.input([2, 5, 5])
    expect(Net.concat().apply([a, Net.conv2d(3, 1).apply(a)]).shape).toEqual([5, 5, 5])
    expect(Net.concat(-1).apply([a, a]).shape).toEqual([2, 5, 10])
  })

  it('validates every layer option with the field named, and unknown options', () => {
    const cases: [() => unknown, string][] = [
      [() => Net.conv2d(0, 3), 'conv2d.outChannels'],
      [() => Net.conv2d(8, [3, 0]), 'conv2d.kernelSize[1]'],
      [() => Net.conv2d(8, 3, { stride: 0 }), 'conv2d.stride'],
      [() => Net.conv2d(8, 3, { padding: -1 }), 'conv2d.padding'],
      [() => Net.conv2d(6, 3, { groups: 4 }), 'conv2d.groups'],
      [() => Net.conv2d(8, 3, { paddng: 1 } as never), 'conv2d.paddng'],
      [() => Net.maxPool2d(2, { padding: 2 }), 'maxPool2d.padding'],
      [() => Net.adaptiveAvgPool2d(0), 'adaptiveAvgPool2d.outputSize'],
      [() => Net.batchNorm2d({ eps: 0 }), 'batchNorm2d.eps'],
      [() => Net.batchNorm1d({ momentum: 2 }), 'batchNorm1d.momentum'],
      [() => Net.dropout(1), 'dropout.p'],
      [() => Net.leakyRelu(Number.NaN), 'leakyRelu.negativeSlope'],
      [() => Net.gelu({ approximate: 'erf' as never }), 'gelu.approximate'],
      [() => Net.softmax(1.5), 'softmax.dim'],
      [() => Net.dense(3).apply(Net.input(4), { name: 'bad name' }), 'apply.name'],
      [() => Net.dense(3).apply(Net.input(4), { group: '' }), 'apply.group'],
      [() => Net.dense(3).apply(Net.input(4), { nmae: 'x' } as never), 'apply.nmae'],
      [() => Net.sequential(4, [Net.dense(2)], { sede: 1 } as never), 'options.sede'],
      [() => Net.fromSpec({ format: 'ferronet-graph', version: 2, inputs: [], nodes: [], outputs: [] }), 'spec.version'],
      [() => Net.fromSpec('{not json'), 'spec'],
    ]
    for (const [fn, field] of cases) {
      const e = thrown(fn)
      expect(e, field).toBeInstanceOf(OptionError)
      expect((e as OptionError).field).toBe(field)
    }
  })
})

describe('building nets', () => {
  it('names parameters as nn.Sequential does and agrees with the native output shape', () => {
    const net = Net.sequential(12, [Net.dense(8), Net.relu(), Net.dense(6, { bias: false }), Net.dense(4)], { seed: 1 })
    expect(net.parameters().map((p) => [p.name, p.shape])).toEqual([['0.weight', [8, 12]], ['0.bias', [8]], ['2.weight', [6, 8]], ['3.weight', [4, 6]], ['3.bias', [4]]])
    expect(net.outputShape).toEqual([4])
    expect(net.parameterCount).toBe(8 * 12 + 8 + 6 * 8 + 4 * 6 + 4)
    expect(net.plan).toEqual(['0:Linear+ReLU', '2:Linear', '3:Linear'])
    const seq = Net.sequential([5, 12], [Net.dense(3)])
    expect([seq.inputShape, seq.outputShape, seq.inputDim, seq.outputDim]).toEqual([[5, 12], [5, 3], 60, 15])
  })

  it('builds functional graphs with default and scoped names and groups', () => {
    const x = Net.input([10])
    const h = Net.dense(6).apply(x, { name: 'block1.fc', group: 'body' })
    const r = Net.relu().apply(h)
    const y = Net.dense(3).apply(r, { group: 'head' })
    const net = Net.graph({ inputs: x, outputs: y }, { seed: 2 })
    expect(net.spec.nodes.map((n) => [n.name, n.op, n.inputs, n.group])).toEqual([
      ['block1.fc', 'Linear', ['input'], 'body'],
      ['relu1', 'ReLU', ['block1.fc'], undefined],
      ['linear1', 'Linear', ['relu1'], 'head'],
    ])
    expect(net.parameters().map((p) => [p.name, p.group])).toEqual([['block1.fc.weight', 'body'], ['block1.fc.bias', 'body'], ['linear1.weight', 'head'], ['linear1.bias', 'head']])
    expect(net.outputShape).toEqual(y.shape)
    expect(() => Net.graph({ inputs: Net.input([10]), outputs: y })).toThrow(/not among the graph's inputs/)
  })

  it('LeNet-5 and the CNN: native output shapes equal TypeScript\'s, conv weights [out, in/groups, kh, kw]', () => {
    for (const net of [models.lenet(), models.cnn()]) {
      const { outputShape } = checkSpec(net.spec)
      expect(net.outputShape).toEqual(outputShape)
      expect(net.outputShape).toEqual([10])
    }
    const lenet = models.lenet()
    expect(lenet.parameters().slice(0, 4).map((p) => [p.name, p.shape])).toEqual([['0.weight', [6, 1, 5, 5]], ['0.bias', [6]], ['3.weight', [16, 6, 5, 5]], ['3.bias', [16]]])
    const grouped = Net.sequential([6, 8, 8], [Net.conv2d(4, 3, { groups: 2 })])
    expect(grouped.parameters()[0]!.shape).toEqual([4, 3, 3, 3])
  })

  it('round-trips the spec: fromSpec(net.spec) predicts identically with the same seed', () => {
    const x = Net.input([784])
    const y = Net.dense(10).apply(Net.relu().apply(Net.dense(32).apply(x, { name: 'hidden' })), { name: 'out' })
    const net = Net.graph({ inputs: x, outputs: y }, { seed: 9 })
    const { x: features } = slice(20)
    for (const again of [Net.fromSpec(net.spec, { seed: 9 }), Net.fromSpec(JSON.stringify(net.spec), { seed: 9 })]) {
      expect(again.spec).toEqual(net.spec)
      expect(again.predict(features)).toEqual(net.predict(features))
    }
    expect(Net.fromSpec(net.spec, { seed: 10 }).predict(features)).not.toEqual(net.predict(features))
    const seq = Net.sequential(784, [Net.dense(16), Net.relu(), Net.dense(10)], { seed: 0 })
    expect(Net.fromSpec(seq.spec).predict(features)).toEqual(seq.predict(features))
    expect(Net.fromSpec(seq.spec).layers).toEqual(seq.layers)
  })

  it('sets tensors by name and checks names and lengths', () => {
    const net = Net.sequential(4, [Net.dense(2)])
    net.setParameter('0.bias', Float32Array.of(1, -1))
    expect(Array.from(net.predict(new Float32Array(4)))).toEqual([1, -1])
    expect(() => net.setParameter('1.bias', new Float32Array(2))).toThrow(/"1.bias" is not a tensor of this net \(it has 0.weight, 0.bias\)/)
    expect(() => net.setParameter('0.bias', new Float32Array(3))).toThrow(/0.bias needs a Float32Array of 2 values \[2\]/)
  })
})

describe('training graphs', () => {
  it('a residual block from the functional API trains on real digits', async () => {
    const x = Net.input([784])
    const h = Net.relu().apply(Net.dense(64).apply(x, { name: 'stem' }))
    const f = Net.dense(64).apply(Net.relu().apply(Net.dense(64).apply(h, { name: 'block.fc1' })), { name: 'block.fc2' })
    const y = Net.dense(10).apply(Net.relu().apply(Net.add().apply([f, h], { name: 'block.add' })), { name: 'head' })
    const net = Net.graph({ inputs: x, outputs: y }, { seed: 0 })
    const data = digits.subset(0, 1500)
    const trainer = new Trainer(net, { batchSize: 50, threads: 2 })
    const before = await trainer.evaluate(data)
    await trainer.fit(data, { epochs: 2 })
    const after = await trainer.evaluate(data)
    expect(after.loss).toBeLessThan(before.loss * 0.5)
    expect(after.accuracy).toBeGreaterThan(0.8)
  })

  it('freeze() stops a layer from changing; unfreeze() lets it train again', async () => {
    const net = Net.sequential(784, [Net.dense(16), Net.relu(), Net.dense(10)], { seed: 3 })
    expect(net.freeze('0')).toBe(2)
    expect(() => net.freeze('7')).toThrow(OptionError)
    const trainer = new Trainer(net, { optimizer: { type: 'sgd', lr: 0.1 }, threads: 1 })
    const start = net.parameters()
    await trainer.fit(digits.subset(0, 500), { epochs: 1 })
    const mid = net.parameters()
    expect(mid[0]!.data).toEqual(start[0]!.data)
    expect(mid[1]!.data).toEqual(start[1]!.data)
    expect(mid[2]!.data).not.toEqual(start[2]!.data)
    net.unfreeze('0')
    await trainer.fit(digits.subset(0, 500), { epochs: 1 })
    expect(net.parameters()[0]!.data).not.toEqual(mid[0]!.data)
  })

  it('a trainer with a group trains only that group', async () => {
    const x = Net.input([784])
    const body = Net.relu().apply(Net.dense(16).apply(x, { name: 'body', group: 'body' }))
    const net = Net.graph({ inputs: x, outputs: Net.dense(10).apply(body, { name: 'head', group: 'head' }) }, { seed: 4 })
    const start = net.parameters()
    await new Trainer(net, { group: 'head', threads: 1 }).fit(digits.subset(0, 300))
    const after = net.parameters()
    expect(after[0]!.data).toEqual(start[0]!.data)
    expect(after[2]!.data).not.toEqual(start[2]!.data)
  })

  it('accepts more than 256 classes', async () => {
    const classes = 300
    const n = 900
    const inputs = Float32Array.from({ length: n * 8 }, (_, i) => Math.sin(i * 0.37))
    const labels = Array.from({ length: n }, (_, i) => (i * 7) % classes)
    const data = Dataset.fromArrays({ inputs, labels, numClasses: classes })
    expect(data.labels).toBeInstanceOf(Uint32Array)
    const net = Net.sequential(8, [Net.dense(32), Net.relu(), Net.dense(classes)])
    const trainer = new Trainer(net, { batchSize: 64, threads: 1 })
    const { epochs } = await trainer.fit(data, { epochs: 1 })
    expect(Number.isFinite(epochs[0]!.loss)).toBe(true)
    const evaluation = await trainer.evaluate(data)
    expect(evaluation.samples).toBe(n)
    expect(evaluation.accuracy).toBeGreaterThanOrEqual(0)
    expect(trainer.trainBatch(inputs.subarray(0, 16), Uint32Array.of(299, 257))).toBeGreaterThan(0)
    const small = Net.sequential(8, [Net.dense(10)])
    await expect(new Trainer(small).fit(data)).rejects.toThrow(/300 classes but the network has 10 outputs/)
  })

  it('regression with mse: predicts the lower half\'s mean intensity from the upper half', async () => {
    const n = 2000
    const upper = new Float32Array(n * 392)
    const targets = new Float32Array(n)
    for (let i = 0; i < n; i++) {
      const img = digits.inputs.subarray(i * 784, (i + 1) * 784)
      for (let j = 0; j < 392; j++) upper[i * 392 + j] = img[j]! / 255
      let sum = 0
      for (let j = 392; j < 784; j++) sum += img[j]! / 255
      targets[i] = (sum / 392) * 10 // scaled to about unit range
    }
    const data = Dataset.fromArrays({ inputs: upper, targets, targetShape: [1], sampleShape: [14, 28] })
    const mean = targets.reduce((a, b) => a + b, 0) / n
    const baseline = targets.reduce((a, t) => a + (t - mean) ** 2, 0) / n // mse of predicting the mean
    const net = Net.sequential(392, [Net.dense(64), Net.relu(), Net.dense(1)], { seed: 0 })
    await expect(new Trainer(net).fit(data)).rejects.toThrow(/pick a loss for targets, e\.g\. \{ type: 'mse' \}/)
    const trainer = new Trainer(net, { loss: { type: 'mse' }, optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 32, threads: 2 })
    const { epochs } = await trainer.fit(data, { epochs: 3 })
    expect(epochs[0]!.accuracy).toBeUndefined()
    const result = await trainer.evaluate(data)
    expect(result.mse).toBeLessThan(baseline * 0.5)
    expect(result.mae).toBeGreaterThan(0)
    expect(result.loss).toBeCloseTo(result.mse!, 4)
    const x = upper.subarray(0, 392 * 4)
    expect(trainer.trainBatch(x, targets.subarray(0, 4))).toBeGreaterThan(0)
    expect(() => trainer.trainBatch(x, [1, 2, 3, 4])).toThrow(/needs float targets/)
    await expect(trainer.fit(digits)).rejects.toThrow(/shape \[28, 28\] \(784 values\) but the network's input shape is \[392\]/)
  })

  it('multi-label with bce_with_logits: even, > 4, closed loop', async () => {
    const n = 2000
    const loops = new Set([0, 6, 8, 9])
    const labels = digits.labels!.subarray(0, n)
    const targets = new Float32Array(n * 3)
    labels.forEach((d, i) => targets.set([d % 2 === 0 ? 1 : 0, d > 4 ? 1 : 0, loops.has(d) ? 1 : 0], i * 3))
    const data = Dataset.fromArrays({ inputs: digits.inputs.subarray(0, n * 784), targets, targetShape: [3], sampleShape: [28, 28] })
    // Baseline: always predicting each label's majority value.
    let majority = 0
    for (let k = 0; k < 3; k++) {
      let ones = 0
      for (let i = 0; i < n; i++) ones += targets[i * 3 + k]!
      majority += Math.max(ones, n - ones) / n / 3
    }
    const net = Net.sequential(784, [Net.dense(64), Net.relu(), Net.dense(3)], { seed: 0 })
    const trainer = new Trainer(net, { loss: { type: 'bce_with_logits' }, batchSize: 32, threads: 2 })
    await trainer.fit(data, { epochs: 3 })
    const { accuracy } = await trainer.evaluate(data)
    expect(accuracy).toBeGreaterThan(Math.max(0.85, majority + 0.15))
  })

  it('applies a learning-rate schedule per step and clips the gradient norm', async () => {
    const net = Net.sequential(784, [Net.dense(10)])
    const schedule = { type: 'cosine', totalSteps: 20 } as const
    {
      const trainer = new Trainer(net, { schedule, optimizer: { type: 'sgd', lr: 0.1 }, batchSize: 50 })
      const { epochs } = await trainer.fit(digits.subset(0, 500), { epochs: 2 })
      expect(epochs[1]!.lr).toBeLessThan(epochs[0]!.lr)
      expect(epochs[1]!.lr).toBeLessThan(0.01)
    }
    {
      const trainer = new Trainer(net, { clipNorm: 1e-6, optimizer: { type: 'sgd', lr: 1 } })
      const before = net.parameters()[0]!.data
      const { x, labels } = slice(32)
      trainer.trainBatch(x, labels)
      const after = net.parameters()[0]!.data
      let sq = 0
      for (let i = 0; i < before.length; i++) sq += (after[i]! - before[i]!) ** 2
      expect(Math.sqrt(sq)).toBeLessThanOrEqual(1.01e-6)
      expect(sq).toBeGreaterThan(0)
    }
  })

  it('trains with adamw and rmsprop', async () => {
    // 32 steps: AdamW at lr 1e-3 gets 2.31 → 1.60 here, so it runs at 3e-3.
    for (const optimizer of [{ type: 'adamw', lr: 3e-3 }, { type: 'rmsprop', lr: 1e-3, centered: true }] as const) {
      const net = Net.sequential(784, [Net.dense(32), Net.relu(), Net.dense(10)], { seed: 1 })
      const trainer = new Trainer(net, { optimizer, threads: 1 })
      const data = digits.subset(0, 1000)
      const before = await trainer.evaluate(data)
      await trainer.fit(data, { epochs: 2 })
      expect((await trainer.evaluate(data)).loss).toBeLessThan(before.loss * 0.6)
    }
  })
})
