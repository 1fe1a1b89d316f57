/**
 * Class labels per position for sequence models (a `[T, classes]` output) through
 * `trainBatch`, and nets with several inputs refused by the one-array entry points.
 */
import { describe, expect, it } from 'vitest'
import { Dataset, Net, OptionError, ShapeError, Trainer } from '../src/index.js'

describe('per-position labels', () => {
  it('trainBatch takes one label per position of a [T, V] output and learns them', () => {
    const net = Net.sequential([6, 4], [Net.dense(5)], { seed: 3 })
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 0.05 } })
    const rows = 3
    const x = Float32Array.from({ length: rows * 24 }, (_, i) => ((i * 7) % 11) / 5 - 1)
    const y = Uint32Array.from({ length: rows * 6 }, (_, i) => (i * 3) % 5)
    const first = trainer.trainBatch(x, y)
    let last = first
    for (let i = 0; i < 60; i++) last = trainer.trainBatch(x, y)
    expect(first).toBeGreaterThan(1)
    expect(last).toBeLessThan(0.8 * first)
    // A wrong count names both valid counts and the output shape.
    expect(() => trainer.trainBatch(x, y.subarray(0, 9))).toThrow(ShapeError)
    expect(() => trainer.trainBatch(x, y.subarray(0, 9))).toThrow(/need 3 labels or 18 \(one per position of the output \[6, 5\]\), got 9/)
  })

  it('a Dataset with labelsPerSample trains a tagger with fit and evaluate, and subset/select/split keep each sample\'s labels', async () => {
    // A tagger: the label of each of 6 positions is the argmax of that position's 4 features.
    const n = 600
    const x = Float32Array.from({ length: n * 24 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1)
    const y = new Uint8Array(n * 6)
    for (let p = 0; p < n * 6; p++) {
      const row = x.subarray(p * 4, p * 4 + 4)
      y[p] = row.indexOf(Math.max(...row))
    }
    const data = Dataset.fromArrays({ inputs: x, labels: y, labelsPerSample: 6, sampleShape: [6, 4], numClasses: 4 })
    expect([data.size, data.labelsPerSample]).toEqual([n, 6])
    expect([...data.sample(7).labels!]).toEqual([...y.subarray(42, 48)])
    expect([...data.select([9, 2]).sample(1).labels!]).toEqual([...y.subarray(12, 18)])
    expect([...data.subset(5, 9).sample(0).labels!]).toEqual([...y.subarray(30, 36)])
    const [train, test] = data.split(500, { seed: 1 })
    expect(train.labelsPerSample).toBe(6)
    const net = Net.sequential([6, 4], [Net.dense(16), Net.relu(), Net.dense(4)], { seed: 2 })
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 0.01 }, batchSize: 50 })
    const before = await trainer.evaluate(test)
    await trainer.fit(train, { epochs: 30 })
    const after = await trainer.evaluate(test)
    // Accuracy counts positions: chance is 0.25.
    expect(before.accuracy!).toBeLessThan(0.5)
    expect(after.accuracy!).toBeGreaterThan(0.85)
    expect(after.loss).toBeLessThan(before.loss * 0.5)
    // The output must be [positions, classes].
    const flat = new Trainer(Net.sequential([6, 4], [Net.flatten(), Net.dense(4)]), {})
    await expect(flat.fit(train, { epochs: 1 })).rejects.toThrow(/6 labels per sample.*\[6, classes\], got \[4\]/)
    expect(() => Dataset.fromArrays({ inputs: x, labels: y.subarray(0, 7), labelsPerSample: 6 })).toThrow(/not a multiple of labelsPerSample/)
    expect(() => Dataset.fromArrays({ inputs: x, labels: y, labelsPerSample: 0 })).toThrow(OptionError)
  })

  it('a net with two inputs is refused by predict, naming its inputs', () => {
    const a = Net.input([5], { name: 'x' })
    const b = Net.input([3], { name: 'h' })
    const out = Net.add().apply([Net.dense(4).apply(a), Net.dense(4).apply(b)])
    const net = Net.graph({ inputs: [a, b], outputs: out })
    expect(() => net.predict(new Float32Array(5))).toThrow(/2 \(x, h\).*step API/)
  })
})
