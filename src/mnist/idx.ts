/**
 * Reading the IDX format used by MNIST and Fashion-MNIST
 * (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
 * `0x00 0x00 <type code> <number of dims>`, one big-endian uint32 per dimension,
 * then the data, row-major. Only unsigned bytes (type code 0x08) are supported,
 * which is what every MNIST-style image and label file uses.
 */

import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'

import { IdxFormatError } from '../errors.js'

/** An IDX array: its element type, dimensions and data. */
export interface IdxArray {
  /** Element type; only unsigned bytes are supported. */
  dataType: 'uint8'
  /** Dimensions, outermost first, e.g. `[60000, 28, 28]`. */
  dims: number[]
  /** The elements, row-major: a view (not a copy) into the parsed bytes. */
  data: Uint8Array
}

/** An IDX images file (magic 0x00000803): `count` images of `rows × cols` bytes. */
export interface IdxImages {
  /** Number of images. */
  count: number
  /** Height of each image in pixels. */
  rows: number
  /** Width of each image in pixels. */
  cols: number
  /** All pixels, image by image, row-major; a view into the parsed bytes. */
  pixels: Uint8Array
}

/** An IDX labels file (magic 0x00000801): one byte per sample. */
export interface IdxLabels {
  /** Number of labels. */
  count: number
  /** The labels; a view into the parsed bytes. */
  labels: Uint8Array
}

/** Magic number of an IDX file of unsigned-byte images (3 dims: count, rows, cols). */
export const IDX_IMAGES_MAGIC = 0x00000803
/** Magic number of an IDX file of unsigned-byte labels (1 dim: count). */
export const IDX_LABELS_MAGIC = 0x00000801

/** IDX type code of unsigned bytes, the only one supported. */
const UINT8_TYPE_CODE = 0x08

/** Names of the IDX type codes, so that an unsupported one can be reported by name. */
const TYPE_CODE_NAMES: Readonly<Record<number, string>> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
}

const gunzipAsync = promisify(gunzip)

/** Formats a magic number the way the IDX specification writes it, e.g. `0x00000803`. */
function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`
}

function hex8(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
}

/**
 * Parses an IDX file of unsigned bytes with any number of dimensions.
 *
 * A first dimension of 0 (an empty file of samples) is accepted; a 0 in any other
 * dimension is not, since such samples would hold no data.
 *
 * @param bytes - The whole (decompressed) file.
 * @param file - Path or name of the file, used in error messages.
 * @returns The dimensions and a zero-copy view of the data.
 * @throws {@link IdxFormatError} with reason `TRUNCATED` (shorter than its header or
 *   its data), `BAD_MAGIC` (not IDX, or an element type other than unsigned byte),
 *   `BAD_DIMENSIONS` (no dimensions, or an empty inner one) or `TRAILING_BYTES`.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) {
    throw new IdxFormatError(
      file,
      'TRUNCATED',
      `file is ${bytes.length} bytes long, shorter than the 4-byte IDX magic number`,
    )
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const hint = isGzip(bytes) ? ' (the file is gzip-compressed; read it with readIdxFile)' : ''
    throw new IdxFormatError(
      file,
      'BAD_MAGIC',
      `not an IDX file: magic number ${hex32(view.getUint32(0))} does not start with two zero bytes${hint}`,
    )
  }
  const typeCode = bytes[2] as number
  if (typeCode !== UINT8_TYPE_CODE) {
    const name = TYPE_CODE_NAMES[typeCode]
    throw new IdxFormatError(
      file,
      'BAD_MAGIC',
      `unsupported IDX data type ${hex8(typeCode)}${name === undefined ? ' (unknown)' : ` (${name})`}; ` +
        `only ${hex8(UINT8_TYPE_CODE)} (unsigned byte) is supported`,
    )
  }
  const rank = bytes[3] as number
  if (rank === 0) {
    throw new IdxFormatError(file, 'BAD_DIMENSIONS', 'IDX header declares 0 dimensions')
  }
  const headerLength = 4 + 4 * rank
  if (bytes.length < headerLength) {
    throw new IdxFormatError(
      file,
      'TRUNCATED',
      `file is ${bytes.length} bytes long, shorter than its ${headerLength}-byte header (${rank} dimensions)`,
    )
  }
  const dims: number[] = []
  for (let k = 0; k < rank; k++) dims.push(view.getUint32(4 + 4 * k))
  const emptyInner = dims.findIndex((d, k) => k > 0 && d === 0)
  if (emptyInner !== -1) {
    throw new IdxFormatError(
      file,
      'BAD_DIMENSIONS',
      `dimension ${emptyInner} is 0 in [${dims.join(', ')}]; only the first (count) may be 0`,
    )
  }
  // May exceed 2^53 for absurd headers; it is then inexact but still larger than any file.
  const expected = dims.reduce((a, b) => a * b, 1)
  const actual = bytes.length - headerLength
  if (actual < expected) {
    throw new IdxFormatError(
      file,
      'TRUNCATED',
      `dimensions [${dims.join(', ')}] need ${expected} data bytes after the ${headerLength}-byte header, ` +
        `but only ${actual} are present`,
    )
  }
  if (actual > expected) {
    throw new IdxFormatError(
      file,
      'TRAILING_BYTES',
      `dimensions [${dims.join(', ')}] need ${expected} data bytes after the ${headerLength}-byte header, ` +
        `but ${actual} are present (${actual - expected} extra)`,
    )
  }
  return { dataType: 'uint8', dims, data: bytes.subarray(headerLength) }
}

/** Checks the full magic number before parsing, so a swapped file gets a precise message. */
function requireMagic(bytes: Uint8Array, file: string, expected: number, what: string): void {
  if (bytes.length < 4) {
    throw new IdxFormatError(
      file,
      'TRUNCATED',
      `file is ${bytes.length} bytes long, shorter than the 4-byte IDX magic number`,
    )
  }
  const found = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0)
  if (found === expected) return
  let hint = ''
  if (found === IDX_IMAGES_MAGIC) hint = ' (that is an IDX images file; were the images and labels files swapped?)'
  else if (found === IDX_LABELS_MAGIC) hint = ' (that is an IDX labels file; were the images and labels files swapped?)'
  else if (isGzip(bytes)) hint = ' (the file is gzip-compressed; read it with readIdxFile)'
  throw new IdxFormatError(
    file,
    'BAD_MAGIC',
    `expected the magic number ${hex32(expected)} of an IDX ${what} file, found ${hex32(found)}${hint}`,
  )
}

/**
 * Parses an IDX images file (magic `0x00000803`: unsigned bytes, 3 dimensions).
 *
 * @param bytes - The whole (decompressed) file.
 * @param file - Path or name of the file, used in error messages.
 * @returns The image count and size, and a zero-copy view of the pixels.
 * @throws {@link IdxFormatError} `BAD_MAGIC` when the magic number is not `0x00000803`
 *   (e.g. a labels file), or any error of {@link parseIdx}.
 */
export function parseImages(bytes: Uint8Array, file: string): IdxImages {
  requireMagic(bytes, file, IDX_IMAGES_MAGIC, 'images')
  const { dims, data } = parseIdx(bytes, file)
  const [count, rows, cols] = dims as [number, number, number]
  return { count, rows, cols, pixels: data }
}

/**
 * Parses an IDX labels file (magic `0x00000801`: unsigned bytes, 1 dimension).
 *
 * @param bytes - The whole (decompressed) file.
 * @param file - Path or name of the file, used in error messages.
 * @returns The label count and a zero-copy view of the labels.
 * @throws {@link IdxFormatError} `BAD_MAGIC` when the magic number is not `0x00000801`
 *   (e.g. an images file), or any error of {@link parseIdx}.
 */
export function parseLabels(bytes: Uint8Array, file: string): IdxLabels {
  requireMagic(bytes, file, IDX_LABELS_MAGIC, 'labels')
  const { dims, data } = parseIdx(bytes, file)
  return { count: dims[0] as number, labels: data }
}

/**
 * Reads a file into memory, gunzipping it when it starts with the gzip magic bytes
 * `0x1f 0x8b` (whatever its name), so `.gz` and raw IDX files are read the same way.
 *
 * @param path - Path of the file.
 * @returns The (decompressed) contents as a plain `Uint8Array`.
 * @throws {@link IdxFormatError} `NOT_FOUND` when the file does not exist, and
 *   `CORRUPT_GZIP` (with the zlib error as `cause`) when decompression fails.
 *   Other file-system errors (e.g. permissions) are rethrown unchanged.
 */
export async function readIdxFile(path: string): Promise<Uint8Array> {
  let raw: Uint8Array
  try {
    raw = await readFile(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IdxFormatError(path, 'NOT_FOUND', 'file does not exist', { cause: error })
    }
    throw error
  }
  if (isGzip(raw)) {
    try {
      raw = await gunzipAsync(raw)
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error)
      throw new IdxFormatError(path, 'CORRUPT_GZIP', `cannot decompress gzip data: ${detail}`, { cause: error })
    }
  }
  // A plain view of the Buffer's memory: callers get Uint8Array semantics (e.g. for
  // subarray and equality in tests), without a copy.
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
}
