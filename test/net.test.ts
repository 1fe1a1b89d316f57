import { describe, expect, it } from 'vitest'
import { Dataset, Net, OptionError, ShapeError } from '../src/index.js'

const seedNet = (seed = 0) => Net.sequential(20, [Net.dense(16), Net.relu(), Net.dense(3)], { seed })

describe('Net.sequential', () => {
  it('builds the layers with PyTorch-layout parameters', () => {
    const net = seedNet()
    expect(net.inputDim).toBe(20)
    expect(net.outputDim).toBe(3)
    expect(net.inputShape).toEqual([20])
    expect(net.outputShape).toEqual([3])
    expect(net.layers).toEqual([{ op: 'Linear', outFeatures: 16 }, { op: 'ReLU' }, { op: 'Linear', outFeatures: 3 }])
    expect(net.parameters().every((p) => p.trainable && p.group === '')).toBe(true)
    const params = net.parameters()
    expect(params.map((p) => [p.name, p.shape])).toEqual([
      ['0.weight', [16, 20]],
      ['0.bias', [16]],
      ['2.weight', [3, 16]],
      ['2.bias', [3]],
    ])
    expect(net.parameterCount).toBe(16 * 20 + 16 + 3 * 16 + 3)
  })

  it('initialises like nn.Linear: uniform in ±1/sqrt(fan_in), reproducible from the seed', () => {
    const big = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 3 })
    const [w1, b1, w2] = big.parameters()
    for (const [p, fanIn] of [[w1!, 784], [b1!, 784], [w2!, 500]] as const) {
      const bound = 1 / Math.sqrt(fanIn)
      let min = Infinity, max = -Infinity, sum = 0, sumSq = 0
      for (const v of p.data) { min = Math.min(min, v); max = Math.max(max, v); sum += v; sumSq += v * v }
      expect(max).toBeLessThanOrEqual(bound)
      expect(min).toBeGreaterThanOrEqual(-bound)
      if (p.data.length > 1000) {
        // Uniform(-b, b): mean 0, variance b²/3; the extremes come close to ±b.
        expect(Math.abs(sum / p.data.length)).toBeLessThan(bound * 0.02)
        expect(sumSq / p.data.length / ((bound * bound) / 3)).toBeCloseTo(1, 1)
        expect(max).toBeGreaterThan(bound * 0.99)
      }
    }
    const again = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 3 })
    expect(again.parameters()[0]!.data).toEqual(w1!.data)
    const other = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 4 })
    expect(other.parameters()[0]!.data).not.toEqual(w1!.data)
  })

  it('rejects bad layer specs and options, naming the field', () => {
    const cases: [() => unknown, string][] = [
      [() => Net.sequential(0, [Net.dense(3)]), 'inputDim'],
      [() => Net.sequential(4.5, [Net.dense(3)]), 'inputDim'],
      [() => Net.sequential(4, []), 'layers'],
      [() => Net.dense(0), 'dense.outFeatures'],
      [() => Net.dense(3, { bias: 1 } as never), 'dense.bias'],
      [() => Net.dense(3, { biass: true } as never), 'dense.biass'],
      [() => Net.sequential(4, [Net.relu(), { op: 'Linear', outFeatures: -2 } as never]), 'layers[1].outFeatures'],
      [() => Net.sequential(4, [{ op: 'Linear', outFeatures: 2, units: 3 } as never]), 'layers[0].units'],
      [() => Net.sequential(4, [{ kind: 'conv' } as never]), 'layers[0].op'],
      [() => Net.sequential(4, [Net.add()]), 'layers[0]'],
      [() => Net.sequential([1, 0, 3], [Net.flatten()]), 'input[1]'],
      [() => Net.sequential(4, [Net.dense(3)], { seed: -1 }), 'seed'],
      [() => Net.sequential(4, [Net.dense(3)], { seed: 0.5 }), 'seed'],
    ]
    for (const [fn, field] of cases) {
      expect(fn).toThrow(OptionError)
      try { fn() } catch (e) { expect((e as OptionError).field).toBe(field); expect((e as Error).message).toContain(field) }
    }
  })
})

describe('Net.predict', () => {
  it('returns [rows, outputs] logits that match a forward pass computed in JS', () => {
    const net = seedNet(1)
    const x = Float32Array.from({ length: 5 * 20 }, (_, i) => Math.sin(i))
    const logits = net.predict(x)
    expect(logits.length).toBe(15)
    const [w1, b1, w2, b2] = net.parameters().map((p) => p.data)
    for (let r = 0; r < 5; r++) {
      const h = Array.from({ length: 16 }, (_, o) => {
        let s = b1![o]!
        for (let i = 0; i < 20; i++) s += x[r * 20 + i]! * w1![o * 20 + i]!
        return Math.max(s, 0)
      })
      for (let c = 0; c < 3; c++) {
        let s = b2![c]!
        for (let o = 0; o < 16; o++) s += h[o]! * w2![c * 16 + o]!
        expect(logits[r * 3 + c]).toBeCloseTo(s, 5)
      }
    }
  })

  it('scales u8 pixels by 1/255 exactly as training does', () => {
    const net = seedNet(2)
    const pixels = Uint8Array.from({ length: 2 * 20 }, (_, i) => (i * 37) % 256)
    const features = Float32Array.from(pixels, (v) => v / 255)
    expect(net.predict(pixels)).toEqual(net.predict(features))
    const ds = Dataset.fromArrays({ inputs: pixels, labels: [0, 1], sampleShape: [20] })
    expect(net.predict(ds)).toEqual(net.predict(features))
    expect(net.predictClasses(features).length).toBe(2)
  })

  it('rejects inputs that do not fit the network', () => {
    const net = seedNet()
    expect(() => net.predict(new Float32Array(19))).toThrow(ShapeError)
    expect(() => net.predict(new Float32Array(0))).toThrow(ShapeError)
    expect(() => net.predict([1, 2, 3] as never)).toThrow(OptionError)
    const wrong = Dataset.fromArrays({ inputs: new Float32Array(30), labels: [0, 1, 2], sampleShape: [10] })
    expect(() => net.predict(wrong)).toThrow(/shape \[10\] \(10 values\) but the network's input shape is \[20\]/)
  })
})

describe('Net parameters', () => {
  it('round-trips through setParameters and changes predictions', () => {
    const a = seedNet(5)
    const b = seedNet(6)
    const x = Float32Array.from({ length: 20 }, (_, i) => i / 20)
    expect(a.predict(x)).not.toEqual(b.predict(x))
    b.setParameters(a.parameters())
    expect(b.predict(x)).toEqual(a.predict(x))
  })

  it('rejects wrong counts, sizes and non-finite values', () => {
    const net = seedNet()
    const params = net.parameters()
    expect(() => net.setParameters(params.slice(1))).toThrow(ShapeError)
    expect(() => net.setParameters([new Float32Array(3), ...params.slice(1)])).toThrow(/0.weight needs a Float32Array of 320/)
    const bad = params.map((p) => p.data.slice())
    bad[1]![4] = NaN
    expect(() => net.setParameters(bad)).toThrow(/0.bias\[4\]/)
  })
})
