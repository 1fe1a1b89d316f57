/**
 * `Dataset.fromImageFolder`: a labelled dataset from a folder with one sub-folder of
 * images per class, as torchvision's `ImageFolder` reads it.
 */

import type { Dirent } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { extname, join, relative, sep } from 'node:path'

import { Dataset } from './dataset.js'
import { ImageError, OptionError, type ImageErrorReason } from './errors.js'
import { checkFit, checkOptions, forEachLimit, readImage, type ImageFit, type ImageJob, type ImagePreprocess } from './image.js'
import { describe, integerInRange, oneOf } from './validate.js'

/** Options of {@link Dataset.fromImageFolder}. */
export interface ImageFolderOptions {
  /** Size every image is resized to: a side (`28` → 28×28) or `[height, width]`. */
  size: number | readonly [height: number, width: number]
  /** One gray channel (`true`) or three RGB channels (`false`, the default). */
  grayscale?: boolean
  /**
   * `'resize'` (default): the whole image resized to `size` (see `fit`).
   * `'mnist'`: the MNIST preprocessing of `mnistImage` (ink cropped, fitted, centred by
   * mass; needs a square `size`), for folders of handwritten digits.
   */
  preprocess?: ImagePreprocess
  /** How `'resize'` fits an image to `size`: `'fill'` (default, stretch), `'cover'` (crop), `'contain'` (pad black). */
  fit?: ImageFit
  /** Invert the pixels (`true`), or when the border is light (`'auto'`). Default: `'auto'` for `'mnist'`, `false` for `'resize'`. */
  invert?: boolean | 'auto'
  /**
   * What an unreadable file does: `'skip'` (default) leaves it out and lists it in
   * {@link ImageFolder.skipped}; `'fail'` rejects with its {@link ImageError}.
   */
  onError?: 'skip' | 'fail'
  /** How many images are read and decoded at once, default `4`. */
  concurrency?: number
  /**
   * Only files with these extensions (`['.png', '.jpg']`, case-insensitive) are read;
   * others are ignored without a report. Default: every file, so a stray non-image is
   * reported in `skipped` (or fails the load with `onError: 'fail'`).
   */
  extensions?: readonly string[]
  /** Largest image accepted, in pixels; default 64 M. */
  maxPixels?: number
}

/** A file {@link Dataset.fromImageFolder} left out, and why. */
export interface SkippedImage {
  /** Its path (`dir` joined with the class folder and file name). */
  readonly file: string
  /** The {@link ImageError}'s reason: `UNSUPPORTED_FORMAT`, `TRUNCATED`, `CORRUPT`, `EMPTY_FILE`, … */
  readonly reason: ImageErrorReason
  /** The {@link ImageError}'s message, which starts with the path. */
  readonly message: string
}

/** What {@link Dataset.fromImageFolder} returns. */
export interface ImageFolder {
  /**
   * The images: `uint8` pixels of `sampleShape` `[channels, height, width]` (NCHW, as
   * conv nets take them; an MLP of `channels·height·width` inputs takes them too), one
   * label per image, {@link Dataset.classNames} set to the class folders.
   */
  readonly dataset: Dataset
  /** The class folders' names, sorted; label `k` is `classNames[k]`. */
  readonly classNames: readonly string[]
  /** The path of each sample, in dataset order (by class, then by path). */
  readonly files: readonly string[]
  /** The files that could not be read, in path order (empty with `onError: 'fail'`). */
  readonly skipped: readonly SkippedImage[]
}

const KEYS = ['size', 'grayscale', 'preprocess', 'fit', 'invert', 'onError', 'concurrency', 'extensions', 'maxPixels'] as const

/** Implements {@link Dataset.fromImageFolder}. @internal */
export async function loadImageFolder(dir: string, options: ImageFolderOptions): Promise<ImageFolder> {
  if (typeof dir !== 'string' || dir === '') throw new OptionError('dir', `must be a folder path, got ${describe(dir)}`)
  if (options === undefined) throw new OptionError('options', 'are required: at least { size }, e.g. { size: 28, grayscale: true }')
  const o = checkOptions(options, KEYS)
  const [height, width] = checkSize(o.size)
  const grayscale = o.grayscale === undefined ? false : checkBoolean('grayscale', o.grayscale)
  const channels = grayscale ? 1 : 3
  const preprocess = o.preprocess === undefined ? 'resize' : oneOf('preprocess', o.preprocess, ['resize', 'mnist'] as const)
  const onError = o.onError === undefined ? 'skip' : oneOf('onError', o.onError, ['skip', 'fail'] as const)
  const concurrency = o.concurrency === undefined ? 4 : integerInRange('concurrency', o.concurrency, 1, 1024)
  const extensions = checkExtensions(o.extensions)
  let job: ImageJob
  if (preprocess === 'mnist') {
    if (height !== width) throw new OptionError('size', `preprocess 'mnist' needs a square size, got [${height}, ${width}]`)
    if (height < 8) throw new OptionError('size', `preprocess 'mnist' needs a side of at least 8, got ${height}`)
    if (o.fit !== undefined) throw new OptionError('fit', "is an option of preprocess 'resize'")
    job = { kind: 'mnist', size: height, channels }
  } else {
    job = { kind: 'resize', channels, height, width, fit: checkFit(o.fit) }
  }

  const classNames = await listClasses(dir)
  const files: string[] = []
  const labels: number[] = []
  for (let k = 0; k < classNames.length; k++) {
    for (const file of await listFiles(join(dir, classNames[k] as string), extensions)) {
      files.push(file)
      labels.push(k)
    }
  }
  if (files.length === 0) {
    throw new ImageError(dir, 'NO_IMAGES', `the class folders (${classNames.join(', ')}) hold no files${extensions ? ` ending in ${extensions.join(', ')}` : ''}`)
  }

  const dim = channels * height * width
  const inputs = new Uint8Array(files.length * dim)
  const failed: (SkippedImage | undefined)[] = new Array(files.length)
  const readOptions = { maxPixels: o.maxPixels, invert: o.invert }
  await forEachLimit(files.length, concurrency, async (i) => {
    try {
      const pixels = await readImage(files[i] as string, readOptions, job)
      if (pixels instanceof Uint8Array) inputs.set(pixels, i * dim)
      else for (let j = 0; j < dim; j++) inputs[i * dim + j] = Math.round((pixels[j] as number) * 255)
    } catch (error) {
      if (onError === 'fail' || !(error instanceof ImageError)) throw error
      failed[i] = { file: error.file, reason: error.reason, message: error.message }
    }
  })

  const skipped = failed.filter((s): s is SkippedImage => s !== undefined)
  const keptFiles: string[] = []
  const keptLabels: number[] = []
  let kept = inputs
  if (skipped.length > 0) {
    if (skipped.length === files.length) {
      throw new ImageError(dir, 'NO_IMAGES', `none of its ${files.length} files could be read as an image; the first: ${skipped[0]!.message}`)
    }
    kept = new Uint8Array((files.length - skipped.length) * dim)
  }
  for (let i = 0; i < files.length; i++) {
    if (failed[i]) continue
    if (kept !== inputs) kept.set(inputs.subarray(i * dim, (i + 1) * dim), keptFiles.length * dim)
    keptFiles.push(files[i] as string)
    keptLabels.push(labels[i] as number)
  }
  const dataset = Dataset.fromArrays({
    inputs: kept,
    labels: keptLabels,
    sampleShape: [channels, height, width],
    numClasses: classNames.length,
    classNames,
  })
  return Object.freeze({
    dataset,
    classNames: dataset.classNames as readonly string[],
    files: Object.freeze(keptFiles),
    skipped: Object.freeze(skipped),
  })
}

function checkSize(size: unknown): [number, number] {
  if (typeof size === 'number') {
    const side = integerInRange('size', size, 1, 8192)
    return [side, side]
  }
  if (Array.isArray(size) && size.length === 2) {
    return [integerInRange('size[0]', size[0], 1, 8192), integerInRange('size[1]', size[1], 1, 8192)]
  }
  throw new OptionError('size', `is required: a side in pixels (28) or [height, width], got ${describe(size)}`)
}

function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new OptionError(field, `must be true or false, got ${describe(value)}`)
  return value
}

function checkExtensions(value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0) throw new OptionError('extensions', `must be a non-empty array such as ['.png', '.jpg'], got ${describe(value)}`)
  return value.map((e: unknown, k) => {
    if (typeof e !== 'string' || e.replace(/^\./, '') === '') throw new OptionError(`extensions[${k}]`, `must be an extension such as '.png', got ${describe(e)}`)
    return `.${e.replace(/^\./, '').toLowerCase()}`
  })
}

function hidden(name: string): boolean {
  return name.startsWith('.')
}

/** Whether a directory entry is (or links to) a folder / a file. */
async function kind(parent: string, entry: Dirent): Promise<'dir' | 'file' | 'other'> {
  if (entry.isDirectory()) return 'dir'
  if (entry.isFile()) return 'file'
  if (entry.isSymbolicLink()) {
    try {
      const s = await stat(join(parent, entry.name))
      return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other'
    } catch {
      return 'other' // a dangling link
    }
  }
  return 'other'
}

/** The sorted names of `dir`'s class folders (not hidden). */
async function listClasses(dir: string): Promise<string[]> {
  let entries: Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code
    if (code === 'ENOENT') throw new ImageError(dir, 'NOT_FOUND', 'no such folder', { cause: error })
    if (code === 'ENOTDIR') throw new ImageError(dir, 'NOT_A_DIRECTORY', 'is a file, not a folder of class sub-folders', { cause: error })
    throw new ImageError(dir, 'UNREADABLE', `cannot be listed (${code ?? (error as Error)?.message})`, { cause: error })
  }
  const names: string[] = []
  for (const entry of entries) {
    if (!hidden(entry.name) && (await kind(dir, entry)) === 'dir') names.push(entry.name)
  }
  if (names.length === 0) {
    throw new ImageError(dir, 'NO_CLASSES', `has no class sub-folders; fromImageFolder expects one folder per class, e.g. ${join(dir, 'cat', '001.png')}`)
  }
  return names.sort(byCodePoint)
}

/** Every non-hidden file under `folder` (sub-folders included, symlinked folders not followed), sorted by path. */
async function listFiles(folder: string, extensions: string[] | undefined): Promise<string[]> {
  const out: string[] = []
  const walk = async (current: string): Promise<void> => {
    let entries: Dirent[]
    try {
      entries = await readdir(current, { withFileTypes: true })
    } catch (error) {
      throw new ImageError(current, 'UNREADABLE', `cannot be listed (${(error as NodeJS.ErrnoException)?.code ?? (error as Error)?.message})`, { cause: error })
    }
    for (const entry of entries) {
      if (hidden(entry.name)) continue
      if (entry.isDirectory()) await walk(join(current, entry.name))
      else if ((await kind(current, entry)) === 'file') {
        if (!extensions || extensions.includes(extname(entry.name).toLowerCase())) out.push(join(current, entry.name))
      }
    }
  }
  await walk(folder)
  // Sort by the path inside the class folder, component by component.
  const key = (p: string) => relative(folder, p).split(sep)
  return out.sort((a, b) => {
    const ka = key(a)
    const kb = key(b)
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
      const c = byCodePoint(ka[i] as string, kb[i] as string)
      if (c !== 0) return c
    }
    return ka.length - kb.length
  })
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
