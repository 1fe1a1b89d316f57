/**
 * An in-memory dataset: one flat typed array of inputs and either integer class
 * labels (classification) or float targets (regression, multi-label). It is the unit
 * the trainer consumes and the loaders produce.
 */

import { OptionError, ShapeError, type ImageError } from './errors.js'
import type { ImageFolder, ImageFolderOptions } from './image-folder.js'
import { createRandom, permutation } from './random.js'
import { integerInRange, unknownOption } from './validate.js'

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
   * One class index per sample (integers >= 0). Stored as a `Uint8Array` when there are
   * at most 256 classes, else as a `Uint32Array`; an array of the right type is kept by
   * reference, anything else (`number[]`, `Int32Array`, `Uint16Array`, …) is copied.
   * Exactly one of `labels` and `targets`.
   */
  labels?: ArrayLike<number>
  /**
   * Class labels per sample (default 1): k > 1 gives every sample k labels, one per
   * position of a sequence model's `[k, classes]` output (a tagger's, a language
   * model's next ids), `labels` holding `size × k` entries, samples first.
   */
  labelsPerSample?: number
  /**
   * Float targets, `targetShape` values per sample (regression, multi-label 0/1 targets):
   * finite, length `size × product(targetShape)`. Kept by reference.
   */
  targets?: Float32Array
  /** Shape of one sample's targets, e.g. `[3]`. Default: `[targets.length / size]` (size from `sampleShape`), else `[1]`. */
  targetShape?: readonly number[]
  /**
   * Shape of one sample, e.g. `[28, 28]` or `[784]`. Defaults to `[inputs.length / size]`.
   */
  sampleShape?: readonly number[]
  /** Number of classes, an integer >= 1. Defaults to the largest label + 1 (or to `classNames.length`). Not for `targets`. */
  numClasses?: number
  /**
   * A name for each class (`classNames[label]`), e.g. the folder names of
   * {@link Dataset.fromImageFolder}: `numClasses` distinct strings. Not for `targets`.
   */
  classNames?: readonly string[]
}

/** Typed arrays a dataset holds its labels in. */
export type LabelArray = Uint8Array | Uint32Array

/** One sample of a dataset. */
export interface Sample {
  /** The sample's inputs: a view (not a copy) into the dataset's `inputs`, length `inputDim`. */
  input: InputArray
  /** The sample's class index (labelled datasets; the first one with several per sample). */
  label?: number
  /** The sample's labels when it has several (one per position): a view into {@link Dataset.labels}. */
  labels?: LabelArray
  /** The sample's targets: a view into {@link Dataset.targets} (target datasets). */
  target?: Float32Array
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
  labels: LabelArray | undefined
  targets: Float32Array | undefined
  targetShape: readonly number[]
  sampleShape: readonly number[]
  numClasses: number
  classNames: readonly string[] | undefined
  size: number
  targetsAreInputs?: boolean
  labelsPerSample?: number
}

/** Proves a constructor call comes from this module, where parts are known to be consistent. */
const trusted: unique symbol = Symbol('ferronet.Dataset.trusted')

/**
 * A dataset held in memory: `size` samples of shape {@link Dataset.sampleShape}, each
 * with a class label (classification) or float targets (regression, multi-label).
 *
 * ```ts
 * import { Dataset, mnist } from 'ferronet'
 *
 * const digits = await mnist.loadDigits()                  // 10,000 × [28, 28] uint8, 10 classes
 * const [train, test] = digits.split(0.8, { seed: 1 })     // 8,000 / 2,000, shuffled copies
 * console.log(train.size, train.sampleShape, train.classCounts())
 *
 * const xor = Dataset.fromArrays({
 *   inputs: Float32Array.of(0, 0, 0, 1, 1, 0, 1, 1), sampleShape: [2], labels: [0, 1, 1, 0],
 * })
 * ```
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
  /**
   * One class index per sample, each below {@link Dataset.numClasses} (`Uint8Array` up to
   * 256 classes, else `Uint32Array`); undefined for a dataset of float targets.
   */
  readonly labels: LabelArray | undefined
  /** Float targets, row-major `[size, ...targetShape]`; undefined for a labelled dataset. */
  readonly targets: Float32Array | undefined
  /** Shape of one sample's targets (`[1]` for a labelled dataset: one class index). Frozen. */
  readonly targetShape: readonly number[]
  /** Shape of one sample, e.g. `[28, 28]`. Frozen. */
  readonly sampleShape: readonly number[]
  /** Number of classes; every label is below it. `0` for a dataset of float targets. */
  readonly numClasses: number
  /**
   * The name of each class, `classNames[label]` (frozen), when known: set by
   * {@link Dataset.fromImageFolder} (the folder names) or `fromArrays({ classNames })`,
   * and kept by `subset`, `select` and `split`. Otherwise undefined.
   */
  readonly classNames: readonly string[] | undefined
  /** Number of samples. */
  readonly size: number
  /**
   * Whether the targets are the inputs themselves (an autoencoder's reconstruction
   * target, as the network sees them: pixels / 255): see {@link Dataset.withInputsAsTargets}.
   */
  readonly targetsAreInputs: boolean
  /** Class labels per sample: 1, or k for per-position labels (see {@link DatasetArrays.labelsPerSample}). */
  readonly labelsPerSample: number

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
    this.targets = parts.targets
    this.targetShape = parts.targetShape
    this.sampleShape = parts.sampleShape
    this.numClasses = parts.numClasses
    this.classNames = parts.classNames
    this.size = parts.size
    this.targetsAreInputs = parts.targetsAreInputs ?? false
    this.labelsPerSample = parts.labelsPerSample ?? 1
  }

  /**
   * This dataset with its inputs as its targets (an autoencoder's, a VAE's
   * reconstruction target), sharing memory: nothing is copied, the core reads each
   * batch's targets from the input rows (`uint8` pixels as the network sees them,
   * divided by 255). Labels, if any, are kept (for `classCounts`, `split`'s order, …)
   * but not trained on. `subset`, `select` and `split` keep the setting.
   *
   * ```ts
   * const train = (await mnist.load({ dir, set: 'train' })).withInputsAsTargets()
   * ```
   */
  withInputsAsTargets(): Dataset {
    return new Dataset(trusted, {
      inputs: this.inputs,
      labels: this.labels,
      targets: this.targets,
      targetShape: this.targetShape,
      sampleShape: this.sampleShape,
      numClasses: this.numClasses,
      classNames: this.classNames,
      size: this.size,
      targetsAreInputs: true,
      labelsPerSample: this.labelsPerSample,
    })
  }

  /**
   * Builds a dataset from arrays, checking that they fit together.
   *
   * ```ts
   * // 3 samples of 4 features, classes 0..2
   * const ds = Dataset.fromArrays({ inputs: new Float32Array(12), labels: [0, 2, 1], numClasses: 3 })
   * // regression: 2 float targets per sample
   * const reg = Dataset.fromArrays({ inputs: features, targets: new Float32Array(rows * 2), targetShape: [2] })
   * ```
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
      throw new OptionError('arrays', 'expected an object { inputs, labels | targets, sampleShape?, numClasses?, targetShape? }')
    }
    for (const key of Object.keys(arrays)) {
      if (!['inputs', 'labels', 'labelsPerSample', 'targets', 'targetShape', 'sampleShape', 'numClasses', 'classNames'].includes(key)) {
        throw new OptionError(key, 'is not a field of Dataset.fromArrays (it takes inputs, labels or targets, labelsPerSample, sampleShape, numClasses, classNames, targetShape)')
      }
    }
    const inputs = checkInputs(arrays.inputs)
    const hasLabels = arrays.labels !== undefined
    const hasTargets = arrays.targets !== undefined
    if (hasLabels === hasTargets) {
      throw new OptionError(hasLabels ? 'targets' : 'labels', 'pass exactly one of labels (class indices) and targets (a Float32Array of float targets)')
    }
    let size: number
    let labels: LabelArray | undefined
    let targets: Float32Array | undefined
    let targetShape: readonly number[] = Object.freeze([1])
    let numClasses = 0
    let classNames: readonly string[] | undefined
    let labelsPerSample = 1
    if (arrays.labelsPerSample !== undefined) {
      const k = arrays.labelsPerSample
      if (!hasLabels) throw new OptionError('labelsPerSample', 'is only for labels, not for float targets')
      if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) throw new OptionError('labelsPerSample', `must be an integer >= 1, got ${describe(k)}`)
      labelsPerSample = k
    }
    if (hasLabels) {
      if (arrays.targetShape !== undefined) throw new OptionError('targetShape', 'is only for targets; labels are one class index per sample')
      const raw = checkLabels(arrays.labels)
      if (raw.length % labelsPerSample !== 0) {
        throw new ShapeError(`labels has ${raw.length} entries, not a multiple of labelsPerSample (${labelsPerSample})`)
      }
      size = raw.length / labelsPerSample
      classNames = arrays.classNames === undefined ? undefined : checkClassNames(arrays.classNames)
      numClasses = arrays.numClasses !== undefined
        ? checkNumClasses(arrays.numClasses)
        : classNames !== undefined ? classNames.length : inferNumClasses(raw)
      if (classNames !== undefined && classNames.length !== numClasses) {
        throw new OptionError('classNames', `has ${classNames.length} names but numClasses is ${numClasses}; give one name per class`)
      }
      checkLabelsBelow(raw, numClasses)
      labels = storeLabels(raw, numClasses)
    } else {
      if (arrays.numClasses !== undefined) throw new OptionError('numClasses', 'is only for labels, not for float targets')
      if (arrays.classNames !== undefined) throw new OptionError('classNames', 'is only for labels, not for float targets')
      if (!(arrays.targets instanceof Float32Array)) {
        throw new OptionError('targets', `expected a Float32Array, got ${describe(arrays.targets)}`)
      }
      targets = arrays.targets
      if (arrays.targetShape !== undefined) {
        targetShape = checkSampleShape(arrays.targetShape, 'targetShape')
      } else if (arrays.sampleShape !== undefined) {
        const samples = inputs.length / product(checkSampleShape(arrays.sampleShape))
        if (Number.isInteger(samples) && samples > 0 && targets.length % samples === 0) targetShape = Object.freeze([targets.length / samples])
      }
      const targetDim = product(targetShape)
      if (targets.length % targetDim !== 0) {
        throw new ShapeError(`targets has length ${targets.length}, which is not a multiple of the target size ${targetDim} (targetShape [${targetShape.join(', ')}])`)
      }
      size = targets.length / targetDim
    }
    const sampleShape = arrays.sampleShape === undefined
      ? inferSampleShape(inputs, size, hasLabels ? 'labels' : 'targets')
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
          (hasLabels ? `but labels has ${size * labelsPerSample} entries${labelsPerSample > 1 ? ` (${size} samples of ${labelsPerSample})` : ''}; they must match` : `but targets holds ${size} samples of shape [${targetShape.join(', ')}]; they must match`),
      )
    }
    if (inputs instanceof Float32Array) checkFinite(inputs, inputDim, 'inputs')
    if (targets) checkFinite(targets, product(targetShape), 'targets')
    return new Dataset(trusted, { inputs, labels, targets, targetShape, sampleShape, numClasses, classNames, size, labelsPerSample })
  }

  /**
   * Loads a folder of images with one sub-folder per class, as torchvision's
   * `ImageFolder` does: the classes are the sub-folders' names sorted (label `k` is
   * `classNames[k]`); every file under a class folder (nested folders included; hidden
   * files and folders, those starting with `.`, left out) is decoded with sharp and
   * resized to `size`, at most `concurrency` at a time. Samples are ordered by class,
   * then by path; shuffle with `split` or the trainer.
   *
   * Files that cannot be read (not an image, corrupt, truncated, …) are skipped and
   * listed in `skipped` with the reason, or, with `onError: 'fail'`, reject the load
   * with their {@link ImageError}. A class folder whose files are all skipped keeps its
   * label (with no samples).
   *
   * ```ts
   * // photos/cat/*.jpg, photos/dog/*.jpg
   * const { dataset, classNames, skipped } = await Dataset.fromImageFolder('photos', { size: 32 })
   * for (const s of skipped) console.warn(`skipped ${s.message}`)
   * const net = Net.sequential([3, 32, 32], [Net.flatten(), Net.dense(64), Net.relu(), Net.dense(classNames.length)])
   * await new Trainer(net).fit(dataset, { epochs: 5 })
   * ```
   *
   * @param dir - The folder of class sub-folders.
   * @param options - `size` (required), `grayscale`, `preprocess`, `onError`, … See {@link ImageFolderOptions}.
   * @returns The dataset (`uint8`, `sampleShape` `[channels, height, width]`, with
   *   `classNames`), the class names, each sample's file, and the skipped files.
   * @throws {@link ImageError} naming the folder: `NOT_FOUND`, `NOT_A_DIRECTORY`,
   *   `NO_CLASSES` (no sub-folder), `NO_IMAGES` (no file, or none readable); with
   *   `onError: 'fail'`, the first unreadable file's error, naming that file.
   * @throws {@link OptionError} for a bad option.
   */
  static async fromImageFolder(dir: string, options: ImageFolderOptions): Promise<ImageFolder> {
    // Loaded on first use, with sharp, so that importing ferronet does not load sharp.
    const { loadImageFolder } = await import('./image-folder.js')
    return loadImageFolder(dir, options)
  }

  /** `'classes'` for integer labels, `'targets'` for float targets. */
  get kind(): 'classes' | 'targets' {
    return this.targets ? 'targets' : 'classes'
  }

  /** Values per sample of {@link Dataset.targets} (1 for labels). */
  get targetDim(): number {
    return product(this.targetShape)
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
    const t = this.targetDim
    return this.derive(
      this.inputs.subarray(start * dim, end * dim),
      this.labels?.subarray(start * this.labelsPerSample, end * this.labelsPerSample),
      this.targets?.subarray(start * t, end * t),
      end - start,
    )
  }

  /**
   * The samples at `indices`, in that order, copied into a new dataset. Indices may repeat.
   *
   * @param indices - Sample indices, each an integer in `0..size-1`.
   * @throws {@link OptionError} (`indices[k]`) naming the first bad index.
   */
  select(indices: ArrayLike<number>): Dataset {
    if (indices === null || typeof indices !== 'object' || typeof indices.length !== 'number') {
      throw new OptionError('indices', `expected an array of sample indices, got ${describe(indices)}`)
    }
    const count = indices.length
    const dim = this.inputDim
    const inputs = this.inputs instanceof Uint8Array
      ? new Uint8Array(count * dim)
      : new Float32Array(count * dim)
    const t = this.targetDim
    const lk = this.labelsPerSample
    const labels = this.labels instanceof Uint32Array ? new Uint32Array(count * lk) : this.labels ? new Uint8Array(count * lk) : undefined
    const targets = this.targets ? new Float32Array(count * t) : undefined
    for (let k = 0; k < count; k++) {
      const i = indices[k] as number
      checkIndex(`indices[${k}]`, i, this.size)
      inputs.set(this.inputs.subarray(i * dim, (i + 1) * dim), k * dim)
      if (labels) labels.set(this.labels!.subarray(i * lk, (i + 1) * lk), k * lk)
      if (targets) targets.set(this.targets!.subarray(i * t, (i + 1) * t), k * t)
    }
    return this.derive(inputs, labels, targets, count)
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
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new OptionError('options', `expected an options object { shuffle?, seed? }, got ${describe(options)}`)
    }
    for (const key of Object.keys(options)) if (key !== 'shuffle' && key !== 'seed') throw unknownOption(`options.${key}`, key, ['shuffle', 'seed'])
    const { shuffle = true, seed = 0 } = options
    integerInRange('seed', seed, 0)
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
    const input = this.inputs.subarray(index * dim, (index + 1) * dim)
    const lk = this.labelsPerSample
    if (this.labels && lk > 1) return { input, label: this.labels[index * lk] as number, labels: this.labels.subarray(index * lk, (index + 1) * lk) }
    if (this.labels) return { input, label: this.labels[index] as number }
    const t = this.targetDim
    return { input, target: this.targets!.subarray(index * t, (index + 1) * t) }
  }

  /** How many samples each class has: entry `c` counts the labels equal to `c` (empty for float targets). */
  classCounts(): Uint32Array {
    const counts = new Uint32Array(this.numClasses)
    if (this.labels) for (const label of this.labels) counts[label]! += 1
    return counts
  }

  /** A dataset with this one's shapes and classes but other (already consistent) arrays. */
  private derive(inputs: InputArray, labels: LabelArray | undefined, targets: Float32Array | undefined, size: number): Dataset {
    return new Dataset(trusted, {
      inputs,
      labels,
      targets,
      targetShape: this.targetShape,
      sampleShape: this.sampleShape,
      numClasses: this.numClasses,
      classNames: this.classNames,
      size,
      targetsAreInputs: this.targetsAreInputs,
      labelsPerSample: this.labelsPerSample,
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

/** Labels as given when already a Uint8Array or Uint32Array, else copied into a Uint32Array with checks. */
function checkLabels(labels: unknown): LabelArray {
  if (labels instanceof Uint8Array || labels instanceof Uint32Array) return labels
  if (
    labels === null ||
    typeof labels !== 'object' ||
    typeof (labels as { length?: unknown }).length !== 'number'
  ) {
    throw new OptionError('labels', `expected an array of class indices, got ${describe(labels)}`)
  }
  const source = labels as ArrayLike<unknown>
  const out = new Uint32Array(source.length)
  for (let i = 0; i < source.length; i++) {
    const value = source[i]
    if (typeof value !== 'number' && typeof value !== 'bigint') {
      throw new OptionError(`labels[${i}]`, `expected an integer class index, got ${describe(value)}`)
    }
    const label = Number(value)
    if (!Number.isInteger(label) || label < 0 || label > MAX_CLASSES - 1) {
      throw new OptionError(`labels[${i}]`, `expected an integer class index in 0..${MAX_CLASSES - 1}, got ${String(value)}`)
    }
    out[i] = label
  }
  return out
}

/** Bytes up to 256 classes, 32-bit ids beyond; an array already of that type is kept. */
function storeLabels(labels: LabelArray, numClasses: number): LabelArray {
  if (numClasses <= 256) return labels instanceof Uint8Array ? labels : Uint8Array.from(labels)
  return labels instanceof Uint32Array ? labels : Uint32Array.from(labels)
}

function checkClassNames(names: unknown): readonly string[] {
  if (!Array.isArray(names) || names.length === 0) {
    throw new OptionError('classNames', `expected a non-empty array of strings, got ${describe(names)}`)
  }
  const seen = new Set<string>()
  names.forEach((name: unknown, k) => {
    if (typeof name !== 'string') throw new OptionError(`classNames[${k}]`, `expected a string, got ${describe(name)}`)
    if (seen.has(name)) throw new OptionError(`classNames[${k}]`, `${JSON.stringify(name)} appears twice; class names must be distinct`)
    seen.add(name)
  })
  return Object.freeze([...(names as string[])])
}

/** Labels travel to the core as u32; 2³¹ keeps class counts inside every index type. */
const MAX_CLASSES = 2 ** 31

function checkSampleShape(shape: unknown, field = 'sampleShape'): readonly number[] {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new OptionError(field, `expected a non-empty array of positive integers, got ${describe(shape)}`)
  }
  shape.forEach((d: unknown, k) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) {
      throw new OptionError(`${field}[${k}]`, `expected a positive integer, got ${String(d)}`)
    }
  })
  return Object.freeze([...(shape as number[])])
}

/** Without a sample shape every sample is a flat vector: `[inputs.length / size]`. */
function inferSampleShape(inputs: InputArray, size: number, of: string): readonly number[] {
  if (size === 0) {
    throw new ShapeError(`cannot infer sampleShape from an empty dataset (${of} is empty); pass sampleShape`)
  }
  if (inputs.length === 0 || inputs.length % size !== 0) {
    throw new ShapeError(
      `inputs has length ${inputs.length}, which is not a positive multiple of the ` +
        `${size} ${of === 'labels' ? 'entries of labels' : 'samples of targets'}; each sample needs the same number of inputs`,
    )
  }
  return Object.freeze([inputs.length / size])
}

function checkNumClasses(numClasses: unknown): number {
  if (typeof numClasses !== 'number' || !Number.isInteger(numClasses) || numClasses < 1 || numClasses > MAX_CLASSES) {
    throw new OptionError('numClasses', `expected an integer in 1..${MAX_CLASSES}, got ${String(numClasses)}`)
  }
  return numClasses
}

function inferNumClasses(labels: LabelArray): number {
  if (labels.length === 0) {
    throw new OptionError('numClasses', 'cannot infer it from an empty dataset; pass numClasses')
  }
  let max = 0
  for (const label of labels) if (label > max) max = label
  return max + 1
}

function checkLabelsBelow(labels: LabelArray, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number
    if (label >= numClasses) {
      throw new OptionError(`labels[${i}]`, `label ${label} is not below numClasses (${numClasses})`)
    }
  }
}

/** NaN or ±Infinity would silently poison every weight they touch during training. */
function checkFinite(inputs: Float32Array, inputDim: number, what: string): void {
  for (let j = 0; j < inputs.length; j++) {
    const value = inputs[j] as number
    if (!Number.isFinite(value)) {
      const sample = Math.floor(j / inputDim)
      throw new ShapeError(
        `${what} of sample ${sample} contain ${value} (${what}[${j}], ${what === 'inputs' ? 'feature' : 'value'} ${j % inputDim}); ` +
          `float32 ${what} must be finite`,
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
