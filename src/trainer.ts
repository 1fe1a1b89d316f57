/**
 * `Trainer`: trains a {@link Net} on a {@link Dataset}. Each epoch runs as one call
 * into the Rust core, off the JS thread; the event loop keeps running.
 */

import { Dataset } from './dataset.js'
import { AbortError, OptionError, ShapeError } from './errors.js'
import type { Net } from './net.js'
import { awaitNative, callNative, native, type NativeData, type NativeOptimizer, type NativeTrainer } from './native.js'
import { boolean, integerInRange, nonNegativeNumber, oneOf, positiveNumber, unitInterval } from './validate.js'

/** Adam, exactly as `torch.optim.Adam` (L2 weight decay added to the gradient, not AdamW). */
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

export type OptimizerOptions = AdamOptions | SgdOptions

/** Options of the {@link Trainer} constructor. */
export interface TrainerOptions {
  /** Default `{ type: 'adam', lr: 1e-3 }`. */
  optimizer?: OptimizerOptions
  /** Samples per optimizer step, default `64`. */
  batchSize?: number
  /** Worker threads for the math; `0` (default) uses every core. */
  threads?: number
  /** Seed of the per-epoch shuffle; defaults to the net's seed. */
  seed?: number
}

/** A progress report from {@link Trainer.fit}. */
export interface Progress {
  /** Epoch number, 1-based, counted over this trainer's life. */
  epoch: number
  /** The epoch number this `fit` call ends at. */
  lastEpoch: number
  /** Batches done in this epoch, and the epoch's total. */
  batch: number
  batches: number
  /** Mean training loss and accuracy over this epoch's batches so far. */
  loss: number
  accuracy: number
  /** Samples done in this epoch, and the throughput so far. */
  samples: number
  samplesPerSecond: number
  /** Seconds since the epoch started. */
  seconds: number
  /** True on the report that closes an epoch. */
  epochEnd: boolean
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
export interface EpochResult {
  epoch: number
  /** Mean training loss and accuracy over the epoch. */
  loss: number
  accuracy: number
  seconds: number
  samplesPerSecond: number
}

/** What {@link Trainer.fit} resolves with. */
export interface FitResult {
  epochs: EpochResult[]
}

/** What {@link Trainer.evaluate} resolves with. */
export interface EvaluateResult {
  /** Mean cross-entropy loss. */
  loss: number
  /** Fraction of samples whose argmax logit is the label. */
  accuracy: number
  samples: number
}

export class Trainer {
  readonly net: Net
  readonly batchSize: number
  readonly optimizer: Readonly<OptimizerOptions>
  private readonly handle: NativeTrainer

  constructor(net: Net, options: TrainerOptions = {}) {
    this.net = net
    this.batchSize = integerInRange('batchSize', options.batchSize ?? 64, 1, 2 ** 31 - 1)
    const threads = integerInRange('threads', options.threads ?? 0, 0, 1024)
    const seed = integerInRange('seed', options.seed ?? net.seed, 0)
    this.optimizer = Object.freeze({ ...(options.optimizer ?? { type: 'adam' }) })
    const optimizer = nativeOptimizer(this.optimizer)
    this.handle = callNative(() => new native.NativeTrainer(net.native, optimizer, seed, threads))
  }

  /** Threads the trainer computes with. */
  get threads(): number {
    return this.handle.threads
  }

  /**
   * Trains for `options.epochs` epochs. Resolves with per-epoch statistics.
   * The dataset must not be modified until the promise settles (it is read in place).
   */
  async fit(data: Dataset, options: FitOptions = {}): Promise<FitResult> {
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
            onProgress({ ...p, lastEpoch })
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
      return { epochs: stats }
    } catch (error) {
      if (callbackError) throw callbackError.error
      if (error instanceof AbortError && stepsAtRequest !== undefined) error.stepsAtRequest = stepsAtRequest
      throw error
    } finally {
      settled = true
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Mean loss and accuracy of the net over `data`, computed off the JS thread. */
  async evaluate(data: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    const batchSize = integerInRange('batchSize', options.batchSize ?? 1000, 1, 2 ** 31 - 1)
    const nativeData = this.toNative(data, 'evaluate')
    return awaitNative(callNative(() => this.handle.evaluate(nativeData, batchSize)))
  }

  /**
   * One synchronous optimizer step on one batch of f32 features `[rows, inputDim]`
   * and their labels. Returns the mean loss before the step. For custom loops.
   */
  trainBatch(features: Float32Array, labels: Uint8Array | readonly number[]): number {
    if (!(features instanceof Float32Array)) throw new OptionError('features', 'must be a Float32Array')
    const y = labels instanceof Uint8Array ? labels : Uint8Array.from(labels)
    const dim = this.net.inputDim
    if (y.length === 0 || features.length !== y.length * dim) {
      throw new ShapeError(`trainBatch: ${y.length} labels need ${y.length * dim} features (${dim} per sample), got ${features.length}`)
    }
    return callNative(() => this.handle.trainBatch(features, y))
  }

  private toNative(data: Dataset, what: string): NativeData {
    if (!(data instanceof Dataset)) throw new OptionError('data', `${what} needs a Dataset (see Dataset.fromArrays or mnist.load)`)
    const net = this.net
    if (data.inputDim !== net.inputDim) {
      throw new ShapeError(`${what}: dataset samples have ${data.inputDim} values (shape [${data.sampleShape.join(', ')}]) but the network's input width is ${net.inputDim}`)
    }
    if (data.numClasses > net.outputDim) {
      throw new ShapeError(`${what}: dataset has ${data.numClasses} classes but the network has ${net.outputDim} outputs`)
    }
    if (data.size === 0) throw new ShapeError(`${what}: dataset is empty`)
    return data.dtype === 'uint8'
      ? { pixels: data.inputs as Uint8Array, labels: data.labels, dim: data.inputDim }
      : { features: data.inputs as Float32Array, labels: data.labels, dim: data.inputDim }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

function nativeOptimizer(o: OptimizerOptions): NativeOptimizer {
  const type = oneOf('optimizer.type', (o as { type?: unknown }).type, ['adam', 'sgd'] as const)
  const opt = <T>(field: string, v: T | undefined, check: (f: string, v: unknown) => T): T | undefined => (v === undefined ? undefined : check(`optimizer.${field}`, v))
  if (type === 'adam') {
    const a = o as AdamOptions
    if (a.betas !== undefined && (!Array.isArray(a.betas) || a.betas.length !== 2)) throw new OptionError('optimizer.betas', 'must be a pair [beta1, beta2]')
    return {
      kind: 'adam',
      lr: opt('lr', a.lr, positiveNumber),
      beta1: opt('betas[0]', a.betas?.[0], unitInterval),
      beta2: opt('betas[1]', a.betas?.[1], unitInterval),
      eps: opt('eps', a.eps, nonNegativeNumber),
      weightDecay: opt('weightDecay', a.weightDecay, nonNegativeNumber),
    }
  }
  const s = o as SgdOptions
  const momentum = opt('momentum', s.momentum, nonNegativeNumber)
  const dampening = opt('dampening', s.dampening, nonNegativeNumber)
  const nesterov = opt('nesterov', s.nesterov, boolean)
  if (nesterov && (!momentum || dampening)) throw new OptionError('optimizer.nesterov', 'needs momentum > 0 and dampening = 0')
  return { kind: 'sgd', lr: opt('lr', s.lr, positiveNumber), momentum, dampening, nesterov, weightDecay: opt('weightDecay', s.weightDecay, nonNegativeNumber) }
}
