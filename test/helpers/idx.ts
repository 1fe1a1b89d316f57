/**
 * Test helpers: build small IDX files in memory, write MNIST-style directories to a
 * temp dir, and assert that a call fails with a particular IdxFormatError.
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

import { expect } from 'vitest'

import { IdxFormatError, type IdxErrorReason } from '../../src/errors.js'

/** An IDX file: magic `00 00 typeCode dims.length`, big-endian uint32 dims, then `data`. */
export function encodeIdx(dims: number[], data: ArrayLike<number>, typeCode = 0x08): Uint8Array {
  const header = 4 + 4 * dims.length
  const bytes = new Uint8Array(header + data.length)
  const view = new DataView(bytes.buffer)
  bytes[2] = typeCode
  bytes[3] = dims.length
  dims.forEach((d, k) => view.setUint32(4 + 4 * k, d))
  bytes.set(data, header)
  return bytes
}

/** `count` images of `rows × cols` whose pixel j of image i is `(i * 7 + j) % 256`. */
export function imagesIdx(count: number, rows = 4, cols = 3): Uint8Array {
  const data = new Uint8Array(count * rows * cols)
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < rows * cols; j++) data[i * rows * cols + j] = (i * 7 + j) % 256
  }
  return encodeIdx([count, rows, cols], data)
}

/** A labels file holding `labels`. */
export function labelsIdx(labels: number[]): Uint8Array {
  return encodeIdx([labels.length], labels)
}

/** A fresh empty temp directory; remove it with {@link removeTempDir}. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ferronet-idx-'))
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true })
}

/** Writes `bytes` to `dir/name` (gzipped when `name` ends in `.gz`) and returns the path. */
export async function writeIdx(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  await mkdir(dir, { recursive: true })
  const path = join(dir, name)
  await writeFile(path, name.endsWith('.gz') ? gzipSync(bytes) : bytes)
  return path
}

/**
 * Expects `action` to throw (or reject with) an IdxFormatError with `reason`, whose
 * `file` is `file` and whose message names the file. Returns the error for more checks.
 */
export async function expectIdxError(
  action: () => unknown,
  reason: IdxErrorReason,
  file: string,
): Promise<IdxFormatError> {
  let caught: unknown
  try {
    await action()
  } catch (error) {
    caught = error
  }
  expect(caught, `expected an IdxFormatError ${reason}`).toBeInstanceOf(IdxFormatError)
  const error = caught as IdxFormatError
  expect(error.reason).toBe(reason)
  expect(error.code).toBe(`ERR_IDX_${reason}`)
  expect(error.file).toBe(file)
  expect(error.message).toContain(file)
  return error
}
