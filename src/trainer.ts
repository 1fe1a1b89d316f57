/**
 * `Trainer`: trains a {@link Net} on a {@link Dataset}. Each epoch runs as one call
 * into the Rust core, off the JS thread; the event loop keeps running.
 */

import { Dataset } from './dataset.js'
import { AbortError, ModelFileError, OptionError, ShapeError } from './errors.js'
import { fmt } from './layers.js'
import { asFileError, onFile } from './model-file.js'
import { Net } from './net.js'
import { awaitNative, callNative, native, type NativeData, type NativeTrainer, type NativeTrainerOptions } from './native.js'
import { boolean, describe, filePath, integerInRange, nonNegativeNumber, oneOf, positiveNumber, unitInterval } from './validate.js'

/** Adam, exactly as `torch.optim.Adam` (L2 weight decay added to the gradient). */
export interface AdamOptions {
  type: 'adam'
  /** Learning rate, default `1e-3`. */
  lr?: number
  /** Decay of the first and second moment estimates, default `[0.9, 0.999]`. */
  betas?: readonly [number, number]
  /** Added to the denominator outside the square root, default `1e-8`. */
  eps?: number
  /** L2 penalty, default `0`. */
  weightDecay?: number
}

/** AdamW, as `torch.optim.AdamW`: decoupled weight decay (default `0.01`). */
export interface AdamWOptions {
  type: 'adamw'
  lr?: number
  betas?: readonly [number, number]
  eps?: number
  /** Decoupled weight decay, default `0.01`. */
  weightDecay?: number
}

/** Stochastic gradient descent, exactly as `torch.optim.SGD`. */
export interface SgdOptions {
  type: 'sgd'
  /** Learning rate, default `0.01`. */
  lr?: number
  /** Momentum factor, default `0`. */
  momentum?: number
  /** Dampening of momentum, default `0`. */
  dampening?: number
  /** Nesterov momentum (needs momentum > 0 and dampening 0), default `false`. */
  nesterov?: boolean
  /** L2 penalty, default `0`. */
  weightDecay?: number
}

/** RMSprop, as `torch.optim.RMSprop`. */
export interface RmspropOptions {
  type: 'rmsprop'
  /** Learning rate, default `0.01`. */
  lr?: number
  /** Smoothing constant, default `0.99`. */
  alpha?: number
  /** Default `1e-8`. */
  eps?: number
  weightDecay?: number
  momentum?: number
  /** Normalise by the estimated variance of the gradient, default `false`. */
  centered?: boolean
}

export type OptimizerOptions = AdamOptions | AdamWOptions | SgdOptions | RmspropOptions

/** The loss, PyTorch's names and defaults (`reduction="mean"`). */
export type LossOptions =
  /** `nn.CrossEntropyLoss` on logits and integer labels (the default for labelled data). */
  | { type: 'cross_entropy'; classWeights?: readonly number[]; labelSmoothing?: number }
  /** `nn.MSELoss` on float targets. */
  | { type: 'mse' }
  /** `nn.L1Loss`. */
  | { type: 'l1' }
  /** `nn.SmoothL1Loss(beta)`, default beta `1`. */
  | { type: 'smooth_l1'; beta?: number }
  /** `nn.HuberLoss(delta)`, default delta `1`. */
  | { type: 'huber'; delta?: number }
  /** `nn.BCEWithLogitsLoss` on 0/1 targets (multi-label); `posWeight` per output or one for all. */
  | { type: 'bce_with_logits'; posWeight?: number | readonly number[] }

export type LossType = LossOptions['type']

/**
 * A learning-rate schedule, stepped after every optimizer step (`plateau`: after every
 * epoch, on the epoch's training loss). Step counts are optimizer steps.
 */
export type ScheduleOptions =
  /** `StepLR`: lr × gamma every `stepSize` steps (gamma default 0.1). */
  | { type: 'step'; stepSize: number; gamma?: number }
  /** `ExponentialLR`: lr × gamma every step. */
  | { type: 'exponential'; gamma: number }
  /** `CosineAnnealingLR` over `totalSteps` down to `minLr` (0), after `warmupSteps` (0) of linear warm-up. */
  | { type: 'cosine'; totalSteps: number; minLr?: number; warmupSteps?: number }
  /** `OneCycleLR` (cosine annealing). */
  | { type: 'one_cycle'; maxLr: number; totalSteps: number; pctStart?: number; divFactor?: number; finalDivFactor?: number }
  /** `ReduceLROnPlateau` (mode min) on the training loss, per epoch. */
  | { type: 'plateau'; factor?: number; patience?: number; threshold?: number; cooldown?: number; minLr?: number }

/** Options of the {@link Trainer} constructor. */
export interface TrainerOptions {
  /** Default `{ type: 'adam', lr: 1e-3 }`. */
  optimizer?: OptimizerOptions
  /** Default `{ type: 'cross_entropy' }` (labelled data only: float targets need a regression loss). */
  loss?: LossOptions
  /** Learning-rate schedule; default none (constant lr). */
  schedule?: ScheduleOptions
  /** Clip the global L2 norm of the gradients to this (as `clip_grad_norm_`); default none. */
  clipNorm?: number
  /** Train only the tensors of this parameter group (`apply(x, { group })`); default: all. */
  group?: string
  /** Samples per optimizer step, default `64`. */
  batchSize?: number
  /** Worker threads for the math; `0` (default) uses every core. */
  threads?: number
  /** Seed of the per-epoch shuffle and dropout; defaults to the net's seed. */
  seed?: number
}

/** Metrics that fit the loss: accuracy for classification (per label for bce_with_logits), mse/mae for regression. */
export interface Metrics {
  /** Fraction right: argmax = label, or per label (logit > 0 ⇔ target 1). */
  accuracy?: number
  /** Mean squared and absolute error per target value. */
  mse?: number
  mae?: number
}

/** A progress report from {@link Trainer.fit}. */
export interface Progress extends Metrics {
  /** Epoch number, 1-based, counted over this trainer's life. */
  epoch: number
  /** The epoch number this `fit` call ends at. */
  lastEpoch: number
  /** Batches done in this epoch, and the epoch's total. */
  batch: number
  batches: number
  /** Mean training loss over this epoch's batches so far. */
  loss: number
  /** Samples done in this epoch, and the throughput so far. */
  samples: number
  samplesPerSecond: number
  /** Seconds since the epoch started. */
  seconds: number
  /** True on the report that closes an epoch. */
  epochEnd: boolean
  /** Learning rate of the last step. */
  lr: number
  /** Global gradient norm of the last step, when the addon reports it. */
  gradNorm?: number
}

/** Options of {@link Trainer.fit}. */
export interface FitOptions {
  /** Number of epochs, default `1`. */
  epochs?: number
  /** Called at the end of every epoch, and every `progressEvery` batches if set. */
  onProgress?: (progress: Progress) => void
  /** Also report every this many batches (default: only at epoch ends). */
  progressEvery?: number
  /** Stops training within one batch; `fit` then rejects with an {@link AbortError} and the net keeps the weights of the last finished step. */
  signal?: AbortSignal
  /** Reshuffle the samples each epoch, default `true`. */
  shuffle?: boolean
}

/** Statistics of one training epoch. */
export interface EpochResult extends Metrics {
  epoch: number
  /** Mean training loss over the epoch. */
  loss: number
  seconds: number
  samplesPerSecond: number
  /** Learning rate of the epoch's last step. */
  lr: number
  gradNorm?: number
}

/** What {@link Trainer.fit} resolves with. */
export interface FitResult {
  epochs: EpochResult[]
}

/** What {@link Trainer.evaluate} resolves with. */
export interface EvaluateResult extends Metrics {
  /** Mean loss. */
  loss: number
  samples: number
}

const TRAINER_KEYS = ['optimizer', 'loss', 'schedule', 'clipNorm', 'group', 'batchSize', 'threads', 'seed'] as const
const FIT_KEYS = ['epochs', 'onProgress', 'progressEvery', 'signal', 'shuffle'] as const
const CLASS_LOSSES: readonly LossType[] = ['cross_entropy']

function checkKeys(where: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new OptionError(where || 'options', `must be an options object, got ${describe(o)}`)
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new OptionError(where ? `${where}.${k}` : k, `is not an option here (options: ${keys.join(', ')})`)
  }
  return o as Record<string, unknown>
}

/** Drops absent metrics (the addon may send null/undefined). */
function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T
}

export class Trainer {
  readonly net: Net
  readonly batchSize: number
  readonly optimizer: Readonly<OptimizerOptions>
  /** The loss as given (undefined: the default, cross-entropy on labels). */
  readonly loss: Readonly<LossOptions> | undefined
  readonly schedule: Readonly<ScheduleOptions> | undefined
  private readonly handle: NativeTrainer
  /** The options as given (seed resolved): written into checkpoints to rebuild this trainer. */
  private readonly savedOptions: TrainerOptions

  constructor(net: Net, options: TrainerOptions = {}) {
    const o = checkKeys('', options, TRAINER_KEYS) as TrainerOptions
    this.net = net
    this.batchSize = integerInRange('batchSize', o.batchSize ?? 64, 1, 2 ** 31 - 1)
    const threads = integerInRange('threads', o.threads ?? 0, 0, 1024)
    const seed = integerInRange('seed', o.seed ?? net.seed, 0)
    this.optimizer = Object.freeze({ ...(o.optimizer ?? { type: 'adam' }) }) as OptimizerOptions
    this.loss = o.loss === undefined ? undefined : (Object.freeze({ ...o.loss }) as LossOptions)
    this.schedule = o.schedule === undefined ? undefined : (Object.freeze({ ...o.schedule }) as ScheduleOptions)
    const nativeOptions: Record<string, unknown> = { optimizer: nativeOptimizer(this.optimizer), seed, threads }
    if (this.loss) nativeOptions.loss = nativeLoss(this.loss, net.outputDim)
    if (this.schedule) nativeOptions.schedule = nativeSchedule(this.schedule)
    if (o.clipNorm !== undefined) nativeOptions.clipNorm = positiveNumber('clipNorm', o.clipNorm)
    if (o.group !== undefined) {
      if (typeof o.group !== 'string' || o.group === '') throw new OptionError('group', `must be a parameter group name, got ${describe(o.group)}`)
      const groups = [...new Set(net.parameters().filter((p) => p.trainable).map((p) => p.group))].filter(Boolean)
      if (!groups.includes(o.group)) {
        throw new OptionError('group', `${JSON.stringify(o.group)} is not a parameter group of this net (${groups.length ? `it has ${groups.map((g) => JSON.stringify(g)).join(', ')}` : 'it has none; give layers one with apply(x, { group })'})`)
      }
      nativeOptions.group = o.group
    }
    this.handle = callNative(() => new native.NativeTrainer(net.native, nativeOptions as unknown as NativeTrainerOptions))
    this.savedOptions = JSON.parse(JSON.stringify({ ...o, seed })) as TrainerOptions
  }

  /**
   * Writes a checkpoint: the network (as {@link Net.save} does) plus everything this
   * trainer carries between epochs — optimizer state, schedule position, the shuffle
   * and dropout streams, the epoch count and its options — so that
   * {@link Trainer.resume} continues exactly: the resumed run's losses and weights
   * equal an uninterrupted run's, bit for bit on the same machine. Atomic, like
   * `Net.save`; a checkpoint is complete or absent, never half.
   *
   * ```ts
   * await trainer.fit(train, { epochs: 5 })
   * await trainer.save('run.ckpt.safetensors')
   * // later, or in another process:
   * const resumed = await Trainer.resume('run.ckpt.safetensors')
   * await resumed.fit(train, { epochs: 5 })
   * ```
   */
  async save(path: string): Promise<void> {
    const file = filePath('path', path)
    await onFile(file, () => this.handle.save(file, { 'trainer.options': JSON.stringify(this.savedOptions) }))
  }

  /**
   * Rebuilds a trainer (and its network, unless `net` is given) from a checkpoint
   * {@link Trainer.save} wrote. With `net`, the checkpoint's weights are copied into
   * it (it must have the same architecture).
   * @throws {@link ModelFileError} naming the file and the problem.
   */
  static async resume(path: string, net?: Net): Promise<Trainer> {
    const file = filePath('path', path)
    if (net !== undefined && !(net instanceof Net)) throw new OptionError('net', `must be a Net, got ${describe(net)}`)
    const checkpoint = await onFile(file, () => native.NativeCheckpoint.load(file))
    const text = checkpoint.metadata['trainer.options']
    if (text === undefined) throw new ModelFileError(file, `${file}: has no trainer options in its header: was it written by Trainer.save?`)
    let options: TrainerOptions
    try {
      options = JSON.parse(text) as TrainerOptions
    } catch (error) {
      throw asFileError(file, 'has trainer options that are not JSON', error)
    }
    let loaded: Net
    try {
      loaded = Net.fromHandle(callNative(() => checkpoint.takeNet()))
    } catch (error) {
      throw asFileError(file, 'holds a model spec ferronet cannot use', error)
    }
    const target = net ?? loaded
    if (net !== undefined) {
      callNative(() => net.native.assignFrom(loaded.native))
    }
    let trainer: Trainer
    try {
      trainer = new Trainer(target, options)
    } catch (error) {
      throw asFileError(file, 'holds trainer options this version rejects', error)
    }
    callNative(() => trainer.handle.restore(checkpoint))
    return trainer
  }

  /** Threads the trainer computes with. */
  get threads(): number {
    return this.handle.threads
  }

  /** What the loss expects: class labels or float targets. */
  get targetKind(): 'classes' | 'targets' {
    return CLASS_LOSSES.includes(this.loss?.type ?? 'cross_entropy') ? 'classes' : 'targets'
  }

  /**
   * Trains for `options.epochs` epochs. Resolves with per-epoch statistics.
   * The dataset must not be modified until the promise settles (it is read in place).
   */
  async fit(data: Dataset, options: FitOptions = {}): Promise<FitResult> {
    checkKeys('', options, FIT_KEYS)
    const epochs = integerInRange('epochs', options.epochs ?? 1, 1, 2 ** 31 - 1)
    const progressEvery = integerInRange('progressEvery', options.progressEvery ?? 0, 0, 2 ** 31 - 1)
    const shuffle = boolean('shuffle', options.shuffle ?? true)
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new OptionError('onProgress', 'must be a function')
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new OptionError('signal', 'must be an AbortSignal')
    const nativeData = this.toNative(data, 'fit')
    if (options.signal?.aborted) throw new AbortError('training was aborted before it started')

    // A throwing progress callback stops training and becomes fit's rejection.
    let callbackError: { error: unknown } | undefined
    // Reports travel through a queue that may be drained after the task settles:
    // fit resolves only once the last epoch-end report has been delivered, and no
    // report is delivered after fit has settled.
    let settled = false
    let lastEpoch: number | undefined // known from the first report's epoch number
    let finalReport: (() => void) | undefined
    const finalReportSeen = new Promise<void>((resolve) => (finalReport = resolve))
    const onProgress = options.onProgress
    const report = onProgress
      ? (p: Omit<Progress, 'lastEpoch'>) => {
          if (callbackError || settled) return
          lastEpoch ??= p.epoch + epochs - 1
          try {
            onProgress(clean({ ...p, lastEpoch }))
          } catch (error) {
            callbackError = { error }
            this.handle.abort()
          }
          if (p.epochEnd && p.epoch === lastEpoch) finalReport!()
        }
      : undefined
    let stepsAtRequest: number | undefined
    const onAbort = () => {
      stepsAtRequest = this.handle.abort()
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const stats = await awaitNative(
        callNative(() => this.handle.fit(nativeData, { epochs, batchSize: this.batchSize, shuffle, progressEvery }, report)),
      )
      // Bounded wait: a report lost by the addon must not hang fit.
      if (report && !callbackError) await Promise.race([finalReportSeen, delay(5000)])
      if (callbackError) throw callbackError.error
      return { epochs: stats.map((s) => clean(s) as EpochResult) }
    } catch (error) {
      if (callbackError) throw callbackError.error
      if (error instanceof AbortError && stepsAtRequest !== undefined) error.stepsAtRequest = stepsAtRequest
      throw error
    } finally {
      settled = true
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Mean loss and the loss's metrics over `data`, computed off the JS thread (dropout off). */
  async evaluate(data: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    checkKeys('', options, ['batchSize'])
    const batchSize = integerInRange('batchSize', options.batchSize ?? 1000, 1, 2 ** 31 - 1)
    const nativeData = this.toNative(data, 'evaluate')
    return clean(await awaitNative(callNative(() => this.handle.evaluate(nativeData, batchSize)))) as EvaluateResult
  }

  /**
   * One synchronous optimizer step on one batch of f32 features `[rows, ...inputShape]`
   * with their class labels (integers) or float targets (`Float32Array`, rows × outputDim).
   * Returns the mean loss before the step. For custom loops.
   */
  trainBatch(features: Float32Array, labelsOrTargets: Float32Array | Uint8Array | Uint32Array | ArrayLike<number>): number {
    if (!(features instanceof Float32Array)) throw new OptionError('features', 'must be a Float32Array')
    const dim = this.net.inputDim
    if (features.length === 0 || features.length % dim !== 0) {
      throw new ShapeError(`trainBatch: features has ${features.length} values, not a positive multiple of the network's input size ${dim} (shape ${fmt(this.net.inputShape)})`)
    }
    const rows = features.length / dim
    if (labelsOrTargets instanceof Float32Array) {
      if (this.targetKind === 'classes') throw new OptionError('labelsOrTargets', `the loss ${this.loss?.type ?? 'cross_entropy'} needs integer class labels (Uint8Array, Uint32Array or number[]), got a Float32Array`)
      const out = this.net.outputDim
      if (labelsOrTargets.length !== rows * out) throw new ShapeError(`trainBatch: ${rows} samples need ${rows * out} targets (${out} per sample, output shape ${fmt(this.net.outputShape)}), got ${labelsOrTargets.length}`)
      return callNative(() => this.handle.trainBatch(features, undefined, labelsOrTargets))
    }
    if (this.targetKind === 'targets') throw new OptionError('labelsOrTargets', `the loss ${this.loss!.type} needs float targets (a Float32Array), got class labels`)
    const y = labelsOrTargets instanceof Uint32Array ? labelsOrTargets : toU32(labelsOrTargets)
    if (y.length !== rows) {
      throw new ShapeError(`trainBatch: ${y.length} labels need ${y.length * dim} features (${dim} per sample), got ${features.length}`)
    }
    return callNative(() => this.handle.trainBatch(features, y))
  }

  private toNative(data: Dataset, what: string): NativeData {
    if (!(data instanceof Dataset)) throw new OptionError('data', `${what} needs a Dataset (see Dataset.fromArrays or mnist.load)`)
    const net = this.net
    if (data.inputDim !== net.inputDim) {
      throw new ShapeError(`${what}: dataset samples have shape ${fmt(data.sampleShape)} (${data.inputDim} values) but the network's input shape is ${fmt(net.inputShape)} (${net.inputDim} values)`)
    }
    if (data.size === 0) throw new ShapeError(`${what}: dataset is empty`)
    const inputs = data.dtype === 'uint8' ? { pixels: data.inputs as Uint8Array } : { features: data.inputs as Float32Array }
    if (data.targets) {
      if (this.loss === undefined) {
        throw new OptionError('loss', `${what}: the dataset has float targets (shape ${fmt(data.targetShape)}) but the default loss, cross_entropy, needs class labels; pick a loss for targets, e.g. { type: 'mse' } (regression) or { type: 'bce_with_logits' } (multi-label)`)
      }
      if (this.targetKind === 'classes') throw new OptionError('loss.type', `${what}: ${this.loss.type} needs class labels but the dataset has float targets`)
      if (data.targetDim !== net.outputDim) {
        throw new ShapeError(`${what}: dataset targets have shape ${fmt(data.targetShape)} (${data.targetDim} values) but the network's output shape is ${fmt(net.outputShape)} (${net.outputDim} values)`)
      }
      return { ...inputs, targets: data.targets, targetDim: data.targetDim, dim: data.inputDim }
    }
    if (this.targetKind === 'targets') {
      throw new OptionError('loss.type', `${what}: ${this.loss!.type} needs float targets (Dataset.fromArrays({ inputs, targets, targetShape })) but the dataset has class labels`)
    }
    if (data.numClasses > net.outputDim) {
      throw new ShapeError(`${what}: dataset has ${data.numClasses} classes but the network has ${net.outputDim} outputs`)
    }
    return data.labels instanceof Uint32Array
      ? { ...inputs, labels32: data.labels, dim: data.inputDim }
      : { ...inputs, labels: data.labels, dim: data.inputDim }
  }
}

function toU32(labels: ArrayLike<number>): Uint32Array {
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') throw new OptionError('labels', `must be an array of class indices or a Float32Array of targets, got ${describe(labels)}`)
  const out = new Uint32Array(labels.length)
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) throw new OptionError(`labels[${i}]`, `must be an integer class index >= 0, got ${describe(v)}`)
    out[i] = v
  }
  return out
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

const OPTIMIZER_KEYS: Record<OptimizerOptions['type'], readonly string[]> = {
  adam: ['type', 'lr', 'betas', 'eps', 'weightDecay'],
  adamw: ['type', 'lr', 'betas', 'eps', 'weightDecay'],
  sgd: ['type', 'lr', 'momentum', 'dampening', 'nesterov', 'weightDecay'],
  rmsprop: ['type', 'lr', 'alpha', 'eps', 'weightDecay', 'momentum', 'centered'],
}

const opt = <T>(field: string, v: unknown, check: (f: string, v: unknown) => T): T | undefined => (v === undefined ? undefined : check(field, v))

function nativeOptimizer(o: OptimizerOptions): Record<string, unknown> {
  if (typeof o !== 'object' || o === null) throw new OptionError('optimizer', `must be an object like { type: 'adam', lr: 1e-3 }, got ${describe(o)}`)
  const type = oneOf('optimizer.type', (o as { type?: unknown }).type, Object.keys(OPTIMIZER_KEYS) as OptimizerOptions['type'][])
  const r = checkKeys('optimizer', o, OPTIMIZER_KEYS[type])
  const common = { lr: opt('optimizer.lr', r.lr, positiveNumber), weightDecay: opt('optimizer.weightDecay', r.weightDecay, nonNegativeNumber), eps: opt('optimizer.eps', r.eps, nonNegativeNumber) }
  if (type === 'adam' || type === 'adamw') {
    const betas = r.betas as readonly number[] | undefined
    if (betas !== undefined && (!Array.isArray(betas) || betas.length !== 2)) throw new OptionError('optimizer.betas', 'must be a pair [beta1, beta2]')
    return { kind: type, ...common, beta1: opt('optimizer.betas[0]', betas?.[0], unitInterval), beta2: opt('optimizer.betas[1]', betas?.[1], unitInterval) }
  }
  const momentum = opt('optimizer.momentum', r.momentum, nonNegativeNumber)
  if (type === 'rmsprop') {
    return { kind: 'rmsprop', ...common, momentum, alpha: opt('optimizer.alpha', r.alpha, unitInterval), centered: opt('optimizer.centered', r.centered, boolean) }
  }
  const dampening = opt('optimizer.dampening', r.dampening, nonNegativeNumber)
  const nesterov = opt('optimizer.nesterov', r.nesterov, boolean)
  if (nesterov && (!momentum || dampening)) throw new OptionError('optimizer.nesterov', 'needs momentum > 0 and dampening = 0')
  const { eps: _eps, ...sgd } = common
  if (r.eps !== undefined) throw new OptionError('optimizer.eps', 'is not an option of sgd')
  return { kind: 'sgd', ...sgd, momentum, dampening, nesterov }
}

const LOSS_KEYS: Record<LossType, readonly string[]> = {
  cross_entropy: ['type', 'classWeights', 'labelSmoothing'],
  mse: ['type'],
  l1: ['type'],
  smooth_l1: ['type', 'beta'],
  huber: ['type', 'delta'],
  bce_with_logits: ['type', 'posWeight'],
}

function nativeLoss(l: LossOptions, outputs: number): Record<string, unknown> {
  if (typeof l !== 'object' || l === null) throw new OptionError('loss', `must be an object like { type: 'mse' }, got ${describe(l)}`)
  const type = oneOf('loss.type', (l as { type?: unknown }).type, Object.keys(LOSS_KEYS) as LossType[])
  const r = checkKeys('loss', l, LOSS_KEYS[type])
  const numbers = (field: string, v: unknown, check: (f: string, x: unknown) => number): number[] => {
    if (!Array.isArray(v) || v.length !== outputs) throw new OptionError(field, `must be an array of ${outputs} numbers (one per output), got ${describe(v)}`)
    return v.map((x, i) => check(`${field}[${i}]`, x))
  }
  switch (type) {
    case 'cross_entropy': {
      const labelSmoothing = opt('loss.labelSmoothing', r.labelSmoothing, (f, v) => {
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new OptionError(f, `must be a number in [0, 1], got ${describe(v)}`)
        return v
      })
      return { kind: type, classWeights: r.classWeights === undefined ? undefined : numbers('loss.classWeights', r.classWeights, nonNegativeNumber), labelSmoothing }
    }
    case 'smooth_l1':
      return { kind: type, beta: opt('loss.beta', r.beta, nonNegativeNumber) }
    case 'huber':
      return { kind: type, delta: opt('loss.delta', r.delta, positiveNumber) }
    case 'bce_with_logits': {
      const pw = r.posWeight
      const posWeight = pw === undefined ? undefined : typeof pw === 'number' ? new Array<number>(outputs).fill(nonNegativeNumber('loss.posWeight', pw)) : numbers('loss.posWeight', pw, nonNegativeNumber)
      return { kind: type, posWeight }
    }
    default:
      return { kind: type }
  }
}

const SCHEDULE_KEYS: Record<ScheduleOptions['type'], { keys: readonly string[]; required: readonly string[] }> = {
  step: { keys: ['stepSize', 'gamma'], required: ['stepSize'] },
  exponential: { keys: ['gamma'], required: ['gamma'] },
  cosine: { keys: ['totalSteps', 'minLr', 'warmupSteps'], required: ['totalSteps'] },
  one_cycle: { keys: ['maxLr', 'totalSteps', 'pctStart', 'divFactor', 'finalDivFactor'], required: ['maxLr', 'totalSteps'] },
  plateau: { keys: ['factor', 'patience', 'threshold', 'cooldown', 'minLr'], required: [] },
}

function nativeSchedule(s: ScheduleOptions): Record<string, unknown> {
  if (typeof s !== 'object' || s === null) throw new OptionError('schedule', `must be an object like { type: 'cosine', totalSteps: 1000 }, got ${describe(s)}`)
  const type = oneOf('schedule.type', (s as { type?: unknown }).type, Object.keys(SCHEDULE_KEYS) as ScheduleOptions['type'][])
  const { keys, required } = SCHEDULE_KEYS[type]
  const r = checkKeys('schedule', s, ['type', ...keys])
  for (const k of required) if (r[k] === undefined) throw new OptionError(`schedule.${k}`, `is required by the ${type} schedule`)
  const f = (k: string) => `schedule.${k}`
  const steps = (k: string, min: number) => opt(f(k), r[k], (field, v) => integerInRange(field, v, min, 2 ** 31 - 1))
  const fraction = (k: string) => opt(f(k), r[k], (field, v) => {
    if (typeof v !== 'number' || !(v > 0 && v < 1)) throw new OptionError(field, `must be a number in (0, 1), got ${describe(v)}`)
    return v
  })
  const gamma = (k: string) => opt(f(k), r[k], (field, v) => {
    if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw new OptionError(field, `must be a number in (0, 1], got ${describe(v)}`)
    return v
  })
  const out: Record<string, unknown> = { kind: type }
  const set = (k: string, v: unknown) => {
    if (v !== undefined) out[k] = v
  }
  switch (type) {
    case 'step':
      set('stepSize', steps('stepSize', 1))
      set('gamma', gamma('gamma'))
      break
    case 'exponential':
      set('gamma', gamma('gamma'))
      break
    case 'cosine': {
      const total = steps('totalSteps', 1)!
      const warmup = steps('warmupSteps', 0)
      if (warmup !== undefined && warmup >= total) throw new OptionError('schedule.warmupSteps', `must be below totalSteps (${total}), got ${warmup}`)
      set('totalSteps', total)
      set('warmupSteps', warmup)
      set('minLr', opt(f('minLr'), r.minLr, nonNegativeNumber))
      break
    }
    case 'one_cycle':
      set('maxLr', opt(f('maxLr'), r.maxLr, positiveNumber))
      set('totalSteps', steps('totalSteps', 1))
      set('pctStart', fraction('pctStart'))
      set('divFactor', opt(f('divFactor'), r.divFactor, positiveNumber))
      set('finalDivFactor', opt(f('finalDivFactor'), r.finalDivFactor, positiveNumber))
      break
    case 'plateau':
      set('factor', fraction('factor'))
      set('patience', steps('patience', 0))
      set('threshold', opt(f('threshold'), r.threshold, nonNegativeNumber))
      set('cooldown', steps('cooldown', 0))
      set('minLr', opt(f('minLr'), r.minLr, nonNegativeNumber))
      break
  }
  return out
}
