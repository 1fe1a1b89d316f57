import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { IdxFormatError } from '../src/errors.js'
import { parseIdx, parseImages, parseLabels, readIdxFile } from '../src/mnist/idx.js'
import {
  encodeIdx,
  expectIdxError,
  imagesIdx,
  labelsIdx,
  makeTempDir,
  removeTempDir,
  writeIdx,
} from './helpers/idx.js'

const FILE = 'fixture.idx'

describe('parseIdx', () => {
  it('reads dims big-endian and returns a zero-copy view of the data', () => {
    const bytes = encodeIdx([2, 300, 1], Array.from({ length: 600 }, (_, i) => i % 256))
    const parsed = parseIdx(bytes, FILE)
    expect(parsed.dataType).toBe('uint8')
    expect(parsed.dims).toEqual([2, 300, 1])
    expect(parsed.data.length).toBe(600)
    expect(parsed.data.buffer).toBe(bytes.buffer)
    expect(parsed.data.byteOffset).toBe(16)
    expect(parsed.data[299]).toBe(299 % 256)
  })

  it('honours the byteOffset of its input', () => {
    const inner = labelsIdx([3, 1, 4])
    const outer = new Uint8Array(inner.length + 5)
    outer.set(inner, 5)
    expect(Array.from(parseIdx(outer.subarray(5), FILE).data)).toEqual([3, 1, 4])
  })

  it('accepts a count of 0', () => {
    expect(parseIdx(encodeIdx([0, 28, 28], []), FILE).dims).toEqual([0, 28, 28])
  })

  it('rejects a 0 inner dimension as BAD_DIMENSIONS', async () => {
    const error = await expectIdxError(() => parseIdx(encodeIdx([5, 0, 28], []), FILE), 'BAD_DIMENSIONS', FILE)
    expect(error.message).toContain('[5, 0, 28]')
  })

  it('rejects 0 dimensions as BAD_DIMENSIONS', async () => {
    await expectIdxError(() => parseIdx(encodeIdx([], []), FILE), 'BAD_DIMENSIONS', FILE)
  })

  it('rejects a file shorter than the magic number as TRUNCATED', async () => {
    const error = await expectIdxError(() => parseIdx(new Uint8Array([0, 0, 8]), FILE), 'TRUNCATED', FILE)
    expect(error.message).toContain('3 bytes')
  })

  it('rejects a file shorter than its dims header as TRUNCATED', async () => {
    const bytes = imagesIdx(2).subarray(0, 10)
    const error = await expectIdxError(() => parseIdx(bytes, FILE), 'TRUNCATED', FILE)
    expect(error.message).toContain('16-byte header')
  })

  it('rejects missing data as TRUNCATED, stating expected and actual bytes', async () => {
    const bytes = imagesIdx(2, 4, 3)
    const error = await expectIdxError(() => parseIdx(bytes.subarray(0, bytes.length - 5), FILE), 'TRUNCATED', FILE)
    expect(error.message).toContain('need 24 data bytes')
    expect(error.message).toContain('only 19 are present')
  })

  it('rejects extra data as TRAILING_BYTES', async () => {
    const full = labelsIdx([1, 2, 3])
    const longer = new Uint8Array(full.length + 2)
    longer.set(full)
    const error = await expectIdxError(() => parseIdx(longer, FILE), 'TRAILING_BYTES', FILE)
    expect(error.message).toContain('2 extra')
  })

  it('rejects a non-zero leading magic as BAD_MAGIC', async () => {
    const bytes = labelsIdx([1])
    bytes[0] = 0x12
    const error = await expectIdxError(() => parseIdx(bytes, FILE), 'BAD_MAGIC', FILE)
    expect(error.message).toContain('0x12000801')
  })

  it('rejects other element types as BAD_MAGIC naming the type code', async () => {
    const floats = encodeIdx([1], [0, 0, 0, 0], 0x0d)
    const error = await expectIdxError(() => parseIdx(floats, FILE), 'BAD_MAGIC', FILE)
    expect(error.message).toContain('0x0d')
    expect(error.message).toContain('float32')
  })

  it('points out gzip data passed unparsed', async () => {
    const error = await expectIdxError(() => parseIdx(gzipSync(labelsIdx([1])), FILE), 'BAD_MAGIC', FILE)
    expect(error.message).toContain('gzip')
  })
})

describe('parseImages / parseLabels', () => {
  it('parse well-formed files', () => {
    const images = parseImages(imagesIdx(3, 4, 2), FILE)
    expect([images.count, images.rows, images.cols, images.pixels.length]).toEqual([3, 4, 2, 24])
    expect(images.pixels[8]).toBe(7) // image 1, pixel 0
    const labels = parseLabels(labelsIdx([9, 0, 5]), FILE)
    expect(labels.count).toBe(3)
    expect(Array.from(labels.labels)).toEqual([9, 0, 5])
  })

  it('reject a labels file given as images with BAD_MAGIC', async () => {
    const error = await expectIdxError(() => parseImages(labelsIdx([1, 2]), FILE), 'BAD_MAGIC', FILE)
    expect(error.message).toContain('expected the magic number 0x00000803')
    expect(error.message).toContain('found 0x00000801')
    expect(error.message).toContain('swapped')
  })

  it('reject an images file given as labels with BAD_MAGIC', async () => {
    const error = await expectIdxError(() => parseLabels(imagesIdx(2), FILE), 'BAD_MAGIC', FILE)
    expect(error.message).toContain('expected the magic number 0x00000801')
    expect(error.message).toContain('found 0x00000803')
  })

  it('reject a truncated header', async () => {
    await expectIdxError(() => parseImages(new Uint8Array([0, 0]), FILE), 'TRUNCATED', FILE)
    await expectIdxError(() => parseLabels(labelsIdx([1]).subarray(0, 6), FILE), 'TRUNCATED', FILE)
  })

  it('reject truncated and overlong data', async () => {
    const images = imagesIdx(2)
    await expectIdxError(() => parseImages(images.subarray(0, images.length - 1), FILE), 'TRUNCATED', FILE)
    const labels = new Uint8Array(11)
    labels.set(labelsIdx([1, 2]))
    await expectIdxError(() => parseLabels(labels, FILE), 'TRAILING_BYTES', FILE)
  })
})

describe('readIdxFile', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir()
  })
  afterAll(async () => {
    await removeTempDir(dir)
  })

  it('reads raw and gzipped files to the same bytes', async () => {
    const bytes = imagesIdx(5)
    const raw = await readIdxFile(await writeIdx(dir, 'a-idx3-ubyte', bytes))
    const gz = await readIdxFile(await writeIdx(dir, 'a-idx3-ubyte.gz', bytes))
    expect(raw).toEqual(bytes)
    expect(gz).toEqual(bytes)
    expect(Object.getPrototypeOf(gz)).toBe(Uint8Array.prototype)
  })

  it('detects gzip by content, not by name', async () => {
    const path = await writeIdx(dir, 'plain-name', gzipSync(labelsIdx([4, 2])))
    expect(parseLabels(await readIdxFile(path), path).count).toBe(2)
  })

  it('reports a missing file as NOT_FOUND', async () => {
    const path = join(dir, 'does-not-exist.gz')
    const error = await expectIdxError(() => readIdxFile(path), 'NOT_FOUND', path)
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT')
  })

  it('reports a gzip header followed by garbage as CORRUPT_GZIP', async () => {
    const garbage = new Uint8Array(64).map((_, i) => (i * 37 + 11) % 256)
    const bytes = new Uint8Array([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, ...garbage])
    const path = await writeIdx(dir, 'garbage-idx1-ubyte', bytes)
    const error = await expectIdxError(() => readIdxFile(path), 'CORRUPT_GZIP', path)
    expect(error.cause).toBeInstanceOf(Error)
  })

  it('reports a truncated gzip stream as CORRUPT_GZIP', async () => {
    const gz = gzipSync(imagesIdx(50))
    const path = await writeIdx(dir, 'cut-idx3-ubyte', gz.subarray(0, Math.floor(gz.length / 2)))
    const error = await expectIdxError(() => readIdxFile(path), 'CORRUPT_GZIP', path)
    expect(error.cause).toBeInstanceOf(Error)
    expect(error.message).toContain('cannot decompress')
  })

  it('is an IdxFormatError subclass of Error', async () => {
    await expect(readIdxFile(join(dir, 'nope'))).rejects.toBeInstanceOf(IdxFormatError)
  })
})
