import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { IdxFormatError } from '../src/errors.js'
import { parseIdx, parseImages, parseLabels, readIdxFile } from '../src/mnist/idx.js'
import { loadFiles } from '../src/mnist/load.js'
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

/** `n` pseudo-random bytes (a fixed LCG), which gzip barely compresses. */
function noise(n: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    bytes[i] = x >>> 24
  }
  return bytes
}

/** Images `[count, 28, 28]` of noise: large enough for many reads and zlib chunks. */
function noiseImages(count: number, dataImages = count): Uint8Array {
  return encodeIdx([count, 28, 28], noise(dataImages * 784))
}

/** A multi-member gzip: each `memberBytes`-long slice of `bytes` compressed on its own. */
function gzipMembers(bytes: Uint8Array, memberBytes: number, firstMemberBytes = memberBytes): Uint8Array {
  const members: Uint8Array[] = [gzipSync(bytes.subarray(0, firstMemberBytes))]
  for (let start = firstMemberBytes; start < bytes.length; start += memberBytes) {
    members.push(gzipSync(bytes.subarray(start, start + memberBytes)))
  }
  return Buffer.concat(members)
}

/**
 * `gz` with a file name of `length` bytes in its gzip header (flag FNAME), so its first
 * few KiB decompress to nothing and the IDX header is only seen once the stream runs.
 */
function withLongFileName(gz: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(gz.length + length + 1)
  out.set(gz.subarray(0, 10))
  out[3] = (out[3] as number) | 0x08
  out.fill(0x61, 10, 10 + length) // 'a…a', then the terminating 0
  out.set(gz.subarray(10), 10 + length + 1)
  return out
}

function sameBytes(actual: Uint8Array, expected: Uint8Array): boolean {
  return Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)
}

describe('readIdxFile streaming gzip', () => {
  let dir: string
  let n = 0
  beforeAll(async () => {
    dir = await makeTempDir()
  })
  afterAll(async () => {
    await removeTempDir(dir)
  })

  /** Writes `bytes` as is (already gzipped) to a fresh file and returns its path. */
  async function put(bytes: Uint8Array, name = 'images-idx3-ubyte.gz'): Promise<string> {
    const path = join(dir, `${n++}-${name}`)
    await writeFile(path, bytes)
    return path
  }

  it('decompresses a file of many reads and chunks byte-identical to the raw file', async () => {
    const bytes = noiseImages(2000) // 1.5 MB, about 6 reads of compressed data
    const gz = await readIdxFile(await put(gzipSync(bytes)))
    const raw = await readIdxFile(await put(bytes, 'images-idx3-ubyte'))
    expect(gz.length).toBe(bytes.length)
    expect(sameBytes(gz, bytes)).toBe(true)
    expect(sameBytes(raw, bytes)).toBe(true)
    expect(Object.getPrototypeOf(gz)).toBe(Uint8Array.prototype)
    expect(parseImages(gz, 'gz').count).toBe(2000)
  })

  it('decompresses a multi-member gzip, even with the header split between members', async () => {
    const bytes = noiseImages(1000)
    for (const gzBytes of [gzipMembers(bytes, 7_000), gzipMembers(bytes, 50_000, 3), gzipMembers(bytes, 100_000, 9)]) {
      expect(sameBytes(await readIdxFile(await put(gzBytes)), bytes)).toBe(true)
    }
  })

  it('decompresses a file whose header only shows once the stream runs', async () => {
    const bytes = noiseImages(1000)
    const longName = withLongFileName(gzipSync(bytes), 10_000)
    expect(sameBytes(gunzipSync(longName), bytes)).toBe(true) // still valid gzip
    expect(sameBytes(await readIdxFile(await put(longName)), bytes)).toBe(true)
    // ... and with the IDX header split between the first two chunks of the stream.
    const split = withLongFileName(gzipMembers(bytes, 64_000, 3), 10_000)
    expect(sameBytes(await readIdxFile(await put(split)), bytes)).toBe(true)
  })

  it('reports a header declaring more data than the stream holds as TRUNCATED', async () => {
    const short = noiseImages(2000, 1500) // declares 2000 images, holds 1500
    for (const gzBytes of [gzipSync(short), withLongFileName(gzipSync(short), 6000), gzipMembers(short, 20_000)]) {
      const path = await put(gzBytes)
      const bytes = await readIdxFile(path)
      expect(sameBytes(bytes, short)).toBe(true) // the bytes there are, as for a raw file
      const error = await expectIdxError(() => parseImages(bytes, path), 'TRUNCATED', path)
      expect(error.message).toContain(`need ${2000 * 784} data bytes after the 16-byte header`)
      expect(error.message).toContain(`only ${1500 * 784} are present`)
    }
    const labels = await writeIdx(dir, 'labels-idx1-ubyte', labelsIdx(new Array(2000).fill(1)))
    const images = await put(gzipSync(short))
    await expectIdxError(() => loadFiles(images, labels), 'TRUNCATED', images)
  })

  it('reports a stream holding more data than its header declares as TRAILING_BYTES', async () => {
    for (const extra of [1, 2, 500 * 784]) {
      const long = encodeIdx([1500, 28, 28], noise(1500 * 784 + extra))
      for (const gzBytes of [gzipSync(long), withLongFileName(gzipSync(long), 6000)]) {
        const path = await put(gzBytes)
        const bytes = await readIdxFile(path)
        expect(sameBytes(bytes, long)).toBe(true)
        const error = await expectIdxError(() => parseImages(bytes, path), 'TRAILING_BYTES', path)
        expect(error.message).toContain(`(${extra} extra)`)
      }
    }
    const labels = await writeIdx(dir, 'labels-1500-idx1-ubyte', labelsIdx(new Array(1500).fill(2)))
    const images = await put(gzipSync(encodeIdx([1500, 28, 28], noise(1501 * 784))))
    await expectIdxError(() => loadFiles(images, labels), 'TRAILING_BYTES', images)
  })

  it('reports absurd declared sizes as TRUNCATED without allocating them', async () => {
    for (const dims of [
      [60000, 28, 28], // 47 MB from a gzip of ~100 bytes: more than deflate can expand to
      [65536, 65536, 2], // 8 GiB: more than is ever read
      [0xffffffff, 0xffffffff, 0xffffffff],
    ]) {
      const bytes = encodeIdx(dims, noise(100))
      const path = await put(gzipSync(bytes))
      const read = await readIdxFile(path)
      expect(sameBytes(read, bytes)).toBe(true)
      expect(read.buffer.byteLength).toBeLessThan(1 << 20)
      const error = await expectIdxError(() => parseImages(read, path), 'TRUNCATED', path)
      expect(error.message).toContain('only 100 are present')
    }
  })

  it('reports gzip corrupted in the middle as CORRUPT_GZIP naming the file', async () => {
    // 4-bit noise: Huffman-coded (so damage breaks decoding) but only ~2:1, so the
    // damage is met several reads in, after chunks of the file have been placed.
    const bytes = encodeIdx([2000, 28, 28], noise(2000 * 784).map((b) => b & 0x0f))
    const gz = gzipSync(bytes)
    expect(gz.length).toBeGreaterThan(3 * 256 * 1024)
    for (const damaged of [gz, withLongFileName(gz, 6000)].map((g) => {
      const copy = Uint8Array.from(g)
      const middle = Math.floor(copy.length / 2)
      for (let i = middle; i < middle + 64; i++) copy[i] = (copy[i] as number) ^ 0xa5
      return copy
    })) {
      const path = await put(damaged)
      expect(() => gunzipSync(damaged)).toThrow()
      const error = await expectIdxError(() => readIdxFile(path), 'CORRUPT_GZIP', path)
      expect(error.message).toContain('cannot decompress gzip data')
      expect(error.cause).toBeInstanceOf(Error)
      const labels = await writeIdx(dir, 'labels-2000-idx1-ubyte', labelsIdx(new Array(2000).fill(3)))
      await expectIdxError(() => loadFiles(path, labels), 'CORRUPT_GZIP', path)
    }
  })

  it('reports a bad checksum at the end of the stream as CORRUPT_GZIP', async () => {
    const gz = Uint8Array.from(gzipSync(noiseImages(500)))
    gz[gz.length - 6] = (gz[gz.length - 6] as number) ^ 1 // CRC-32 of the data
    const path = await put(gz)
    const error = await expectIdxError(() => readIdxFile(path), 'CORRUPT_GZIP', path)
    expect(error.message).toContain('incorrect data check')
  })

  it('returns gzipped data that is not IDX as it is, for the parsers to reject', async () => {
    const text = new TextEncoder().encode('not an IDX file at all\n'.repeat(20_000))
    const path = await put(gzipSync(text))
    const bytes = await readIdxFile(path)
    expect(sameBytes(bytes, text)).toBe(true)
    const error = await expectIdxError(() => parseImages(bytes, path), 'BAD_MAGIC', path)
    expect(error.message).toContain('expected the magic number 0x00000803')
    const empty = await put(gzipSync(new Uint8Array(0)))
    expect((await readIdxFile(empty)).length).toBe(0)
    await expectIdxError(async () => parseLabels(await readIdxFile(empty), empty), 'TRUNCATED', empty)
  })

  it('rethrows other file-system errors unchanged', async () => {
    const error = await readIdxFile(dir).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).not.toBeInstanceOf(IdxFormatError)
    expect((error as NodeJS.ErrnoException).code).toBe('EISDIR')
  })
})
