// A seeded structured fuzzer for the IDX parser (docs/fuzzing.md): valid headers with
// mutated magic, rank, dimensions and lengths, truncations, extensions, random bytes,
// and gzip of all of these (whole, truncated, bit-flipped, or of random data). Every
// input must parse to consistent arrays or throw IdxFormatError; any other exception,
// an input taking over a second, or memory growing past the input's plausible size is
// a failure. Input i of a target is a pure function of (seed, target, i).

import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'

import { IdxFormatError } from '../../src/errors.js'
import { parseIdx, parseImages, parseLabels, readIdxFile } from '../../src/mnist/idx.js'

export type IdxFuzzTarget = 'parse' | 'readIdxFile'

export interface IdxFuzzResult {
  target: IdxFuzzTarget
  inputs: number
  parsed: number
  rejected: number
  failures: string[]
  slowestMs: number
  maxArrayBufferGrowth: number
  elapsedMs: number
}

/** mulberry32: a small seeded generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const INTERESTING = [0, 1, 2, 3, 10, 28, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 60000, 65536, 1 << 24]

function header(magic: number, dims: number[]): Uint8Array {
  const b = new Uint8Array(4 + 4 * dims.length)
  const v = new DataView(b.buffer)
  v.setUint32(0, magic)
  dims.forEach((d, k) => v.setUint32(4 + 4 * k, d >>> 0))
  return b
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/** One input: an IDX file (valid or not), sometimes gzipped, sometimes garbage. */
export function idxInput(seed: number, target: IdxFuzzTarget, i: number): Uint8Array {
  const r = rng((seed ^ (target === 'parse' ? 0x1234567 : 0x7654321) ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0)
  const int = (n: number): number => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T
  if (int(40) === 0) return Uint8Array.from({ length: int(64) }, () => int(256))
  // A valid file to start from: images [n, rows, cols], labels [n], or another rank.
  const kind = int(3)
  let dims: number[] =
    kind === 0 ? [int(5), 1 + int(6), 1 + int(6)] : kind === 1 ? [int(20)] : Array.from({ length: 1 + int(5) }, () => 1 + int(3))
  let magic = kind === 0 ? 0x803 : kind === 1 ? 0x801 : 0x800 | dims.length
  let dataLen = dims.reduce((a, b) => a * b, 1)
  const mutations = int(4)
  for (let m = 0; m < mutations; m++) {
    switch (int(7)) {
      case 0: // a dimension
        if (dims.length > 0) dims[int(dims.length)] = int(2) ? pick(INTERESTING) : int(8)
        break
      case 1: // the rank byte, or the number of dimensions written
        if (int(2)) magic = (magic & ~0xff) | pick([0, 1, 2, 3, 4, 255, dims.length + 1])
        else dims = int(2) ? dims.slice(0, -1) : [...dims, pick(INTERESTING)]
        break
      case 2: // the type code or the leading zero bytes
        magic = int(2) ? (magic & ~0xff00) | (pick([0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff]) << 8) : magic ^ (1 << (16 + int(16)))
        break
      case 3: // the data length
        dataLen = Math.max(0, dataLen + pick([-1, 1, -int(50), int(50), -dataLen]))
        break
      case 4: // a labels header on images data and back
        magic = pick([0x801, 0x803, 0x1f8b0800])
        break
      default:
        break
    }
  }
  let bytes = concat(header(magic, dims), Uint8Array.from({ length: Math.min(dataLen, 4096) }, () => int(256)))
  const bytewise = int(3)
  for (let m = 0; m < bytewise; m++) {
    switch (int(3)) {
      case 0:
        bytes = bytes.subarray(0, int(bytes.length + 1))
        break
      case 1:
        if (bytes.length > 0) bytes[int(Math.min(bytes.length, 24))] = int(256)
        break
      default:
        bytes = concat(bytes, Uint8Array.from({ length: 1 + int(8) }, () => int(256)))
    }
  }
  // gzip: whole, truncated, bit-flipped, or of random data; mostly for readIdxFile.
  if (int(target === 'readIdxFile' ? 2 : 6) === 0) {
    let gz: Uint8Array = gzipSync(int(8) === 0 ? Uint8Array.from({ length: int(2048) }, () => int(256)) : bytes)
    switch (int(4)) {
      case 0:
        gz = gz.subarray(0, int(gz.length + 1))
        break
      case 1: {
        gz = Uint8Array.from(gz)
        const at = int(gz.length)
        gz[at] = (gz[at] as number) ^ (1 << int(8))
        break
      }
      case 2:
        gz = concat(gz, int(2) ? gz : Uint8Array.from({ length: 1 + int(16) }, () => int(256)))
        break
      default:
        break
    }
    bytes = gz
  }
  return bytes
}

function product(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** Checks a successful parse; returns a failure message or undefined. */
function checkParse(bytes: Uint8Array): string | undefined {
  const outcomes: string[] = []
  for (const [name, f] of [
    ['parseIdx', () => {
      const a = parseIdx(bytes, 'fuzz.idx')
      if (product(a.dims) !== a.data.length) return `dims ${a.dims} but ${a.data.length} bytes`
      if (a.data.byteOffset - bytes.byteOffset !== 4 + 4 * a.dims.length) return 'data does not follow the header'
      if (a.data.buffer !== bytes.buffer) return 'data is a copy'
      return undefined
    }],
    ['parseImages', () => {
      const a = parseImages(bytes, 'fuzz.idx')
      if (a.count * a.rows * a.cols !== a.pixels.length) return `${a.count}×${a.rows}×${a.cols} but ${a.pixels.length} pixels`
      if (![a.count, a.rows, a.cols].every((d) => Number.isInteger(d) && d >= 0)) return 'bad dimensions'
      return undefined
    }],
    ['parseLabels', () => {
      const a = parseLabels(bytes, 'fuzz.idx')
      if (a.count !== a.labels.length) return `${a.count} labels but ${a.labels.length} bytes`
      return undefined
    }],
  ] as const) {
    try {
      const bad = f()
      if (bad !== undefined) return `${name}: ${bad}`
      outcomes.push('ok')
    } catch (error) {
      if (!(error instanceof IdxFormatError)) return `${name} threw ${String(error)}`
      if (error.file !== 'fuzz.idx' || error.message.length === 0) return `${name}: IdxFormatError without file or message`
      outcomes.push('rejected')
    }
  }
  return outcomes.includes('ok') ? 'parsed' : 'rejected'
}

export async function fuzzIdx(options: {
  target: IdxFuzzTarget
  iterations: number
  seed?: number
  start?: number
  dir?: string
  log?: (line: string) => void
}): Promise<IdxFuzzResult> {
  const { target, iterations, seed = 1, start = 0, dir, log } = options
  const result: IdxFuzzResult = {
    target,
    inputs: 0,
    parsed: 0,
    rejected: 0,
    failures: [],
    slowestMs: 0,
    maxArrayBufferGrowth: 0,
    elapsedMs: 0,
  }
  const fail = (i: number, m: string): void => {
    const line = `${target} input ${i}: ${m}`
    log?.(line)
    if (result.failures.length < 20) result.failures.push(line)
  }
  const path = dir === undefined ? undefined : join(dir, `fuzz-${process.pid}.idx`)
  if (target === 'readIdxFile' && path === undefined) throw new Error('readIdxFile needs a dir')
  const base = process.memoryUsage().arrayBuffers
  const t0 = performance.now()
  for (let i = start; i < start + iterations; i++) {
    const bytes = idxInput(seed, target, i)
    const t = performance.now()
    if (target === 'parse') {
      const outcome = checkParse(bytes)
      if (outcome === 'parsed') result.parsed++
      else if (outcome === 'rejected') result.rejected++
      else if (outcome !== undefined) fail(i, outcome)
    } else {
      await writeFile(path as string, bytes)
      let expected: Uint8Array | undefined
      const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b
      try {
        expected = gz ? gunzipSync(bytes) : bytes
      } catch {
        expected = undefined
      }
      try {
        const got = await readIdxFile(path as string)
        if (expected === undefined) fail(i, 'read a gzip stream zlib rejects')
        else if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(expected)) !== 0)
          fail(i, `read ${got.length} bytes, not the ${expected.length} the file holds`)
        else result.parsed++
      } catch (error) {
        if (!(error instanceof IdxFormatError)) fail(i, `threw ${String(error)}`)
        else result.rejected++
      }
    }
    const ms = performance.now() - t
    result.slowestMs = Math.max(result.slowestMs, ms)
    if (ms > 1000) fail(i, `took ${ms.toFixed(0)} ms`)
    if (i % 256 === 0) {
      const growth = process.memoryUsage().arrayBuffers - base
      result.maxArrayBufferGrowth = Math.max(result.maxArrayBufferGrowth, growth)
      // gzip may inflate 1032-fold (readIdxFile's own bound); inputs are ≤ ~8 KiB.
      if (growth > 256 * 1024 * 1024) fail(i, `array buffers grew by ${growth} bytes`)
    }
    result.inputs++
    if (log !== undefined && (i + 1 - start) % 100_000 === 0) {
      log(`${target}: ${i + 1 - start} inputs, ${((performance.now() - t0) / 1000).toFixed(1)} s, parsed ${result.parsed}, rejected ${result.rejected}, failures ${result.failures.length}`)
    }
  }
  if (path !== undefined) await rm(path, { force: true })
  result.elapsedMs = performance.now() - t0
  return result
}
