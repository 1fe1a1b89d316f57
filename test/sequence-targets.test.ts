/**
 * Class labels per position for sequence models (a `[T, classes]` output) through
 * `trainBatch`, and nets with several inputs refused by the one-array entry points.
 */
import { describe, expect, it } from 'vitest'
import { Net, ShapeError, Trainer } from '../src/index.js'

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

  it('a net with two inputs is refused by predict, naming its inputs', () => {
    const a = Net.input([5], { name: 'x' })
    const b = Net.input([3], { name: 'h' })
    const out = Net.add().apply([Net.dense(4).apply(a), Net.dense(4).apply(b)])
    const net = Net.graph({ inputs: [a, b], outputs: out })
    expect(() => net.predict(new Float32Array(5))).toThrow(/2 \(x, h\).*step API/)
  })
})
