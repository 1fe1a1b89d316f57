/**
 * An in-memory labelled dataset for classification: one flat typed array of inputs
 * and one byte per label. It is the unit the trainer consumes and the loaders produce.
 */

import { OptionError, ShapeError } from './errors.js'
import { createRandom, permutation } from './random.js'

/** Typed arrays a dataset can hold its inputs in. */
export type InputArray = Uint8Array | Float32Array

/**
 * Element type of a dataset's inputs.
 *
 * - `'uint8'`: raw pixel bytes `0..255`; the Rust core divides them by 255 when it
 *   builds a batch, so the network sees values in `[0, 1]`.
 * - `'float32'`: feature values that are fed to the network as they are (no scaling).
 */
export type InputDType = 'uint8' | 'float32'

/** Arguments of {@link Dataset.fromArrays}. */
export interface DatasetArrays {
  /**
   * All samples, row-major, shape `[size, ...sampleShape]`. Must be a `Uint8Array`
   * (pixels, later scaled by 1/255) or a `Float32Array` (finite features, used as-is).
   * The dataset keeps a reference to this array; it is not copied.
   */
  inputs: InputArray
  /**
   * One class index per sample. A `Uint8Array` is kept by reference; any other
   * array-like of integers (`number[]`, `Int32Array`, …) is copied into a new `Uint8Array`.
   */
  labels: ArrayLike<number>
  /**
   * Shape of one sample, e.g. `[28, 28]` or `[784]`. Defaults to `[inputs.length / labels.length]`.
   */
  sampleShape?: readonly number[]
  /** Number of classes, an integer in `1..256`. Defaults to the largest label + 1. */
  numClasses?: number
}

/** One sample of a dataset. */
export interface Sample {
  /** The sample's inputs: a view (not a copy) into the dataset's `inputs`, length `inputDim`. */
  input: InputArray
  /** The sample's class index. */
  label: number
}

/** Options of {@link Dataset.split}. */
export interface SplitOptions {
  /**
   * Whether to shuffle before splitting. Default `true`. Without shuffling both parts
   * are zero-copy views of consecutive samples; with it both parts are copies.
   */
  shuffle?: boolean
  /**
   * Seed of the shuffle (a safe integer). Default `0`, so an unseeded split is the
   * same on every run; pass another seed for a different split.
   */
  seed?: number
}

/** The fields a dataset is made of; used to build one without validation. */
interface DatasetParts {
  inputs: InputArray
  labels: Uint8Array
  sampleShape: readonly number[]
  numClasses: number
}

/** Proves a constructor call comes from this module, where parts are known to be consistent. */
const trusted: unique symbol = Symbol('ferronet.Dataset.trusted')

/**
 * A labelled classification dataset held in memory.
 *
 * Build one with {@link Dataset.fromArrays} (which validates its arguments) or get one
 * from a loader such as `mnist.load`. Derived datasets ({@link Dataset.subset},
 * {@link Dataset.select}, {@link Dataset.split}) skip validation because their parent
 * was already valid.
 *
 * Typed arrays cannot be frozen, so the arrays stay writable; a dataset made by
 * `subset` (or an unshuffled `split`) shares memory with its parent, so writes to one
 * show in the other. The native core reads the arrays in place without copying, so do
 * not modify a dataset while a training or evaluation run on it is in progress.
 */
export class Dataset {
  /** All samples, row-major, shape `[size, ...sampleShape]`. */
  readonly inputs: InputArray
  /** One class index per sample, each below {@link Dataset.numClasses}. */
  readonly labels: Uint8Array
  /** Shape of one sample, e.g. `[28, 28]`. Frozen. */
  readonly sampleShape: readonly number[]
  /** Number of classes (`1..256`); every label is below it. */
  readonly numClasses: number

  /**
   * Internal. Use {@link Dataset.fromArrays}; direct construction throws so that every
   * public dataset is validated.
   */
  private constructor(token: typeof trusted, parts: DatasetParts) {
    if (token !== trusted) {
      throw new TypeError('Dataset cannot be constructed directly; use Dataset.fromArrays(...)')
    }
    this.inputs = parts.inputs
    this.labels = parts.labels
    this.sampleShape = parts.sampleShape
    this.numClasses = parts.numClasses
  }

  /**
   * Builds a dataset from arrays, checking that they fit together.
   *
   * @param arrays - Inputs, labels and optionally the sample shape and class count.
   * @returns A dataset that references `inputs` (and `labels` when it is a `Uint8Array`).
   * @throws {@link OptionError} naming the field (`inputs`, `labels[i]`, `sampleShape[k]`,
   *   `numClasses`) when an argument has the wrong type or an out-of-range value.
   * @throws {@link ShapeError} when the lengths of `inputs`, `labels` and `sampleShape`
   *   do not fit together, or when a float input is NaN or infinite (naming the sample).
   */
  static fromArrays(arrays: DatasetArrays): Dataset {
    if (typeof arrays !== 'object' || arrays === null) {
      throw new OptionError('arrays', 'expected an object { inputs, labels, sampleShape?, numClasses? }')
    }
    const inputs = checkInputs(arrays.inputs)
    const labels = toLabelBytes(arrays.labels)
    const size = labels.length
    const sampleShape = arrays.sampleShape === undefined
      ? inferSampleShape(inputs, size)
      : checkSampleShape(arrays.sampleShape)
    const inputDim = product(sampleShape)
    if (inputs.length % inputDim !== 0) {
      throw new ShapeError(
        `inputs has length ${inputs.length}, which is not a multiple of the sample size ` +
          `${inputDim} (sampleShape [${sampleShape.join(', ')}])`,
      )
    }
    if (inputs.length !== size * inputDim) {
      throw new ShapeError(
        `inputs holds ${inputs.length / inputDim} samples of shape [${sampleShape.join(', ')}] ` +
          `but labels has ${size} entries; they must match`,
      )
    }
    const numClasses = arrays.numClasses === undefined
      ? inferNumClasses(labels)
      : checkNumClasses(arrays.numClasses)
    checkLabelsBelow(labels, numClasses)
    if (inputs instanceof Float32Array) checkFinite(inputs, inputDim)
    return new Dataset(trusted, { inputs, labels, sampleShape, numClasses })
  }

  /** Number of samples. */
  get size(): number {
    return this.labels.length
  }

  /** Number of input values per sample: the product of {@link Dataset.sampleShape}. */
  get inputDim(): number {
    return product(this.sampleShape)
  }

  /**
   * Element type of {@link Dataset.inputs}: `'uint8'` pixels are divided by 255 by the
   * Rust core (so the network sees `[0, 1]`); `'float32'` features are used as-is.
   */
  get dtype(): InputDType {
    return this.inputs instanceof Uint8Array ? 'uint8' : 'float32'
  }

  /**
   * The samples `start` (inclusive) to `end` (exclusive) as a new dataset that shares
   * memory with this one (no copy).
   *
   * @param start - First sample, `0..size`.
   * @param end - One past the last sample, `start..size`. Defaults to `size`.
   * @throws {@link OptionError} (`start` / `end`) when out of range or not integers.
   */
  subset(start: number, end: number = this.size): Dataset {
    checkIndex('start', start, this.size + 1)
    checkIndex('end', end, this.size + 1)
    if (end < start) {
      throw new OptionError('end', `must not be below start (${start}), got ${end}`)
    }
    const dim = this.inputDim
    return this.derive(this.inputs.subarray(start * dim, end * dim), this.labels.subarray(start, end))
  }

  /**
   * The samples at `indices`, in that order, copied into a new dataset. Indices may repeat.
   *
   * @param indices - Sample indices, each an integer in `0..size-1`.
   * @throws {@link OptionError} (`indices[k]`) naming the first bad index.
   */
  select(indices: ArrayLike<number>): Dataset {
    const count = indices.length
    const dim = this.inputDim
    const inputs = this.inputs instanceof Uint8Array
      ? new Uint8Array(count * dim)
      : new Float32Array(count * dim)
    const labels = new Uint8Array(count)
    for (let k = 0; k < count; k++) {
      const i = indices[k] as number
      checkIndex(`indices[${k}]`, i, this.size)
      inputs.set(this.inputs.subarray(i * dim, (i + 1) * dim), k * dim)
      labels[k] = this.labels[i] as number
    }
    return this.derive(inputs, labels)
  }

  /**
   * Splits the dataset into two parts, e.g. training and validation.
   *
   * @param first - Size of the first part: a fraction in `(0, 1)` (rounded to the
   *   nearest count, so `0.8` of 10 is 8) or an integer count in `0..size`. Note that
   *   `1` means one sample, not 100 %.
   * @param options - Whether to shuffle first (default `true`) and the shuffle's seed
   *   (default `0`). The same seed always gives the same split.
   * @returns `[firstPart, rest]`; together they hold every sample exactly once.
   *   Unshuffled parts are zero-copy views; shuffled parts are copies.
   * @throws {@link OptionError} (`first`, `shuffle`, `seed`) for invalid arguments.
   */
  split(first: number, options: SplitOptions = {}): [Dataset, Dataset] {
    const count = splitCount(first, this.size)
    const { shuffle = true, seed = 0 } = options
    if (typeof shuffle !== 'boolean') {
      throw new OptionError('shuffle', `expected a boolean, got ${describe(shuffle)}`)
    }
    if (!shuffle) return [this.subset(0, count), this.subset(count)]
    const order = permutation(this.size, createRandom(seed))
    return [this.select(order.subarray(0, count)), this.select(order.subarray(count))]
  }

  /**
   * The sample at `index`.
   *
   * @param index - An integer in `0..size-1`.
   * @returns Its input (a view into {@link Dataset.inputs}, not a copy) and label.
   * @throws {@link OptionError} (`index`) when out of range.
   */
  sample(index: number): Sample {
    checkIndex('index', index, this.size)
    const dim = this.inputDim
    return {
      input: this.inputs.subarray(index * dim, (index + 1) * dim),
      label: this.labels[index] as number,
    }
  }

  /** How many samples each class has: entry `c` counts the labels equal to `c`. */
  classCounts(): Uint32Array {
    const counts = new Uint32Array(this.numClasses)
    for (const label of this.labels) counts[label]! += 1
    return counts
  }

  /** A dataset with this one's shape and classes but other (already consistent) arrays. */
  private derive(inputs: InputArray, labels: Uint8Array): Dataset {
    return new Dataset(trusted, {
      inputs,
      labels,
      sampleShape: this.sampleShape,
      numClasses: this.numClasses,
    })
  }
}

/** Product of a shape's dimensions (1 for an empty shape). */
function product(shape: readonly number[]): number {
  let result = 1
  for (const d of shape) result *= d
  return result
}

/** A short description of a value's type for error messages. */
function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an Array'
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`
  return `${typeof value} ${String(value)}`
}

function checkInputs(inputs: unknown): InputArray {
  if (inputs instanceof Uint8Array || inputs instanceof Float32Array) return inputs
  const hint = Array.isArray(inputs) || ArrayBuffer.isView(inputs)
    ? '; convert it with Float32Array.from(...) (features) or Uint8Array.from(...) (0..255 pixels)'
    : ''
  throw new OptionError('inputs', `expected a Uint8Array or Float32Array, got ${describe(inputs)}${hint}`)
}

/** Labels as bytes: a `Uint8Array` is kept, anything else is copied with range checks. */
function toLabelBytes(labels: unknown): Uint8Array {
  if (labels instanceof Uint8Array) return labels
  if (
    labels === null ||
    typeof labels !== 'object' ||
    typeof (labels as { length?: unknown }).length !== 'number'
  ) {
    throw new OptionError('labels', `expected an array of class indices, got ${describe(labels)}`)
  }
  const source = labels as ArrayLike<unknown>
  const bytes = new Uint8Array(source.length)
  for (let i = 0; i < source.length; i++) {
    const value = source[i]
    if (typeof value !== 'number' && typeof value !== 'bigint') {
      throw new OptionError(`labels[${i}]`, `expected an integer class index, got ${describe(value)}`)
    }
    const label = Number(value)
    if (!Number.isInteger(label) || label < 0 || label > 255) {
      throw new OptionError(`labels[${i}]`, `expected an integer class index in 0..255, got ${String(value)}`)
    }
    bytes[i] = label
  }
  return bytes
}

function checkSampleShape(shape: unknown): readonly number[] {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new OptionError('sampleShape', `expected a non-empty array of positive integers, got ${describe(shape)}`)
  }
  shape.forEach((d: unknown, k) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) {
      throw new OptionError(`sampleShape[${k}]`, `expected a positive integer, got ${String(d)}`)
    }
  })
  return Object.freeze([...(shape as number[])])
}

/** Without a sample shape every sample is a flat vector: `[inputs.length / size]`. */
function inferSampleShape(inputs: InputArray, size: number): readonly number[] {
  if (size === 0) {
    throw new ShapeError('cannot infer sampleShape from an empty dataset (labels is empty); pass sampleShape')
  }
  if (inputs.length === 0 || inputs.length % size !== 0) {
    throw new ShapeError(
      `inputs has length ${inputs.length}, which is not a positive multiple of the ` +
        `${size} entries of labels; each sample needs the same number of inputs`,
    )
  }
  return Object.freeze([inputs.length / size])
}

function checkNumClasses(numClasses: unknown): number {
  if (typeof numClasses !== 'number' || !Number.isInteger(numClasses) || numClasses < 1 || numClasses > 256) {
    throw new OptionError('numClasses', `expected an integer in 1..256, got ${String(numClasses)}`)
  }
  return numClasses
}

function inferNumClasses(labels: Uint8Array): number {
  if (labels.length === 0) {
    throw new OptionError('numClasses', 'cannot infer it from an empty dataset; pass numClasses')
  }
  let max = 0
  for (const label of labels) if (label > max) max = label
  return max + 1
}

function checkLabelsBelow(labels: Uint8Array, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number
    if (label >= numClasses) {
      throw new OptionError(`labels[${i}]`, `label ${label} is not below numClasses (${numClasses})`)
    }
  }
}

/** NaN or ±Infinity would silently poison every weight they touch during training. */
function checkFinite(inputs: Float32Array, inputDim: number): void {
  for (let j = 0; j < inputs.length; j++) {
    const value = inputs[j] as number
    if (!Number.isFinite(value)) {
      const sample = Math.floor(j / inputDim)
      throw new ShapeError(
        `inputs of sample ${sample} contain ${value} (inputs[${j}], feature ${j % inputDim}); ` +
          'float32 inputs must be finite',
      )
    }
  }
}

/** Requires an integer in `0..limit-1`. */
function checkIndex(field: string, value: unknown, limit: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= limit) {
    throw new OptionError(field, `expected an integer in 0..${limit - 1}, got ${String(value)}`)
  }
}

/** Size of a split's first part from a fraction in (0, 1) or an integer count. */
function splitCount(first: unknown, size: number): number {
  if (typeof first === 'number' && first > 0 && first < 1) {
    // Round, not floor: 0.29 * 100 is 28.999999999999996 in floating point.
    return Math.round(first * size)
  }
  if (typeof first === 'number' && Number.isInteger(first) && first >= 0 && first <= size) {
    return first
  }
  throw new OptionError(
    'first',
    `expected a fraction in (0, 1) or an integer count in 0..${size}, got ${String(first)}`,
  )
}
