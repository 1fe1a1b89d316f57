/**
 * Images in: any file or buffer that `sharp` decodes (PNG, JPEG, WebP, GIF, AVIF,
 * TIFF, SVG) becomes the input row of a model, either the MNIST way (grayscale, ink
 * cropped, fitted into 20×20, centred by mass in 28×28) or plainly resized to the
 * model's `[C, H, W]`. Values are on the training scale, `v / 255` in `[0, 1]`.
 *
 * `sharp` is loaded on first use, so importing ferronet does not load it.
 */

import { readFile } from 'node:fs/promises'

import { FerronetError, ImageError, OptionError } from './errors.js'
import { describe, integerInRange, oneOf, unknownOption } from './validate.js'

type SharpModule = typeof import('sharp')

/** An image: a file path, or the encoded bytes of a file (a `Buffer` is a `Uint8Array`). */
export type ImageSource = string | Uint8Array

/**
 * How an image becomes model input.
 *
 * - `'mnist'`: grayscale, ink made light on dark, cropped to the ink, fitted into a
 *   20×20 box (for 28×28; `round(20/28 · side)` otherwise), centred by centre of mass
 *   (see {@link mnistImage}). For digit models trained on MNIST.
 * - `'resize'`: the whole image resized to the model's height × width (see
 *   {@link ImageInputOptions.fit}), as grayscale or RGB. For everything else
 *   (Fashion-MNIST, CIFAR-style colour models, …).
 */
export type ImagePreprocess = 'mnist' | 'resize'

/**
 * How `'resize'` fits an image to the model's height × width, as sharp's `fit`:
 * `'fill'` stretches (ignores the aspect ratio, as torchvision's `Resize((h, w))`),
 * `'cover'` keeps the aspect ratio and crops the centre, `'contain'` keeps it and pads
 * with black.
 */
export type ImageFit = 'fill' | 'cover' | 'contain'

/** Options shared by every image reader. */
export interface ImageReadOptions {
  /**
   * Name of an in-memory image in error messages (e.g. `"request body"`); default
   * `"image bytes"`. Paths always name themselves.
   */
  name?: string
  /**
   * Largest input image accepted, in pixels (width × height), default 64 M
   * (8192 × 8192). Larger images are rejected before they are decoded
   * (`ImageError` `TOO_LARGE`), which bounds the memory a hostile file can claim.
   */
  maxPixels?: number
}

/** Options of {@link mnistImage}. */
export interface MnistImageOptions extends ImageReadOptions {
  /**
   * Whether to invert (MNIST digits are light ink on black). `'auto'` (default) inverts
   * when the image's border is light, i.e. dark ink on light paper; `true` / `false`
   * force it.
   */
  invert?: boolean | 'auto'
  /**
   * Ink threshold for the bounding box, in `(0, 1)`, default `0.2`: after inversion the
   * border's level maps to 0 and the brightest pixel to 1, and the box is the smallest
   * rectangle holding every pixel above this.
   */
  threshold?: number
  /**
   * Side of the square output, default `28`. The ink is fitted into a box of
   * `round(20/28 · size)` pixels (20 for 28), as MNIST's digits are.
   */
  size?: number
}

/** Options of {@link imageInput}. */
export interface ImageInputOptions extends Omit<MnistImageOptions, 'size'> {
  /**
   * `'mnist'` (default for a square grayscale shape of 28×28: `[784]`, `[28, 28]`,
   * `[1, 28, 28]`) or `'resize'` (default for every other shape). A Fashion-MNIST
   * model also has a 28×28 input but was trained on whole, uncropped images: pass
   * `'resize'` for it. `'mnist'` needs a square shape; with 3 channels the gray
   * result fills all three.
   */
  preprocess?: ImagePreprocess
  /** How `'resize'` fits the image to the shape; default `'fill'`. See {@link ImageFit}. */
  fit?: ImageFit
}

/** Options of {@link imageInputs}. */
export interface ImageInputsOptions extends ImageInputOptions {
  /** How many images are decoded at once, default `4` (sharp decodes on libuv's pool of 4 threads). */
  concurrency?: number
}

/** The layout of an image-shaped model input. @internal */
export interface ImageLayout {
  channels: 1 | 3
  height: number
  width: number
}

/** @internal */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024
/** The mnist path decodes big photos at most this large (longer side) before cropping. */
const MNIST_DECODE_SIDE = 2048
/** Largest height or width of a model input built from an image. */
const MAX_SIDE = 8192
/** Below this contrast (of 255) between the border and the brightest ink an image is blank. */
const MIN_CONTRAST = 24
const DEFAULT_THRESHOLD = 0.2
const DEFAULT_CONCURRENCY = 4

const MNIST_KEYS = ['name', 'maxPixels', 'invert', 'threshold', 'size'] as const
const INPUT_KEYS = ['name', 'maxPixels', 'invert', 'threshold', 'preprocess', 'fit'] as const
const INPUTS_KEYS = [...INPUT_KEYS, 'concurrency'] as const

/**
 * Turns an image into a 28×28 MNIST-style input, as LeCun et al. prepared the MNIST
 * digits: grayscale (transparency flattened onto white); inverted when the border is
 * light, so the ink is light on black; levels stretched so that the border is 0 and the
 * brightest ink 1; cropped to the bounding box of the ink (pixels above `threshold`);
 * resized (area-averaging when shrinking, bilinear when enlarging) so the longer side
 * is 20 pixels, keeping the aspect ratio; placed in a 28×28 black field, shifted by
 * whole pixels so that its centre of mass lands on pixel (14, 14), where the MNIST
 * digits have theirs (mean over the 10,000 digits of the `mnist` package: 14.00, 14.00).
 *
 * EXIF orientation is applied. Photos larger than 2048 pixels on a side are shrunk to
 * 2048 while decoding.
 *
 * ```ts
 * import { mnistImage } from 'ferronet'
 * const x = await mnistImage('seven-on-paper.jpg')          // Float32Array(784), values in [0, 1]
 * const digit = net.predictClasses(x)[0]
 * ```
 *
 * @param source - A path, or the bytes of an encoded image.
 * @param options - Inversion, ink threshold, output size; see {@link MnistImageOptions}.
 * @returns `size × size` values in `[0, 1]`, row-major (28 × 28 = 784 by default).
 * @throws {@link ImageError} naming the file (or `"image bytes"`): `NOT_FOUND`,
 *   `NOT_A_FILE`, `UNREADABLE`, `EMPTY_FILE`, `UNSUPPORTED_FORMAT`, `TRUNCATED`, `CORRUPT`,
 *   `TOO_LARGE`, and `EMPTY_IMAGE` when there is no ink (a flat image).
 * @throws {@link OptionError} for a bad option.
 */
export async function mnistImage(source: ImageSource, options: MnistImageOptions = {}): Promise<Float32Array> {
  const o = checkOptions(options, MNIST_KEYS)
  const size = o.size === undefined ? 28 : integerInRange('size', o.size, 8, 1024)
  return (await readImage(source, o, { kind: 'mnist', size })) as Float32Array
}

/**
 * The input row of a model for one image, for `Net.predict`. Handles the input
 * shapes an image can fill: `[H*W]` (a square, e.g. `[784]`), `[H, W]`, `[1, H, W]`
 * (grayscale) and `[3, H, W]` (RGB), channel-first (NCHW) as the network expects.
 *
 * With `'mnist'` (the default for 28×28 grayscale shapes) the image goes through
 * {@link mnistImage}; with `'resize'` it is resized to H×W (transparency flattened
 * onto white, EXIF orientation applied) and scaled by 1/255, inverted only if
 * `invert` says so.
 *
 * ```ts
 * const x = await imageInput(await readFile('cat.png'), net.inputShape, { preprocess: 'resize' })
 * const logits = net.predict(x)
 * ```
 *
 * @param source - A path, or the bytes of an encoded image (e.g. an HTTP request body).
 * @param inputShape - The model's per-sample input shape, e.g. `net.inputShape`.
 * @param options - Preprocessing; see {@link ImageInputOptions}.
 * @returns `product(inputShape)` values in `[0, 1]`.
 * @throws {@link ImageError} `BAD_SHAPE` when `inputShape` is not an image shape, and
 *   every error of {@link mnistImage}, each naming the file (or `"image bytes"`).
 * @throws {@link OptionError} for a bad option (e.g. `'mnist'` for a non-square shape).
 */
export async function imageInput(source: ImageSource, inputShape: readonly number[], options: ImageInputOptions = {}): Promise<Float32Array> {
  const o = checkOptions(options, INPUT_KEYS)
  const job = planInput(inputShape, o, sourceName(source, o.name))
  return toFloat(await readImage(source, o, job))
}

/**
 * The input rows of a model for several images, decoded in parallel (at most
 * `concurrency` at once): one `Float32Array` of `sources.length × product(inputShape)`
 * values, row `i` from `sources[i]`, ready for `Net.predict`. The options are
 * those of {@link imageInput}.
 *
 * ```ts
 * const x = await imageInputs(['a.png', 'b.jpg'], net.inputShape)   // 2 × inputDim values
 * const classes = net.predictClasses(x)                              // Uint32Array(2)
 * ```
 *
 * @throws {@link ImageError} for the first image that fails (naming it), after the
 *   images being decoded at that moment finish; {@link OptionError} for bad options or
 *   an empty `sources`.
 */
export async function imageInputs(sources: readonly ImageSource[], inputShape: readonly number[], options: ImageInputsOptions = {}): Promise<Float32Array> {
  const o = checkOptions(options, INPUTS_KEYS)
  if (!Array.isArray(sources) || sources.length === 0) {
    throw new OptionError('sources', `must be a non-empty array of paths or image bytes, got ${describe(sources)}`)
  }
  const concurrency = o.concurrency === undefined ? DEFAULT_CONCURRENCY : integerInRange('concurrency', o.concurrency, 1, 1024)
  const job = planInput(inputShape, o, sourceName(sources[0] as ImageSource, o.name))
  const dim = job.kind === 'mnist' ? (job.channels ?? 1) * job.size * job.size : job.channels * job.height * job.width
  const out = new Float32Array(sources.length * dim)
  await forEachLimit(sources.length, concurrency, async (i) => {
    const row = await readImage(sources[i] as ImageSource, o, job)
    if (row instanceof Float32Array) out.set(row, i * dim)
    else for (let j = 0; j < dim; j++) out[i * dim + j] = (row[j] as number) / 255
  })
  return out
}

// ---------------------------------------------------------------------------
// Internals shared with the image-folder loader.

/** What to make of a decoded image: an MNIST-style square, or a resized `[C, H, W]`. @internal */
export type ImageJob =
  | { kind: 'mnist'; size: number; channels?: 1 | 3 }
  | { kind: 'resize'; channels: 1 | 3; height: number; width: number; fit: ImageFit }

/** Validated reader options. @internal */
export interface ReadOptions {
  name?: string | undefined
  maxPixels?: number | undefined
  invert?: boolean | 'auto' | undefined
  threshold?: number | undefined
}

/**
 * Reads and decodes one image for `job`: `Float32Array` in `[0, 1]` for `'mnist'`,
 * `Uint8Array` pixels (CHW) for `'resize'`. Options must have been checked. @internal
 */
export async function readImage(source: ImageSource, options: ReadOptions, job: ImageJob): Promise<Float32Array | Uint8Array> {
  const file = sourceName(source, options.name)
  const maxPixels = options.maxPixels === undefined ? DEFAULT_MAX_PIXELS : integerInRange('maxPixels', options.maxPixels, 1)
  const bytes = await loadBytes(source, file)
  if (job.kind === 'mnist') {
    const invert = checkInvert(options.invert, 'auto')
    const threshold = checkThreshold(options.threshold)
    const gray = await decode(bytes, file, maxPixels, (s) =>
      s.grayscale().resize({ width: MNIST_DECODE_SIDE, height: MNIST_DECODE_SIDE, fit: 'inside', withoutEnlargement: true }), 1)
    const plane = mnistFromGray(gray.data, gray.width, gray.height, { invert, threshold, size: job.size }, file)
    if ((job.channels ?? 1) === 1) return plane
    const rgb = new Float32Array(plane.length * 3)
    for (let c = 0; c < 3; c++) rgb.set(plane, c * plane.length)
    return rgb
  }
  const invert = checkInvert(options.invert, false)
  const { channels, height, width, fit } = job
  const img = await decode(bytes, file, maxPixels, (s) =>
    (channels === 1 ? s.grayscale() : s.toColourspace('srgb'))
      .resize(width, height, { fit, background: { r: 0, g: 0, b: 0 } }), channels)
  const hwc = img.data
  const planar = new Uint8Array(channels * height * width)
  const plane = height * width
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) planar[c * plane + p] = hwc[p * channels + c] as number
  }
  if (invert === true || (invert === 'auto' && borderMedian(planar.subarray(0, plane), width, height) > 127)) {
    for (let j = 0; j < planar.length; j++) planar[j] = 255 - (planar[j] as number)
  }
  return planar
}

/** The layout of an image-shaped input shape, or an `ImageError` `BAD_SHAPE` naming `file`. @internal */
export function imageLayout(inputShape: unknown, file: string): ImageLayout {
  const expected = 'expected [H*W] (a square, e.g. [784]), [H, W], [1, H, W] or [3, H, W]'
  const bad = (why: string): never => {
    throw new ImageError(file, 'BAD_SHAPE', `input shape ${shapeText(inputShape)} is not an image shape: ${why}; ${expected}`)
  }
  if (!Array.isArray(inputShape) || inputShape.length === 0 || inputShape.length > 3) return bad('it must have 1 to 3 dimensions')
  for (const d of inputShape) if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) return bad('dimensions must be positive integers')
  let layout: ImageLayout
  if (inputShape.length === 1) {
    const n = inputShape[0] as number
    const side = Math.round(Math.sqrt(n))
    if (side * side !== n) return bad(`${n} values are not a square image`)
    layout = { channels: 1, height: side, width: side }
  } else if (inputShape.length === 2) {
    layout = { channels: 1, height: inputShape[0] as number, width: inputShape[1] as number }
  } else {
    const c = inputShape[0] as number
    if (c !== 1 && c !== 3) return bad(`${c} channels (only 1, grayscale, or 3, RGB)`)
    layout = { channels: c, height: inputShape[1] as number, width: inputShape[2] as number }
  }
  if (layout.height > MAX_SIDE || layout.width > MAX_SIDE) return bad(`sides above ${MAX_SIDE} pixels`)
  return layout
}

/** Checks an options object and its unknown keys. @internal */
export function checkOptions<T extends object>(options: T, keys: readonly string[], where = 'options'): T {
  if (options === undefined) return {} as T
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new OptionError(where, `must be an options object, got ${describe(options)}`)
  }
  for (const k of Object.keys(options)) {
    if (!keys.includes(k)) throw unknownOption(k, k, keys)
  }
  const name = (options as { name?: unknown }).name
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw new OptionError('name', `must be a non-empty string, got ${describe(name)}`)
  return options
}

/** @internal */
export function checkFit(value: unknown): ImageFit {
  return value === undefined ? 'fill' : oneOf('fit', value, ['fill', 'cover', 'contain'] as const)
}

/** Runs `fn(0..count-1)` with at most `limit` at once; on the first rejection starts no more, waits for the rest, rethrows it. @internal */
export async function forEachLimit(count: number, limit: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < count) {
      const i = next++
      try {
        await fn(i)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker))
  if (failure) throw failure.error
}

function planInput(inputShape: readonly number[], o: ImageInputOptions, file: string): ImageJob {
  const layout = imageLayout(inputShape, file)
  const square28 = layout.channels === 1 && layout.height === 28 && layout.width === 28
  const preprocess = o.preprocess === undefined ? (square28 ? 'mnist' : 'resize') : oneOf('preprocess', o.preprocess, ['mnist', 'resize'] as const)
  if (preprocess === 'mnist') {
    if (layout.height !== layout.width) {
      throw new OptionError('preprocess', `'mnist' needs a square input, but ${shapeText(inputShape)} is ${layout.height}×${layout.width}; use 'resize'`)
    }
    if (o.fit !== undefined) throw new OptionError('fit', "is an option of preprocess 'resize'; 'mnist' fits the ink into its box")
    if (layout.height < 8) throw new OptionError('preprocess', `'mnist' needs a side of at least 8 pixels, got ${layout.height}`)
    return { kind: 'mnist', size: layout.height, channels: layout.channels }
  }
  if (o.threshold !== undefined) throw new OptionError('threshold', "is an option of preprocess 'mnist'")
  return { kind: 'resize', ...layout, fit: checkFit(o.fit) }
}

function toFloat(values: Float32Array | Uint8Array): Float32Array {
  if (values instanceof Float32Array) return values
  const out = new Float32Array(values.length)
  for (let j = 0; j < values.length; j++) out[j] = (values[j] as number) / 255
  return out
}

function checkInvert(value: unknown, fallback: boolean | 'auto'): boolean | 'auto' {
  if (value === undefined) return fallback
  if (value === true || value === false || value === 'auto') return value
  throw new OptionError('invert', `must be true, false or 'auto', got ${describe(value)}`)
}

function checkThreshold(value: unknown): number {
  if (value === undefined) return DEFAULT_THRESHOLD
  if (typeof value !== 'number' || !(value > 0 && value < 1)) throw new OptionError('threshold', `must be a number in (0, 1), got ${describe(value)}`)
  return value
}

function shapeText(shape: unknown): string {
  return Array.isArray(shape) ? `[${shape.map((d) => String(d)).join(', ')}]` : describe(shape)
}

/** How a source is named in errors. @internal */
export function sourceName(source: unknown, name: string | undefined): string {
  return typeof source === 'string' ? source : (name ?? 'image bytes')
}

// ---------------------------------------------------------------------------
// Reading and decoding.

let sharpPromise: Promise<SharpModule> | undefined

/** sharp, imported on first use. @internal */
export function loadSharp(): Promise<SharpModule> {
  sharpPromise ??= import('sharp').then(
    (m) => ((m as { default?: SharpModule }).default ?? m) as SharpModule,
    (error: unknown) => {
      sharpPromise = undefined
      throw new FerronetError('ERR_SHARP_UNAVAILABLE', `reading images needs the npm package sharp, which did not load: ${(error as Error)?.message ?? String(error)}`, { cause: error })
    },
  )
  return sharpPromise
}

async function loadBytes(source: ImageSource, file: string): Promise<Buffer> {
  if (typeof source === 'string') {
    if (source === '') throw new OptionError('source', 'must be a path or image bytes, got an empty string')
    let bytes: Buffer
    try {
      bytes = await readFile(source)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException)?.code
      if (code === 'ENOENT') throw new ImageError(file, 'NOT_FOUND', 'no such file', { cause: error })
      if (code === 'EISDIR') throw new ImageError(file, 'NOT_A_FILE', 'is a directory, not an image file', { cause: error })
      throw new ImageError(file, 'UNREADABLE', `cannot be read (${code ?? (error as Error)?.message})`, { cause: error })
    }
    if (bytes.length === 0) throw new ImageError(file, 'EMPTY_FILE', 'the file is empty (0 bytes), not an image')
    return bytes
  }
  if (source instanceof Uint8Array) {
    if (source.length === 0) throw new ImageError(file, 'EMPTY_FILE', 'no bytes (length 0), not an image')
    return Buffer.from(source.buffer, source.byteOffset, source.byteLength)
  }
  throw new OptionError('source', `must be a path or the bytes of an image (a Uint8Array or Buffer), got ${describe(source)}`)
}

type SharpPipeline = import('sharp').Sharp

/** Decodes with sharp (EXIF orientation applied, alpha flattened onto white) through `shape`, to raw 8-bit pixels of `channels` channels. */
async function decode(bytes: Buffer, file: string, maxPixels: number, shape: (s: SharpPipeline) => SharpPipeline, channels: 1 | 3): Promise<{ data: Uint8Array; width: number; height: number }> {
  const sharp = await loadSharp()
  let data: Buffer
  let info: import('sharp').OutputInfo
  try {
    const pipeline = shape(sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels }).rotate().flatten({ background: '#ffffff' }))
    ;({ data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true }))
  } catch (error) {
    throw decodeError(error, bytes, file, maxPixels)
  }
  const { width, height } = info
  if (info.channels === channels) return { data, width, height }
  // Defensive: keep the first `channels` channels (sharp gives what was asked for).
  const out = new Uint8Array(width * height * channels)
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) out[p * channels + c] = data[p * info.channels + Math.min(c, info.channels - 1)] as number
  }
  return { data: out, width, height }
}

/** The encoded format, from the first bytes. */
function sniff(b: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to))
  if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'PNG'
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG'
  if (ascii(0, 4) === 'GIF8') return 'GIF'
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP'
  if (ascii(0, 2) === 'BM') return 'BMP'
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'TIFF'
  if (ascii(4, 8) === 'ftyp') return 'AVIF/HEIF'
  return undefined
}

/** Whether a file of a known format ends before its end marker. */
function isTruncated(format: string, b: Uint8Array): boolean {
  const n = b.length
  if (format === 'PNG') return n < 12 || String.fromCharCode(...b.subarray(n - 8, n - 4)) !== 'IEND'
  if (format === 'JPEG') {
    let end = n
    while (end > 2 && b[end - 1] === 0) end--
    return !(b[end - 2] === 0xff && b[end - 1] === 0xd9)
  }
  if (format === 'GIF') return b[n - 1] !== 0x3b
  if (format === 'WebP') return n < 12 || new DataView(b.buffer, b.byteOffset, n).getUint32(4, true) + 8 > n
  return false
}

function looksLikeText(b: Uint8Array): boolean {
  const head = b.subarray(0, 512)
  let printable = 0
  for (const c of head) if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 128) printable++
  return printable === head.length
}

function decodeError(error: unknown, bytes: Buffer, file: string, maxPixels: number): ImageError {
  const message = (error as Error)?.message ?? String(error)
  if (/pixel limit/i.test(message)) {
    return new ImageError(file, 'TOO_LARGE', `the image has more than the ${maxPixels} pixels allowed (maxPixels)`, { cause: error })
  }
  const format = sniff(bytes)
  if (/unsupported image format/i.test(message)) {
    const what = format === 'BMP'
      ? 'is a BMP image, which sharp does not read; convert it to PNG'
      : format === 'AVIF/HEIF'
        ? 'is a HEIF/AVIF file this build of sharp cannot decode (HEIC photos need a sharp built with libheif\'s HEVC decoder); convert it to JPEG or PNG'
        : looksLikeText(bytes)
          ? 'is not an image (it looks like text); expected JPEG, PNG, WebP, GIF, AVIF, TIFF or SVG'
          : 'is not an image in a format sharp reads (JPEG, PNG, WebP, GIF, AVIF, TIFF, SVG)'
    return new ImageError(file, 'UNSUPPORTED_FORMAT', what, { cause: error })
  }
  if (format && isTruncated(format, bytes)) {
    return new ImageError(file, 'TRUNCATED', `the ${format} data ends early (truncated at ${bytes.length} bytes): ${message}`, { cause: error })
  }
  return new ImageError(file, 'CORRUPT', `${format ?? 'the image'} data is corrupt and does not decode: ${message}`, { cause: error })
}

// ---------------------------------------------------------------------------
// MNIST-style preprocessing of decoded pixels.

/**
 * The MNIST-style square from 8-bit gray pixels (see {@link mnistImage}). @internal
 */
export function mnistFromGray(
  gray: Uint8Array,
  width: number,
  height: number,
  options: { invert: boolean | 'auto'; threshold: number; size: number },
  file: string,
): Float32Array {
  const { size, threshold } = options
  const border = borderMedian(gray, width, height)
  const invert = options.invert === 'auto' ? border > 127 : options.invert
  const background = invert ? 255 - border : border
  let peak = 0
  for (const v of gray) {
    const ink = invert ? 255 - v : v
    if (ink > peak) peak = ink
  }
  if (peak - background < MIN_CONTRAST) {
    throw new ImageError(file, 'EMPTY_IMAGE', `no ink to crop to: the image is blank (all pixels within ${Math.max(0, peak - background)} of the background level ${border}/255)`)
  }
  // Levels: background → 0, brightest ink → 1.
  const scale = 1 / (peak - background)
  const levels = new Float32Array(width * height)
  let x0 = width, x1 = -1, y0 = height, y1 = -1
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = gray[y * width + x] as number
      const t = Math.min(1, Math.max(0, ((invert ? 255 - v : v) - background) * scale))
      levels[y * width + x] = t
      if (t > threshold) {
        if (x < x0) x0 = x
        if (x > x1) x1 = x
        if (y < y0) y0 = y
        if (y > y1) y1 = y
      }
    }
  }
  // peak maps to 1 > threshold, so the box is never empty.
  const cw = x1 - x0 + 1
  const ch = y1 - y0 + 1
  const crop = new Float32Array(cw * ch)
  for (let y = 0; y < ch; y++) crop.set(levels.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + cw), y * cw)
  const box = Math.max(1, Math.round((20 / 28) * size))
  const longer = Math.max(cw, ch)
  const dw = Math.max(1, Math.round((cw * box) / longer))
  const dh = Math.max(1, Math.round((ch * box) / longer))
  const patch = resample(crop, cw, ch, dw, dh)
  let mass = 0, mx = 0, my = 0
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const v = patch[y * dw + x] as number
      mass += v
      mx += v * x
      my += v * y
    }
  }
  const out = new Float32Array(size * size)
  // Whole-pixel shift putting the centre of mass on pixel (size/2, size/2).
  const ox = mass > 0 ? Math.round(size / 2 - mx / mass) : Math.floor((size - dw) / 2)
  const oy = mass > 0 ? Math.round(size / 2 - my / mass) : Math.floor((size - dh) / 2)
  for (let y = 0; y < dh; y++) {
    const ty = y + oy
    if (ty < 0 || ty >= size) continue
    for (let x = 0; x < dw; x++) {
      const tx = x + ox
      if (tx >= 0 && tx < size) out[ty * size + tx] = patch[y * dw + x] as number
    }
  }
  return out
}

/** Median of the pixels within 2% (at least 1 pixel) of the edges. */
function borderMedian(gray: Uint8Array, width: number, height: number): number {
  const ring = Math.max(1, Math.round(Math.min(width, height) * 0.02))
  const hist = new Uint32Array(256)
  let count = 0
  for (let y = 0; y < height; y++) {
    const edgeRow = y < ring || y >= height - ring
    for (let x = 0; x < width; x++) {
      if (edgeRow || x < ring || x >= width - ring) {
        hist[gray[y * width + x] as number]! += 1
        count++
      }
    }
  }
  let seen = 0
  for (let v = 0; v < 256; v++) {
    seen += hist[v] as number
    if (seen * 2 >= count) return v
  }
  return 255
}

/**
 * For each output index along one axis, the source indices and weights: pixel-area
 * coverage when shrinking (each output pixel averages the source it covers), linear
 * interpolation between pixel centres when enlarging.
 */
function axisWeights(src: number, dst: number): { index: Int32Array; weight: Float32Array; offsets: Int32Array } {
  const index: number[] = []
  const weight: number[] = []
  const offsets = new Int32Array(dst + 1)
  const s = src / dst
  for (let j = 0; j < dst; j++) {
    if (s >= 1) {
      const a = j * s
      const b = (j + 1) * s
      for (let i = Math.floor(a); i < Math.min(src, Math.ceil(b)); i++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i)
        if (overlap > 1e-9) {
          index.push(i)
          weight.push(overlap / s)
        }
      }
    } else {
      const x = Math.min(src - 1, Math.max(0, (j + 0.5) * s - 0.5))
      const i0 = Math.floor(x)
      const f = x - i0
      index.push(i0)
      weight.push(1 - f)
      if (f > 0 && i0 + 1 < src) {
        index.push(i0 + 1)
        weight.push(f)
      }
    }
    offsets[j + 1] = index.length
  }
  return { index: Int32Array.from(index), weight: Float32Array.from(weight), offsets }
}

/** Separable resampling of a float image from sw×sh to dw×dh (see {@link axisWeights}). */
function resample(src: Float32Array, sw: number, sh: number, dw: number, dh: number): Float32Array {
  if (sw === dw && sh === dh) return src
  const wx = axisWeights(sw, dw)
  const wy = axisWeights(sh, dh)
  const tmp = new Float32Array(sh * dw)
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < dw; x++) {
      let acc = 0
      for (let k = wx.offsets[x] as number; k < (wx.offsets[x + 1] as number); k++) acc += (src[y * sw + (wx.index[k] as number)] as number) * (wx.weight[k] as number)
      tmp[y * dw + x] = acc
    }
  }
  const out = new Float32Array(dh * dw)
  for (let y = 0; y < dh; y++) {
    for (let k = wy.offsets[y] as number; k < (wy.offsets[y + 1] as number); k++) {
      const row = (wy.index[k] as number) * dw
      const w = wy.weight[k] as number
      for (let x = 0; x < dw; x++) out[y * dw + x]! += (tmp[row + x] as number) * w
    }
  }
  for (let j = 0; j < out.length; j++) out[j] = Math.min(1, Math.max(0, out[j] as number))
  return out
}
