import { describe, expect, it } from 'vitest'

import { Dataset } from '../src/dataset.js'
import { OptionError, ShapeError } from '../src/errors.js'
import { createRandom, permutation, shuffleInPlace } from '../src/random.js'

/** `size` samples of `dim` bytes; sample i is filled with i, its label is i % classes. */
function byteDataset(size: number, dim = 4, classes = 3): Dataset {
  const inputs = new Uint8Array(size * dim)
  for (let i = 0; i < size; i++) inputs.fill(i % 256, i * dim, (i + 1) * dim)
  const labels = Array.from({ length: size }, (_, i) => i % classes)
  return Dataset.fromArrays({ inputs, labels, sampleShape: [dim], numClasses: classes })
}

/** Runs `action` and returns what it threw. */
function thrown(action: () => unknown): unknown {
  try {
    action()
  } catch (error) {
    return error
  }
  throw new Error('expected an error')
}

function expectOptionError(action: () => unknown, field: string): OptionError {
  const error = thrown(action)
  expect(error).toBeInstanceOf(OptionError)
  expect((error as OptionError).field).toBe(field)
  expect((error as OptionError).message).toContain(field)
  return error as OptionError
}

function expectShapeError(action: () => unknown, ...phrases: string[]): ShapeError {
  const error = thrown(action)
  expect(error).toBeInstanceOf(ShapeError)
  for (const phrase of phrases) expect((error as ShapeError).message).toContain(phrase)
  return error as ShapeError
}

describe('Dataset.fromArrays', () => {
  it('builds a uint8 dataset and keeps the arrays by reference', () => {
    const inputs = new Uint8Array(2 * 6)
    const labels = new Uint8Array([1, 0])
    const dataset = Dataset.fromArrays({ inputs, labels, sampleShape: [2, 3] })
    expect(dataset.inputs).toBe(inputs)
    expect(dataset.labels).toBe(labels)
    expect(dataset.size).toBe(2)
    expect(dataset.inputDim).toBe(6)
    expect(dataset.sampleShape).toEqual([2, 3])
    expect(Object.isFrozen(dataset.sampleShape)).toBe(true)
    expect(dataset.dtype).toBe('uint8')
    expect(dataset.numClasses).toBe(2)
  })

  it('builds a float32 dataset, inferring a flat sample shape and numClasses', () => {
    const dataset = Dataset.fromArrays({ inputs: new Float32Array([0.5, -1, 2, 3, 4, 5]), labels: [4, 2] })
    expect(dataset.dtype).toBe('float32')
    expect(dataset.sampleShape).toEqual([3])
    expect(dataset.numClasses).toBe(5)
  })

  it('converts number[] and Int32Array labels to a Uint8Array', () => {
    const fromArray = Dataset.fromArrays({ inputs: new Uint8Array(3), labels: [0, 255, 7], numClasses: 256 })
    expect(fromArray.labels).toBeInstanceOf(Uint8Array)
    expect(Array.from(fromArray.labels)).toEqual([0, 255, 7])
    const fromInt32 = Dataset.fromArrays({ inputs: new Uint8Array(2), labels: new Int32Array([1, 0]) })
    expect(Array.from(fromInt32.labels)).toEqual([1, 0])
  })

  it('rejects inputs that are not Uint8Array or Float32Array, naming inputs', () => {
    const plain = expectOptionError(
      () => Dataset.fromArrays({ inputs: [1, 2, 3] as unknown as Float32Array, labels: [0] }),
      'inputs',
    )
    expect(plain.message).toContain('Float32Array.from')
    expectOptionError(
      () => Dataset.fromArrays({ inputs: new Float64Array(3) as unknown as Float32Array, labels: [0] }),
      'inputs',
    )
  })

  it('stores labels as bytes up to 256 classes and as Uint32Array beyond', () => {
    const wide = Dataset.fromArrays({ inputs: new Uint8Array(3), labels: [0, 256, 70000] })
    expect(wide.labels).toBeInstanceOf(Uint32Array)
    expect(wide.numClasses).toBe(70001)
    expect(Array.from(wide.labels!)).toEqual([0, 256, 70000])
    const u16 = Dataset.fromArrays({ inputs: new Uint8Array(2), labels: new Uint16Array([300, 2]) })
    expect(u16.labels).toBeInstanceOf(Uint32Array)
    const u32 = new Uint32Array([1, 2])
    expect(Dataset.fromArrays({ inputs: new Uint8Array(2), labels: u32, numClasses: 1000 }).labels).toBe(u32)
    const bytes = Dataset.fromArrays({ inputs: new Uint8Array(2), labels: new Uint8Array([1, 2]), numClasses: 300 })
    expect(bytes.labels).toBeInstanceOf(Uint32Array)
    expect(Dataset.fromArrays({ inputs: new Uint8Array(2), labels: u32 }).labels).toBeInstanceOf(Uint8Array)
    // Views and copies keep the label type.
    expect(wide.subset(1).labels).toBeInstanceOf(Uint32Array)
    expect(Array.from(wide.select([2, 0]).labels!)).toEqual([70000, 0])
    expect(wide.sample(2).label).toBe(70000)
  })

  it('rejects labels that are negative, fractional or not numbers, naming the index', () => {
    expectOptionError(() => Dataset.fromArrays({ inputs: new Uint8Array(2), labels: [-1, 0] }), 'labels[0]')
    expectOptionError(() => Dataset.fromArrays({ inputs: new Uint8Array(2), labels: [0, 1.5] }), 'labels[1]')
    expectOptionError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(2), labels: ['1', 0] as unknown as number[] }),
      'labels[0]',
    )
    expectOptionError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(2), labels: 3 as unknown as number[] }),
      'labels',
    )
  })

  it('rejects labels at or above numClasses, naming the index', () => {
    const error = expectOptionError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(3), labels: [0, 1, 2], numClasses: 2 }),
      'labels[2]',
    )
    expect(error.message).toContain('numClasses (2)')
  })

  it('rejects numClasses that are not positive integers', () => {
    for (const numClasses of [0, -1, 2 ** 32, 2.5, Number.NaN]) {
      expectOptionError(
        () => Dataset.fromArrays({ inputs: new Uint8Array(1), labels: [0], numClasses }),
        'numClasses',
      )
    }
  })

  it('rejects non-positive or fractional sampleShape entries, naming the entry', () => {
    expectOptionError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(4), labels: [0], sampleShape: [2, 0] }),
      'sampleShape[1]',
    )
    expectOptionError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(4), labels: [0], sampleShape: [1.5, 2] }),
      'sampleShape[0]',
    )
    expectOptionError(() => Dataset.fromArrays({ inputs: new Uint8Array(4), labels: [0], sampleShape: [] }), 'sampleShape')
  })

  it('rejects inputs whose length is not a multiple of the sample size', () => {
    expectShapeError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(10), labels: [0, 1], sampleShape: [2, 2] }),
      'inputs has length 10',
      'multiple',
      '[2, 2]',
    )
    expectShapeError(() => Dataset.fromArrays({ inputs: new Uint8Array(5), labels: [0, 1] }), 'inputs', 'labels')
  })

  it('rejects inputs and labels with different sample counts', () => {
    expectShapeError(
      () => Dataset.fromArrays({ inputs: new Uint8Array(12), labels: [0, 1], sampleShape: [4] }),
      'inputs holds 3 samples',
      'labels has 2 entries',
    )
  })

  it('rejects NaN and Infinity in float inputs, naming the sample', () => {
    const inputs = new Float32Array(12)
    inputs[7] = Number.NaN
    expectShapeError(() => Dataset.fromArrays({ inputs, labels: [0, 1, 0], sampleShape: [4] }), 'sample 1', 'NaN')
    inputs[7] = 0
    inputs[11] = Number.NEGATIVE_INFINITY
    expectShapeError(() => Dataset.fromArrays({ inputs, labels: [0, 1, 0], sampleShape: [4] }), 'sample 2', 'Infinity')
  })

  it('accepts an empty dataset only when its shape and classes are given', () => {
    const empty = Dataset.fromArrays({ inputs: new Uint8Array(0), labels: [], sampleShape: [3], numClasses: 2 })
    expect(empty.size).toBe(0)
    expect(() => Dataset.fromArrays({ inputs: new Uint8Array(0), labels: [], numClasses: 2 })).toThrow(ShapeError)
    expectOptionError(() => Dataset.fromArrays({ inputs: new Uint8Array(0), labels: [], sampleShape: [3] }), 'numClasses')
  })

  it('cannot be constructed directly', () => {
    const Unchecked = Dataset as unknown as new (...args: unknown[]) => Dataset
    expect(() => new Unchecked(Symbol('fake'), {})).toThrow(/fromArrays/)
  })
})

describe('Dataset views and copies', () => {
  it('subset is a zero-copy view sharing the buffer', () => {
    const dataset = byteDataset(10)
    const part = dataset.subset(2, 5)
    expect(part.size).toBe(3)
    expect(part.inputs.buffer).toBe(dataset.inputs.buffer)
    expect(part.labels.buffer).toBe(dataset.labels.buffer)
    expect(part.inputs.byteOffset).toBe(2 * 4)
    expect(part.sample(0).input[0]).toBe(2)
    part.inputs[0] = 99
    expect(dataset.inputs[8]).toBe(99)
    expect(dataset.subset(7).size).toBe(3)
    expect(dataset.subset(10).size).toBe(0)
    expect(part.sampleShape).toBe(dataset.sampleShape)
    expect(part.numClasses).toBe(3)
  })

  it('subset rejects out-of-range bounds', () => {
    const dataset = byteDataset(4)
    expectOptionError(() => dataset.subset(-1), 'start')
    expectOptionError(() => dataset.subset(0, 5), 'end')
    expectOptionError(() => dataset.subset(3, 2), 'end')
    expectOptionError(() => dataset.subset(0.5), 'start')
  })

  it('select copies the chosen samples in order', () => {
    const dataset = byteDataset(6)
    const picked = dataset.select([5, 0, 5])
    expect(picked.size).toBe(3)
    expect(picked.inputs.buffer).not.toBe(dataset.inputs.buffer)
    expect(Array.from(picked.inputs)).toEqual([5, 5, 5, 5, 0, 0, 0, 0, 5, 5, 5, 5])
    expect(Array.from(picked.labels)).toEqual([2, 0, 2])
    picked.inputs[0] = 42
    expect(dataset.inputs[20]).toBe(5)
    expectOptionError(() => dataset.select([0, 6]), 'indices[1]')
  })

  it('select keeps float32 inputs', () => {
    const dataset = Dataset.fromArrays({ inputs: new Float32Array([0.25, 0.5, 0.75, 1]), labels: [0, 1] })
    const picked = dataset.select(new Uint32Array([1]))
    expect(picked.inputs).toBeInstanceOf(Float32Array)
    expect(Array.from(picked.inputs)).toEqual([0.75, 1])
  })

  it('sample returns a view and the label', () => {
    const dataset = byteDataset(3)
    const { input, label } = dataset.sample(2)
    expect(Array.from(input)).toEqual([2, 2, 2, 2])
    expect(input.buffer).toBe(dataset.inputs.buffer)
    expect(label).toBe(2)
    expectOptionError(() => dataset.sample(3), 'index')
  })

  it('classCounts counts labels per class', () => {
    expect(Array.from(byteDataset(10).classCounts())).toEqual([4, 3, 3])
  })
})

describe('Dataset.split', () => {
  /** The sample ids (first input byte) of a byteDataset part. */
  const ids = (part: Dataset) => Array.from({ length: part.size }, (_, i) => part.sample(i).input[0] as number)

  it('gives exact counts for fractions and integers', () => {
    const dataset = byteDataset(100)
    for (const [first, expected] of [[0.8, 80], [0.29, 29], [0.5, 50], [0.001, 0], [37, 37], [0, 0], [100, 100], [1, 1]]) {
      const [a, b] = dataset.split(first as number)
      expect(a.size).toBe(expected)
      expect(b.size).toBe(100 - (expected as number))
    }
    expect(byteDataset(10).split(0.7)[0].size).toBe(7)
  })

  it('with the same seed is reproducible, and covers every sample once', () => {
    const dataset = byteDataset(200)
    const [a1, b1] = dataset.split(0.75, { seed: 42 })
    const [a2, b2] = dataset.split(0.75, { seed: 42 })
    expect(a1.inputs).toEqual(a2.inputs)
    expect(b1.labels).toEqual(b2.labels)
    expect([...ids(a1), ...ids(b1)].sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    // Shuffled: not simply the first 150 samples.
    expect(ids(a1)).not.toEqual(Array.from({ length: 150 }, (_, i) => i))
  })

  it('with different seeds differs', () => {
    const dataset = byteDataset(200)
    expect(ids(dataset.split(0.5, { seed: 1 })[0])).not.toEqual(ids(dataset.split(0.5, { seed: 2 })[0]))
    // The default seed is fixed, so an unseeded split is reproducible too.
    expect(ids(dataset.split(0.5)[0])).toEqual(ids(dataset.split(0.5, { seed: 0 })[0]))
  })

  it('shuffled parts are copies; unshuffled parts are consecutive views', () => {
    const dataset = byteDataset(10)
    const [shuffled] = dataset.split(0.5, { seed: 3 })
    expect(shuffled.inputs.buffer).not.toBe(dataset.inputs.buffer)
    const [head, tail] = dataset.split(4, { shuffle: false })
    expect(ids(head)).toEqual([0, 1, 2, 3])
    expect(ids(tail)).toEqual([4, 5, 6, 7, 8, 9])
    expect(head.inputs.buffer).toBe(dataset.inputs.buffer)
  })

  it('rejects a bad first part size, shuffle flag or seed', () => {
    const dataset = byteDataset(10)
    for (const first of [-1, 1.5, 11, Number.NaN]) expectOptionError(() => dataset.split(first), 'first')
    expectOptionError(() => dataset.split(0.5, { shuffle: 'yes' as unknown as boolean }), 'shuffle')
    expectOptionError(() => dataset.split(0.5, { seed: 1.5 }), 'seed')
  })
})

describe('random', () => {
  it('is deterministic per seed and uniform enough', () => {
    const a = createRandom(123)
    const b = createRandom(123)
    const draws = Array.from({ length: 5 }, () => a.nextUint32())
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(draws)
    expect(createRandom(124).nextUint32()).not.toBe(draws[0])
    const random = createRandom(7)
    const buckets = new Array(10).fill(0)
    for (let i = 0; i < 100_000; i++) buckets[random.nextInt(10)]++
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500)
    for (let i = 0; i < 1000; i++) {
      const x = random.nextFloat()
      expect(x >= 0 && x < 1).toBe(true)
    }
  })

  it('matches the published mulberry32 stream', () => {
    // mulberry32 seeded with 0 first yields 0.26642920868471265 = 1144304738 / 2^32.
    expect(createRandom(0).nextUint32()).toBe(1144304738)
    expect(createRandom(0).nextFloat()).toBe(0.26642920868471265)
  })

  it('permutation and shuffleInPlace produce permutations', () => {
    const order = permutation(50, createRandom(9))
    expect(Array.from(order).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    const letters = ['a', 'b', 'c', 'd']
    expect(shuffleInPlace(letters, createRandom(1)).sort()).toEqual(['a', 'b', 'c', 'd'])
    expect(permutation(0, createRandom(1)).length).toBe(0)
    expectOptionError(() => createRandom(Number.NaN), 'seed')
  })
})

describe('Dataset with float targets', () => {
  const inputs = Float32Array.from({ length: 6 * 4 }, (_, i) => i / 10)
  const targets = Float32Array.from({ length: 6 * 2 }, (_, i) => i)

  it('builds from inputs and targets, inferring or checking the target shape', () => {
    const data = Dataset.fromArrays({ inputs, targets, targetShape: [2], sampleShape: [4] })
    expect(data.kind).toBe('targets')
    expect(data.size).toBe(6)
    expect(data.targets).toBe(targets)
    expect(data.labels).toBeUndefined()
    expect(data.numClasses).toBe(0)
    expect(data.targetDim).toBe(2)
    expect(Dataset.fromArrays({ inputs, targets, sampleShape: [4] }).targetShape).toEqual([2])
    expect(Array.from(data.sample(1).target!)).toEqual([2, 3])
    expect(data.sample(1).label).toBeUndefined()
  })

  it('keeps targets through subset, select and split', () => {
    const data = Dataset.fromArrays({ inputs, targets, targetShape: [2] })
    const part = data.subset(2, 4)
    expect(part.size).toBe(2)
    expect(Array.from(part.targets!)).toEqual([4, 5, 6, 7])
    expect(part.targets!.buffer).toBe(targets.buffer)
    const picked = data.select([5, 0])
    expect(Array.from(picked.targets!)).toEqual([10, 11, 0, 1])
    expect(Array.from(picked.inputs.subarray(0, 4))).toEqual(Array.from(inputs.subarray(20, 24)))
    const [a, b] = data.split(0.5, { seed: 3 })
    expect(a.size + b.size).toBe(6)
    expect(a.targetShape).toEqual([2])
    const sum = (d: Dataset) => d.targets!.reduce((x, y) => x + y, 0)
    expect(sum(a) + sum(b)).toBe(sum(data))
  })

  it('rejects bad targets, naming the field', () => {
    expectOptionError(() => Dataset.fromArrays({ inputs, targets: [1, 2] as never }), 'targets')
    expectOptionError(() => Dataset.fromArrays({ inputs, targets, labels: [0] }), 'targets')
    expectOptionError(() => Dataset.fromArrays({ inputs } as never), 'labels')
    expectOptionError(() => Dataset.fromArrays({ inputs, targets, numClasses: 3 }), 'numClasses')
    expectOptionError(() => Dataset.fromArrays({ inputs, targets, targetShape: [0] }), 'targetShape[0]')
    expectOptionError(() => Dataset.fromArrays({ inputs, labels: [0], targetShape: [2] }), 'targetShape')
    expectOptionError(() => Dataset.fromArrays({ inputs, targets, target: [2] } as never), 'target')
    expectShapeError(() => Dataset.fromArrays({ inputs, targets, targetShape: [5] }), 'targets', 'multiple')
    expectShapeError(() => Dataset.fromArrays({ inputs, targets, targetShape: [3], sampleShape: [4] }), 'inputs', 'targets')
    const bad = targets.slice()
    bad[7] = Number.NaN
    expectShapeError(() => Dataset.fromArrays({ inputs, targets: bad, targetShape: [2] }), 'sample 3', 'NaN')
  })
})
