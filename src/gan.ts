/**
 * {@link GanTrainer}: a GAN's training loop in the Rust core, one native call per epoch.
 * @module
 */

import { AbortError, OptionError, ShapeError } from './errors.js'
import { Dataset } from './dataset.js'
import { awaitNative, callNative, native, type NativeGanProgress, type NativeGanTrainer } from './native.js'
import { Net } from './net.js'
import { Optimizer, type StepOptimizerOptions } from './step.js'
import { describe, integerInRange } from './validate.js'

/** Options of the {@link GanTrainer} constructor. */
export interface GanTrainerOptions {
  /** The generator's optimizer: one from `generator.optimizer(...)`, or its options. Default Adam, lr 2e-4, betas [0.5, 0.999] (DCGAN's). */
  optG?: Optimizer | StepOptimizerOptions
  /** The discriminator's optimizer, likewise. */
  optD?: Optimizer | StepOptimizerOptions
  /** Values per noise vector z; default the generator's input size (which it must equal). */
  noiseDim?: number
  /** Seed of the noise and the shuffle, a safe integer >= 0; default the generator's seed. */
  seed?: number
  /** Worker threads for the math; `0` (default) uses every core. */
  threads?: number
}

/** A progress report of {@link GanTrainer.fit}: means over the epoch's batches so far. */
export interface GanProgress {
  /** 1-based, over the trainer's life. */
  epoch: number
  /** Batches done in this epoch. */
  batch: number
  /** Batches in the epoch. */
  batches: number
  /** BCE(D(x), 1) + BCE(D(G(z)), 0), the discriminator's loss. */
  dLoss: number
  /** BCE(D(G(z)), 1), the generator's non-saturating loss. */
  gLoss: number
  /** Mean σ(D(x)): how real D finds the real samples. */
  dReal: number
  /** Mean σ(D(G(z))) in the discriminator step: how real D finds the fakes. */
  dFake: number
  /** Real samples seen in this epoch. */
  samples: number
  /** Seconds since the epoch started. */
  seconds: number
  /** Whether this is the epoch's last report. */
  epochEnd: boolean
}

/** Options of {@link GanTrainer.fit}. */
export interface GanFitOptions {
  /** Epochs to train, an integer >= 1 (default `1`). */
  epochs?: number
  /** Real samples (and noise vectors) per step, default `64`. */
  batchSize?: number
  /** Shuffle the real data every epoch (seeded), default `true`. */
  shuffle?: boolean
  /** Also report every this many batches (default: only at each epoch's end). */
  progressEvery?: number
  /** Called with each report (an exception thrown by it stops the fit and rejects with it). */
  onProgress?: (p: GanProgress) => void
  /** Stops the fit before its next batch: rejects with an {@link AbortError}, the nets keeping the last finished batch's weights. */
  signal?: AbortSignal
}

const DCGAN_ADAM = { type: 'adam', lr: 2e-4, betas: [0.5, 0.999] } as const

/**
 * Trains a GAN: a generator `G` (noise `[noiseDim]` → a sample) and a discriminator
 * `D` (a sample → one logit), two {@link Net}s. Per batch, inside the Rust epoch loop:
 *
 * 1. the discriminator step: D on the real batch labelled 1 and on G(z) labelled 0,
 *    binary cross-entropy on logits, the two gradients summed, D's optimizer only;
 * 2. the generator step, non-saturating: D(G(z)) with the same z labelled 1,
 *    backpropagated through D — which is NOT updated — into G; G's optimizer only.
 *
 * z is N(0, 1), seeded per (seed, epoch, batch) ({@link GanTrainer.noise} recomputes it).
 *
 * ```ts
 * const G = Net.sequential(64, [Net.dense(256), Net.leakyRelu(0.2), Net.dense(784), Net.tanh()])
 * const D = Net.sequential(784, [Net.dense(256), Net.leakyRelu(0.2), Net.dense(1)])
 * const gan = new GanTrainer(G, D, { optG: G.optimizer({ type: 'adam', lr: 2e-4, betas: [0.5, 0.999] }) })
 * const epochs = await gan.fit(images, { epochs: 20, batchSize: 64, onProgress: (p) => console.log(p.dLoss, p.gLoss) })
 * ```
 */
export class GanTrainer {
  /** The generator G: noise `[noiseDim]` → a sample of D's input shape. */
  readonly generator: Net
  /** The discriminator D: a sample → one logit (real > 0). */
  readonly discriminator: Net
  /** G's optimizer (stepped only in the generator step). */
  readonly optG: Optimizer
  /** D's optimizer (stepped only in the discriminator step). */
  readonly optD: Optimizer
  /** Values per noise vector z (the generator's input size). */
  readonly noiseDim: number
  /** Seed of the noise and the shuffle. */
  readonly seed: number
  private readonly handle: NativeGanTrainer

  constructor(generator: Net, discriminator: Net, options: GanTrainerOptions = {}) {
    if (!(generator instanceof Net)) throw new OptionError('generator', `must be a Net, got ${describe(generator)}`)
    if (!(discriminator instanceof Net)) throw new OptionError('discriminator', `must be a Net, got ${describe(discriminator)}`)
    if (typeof options !== 'object' || options === null) throw new OptionError('options', `must be an options object, got ${describe(options)}`)
    for (const k of Object.keys(options)) {
      if (!['optG', 'optD', 'noiseDim', 'seed', 'threads'].includes(k)) throw new OptionError(k, 'is not an option of GanTrainer (optG, optD, noiseDim, seed, threads)')
    }
    this.generator = generator
    this.discriminator = discriminator
    this.noiseDim = integerInRange('noiseDim', options.noiseDim ?? generator.inputDim, 1)
    if (this.noiseDim !== generator.inputDim) throw new ShapeError(`GanTrainer: noiseDim is ${this.noiseDim} but the generator's input shape is [${generator.inputShape.join(', ')}] (${generator.inputDim} values)`)
    if (generator.outputDim !== discriminator.inputDim) {
      throw new ShapeError(`GanTrainer: the generator outputs [${generator.outputShape.join(', ')}] (${generator.outputDim} values) but the discriminator's input is [${discriminator.inputShape.join(', ')}] (${discriminator.inputDim} values)`)
    }
    this.seed = integerInRange('seed', options.seed ?? generator.seed, 0)
    const threads = integerInRange('threads', options.threads ?? 0, 0, 1024)
    const opt = (o: Optimizer | StepOptimizerOptions | undefined, net: Net): Optimizer => (o instanceof Optimizer ? o : net.optimizer(o ?? { ...DCGAN_ADAM, betas: [...DCGAN_ADAM.betas] }))
    this.optG = opt(options.optG, generator)
    this.optD = opt(options.optD, discriminator)
    this.handle = callNative(() => new native.NativeGanTrainer(generator.native, discriminator.native, this.optG.native, this.optD.native, this.noiseDim, this.seed, threads))
  }

  /** The noise z of batch `batch` of epoch `epoch` (both 1-based) for `rows` samples, as {@link GanTrainer.fit} draws it. */
  static noise(seed: number, epoch: number, batch: number, rows: number, noiseDim: number): Float32Array {
    return native.ganNoise(integerInRange('seed', seed, 0), integerInRange('epoch', epoch, 1), integerInRange('batch', batch, 1), integerInRange('rows', rows, 1), integerInRange('noiseDim', noiseDim, 1))
  }

  /** Epochs finished over this trainer's life. */
  get epochsDone(): number {
    return this.handle.epochsDone
  }

  /**
   * Trains on `real` samples (`rows × discriminator.inputDim` floats, PyTorch's order,
   * scaled as the generator's output is — e.g. [−1, 1] for a Tanh output; or a float32
   * {@link Dataset}); resolves with each epoch's last report.
   * @throws {@link ShapeError} for data that does not fit D's input; {@link AbortError}
   *   when `signal` aborts; {@link NativeError} `ERR_BUSY` while either net is in
   *   another fit, and `ERR_NON_FINITE_LOSS` when training diverges.
   */
  async fit(real: Float32Array | Dataset, options: GanFitOptions = {}): Promise<GanProgress[]> {
    const data = real instanceof Dataset ? real.inputs : real
    if (!(data instanceof Float32Array)) throw new OptionError('real', `must be a Float32Array (or a float32 Dataset) of samples scaled like the generator's output, got ${describe(data)}`)
    const dim = this.discriminator.inputDim
    if (data.length === 0 || data.length % dim !== 0) throw new ShapeError(`GanTrainer.fit: real data has ${data.length} values, not a positive multiple of the discriminator's input size ${dim} (shape [${this.discriminator.inputShape.join(', ')}])`)
    for (const k of Object.keys(options)) {
      if (!['epochs', 'batchSize', 'shuffle', 'progressEvery', 'onProgress', 'signal'].includes(k)) throw new OptionError(k, 'is not an option of GanTrainer.fit (epochs, batchSize, shuffle, progressEvery, onProgress, signal)')
    }
    const epochs = integerInRange('epochs', options.epochs ?? 1, 1)
    const batchSize = integerInRange('batchSize', options.batchSize ?? 64, 1, 2 ** 31 - 1)
    const progressEvery = integerInRange('progressEvery', options.progressEvery ?? 0, 0, 2 ** 31 - 1)
    const shuffle = options.shuffle ?? true
    if (typeof shuffle !== 'boolean') throw new OptionError('shuffle', `must be a boolean, got ${describe(shuffle)}`)
    const onProgress = options.onProgress
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new OptionError('onProgress', `must be a function, got ${describe(onProgress)}`)
    const signal = options.signal
    if (signal?.aborted) throw new AbortError('GanTrainer.fit was aborted before it started', 0)
    const stop = () => this.handle.abort()
    signal?.addEventListener('abort', stop, { once: true })
    // Reports travel through a queue that may be drained after the task settles: fit
    // resolves once the last epoch-end report has been delivered (a bounded wait), and
    // delivers none after that.
    let settled = false
    let ends = 0
    let lastEnd: (() => void) | undefined
    const lastEndSeen = new Promise<void>((resolve) => (lastEnd = resolve))
    let callbackError: { error: unknown } | undefined
    const cb = onProgress
      ? (p: NativeGanProgress) => {
        if (settled || callbackError) return
        try {
          onProgress({ ...p })
        } catch (error) {
          callbackError = { error }
          this.handle.abort()
        }
        if (p.epochEnd && ++ends === epochs) lastEnd!()
      }
      : undefined
    try {
      const out = await awaitNative(callNative(() => this.handle.fit(data, { epochs, batchSize, shuffle, progressEvery }, cb)))
      if (cb && !callbackError) await Promise.race([lastEndSeen, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      if (callbackError) throw callbackError.error
      return out.map((p) => ({ ...p }))
    } catch (error) {
      if (callbackError) throw callbackError.error
      throw error
    } finally {
      settled = true
      signal?.removeEventListener('abort', stop)
    }
  }
}
