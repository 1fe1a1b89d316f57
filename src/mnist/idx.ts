/**
 * Reading the IDX format used by MNIST and Fashion-MNIST
 * (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
 * `0x00 0x00 <type code> <number of dims>`, one big-endian uint32 per dimension,
 * then the data, row-major. Only unsigned bytes (type code 0x08) are supported,
 * which is what every MNIST-style image and label file uses.
 */

import { constants as bufferConstants } from 'node:buffer'
import { open, type FileHandle } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { constants as zlibConstants, createGunzip, gunzipSync, type Gunzip } from 'node:zlib'

import { IdxFormatError, OptionError } from '../errors.js'
import { describe, filePath } from '../validate.js'

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

/** Length of the longest IDX header: the magic number and 255 dimensions. */
const MAX_HEADER_BYTES = 4 + 4 * 255

/**
 * Most bytes a gzipped file is decompressed into: 4 GiB (or Node's largest buffer, if
 * smaller). A gzip stream that inflates past it is rejected instead of read.
 */
const MAX_DECOMPRESSED_BYTES = Math.min(2 ** 32, bufferConstants.MAX_LENGTH)

/**
 * Deflate cannot expand its input more than 1032-fold, so a gzip file of n bytes holds
 * at most 1032 n bytes. A header declaring more cannot be telling the truth, and no
 * buffer of its declared size is allocated.
 */
const MAX_INFLATE_RATIO = 1032

/** Compressed bytes read first to find the IDX header (and to tell gzip from raw). */
const GZIP_PEEK_BYTES = 4096

/** Size of each compressed read (into one reused buffer) while gunzipping. */
const GZIP_READ_BYTES = 256 * 1024

/** zlib's output chunk size when the decompressed length is not known in advance. */
const GZIP_CHUNK_BYTES = 256 * 1024

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
  checkBytes(bytes)
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
  checkBytes(bytes)
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
  checkBytes(bytes)
  requireMagic(bytes, file, IDX_LABELS_MAGIC, 'labels')
  const { dims, data } = parseIdx(bytes, file)
  return { count: dims[0] as number, labels: data }
}

/**
 * Reads a file into memory, gunzipping it when it starts with the gzip magic bytes
 * `0x1f 0x8b` (whatever its name), so `.gz` and raw IDX files are read the same way.
 *
 * Memory: a raw file is read into one buffer of its size. A gzipped file is read in
 * chunks into one reused buffer and decompressed as a stream. Its IDX header, found by
 * decompressing the first few KiB, declares the file's length (header + product of
 * the dimensions), and zlib decompresses the whole file straight into one buffer of
 * that length, which is returned: neither the compressed file nor a second copy of the
 * data is held at any time. Should the header be unusable, declare more than a gzip
 * file of this size can hold (or more than 4 GiB), or disagree with the data, the
 * chunks are collected and joined instead; the bytes returned are the same either way,
 * and the parsers report the problem (`TRUNCATED`, `TRAILING_BYTES`, …).
 *
 * @param path - Path of the file.
 * @returns The (decompressed) contents as a plain `Uint8Array`.
 * @throws {@link IdxFormatError} `NOT_FOUND` when the file does not exist, and
 *   `CORRUPT_GZIP` (with the zlib error as `cause`) when decompression fails. A gzip
 *   stream decompressing to more than 4 GiB is rejected as soon as it gets there:
 *   `BAD_DIMENSIONS` when its header declares that much, `TRAILING_BYTES` when it
 *   declares less, or the {@link parseIdx} error of a header that is not IDX.
 *   Other file-system errors (e.g. permissions) are rethrown unchanged.
 */
export async function readIdxFile(path: string): Promise<Uint8Array> {
  filePath('path', path)
  let file: FileHandle
  try {
    file = await open(path, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IdxFormatError(path, 'NOT_FOUND', 'file does not exist', { cause: error })
    }
    throw error
  }
  try {
    const head = new Uint8Array(GZIP_PEEK_BYTES)
    // A positioned read: the file position stays at 0 for readFile below.
    const { bytesRead } = await file.read(head, 0, head.length, 0)
    if (!isGzip(head.subarray(0, bytesRead))) {
      const raw = await file.readFile()
      // A plain view of the Buffer's memory: callers get Uint8Array semantics (e.g. for
      // subarray and equality in tests), without a copy.
      return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
    }
    const info = await file.stat()
    // Pipes and devices have no size to bound the output by.
    const plausibleBytes = info.isFile() ? info.size * MAX_INFLATE_RATIO : Infinity
    return await gunzipIdx(file, path, head.subarray(0, bytesRead), plausibleBytes)
  } finally {
    await file.close()
  }
}

/**
 * The file length declared by the IDX header at the start of the gzip data `head` (the
 * first compressed bytes of a file), or undefined when it cannot be told from them.
 */
function peekDeclaredLength(head: Uint8Array): number | undefined {
  let start: Uint8Array
  try {
    // Decompresses what these bytes hold, without requiring the end of the stream.
    start = gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH })
  } catch {
    return undefined // Corrupt: reading the whole stream reports it.
  }
  const header = readHeader(start.subarray(0, MAX_HEADER_BYTES))
  return header.kind === 'idx' ? header.totalBytes : undefined
}

/** Streams the gzipped `file` through zlib into a {@link DecompressedIdx}. */
async function gunzipIdx(
  file: FileHandle,
  path: string,
  head: Uint8Array,
  plausibleBytes: number,
): Promise<Uint8Array> {
  const declared = peekDeclaredLength(head)
  const output = new DecompressedIdx(path, plausibleBytes)
  let gunzip: Gunzip | undefined
  if (declared !== undefined && output.canHold(declared)) {
    try {
      // zlib writes its output into one buffer of chunkSize bytes, handing out slices
      // of it, until the buffer is full. One byte more than the file: a stream that
      // ends where the header says never has zlib allocate a second buffer.
      gunzip = createGunzip({ chunkSize: Math.max(declared + 1, zlibConstants.Z_MIN_CHUNK) })
    } catch (error) {
      if (!(error instanceof RangeError)) throw error
      // No memory for a length the data may not even reach: use small chunks instead.
    }
  }
  gunzip ??= createGunzip({ chunkSize: GZIP_CHUNK_BYTES })

  let zlibError: unknown
  let outputError: unknown
  gunzip.on('error', (error) => {
    zlibError ??= error
  })
  gunzip.on('data', (chunk: Buffer) => {
    if (outputError !== undefined) return
    try {
      output.push(chunk)
    } catch (error) {
      outputError = error
      gunzip.destroy()
    }
  })
  const done = finished(gunzip)
  done.catch(() => {}) // Handled below; this keeps an early failure from going unhandled.
  try {
    const input = new Uint8Array(GZIP_READ_BYTES)
    for (let position = 0; ; ) {
      const { bytesRead } = await file.read(input, 0, input.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      // Once zlib has consumed a chunk (the write's callback) the buffer can be reused.
      await Promise.race([write(gunzip, input.subarray(0, bytesRead)), done])
    }
    gunzip.end()
    await done
  } catch (error) {
    gunzip.destroy()
    if (outputError !== undefined) throw outputError
    if (zlibError !== undefined) {
      const detail = zlibError instanceof Error ? zlibError.message : String(zlibError)
      throw new IdxFormatError(path, 'CORRUPT_GZIP', `cannot decompress gzip data: ${detail}`, {
        cause: zlibError,
      })
    }
    throw error // A read error.
  }
  return output.finish()
}

/**
 * Writes `chunk` to `stream`, resolving once it has been processed. A failure is also
 * reported by the stream itself, so the promise may be left unawaited once the stream
 * has failed; its rejection is marked handled so that it cannot crash the process.
 */
function write(stream: Writable, chunk: Uint8Array): Promise<void> {
  const written = new Promise<void>((resolve, reject) => {
    stream.write(chunk, (error) => (error ? reject(error) : resolve()))
  })
  written.catch(() => {})
  return written
}

/** What the first bytes of a stream say about the IDX file it holds. */
type HeaderStatus =
  | { kind: 'incomplete' }
  | { kind: 'unusable' }
  | { kind: 'idx'; headerLength: number; dims: number[]; totalBytes: number }

/**
 * Reads an IDX header from the first bytes of a file without throwing: `incomplete`
 * until enough bytes are there to tell, `unusable` when they are not the header of an
 * unsigned-byte IDX file that {@link parseIdx} would accept (wrong magic, element type,
 * no dimensions or an empty inner one), otherwise the header's length, the dimensions
 * and the file length they declare (inexact above 2^53, but then larger than any file).
 */
function readHeader(bytes: Uint8Array): HeaderStatus {
  if (bytes.length < 4) return { kind: 'incomplete' }
  const rank = bytes[3] as number
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UINT8_TYPE_CODE || rank === 0) return { kind: 'unusable' }
  const headerLength = 4 + 4 * rank
  if (bytes.length < headerLength) return { kind: 'incomplete' }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerLength)
  const dims: number[] = []
  for (let k = 0; k < rank; k++) dims.push(view.getUint32(4 + 4 * k))
  if (dims.some((d, k) => k > 0 && d === 0)) return { kind: 'unusable' }
  return { kind: 'idx', headerLength, dims, totalBytes: headerLength + dims.reduce((a, b) => a * b, 1) }
}

/**
 * Assembles a decompressed IDX file from the chunks of a stream.
 *
 * Until the header is complete the chunks are kept as they come. Then, if the header
 * is usable and its declared length believable ({@link DecompressedIdx.canHold}), the
 * file gets one buffer of exactly that length. When the chunks so far lie in order at
 * the start of one buffer that large, which is how zlib writes when its chunk size
 * exceeds the file, that buffer is the file and chunks that arrive in place are not
 * copied; otherwise a buffer is allocated and every chunk copied into place. Bytes
 * beyond the declared length are kept aside, so that {@link DecompressedIdx.finish}
 * returns exactly the decompressed bytes in every case, and the parsers report a short
 * or long file as they would for a raw one.
 */
class DecompressedIdx {
  /** The first bytes of the stream, enough for any header. */
  private readonly prefix = new Uint8Array(MAX_HEADER_BYTES)
  /** Bytes received so far. */
  private received = 0
  /** Whether the header has been examined (and `file` set if it is usable). */
  private decided = false
  /** The whole file, of the length its header declares; filled up to `received`. */
  private file: Uint8Array | undefined
  /** Whether `file` is zlib's output buffer, which zlib writes and must not be written by us. */
  private adopted = false
  /** Chunks not in `file`: all of them before (or without) it, the excess after it. */
  private readonly pending: Uint8Array[] = []

  constructor(
    private readonly path: string,
    /** Most bytes the compressed file can decompress to. */
    private readonly plausibleBytes: number,
  ) {}

  /** Whether a header declaring a file of `totalBytes` is believed, and the file given a buffer. */
  canHold(totalBytes: number): boolean {
    return totalBytes <= MAX_DECOMPRESSED_BYTES && totalBytes <= this.plausibleBytes
  }

  push(chunk: Uint8Array): void {
    const offset = this.received
    this.received += chunk.length
    if (this.received > MAX_DECOMPRESSED_BYTES) throw this.tooLarge()
    if (offset < MAX_HEADER_BYTES) {
      this.prefix.set(chunk.subarray(0, MAX_HEADER_BYTES - offset), offset)
    }
    if (this.file !== undefined) {
      this.place(chunk, offset)
      return
    }
    this.pending.push(chunk)
    if (!this.decided) this.decide()
  }

  /** Whether `chunk`, at `offset` in the stream, already lies at `offset` in `buffer`. */
  private static inPlace(chunk: Uint8Array, offset: number, buffer: ArrayBufferLike): boolean {
    return chunk.buffer === buffer && chunk.byteOffset === offset
  }

  /** Puts the part of `chunk` (at `offset` in the stream) that fits into `file`; keeps the rest. */
  private place(chunk: Uint8Array, offset: number): void {
    let file = this.file as Uint8Array
    const room = file.length - offset
    if (room > 0 && !(this.adopted && DecompressedIdx.inPlace(chunk, offset, file.buffer))) {
      if (this.adopted) {
        // zlib moved to another buffer before filling this one, unlike any zlib so far;
        // stop relying on it and keep a copy of what arrived in order.
        file = new Uint8Array(file.length)
        file.set((this.file as Uint8Array).subarray(0, offset))
        this.file = file
        this.adopted = false
      }
      file.set(chunk.length <= room ? chunk : chunk.subarray(0, room), offset)
    }
    if (chunk.length > room) this.pending.push(chunk.subarray(Math.max(room, 0)))
  }

  /** Gives the file its buffer once the header is known, if it can be trusted. */
  private decide(): void {
    const header = readHeader(this.prefix.subarray(0, Math.min(this.received, MAX_HEADER_BYTES)))
    if (header.kind === 'incomplete') return
    this.decided = true
    if (header.kind === 'unusable' || !this.canHold(header.totalBytes)) return
    const { totalBytes } = header
    const chunks = this.pending.splice(0)
    const first = chunks[0] as Uint8Array
    let offset = 0
    const contiguous = chunks.every((chunk) => {
      const ok = DecompressedIdx.inPlace(chunk, offset, first.buffer)
      offset += chunk.length
      return ok
    })
    if (contiguous && first.buffer.byteLength >= totalBytes) {
      this.file = new Uint8Array(first.buffer, 0, totalBytes)
      this.adopted = true
    } else {
      try {
        this.file = new Uint8Array(totalBytes)
      } catch {
        // No memory for a length the data may not even reach: keep collecting.
        this.pending.push(...chunks)
        return
      }
    }
    offset = 0
    for (const chunk of chunks) {
      this.place(chunk, offset)
      offset += chunk.length
    }
  }

  /** The decompressed bytes; copied only when the stream was not as its header said. */
  finish(): Uint8Array {
    const file = this.file
    if (file !== undefined) {
      if (this.received === file.length) return file
      if (this.received < file.length) return file.subarray(0, this.received)
    }
    const all = new Uint8Array(this.received)
    let offset = 0
    if (file !== undefined) {
      all.set(file)
      offset = file.length
    }
    for (const chunk of this.pending) {
      all.set(chunk, offset)
      offset += chunk.length
    }
    return all
  }

  /** The error for a stream decompressing to more than {@link MAX_DECOMPRESSED_BYTES}. */
  private tooLarge(): IdxFormatError {
    // By now the prefix holds a whole header, however many dimensions it has.
    const header = readHeader(this.prefix)
    if (header.kind !== 'idx') {
      try {
        parseIdx(this.prefix, this.path) // rejects it as BAD_MAGIC or BAD_DIMENSIONS
      } catch (error) {
        if (error instanceof IdxFormatError) return error
        throw error
      }
    }
    const limit = MAX_DECOMPRESSED_BYTES
    if (header.kind === 'idx' && header.totalBytes <= limit) {
      const { dims, headerLength, totalBytes } = header
      return new IdxFormatError(
        this.path,
        'TRAILING_BYTES',
        `dimensions [${dims.join(', ')}] need ${totalBytes - headerLength} data bytes after the ` +
          `${headerLength}-byte header, but the gzip data decompresses to more than ${limit} bytes`,
      )
    }
    const declared = header.kind === 'idx' ? `dimensions [${header.dims.join(', ')}] declare ${header.totalBytes} bytes; ` : ''
    return new IdxFormatError(
      this.path,
      'BAD_DIMENSIONS',
      `${declared}a gzipped IDX file may decompress to at most ${limit} bytes`,
    )
  }
}

/** The bytes of an IDX file must be a Uint8Array (a Buffer is one). */
function checkBytes(bytes: unknown): void {
  if (!(bytes instanceof Uint8Array)) throw new OptionError('bytes', `must be a Uint8Array (or Buffer) of the file, got ${describe(bytes)}`)
}
