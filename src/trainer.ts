/**
 * `Trainer`: trains a {@link Net} on a {@link Dataset}. Each epoch runs as one call
 * into the Rust core, off the JS thread; the event loop keeps running.
 */

import { CALLBACK_HOOKS, type Callback, type MetricName } from './callbacks.js'
import { Dataset } from './dataset.js'
import { AbortError, ModelFileError, NativeError, OptionError, ShapeError } from './errors.js'
import { checkIds } from './graph.js'
import { fmt } from './layers.js'
import { BATCH_KEYS, EPOCH_KEYS, MetricsLog, logLine } from './metrics-log.js'
import { asFileError, onFile } from './model-file.js'
import { Net } from './net.js'
import { awaitNative, callNative, native, type NativeData, type NativeEvalStats, type NativeProgress, type NativeTrainer, type NativeTrainerOptions } from './native.js'
import { boolean, describe, filePath, integerInRange, nonNegativeNumber, oneOf, positiveNumber, unitInterval, unknownOption } from './validate.js'

/** Adam, exactly as `torch.optim.Adam` (L2 weight decay added to the gradient). */
export interface AdamOptions {
  /** Selects Adam. */
  type: 'adam'
  /** Learning rate, a number > 0, default `1e-3`. */
  lr?: number
  /** Decay rates of the first and second moment estimates, each in [0, 1), default `[0.9, 0.999]`. */
  betas?: readonly [number, number]
  /** Added to the denominator outside the square root for numerical stability, >= 0, default `1e-8`. */
  eps?: number
  /** L2 penalty added to the gradient (`weight_decay`), >= 0, default `0`. */
  weightDecay?: number
}

/** AdamW, as `torch.optim.AdamW`: decoupled weight decay (default `0.01`). */
export interface AdamWOptions {
  /** Selects AdamW. */
  type: 'adamw'
  /** Learning rate, a number > 0, default `1e-3`. */
  lr?: number
  /** Decay rates of the first and second moment estimates, each in [0, 1), default `[0.9, 0.999]`. */
  betas?: readonly [number, number]
  /** Added to the denominator outside the square root for numerical stability, >= 0, default `1e-8`. */
  eps?: number
  /** Decoupled weight decay (each step multiplies the weights by `1 − lr × weightDecay`), >= 0, default `0.01`. */
  weightDecay?: number
}

/** Stochastic gradient descent, exactly as `torch.optim.SGD`. */
export interface SgdOptions {
  /** Selects SGD. */
  type: 'sgd'
  /** Learning rate, a number > 0, default `0.01`. */
  lr?: number
  /** Momentum factor, >= 0, default `0` (plain SGD). */
  momentum?: number
  /** Dampening of momentum, >= 0, default `0`. */
  dampening?: number
  /** Nesterov momentum (needs momentum > 0 and dampening 0), default `false`. */
  nesterov?: boolean
  /** L2 penalty added to the gradient (`weight_decay`), >= 0, default `0`. */
  weightDecay?: number
}

/** RMSprop, as `torch.optim.RMSprop`. */
export interface RmspropOptions {
  /** Selects RMSprop. */
  type: 'rmsprop'
  /** Learning rate, a number > 0, default `0.01`. */
  lr?: number
  /** Smoothing constant of the running mean of squared gradients, in [0, 1), default `0.99`. */
  alpha?: number
  /** Added to the denominator outside the square root for numerical stability, >= 0, default `1e-8`. */
  eps?: number
  /** L2 penalty added to the gradient (`weight_decay`), >= 0, default `0`. */
  weightDecay?: number
  /** Momentum factor, >= 0, default `0` (no momentum). */
  momentum?: number
  /** Normalise by the estimated variance of the gradient, default `false`. */
  centered?: boolean
}

/**
 * The optimizer of a {@link Trainer}, chosen by `type`, with PyTorch's names and
 * defaults; options left out take PyTorch's values. Default `{ type: 'adam' }`.
 */
export type OptimizerOptions = AdamOptions | AdamWOptions | SgdOptions | RmspropOptions

/** The loss, PyTorch's names and defaults (`reduction="mean"`). */
export type LossOptions =
  /** `nn.CrossEntropyLoss` on logits and integer labels (the default for labelled data). */
  | {
    /** Selects cross-entropy. */
    type: 'cross_entropy'
    /** Weight of each class (`weight`), one number >= 0 per output; the loss is the weighted mean. Default: all `1`. */
    classWeights?: readonly number[]
    /** Label smoothing (`label_smoothing`), in [0, 1], default `0`. */
    labelSmoothing?: number
  }
  /** `nn.MSELoss` on float targets. */
  | {
    /** Selects mean squared error. */
    type: 'mse'
  }
  /** `nn.L1Loss` (mean absolute error) on float targets. */
  | {
    /** Selects L1 (mean absolute error). */
    type: 'l1'
  }
  /** `nn.SmoothL1Loss(beta)` on float targets. */
  | {
    /** Selects smooth L1. */
    type: 'smooth_l1'
    /** Error at which the loss turns from quadratic to linear, >= 0 (`0`: plain L1), default `1`. */
    beta?: number
  }
  /** `nn.HuberLoss(delta)` on float targets. */
  | {
    /** Selects Huber. */
    type: 'huber'
    /** Error at which the loss turns from quadratic to linear, > 0, default `1`. */
    delta?: number
  }
  /** `nn.BCEWithLogitsLoss` on 0/1 targets (multi-label): one sigmoid per output. */
  | {
    /** Selects binary cross-entropy on logits. */
    type: 'bce_with_logits'
    /** Weight of the positive term (`pos_weight`), >= 0: one number per output, or one for all. Default `1`. */
    posWeight?: number | readonly number[]
  }
  /**
   * `nn.BCELoss` (`F.binary_cross_entropy`) on probabilities, for a network that ends in
   * a Sigmoid, with targets in [0, 1]; logs are clamped at −100 as PyTorch does.
   * `bce_with_logits` on the logits is the numerically better form of the same loss.
   */
  | {
    /** Selects binary cross-entropy on probabilities. */
    type: 'bce'
  }

/** The name of a loss (`LossOptions['type']`): `cross_entropy`, `mse`, `l1`, `smooth_l1`, `huber`, `bce_with_logits` or `bce`. */
export type LossType = LossOptions['type']

/**
 * One term of a loss made of several (`TrainerOptions.loss` as a list): the objective
 * is Σ weight × term, and every term is reported by name. A VAE's:
 *
 * ```ts
 * loss: [
 *   { output: 'recon', loss: 'bce', reduction: 'sum' }, // against the inputs: data.withInputsAsTargets()
 *   { output: 'kl', loss: 'value', reduction: 'sum' },  // a KLDivergence node's output
 * ]
 * ```
 */
export interface LossTerm {
  /** The graph output the term reads (a name in `net.spec.outputs`). */
  output: string
  /**
   * `'value'`: the output itself is the per-sample loss (summed over its values), as a
   * {@link Net.klDivergence} node's. Otherwise a loss against the dataset's targets, by
   * name (`'bce'`) or with its options (`{ type: 'bce_with_logits', posWeight: 2 }`).
   */
  loss: 'value' | LossType | LossOptions
  /** Weight of the term in the objective, a finite number; default `1`. */
  weight?: number
  /**
   * `'mean'` (default, PyTorch's): the mean over a sample's values, gradient of the
   * batch mean. `'sum'`: summed over a sample's values, gradient of the sum over the
   * batch (PyTorch's `reduction="sum"`). Either way the term is reported per sample.
   */
  reduction?: 'mean' | 'sum'
  /** The name the term is reported under; default the output's name. */
  name?: string
}

/**
 * A learning-rate schedule, stepped after every optimizer step (`plateau`: after every
 * epoch, on the epoch's training loss, or on the validation loss when `fit` has
 * validation data). Step counts are optimizer steps.
 */
export type ScheduleOptions =
  /** `StepLR`: lr × gamma every `stepSize` steps (gamma default 0.1). */
  | {
    /** Selects `StepLR`. */
    type: 'step'
    /** Optimizer steps between decays, an integer >= 1 (required). */
    stepSize: number
    /** Factor the lr is multiplied by every `stepSize` steps, in (0, 1], default `0.1`. */
    gamma?: number
  }
  /** `ExponentialLR`: lr × gamma every step. */
  | {
    /** Selects `ExponentialLR`. */
    type: 'exponential'
    /** Factor the lr is multiplied by after every step, in (0, 1] (required). */
    gamma: number
  }
  /** `CosineAnnealingLR` over `totalSteps` down to `minLr` (0), after `warmupSteps` (0) of linear warm-up. */
  | {
    /** Selects cosine annealing (with optional linear warm-up). */
    type: 'cosine'
    /** Steps from the start (warm-up included) to the end of the decay, an integer >= 1 (required); later steps use `minLr`. */
    totalSteps: number
    /** The lr the decay ends at, >= 0, default `0`. */
    minLr?: number
    /** Steps of linear warm-up from `lr / warmupSteps` up to the optimizer's `lr`, an integer below `totalSteps`, default `0`. */
    warmupSteps?: number
  }
  /**
   * `OneCycleLR` (cosine annealing): up from `maxLr / divFactor` to `maxLr`, then down to
   * `maxLr / (divFactor × finalDivFactor)`. It replaces the optimizer's `lr`. Momentum and
   * betas are not cycled (PyTorch's default `cycle_momentum=True` would cycle them); steps
   * past `totalSteps` keep the final lr.
   */
  | {
    /** Selects `OneCycleLR`. */
    type: 'one_cycle'
    /** The peak learning rate, > 0 (required). */
    maxLr: number
    /** Steps of the whole cycle, an integer >= 1 (required), e.g. epochs × batches per epoch. */
    totalSteps: number
    /** Fraction of `totalSteps` spent rising to `maxLr`, in (0, 1), default `0.3`. */
    pctStart?: number
    /** The initial lr is `maxLr / divFactor`; > 0, default `25`. */
    divFactor?: number
    /** The final lr is the initial lr / `finalDivFactor`; > 0, default `1e4`. */
    finalDivFactor?: number
  }
  /** `ReduceLROnPlateau` (mode min) per epoch, on the validation loss when `fit` validates, else on the training loss. */
  | {
    /** Selects `ReduceLROnPlateau`. */
    type: 'plateau'
    /** New lr = lr × factor, in (0, 1), default `0.1`. */
    factor?: number
    /** Epochs without improvement tolerated, an integer >= 0, default `10`: the lr drops at the `patience + 1`-th in a row (as in PyTorch). */
    patience?: number
    /** Relative improvement needed (`threshold_mode="rel"`): better means below best × (1 − threshold); >= 0, default `1e-4`. */
    threshold?: number
    /** Epochs after a reduction during which no epoch counts as bad, an integer >= 0, default `0`. */
    cooldown?: number
    /** The lr never goes below this, >= 0, default `0`. */
    minLr?: number
  }

/** Options of the {@link Trainer} constructor. */
export interface TrainerOptions {
  /** Default `{ type: 'adam', lr: 1e-3 }`. */
  optimizer?: OptimizerOptions
  /**
   * Default `{ type: 'cross_entropy' }` (labelled data only: float targets need a
   * regression loss). A list of {@link LossTerm}s puts one loss on each of several
   * outputs (a VAE's reconstruction and KL terms).
   */
  loss?: LossOptions | readonly LossTerm[]
  /** Learning-rate schedule; default none (constant lr). */
  schedule?: ScheduleOptions
  /** Clip the global L2 norm of the gradients to this (as `clip_grad_norm_`); default none. */
  clipNorm?: number
  /**
   * What a NaN or infinite gradient does while the loss is finite (an overflow in
   * backward), checked at every step before the update: `'stop'` (default) rejects
   * with `ERR_NON_FINITE_GRADIENT` naming the tensor, epoch and batch, with no update
   * made; `'skip'` leaves that batch's update out (counted in
   * {@link EpochResult.skippedBatches}). Either way the weights never turn NaN.
   */
  onNonFinite?: 'stop' | 'skip'
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
  /** Mean squared error per target value (regression losses). */
  mse?: number
  /** Mean absolute error per target value (regression losses). */
  mae?: number
}

/** A progress report from {@link Trainer.fit}. */
export interface Progress extends Metrics {
  /** Epoch number, 1-based, counted over this trainer's life. */
  epoch: number
  /** The epoch number this `fit` call ends at. */
  lastEpoch: number
  /** Batches done in this epoch (1-based count). */
  batch: number
  /** Batches per epoch (`ceil(training samples / batchSize)`). */
  batches: number
  /** Mean training loss over this epoch's batches so far. */
  loss: number
  /** Samples done in this epoch. */
  samples: number
  /** Training throughput so far in this epoch, samples per second. */
  samplesPerSecond: number
  /** Seconds since the epoch started. */
  seconds: number
  /** True on the report that closes an epoch. */
  epochEnd: boolean
  /** Learning rate of the last step. */
  lr: number
  /** Global gradient norm of the last step, when the addon reports it. */
  gradNorm?: number
  /** With a loss of {@link LossTerm}s: each term's mean per sample so far, by name (`loss` is their weighted total). */
  terms?: Record<string, number>
}

/** Options of {@link Trainer.fit}. */
export interface FitOptions {
  /** Number of epochs, default `1`. */
  epochs?: number
  /** Called at the end of every epoch, and every `progressEvery` batches if set. */
  onProgress?: (progress: Progress) => void
  /** Also report (`onProgress`, callbacks' `onBatchEnd`) every this many batches (default: only at epoch ends). */
  progressEvery?: number
  /** Stops training within one batch; `fit` then rejects with an {@link AbortError} and the net keeps the weights of the last finished step. */
  signal?: AbortSignal
  /** Reshuffle the samples each epoch, default `true`. */
  shuffle?: boolean
  /**
   * Hold out this fraction (in (0, 1)) of `data` for validation. The data is shuffled
   * with the trainer's seed and the last `round(fraction × size)` samples of that order
   * are held out, the rest trained on. (Keras holds out the last part without
   * shuffling; shuffling first keeps sorted data from giving a one-class validation
   * set.) The same seed gives the same split, so a resumed run validates on the same
   * samples. Not with `validationData`.
   */
  validationSplit?: number
  /** Validation data. After every epoch the net is evaluated on it in eval mode (dropout off, batch-norm running statistics) and the epoch reports `valLoss` and `valAccuracy` (or `valMse`, `valMae`). */
  validationData?: Dataset
  /** Objects with `onTrainBegin`, `onEpochEnd`, `onBatchEnd`, `onTrainEnd` hooks; see {@link Callback} and the built-in `callbacks`. */
  callbacks?: readonly Callback[]
  /**
   * Append the metrics to this JSON Lines file (see the `metrics-log` module for the
   * format): a `run` line, an `epoch` line per epoch and a `batch` line every
   * `logEvery` batches. `{ path, model }` also names the model in the `run` line.
   * A file that cannot be opened rejects before training; a write error later is
   * reported once (a process warning and {@link FitResult.logError}) and training goes on.
   */
  log?: string | {
    /** The JSON Lines file to append to (created if missing). */
    path: string
    /** The model's name for the `run` line; default `net [inputShape]→[outputShape]`. */
    model?: string
  }
  /** With `log`, also write a `batch` line every this many batches (default `0`: epoch lines only). */
  logEvery?: number
}

/** Metrics on the validation data (with `validationData` or `validationSplit`). */
export interface ValidationMetrics {
  /** Mean loss on the validation data (eval mode). */
  valLoss?: number
  /** Accuracy on the validation data, in [0, 1] (classification losses). */
  valAccuracy?: number
  /** Mean squared error per target value on the validation data (regression losses). */
  valMse?: number
  /** Mean absolute error per target value on the validation data (regression losses). */
  valMae?: number
  /** With a loss of {@link LossTerm}s: each term's mean per sample on the validation data, by name. */
  valTerms?: Record<string, number>
}

/** Statistics of one training epoch. */
export interface EpochResult extends Metrics, ValidationMetrics {
  /** Epoch number, 1-based, counted over this trainer's life (a resumed trainer continues the checkpoint's count). */
  epoch: number
  /** Mean training loss over the epoch. */
  loss: number
  /** Seconds of training (validation not included). */
  seconds: number
  /** Training throughput of the epoch, samples per second (validation not included). */
  samplesPerSecond: number
  /** Learning rate of the epoch's last step. */
  lr: number
  /** Global gradient norm of the epoch's last step (before clipping). */
  gradNorm?: number
  /** With a loss of {@link LossTerm}s: each term's mean per sample over the epoch, by name (`loss` is their weighted total). */
  terms?: Record<string, number>
  /** Batches whose update was left out for a NaN or infinite gradient (`onNonFinite: 'skip'`); their loss still counts. */
  skippedBatches: number
}

/** What {@link Trainer.fit} resolves with. */
export interface FitResult {
  /** The finished epochs (an epoch a callback stopped midway is not among them). */
  epochs: EpochResult[]
  /** Whether a callback called `stop()` (not an error; at the last epoch too). */
  stopped: boolean
  /** The reason the callback gave, when stopped. */
  stopReason?: string
  /** Samples trained on (the data minus the held-out part). */
  trainSamples: number
  /** Samples validated on after every epoch (0 without validation). */
  validationSamples: number
  /** The metrics log's first write error (`path: message`), when writing it failed. */
  logError?: string
}

/** What {@link Trainer.evaluate} resolves with. */
export interface EvaluateResult extends Metrics {
  /** Mean loss over the samples. */
  loss: number
  /** Number of samples evaluated (the dataset's size). */
  samples: number
  /** With a loss of {@link LossTerm}s: each term's mean per sample, by name (`loss` is their weighted total). */
  terms?: Record<string, number>
}

const TRAINER_KEYS = ['optimizer', 'loss', 'schedule', 'clipNorm', 'onNonFinite', 'group', 'batchSize', 'threads', 'seed'] as const
const FIT_KEYS = ['epochs', 'onProgress', 'progressEvery', 'signal', 'shuffle', 'validationSplit', 'validationData', 'callbacks', 'log', 'logEvery'] as const
const CLASS_LOSSES: readonly LossType[] = ['cross_entropy']
/** Losses whose metric is accuracy; the others report mse and mae. */
const ACCURACY_LOSSES: readonly LossType[] = ['cross_entropy', 'bce_with_logits', 'bce']
const MAX_INT = 2 ** 31 - 1

function checkKeys(where: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new OptionError(where || 'options', `must be an options object, got ${describe(o)}`)
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw unknownOption(where ? `${where}.${k}` : k, k, keys)
  }
  return o as Record<string, unknown>
}

/** Drops absent metrics (the addon may send null/undefined). */
function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T
}

/**
 * Trains a {@link Net} in place: holds the optimizer (its moment buffers), the loss,
 * the learning-rate schedule and the seeded shuffle and dropout streams. Each epoch
 * runs as one call into the Rust core, off the JS thread. {@link Trainer.fit} trains
 * for some epochs (with optional validation, callbacks and a metrics log),
 * {@link Trainer.evaluate} measures, {@link Trainer.save} writes a checkpoint that
 * {@link Trainer.resume} continues exactly.
 *
 * ```ts
 * import { Net, Trainer, callbacks, mnist } from 'ferronet'
 *
 * const train = await mnist.load('data/', 'train')
 * const test = await mnist.load('data/', 'test')
 * const net = Net.sequential(784, [Net.dense(128), Net.relu(), Net.dense(10)], { seed: 0 })
 * const trainer = new Trainer(net, { optimizer: { type: 'adamw', lr: 1e-3 }, batchSize: 64 })
 *
 * const { epochs, stopped } = await trainer.fit(train, {
 *   epochs: 20,
 *   validationSplit: 0.1, // hold out 10% (seeded), validate after every epoch
 *   callbacks: [callbacks.earlyStopping({ patience: 3 })],
 * })
 * console.log(epochs.at(-1)?.valAccuracy, stopped)
 *
 * const { loss, accuracy } = await trainer.evaluate(test)
 * console.log(loss, accuracy)
 *
 * await trainer.save('run.ckpt.safetensors')
 * // later, or in another process: continue exactly where it stopped
 * const resumed = await Trainer.resume('run.ckpt.safetensors')
 * await resumed.fit(train, { epochs: 5, validationSplit: 0.1 })
 * ```
 */
export class Trainer {
  /** The network being trained; its weights change in place. */
  readonly net: Net
  /** Samples per optimizer step (`options.batchSize`, default `64`). */
  readonly batchSize: number
  /** The optimizer options as given (default `{ type: 'adam' }`: Adam with PyTorch's defaults). */
  readonly optimizer: Readonly<OptimizerOptions>
  /** The loss as given (undefined: the default, cross-entropy on labels, or a list of terms: see {@link Trainer.lossTerms}). */
  readonly loss: Readonly<LossOptions> | undefined
  /** A loss of several terms as given (names filled in); undefined for a single loss. */
  readonly lossTerms: readonly Readonly<LossTerm>[] | undefined
  /** The learning-rate schedule as given (undefined: none, the lr stays constant unless set with {@link Trainer.setLearningRate}). */
  readonly schedule: Readonly<ScheduleOptions> | undefined
  private readonly handle: NativeTrainer
  /** The options as given (seed resolved): written into checkpoints to rebuild this trainer. */
  private readonly savedOptions: TrainerOptions
  /** Epochs finished over this trainer's life (a resumed trainer's include the checkpoint's). */
  private epochCount = 0
  /** Whether a plateau schedule has been fed validation losses (then it no longer steps on training losses). */
  private plateauOnValidation = false
  /** `training` while a fit runs outside its callbacks' awaited hooks: other calls are refused (ERR_BUSY). */
  private state: 'idle' | 'training' | 'callbacks' = 'idle'

  constructor(net: Net, options: TrainerOptions = {}) {
    if (!(net instanceof Net)) throw new OptionError('net', `must be a Net (Net.sequential, Net.load, models.mlp, …), got ${describe(net)}`)
    const o = checkKeys('', options, TRAINER_KEYS) as TrainerOptions
    this.net = net
    this.batchSize = integerInRange('batchSize', o.batchSize ?? 64, 1, 2 ** 31 - 1)
    const threads = integerInRange('threads', o.threads ?? 0, 0, 1024)
    const seed = integerInRange('seed', o.seed ?? net.seed, 0)
    this.optimizer = Object.freeze({ ...(o.optimizer ?? { type: 'adam' }) }) as OptimizerOptions
    const terms = Array.isArray(o.loss) ? checkTerms(o.loss as readonly LossTerm[], net) : undefined
    this.lossTerms = terms?.given
    this.loss = o.loss === undefined || terms ? undefined : (Object.freeze({ ...(o.loss as LossOptions) }) as LossOptions)
    this.schedule = o.schedule === undefined ? undefined : (Object.freeze({ ...o.schedule }) as ScheduleOptions)
    const nativeOptions: Record<string, unknown> = { optimizer: nativeOptimizer(this.optimizer), seed, threads }
    if (this.loss) nativeOptions.loss = nativeLoss(this.loss, net.outputDim)
    if (terms) nativeOptions.lossTerms = terms.native
    if (this.schedule) nativeOptions.schedule = nativeSchedule(this.schedule)
    if (o.clipNorm !== undefined) nativeOptions.clipNorm = positiveNumber('clipNorm', o.clipNorm)
    if (o.onNonFinite !== undefined) {
      if (o.onNonFinite !== 'stop' && o.onNonFinite !== 'skip') throw new OptionError('onNonFinite', `must be 'stop' or 'skip', got ${describe(o.onNonFinite)}`)
      nativeOptions.onNonFinite = o.onNonFinite
    }
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
    this.checkIdle('save')
    await onFile(file, () => this.handle.save(file, { 'trainer.options': JSON.stringify(this.savedOptions) }))
  }

  /**
   * Frees this trainer's native memory (the optimizer's state) now instead of at a
   * garbage collection. The trainer stays usable: a later `fit` starts from a fresh
   * optimizer state. Its network is not disposed (see {@link Net.dispose}).
   * @throws {@link NativeError} `ERR_BUSY` while a fit runs.
   */
  dispose(): void {
    callNative(() => this.handle.dispose())
  }

  /** {@link Trainer.dispose}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.dispose()
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
    // The core's state (epochs done, plateau fed on validation losses) as the checkpoint header says it.
    try {
      const state = JSON.parse(checkpoint.metadata['ferronet.trainer'] ?? '{}') as { epochsDone?: unknown; plateauExternal?: unknown }
      if (typeof state.epochsDone === 'number' && Number.isInteger(state.epochsDone) && state.epochsDone >= 0) trainer.epochCount = state.epochsDone
      trainer.plateauOnValidation = state.plateauExternal === true
    } catch {
      // Only the epoch numbers reported before the first epoch depend on it; the first report corrects them.
    }
    return trainer
  }

  /** Epochs finished over this trainer's life (a resumed trainer counts the checkpoint's). */
  get epochsDone(): number {
    return this.epochCount
  }

  /** The learning rate of the last step (before any step: of the first). */
  get learningRate(): number {
    return this.handle.learningRate
  }

  /**
   * Sets the learning rate of the following steps (between fits, or from a callback's
   * `onEpochEnd`). Refused for a trainer with a `schedule`, which sets the rate at every step.
   * @throws {@link OptionError} (`lr`) for a schedule or a rate that is not a finite number > 0.
   */
  setLearningRate(lr: number): void {
    if (this.schedule !== undefined) throw new OptionError('lr', `cannot be set: this trainer has a ${this.schedule.type} schedule, which sets the learning rate at every step`)
    positiveNumber('lr', lr)
    this.checkIdle('setLearningRate')
    callNative(() => this.handle.setLearningRate(lr))
  }

  private checkIdle(what: string): void {
    if (this.state === 'training') throw new NativeError('ERR_BUSY', `${what}: this trainer is running fit(); await it first (callbacks' onEpochEnd may use it)`)
  }

  /** Threads the trainer computes with. */
  get threads(): number {
    return this.handle.threads
  }

  /** What the loss expects: class labels or float targets. */
  get targetKind(): 'classes' | 'targets' {
    if (this.lossTerms) return this.termTypes().some((t) => CLASS_LOSSES.includes(t)) ? 'classes' : 'targets'
    return CLASS_LOSSES.includes(this.loss?.type ?? 'cross_entropy') ? 'classes' : 'targets'
  }

  /** The loss types of the terms that compare with targets. */
  private termTypes(): LossType[] {
    return (this.lossTerms ?? []).flatMap((t) => (t.loss === 'value' ? [] : [typeof t.loss === 'string' ? t.loss : t.loss.type]))
  }

  /** The native report's per-term values by name (undefined for a single loss). */
  private named(values: readonly number[] | null | undefined): Record<string, number> | undefined {
    if (!this.lossTerms || !values) return undefined
    return Object.fromEntries(this.lossTerms.map((t, k) => [t.name!, values[k]!]))
  }

  /**
   * Trains for `options.epochs` epochs. Resolves with per-epoch statistics (with
   * validation metrics when `validationData` or `validationSplit` is given), and with
   * `stopped: true` when a callback stopped it. Each epoch runs as one call into the
   * core; validation, the metrics log and the callbacks' `onEpochEnd` run between epochs.
   * The dataset must not be modified until the promise settles (it is read in place).
   *
   * ```ts
   * const { epochs, stopped } = await trainer.fit(train, {
   *   epochs: 30,
   *   validationSplit: 0.1,
   *   callbacks: [callbacks.earlyStopping({ patience: 3 })],
   *   log: 'metrics.jsonl',
   * })
   * ```
   */
  async fit(data: Dataset, options: FitOptions = {}): Promise<FitResult> {
    checkKeys('', options, FIT_KEYS)
    const epochs = integerInRange('epochs', options.epochs ?? 1, 1, MAX_INT)
    const progressEvery = integerInRange('progressEvery', options.progressEvery ?? 0, 0, MAX_INT)
    const logEvery = integerInRange('logEvery', options.logEvery ?? 0, 0, MAX_INT)
    const shuffle = boolean('shuffle', options.shuffle ?? true)
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new OptionError('onProgress', 'must be a function')
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new OptionError('signal', 'must be an AbortSignal')
    const callbacks = checkCallbacks(options.callbacks)
    const logTarget = checkLog(options.log)
    if (logEvery > 0 && logTarget === undefined) throw new OptionError('logEvery', 'needs log (the metrics log file to write batch lines to)')
    if (!(data instanceof Dataset)) this.toNative(data, 'fit')
    const { train, validation } = this.validationOf(data, options.validationSplit, options.validationData)
    const nativeData = this.toNative(train, 'fit')
    const nativeValidation = validation && this.toNative(validation, 'validationData')
    if (options.signal?.aborted) throw new AbortError('training was aborted before it started')
    if (this.state !== 'idle') throw new NativeError('ERR_BUSY', 'this trainer is already running fit(); await it first')

    const signal = options.signal
    const onProgress = options.onProgress
    const batchHooks = callbacks.filter((c) => typeof c.onBatchEnd === 'function')
    const history: EpochResult[] = []
    const batchesPerEpoch = Math.ceil(train.size / this.batchSize)
    let firstEpoch = this.epochCount + 1
    let lastEpoch = firstEpoch + epochs - 1
    let stopReason: string | undefined
    const stop = (reason?: unknown) => {
      stopReason ??= typeof reason === 'string' && reason !== '' ? reason : 'stopped by a callback'
    }
    // Optimizer steps of this fit's finished epochs, and what ran when the signal fired.
    let stepsBefore = 0
    let running: 'fit' | 'evaluate' | undefined
    let stepsAtRequest: number | undefined
    const onAbort = () => {
      const steps = this.handle.abort()
      stepsAtRequest = stepsBefore + (running === 'fit' ? steps : 0)
    }

    this.state = 'training'
    signal?.addEventListener('abort', onAbort, { once: true })
    let log: MetricsLog | undefined
    try {
      log = logTarget && (await MetricsLog.open(logTarget.path))
      const metrics = this.metricNames(validation !== undefined)
      const begin = { trainer: this, firstEpoch, lastEpoch, trainSamples: train.size, validationSamples: validation?.size ?? 0, metrics }
      log?.write({
        kind: 'run',
        started: new Date().toISOString(),
        model: logTarget!.model ?? `net [${this.net.inputShape.join(', ')}]→[${this.net.outputShape.join(', ')}]`,
        spec: this.net.spec,
        options: this.runOptions(epochs, shuffle, options.validationSplit, validation !== undefined, logEvery),
        trainSamples: train.size,
        validationSamples: validation?.size ?? 0,
      })
      await this.hooks(callbacks, 'onTrainBegin', () => begin)

      const plateauOnValidation = validation !== undefined && this.schedule?.type === 'plateau'
      if (plateauOnValidation && !this.plateauOnValidation) {
        // The core steps a plateau schedule on the training loss until it is first fed a
        // validation loss; feeding it one no loss can beat first makes the first epoch's
        // validation loss its first reference, as for a schedule fed only validation losses.
        callNative(() => this.handle.reportValidationLoss(Number.MAX_VALUE))
        this.plateauOnValidation = true
      }

      const nativeEvery = gcd(progressEvery, logEvery)
      for (let e = 0; e < epochs && stopReason === undefined; e++) {
        if (signal?.aborted) throw new AbortError(`training was aborted after ${stepsBefore} steps`, stepsBefore)
        let callbackError: { error: unknown } | undefined
        let settled = false
        let epochEnd: Progress | undefined
        let finalReport: (() => void) | undefined
        const finalReportSeen = new Promise<void>((resolve) => (finalReport = resolve))
        let stoppedMidEpoch = false
        // Reports travel through a queue that may be drained after the task settles: the
        // epoch ends only once its epoch-end report has been delivered, and no report is
        // delivered after that.
        const report = (raw: NativeProgress) => {
          if (callbackError || settled) return
          if (e === 0 && raw.epoch !== firstEpoch) {
            // The epoch count was unknown (a checkpoint without it): the core's is right.
            firstEpoch = raw.epoch
            lastEpoch = firstEpoch + epochs - 1
          }
          const p = clean({ ...raw, lastEpoch, terms: this.named(raw.terms) }) as Progress
          const onBatch = progressEvery > 0 && p.batch % progressEvery === 0
          try {
            if (p.epochEnd) epochEnd = p
            if (onProgress && (p.epochEnd || onBatch)) onProgress(p)
            if (log && logEvery > 0 && p.batch % logEvery === 0) log.write(logLine('batch', BATCH_KEYS, p as unknown as Record<string, unknown>))
            if (onBatch && stopReason === undefined) {
              const info = { epoch: p.epoch, lastEpoch, batch: p.batch, batches: p.batches, metrics: p, history, trainer: this, stop }
              for (const c of batchHooks) {
                const r = c.onBatchEnd!(info) as unknown
                if (isThenable(r)) r.then(undefined, (error: unknown) => {
                  if (callbackError || settled) return
                  callbackError = { error }
                  this.handle.abort()
                })
                if (stopReason !== undefined) {
                  stoppedMidEpoch = !p.epochEnd
                  if (stoppedMidEpoch) this.handle.abort()
                  break
                }
              }
            }
          } catch (error) {
            callbackError = { error }
            this.handle.abort()
          }
          if (p.epochEnd) finalReport!()
        }

        let stats: EpochResult | undefined
        try {
          running = 'fit'
          const [s] = await awaitNative(
            callNative(() => this.handle.fit(nativeData, { epochs: 1, batchSize: this.batchSize, shuffle, progressEvery: nativeEvery }, report)),
          )
          // Bounded wait: a report lost by the addon must not hang fit.
          if (!callbackError) await Promise.race([finalReportSeen, delay(5000)])
          if (callbackError) throw callbackError.error
          stats = clean({ ...s!, gradNorm: epochEnd?.gradNorm, terms: this.named(s!.terms) }) as EpochResult
        } catch (error) {
          if (callbackError) throw callbackError.error
          if (error instanceof AbortError) {
            // A callback's stop() mid-epoch is not an error (the signal's abort is).
            if (stoppedMidEpoch && !signal?.aborted) break
            throw withSteps(error, stepsBefore, stepsAtRequest, true)
          }
          throw error
        } finally {
          settled = true
          running = undefined
        }
        this.epochCount = stats.epoch
        stepsBefore += batchesPerEpoch

        if (nativeValidation) {
          let v: NativeEvalStats
          try {
            running = 'evaluate'
            v = await awaitNative(callNative(() => this.handle.evaluate(nativeValidation, 1000)))
          } catch (error) {
            if (error instanceof AbortError) throw withSteps(error, stepsBefore, stepsAtRequest, false)
            throw error
          } finally {
            running = undefined
          }
          stats = clean({ ...stats, valLoss: v.loss, valAccuracy: v.accuracy, valMse: v.mse, valMae: v.mae, valTerms: this.named(v.terms) })
          if (plateauOnValidation && Number.isFinite(v.loss)) callNative(() => this.handle.reportValidationLoss(v.loss))
        }
        // In the log's order: epoch, training metrics, validation metrics, lr, speed, gradNorm, seconds.
        const keys = [...EPOCH_KEYS.filter((k) => k in stats!), ...Object.keys(stats).filter((k) => !(EPOCH_KEYS as readonly string[]).includes(k))]
        const result = Object.fromEntries(keys.map((k) => [k, (stats as unknown as Record<string, number>)[k]])) as unknown as EpochResult
        history.push(result)
        log?.write(logLine('epoch', EPOCH_KEYS, result as unknown as Record<string, unknown>))
        await this.hooks(callbacks, 'onEpochEnd', () => ({ epoch: result.epoch, lastEpoch, metrics: result, history, trainer: this, stop }))
      }

      await this.hooks(callbacks, 'onTrainEnd', () => ({
        epoch: history.at(-1)?.epoch ?? firstEpoch - 1,
        history,
        trainer: this,
        stopped: stopReason !== undefined,
        ...(stopReason !== undefined ? { stopReason } : {}),
      }))
      await log?.close()
      const logError = log?.error
      log = undefined
      return {
        epochs: history,
        stopped: stopReason !== undefined,
        ...(stopReason !== undefined ? { stopReason } : {}),
        trainSamples: train.size,
        validationSamples: validation?.size ?? 0,
        ...(logError !== undefined ? { logError } : {}),
      }
    } finally {
      this.state = 'idle'
      signal?.removeEventListener('abort', onAbort)
      await log?.close()
    }
  }

  /** Runs one hook of every callback in order, awaiting each; the trainer may be used meanwhile. */
  private async hooks<K extends 'onTrainBegin' | 'onEpochEnd' | 'onTrainEnd'>(callbacks: readonly Callback[], hook: K, info: () => Parameters<NonNullable<Callback[K]>>[0]): Promise<void> {
    const withHook = callbacks.filter((c) => typeof c[hook] === 'function')
    if (withHook.length === 0) return
    const i = info()
    this.state = 'callbacks'
    try {
      for (const c of withHook) await (c[hook] as (info: unknown) => unknown).call(c, i)
    } finally {
      this.state = 'training'
    }
  }

  /** The training and validation parts of `data`. */
  private validationOf(data: Dataset, split: unknown, validationData: unknown): { train: Dataset; validation?: Dataset } {
    if (split !== undefined && validationData !== undefined) throw new OptionError('validationSplit', 'cannot be combined with validationData: give one')
    if (validationData !== undefined) {
      if (!(validationData instanceof Dataset)) throw new OptionError('validationData', `must be a Dataset, got ${describe(validationData)}`)
      return { train: data, validation: validationData }
    }
    if (split === undefined) return { train: data }
    if (typeof split !== 'number' || !(split > 0 && split < 1)) throw new OptionError('validationSplit', `must be a fraction in (0, 1), got ${describe(split)}`)
    const held = Math.round(split * data.size)
    if (held < 1 || held >= data.size) {
      throw new OptionError('validationSplit', `${split} of ${data.size} samples holds out ${held}: both parts need at least one sample`)
    }
    const [train, validation] = data.split(data.size - held, { seed: this.savedOptions.seed ?? 0 })
    return { train, validation }
  }

  /** The metrics each epoch reports. */
  private metricNames(validation: boolean): MetricName[] {
    const train: MetricName[] = this.lossTerms ? ['loss'] : ACCURACY_LOSSES.includes(this.loss?.type ?? 'cross_entropy') ? ['loss', 'accuracy'] : ['loss', 'mse', 'mae']
    if (!validation) return train
    return [...train, ...train.map((m) => `val${m[0]!.toUpperCase()}${m.slice(1)}` as MetricName)]
  }

  /** The `options` of the metrics log's run line: the trainer's (defaults filled in) and the fit's. */
  private runOptions(epochs: number, shuffle: boolean, validationSplit: unknown, validation: boolean, logEvery: number): Record<string, unknown> {
    const o = this.savedOptions
    return JSON.parse(JSON.stringify({
      optimizer: this.optimizer,
      loss: this.lossTerms ?? this.loss ?? { type: 'cross_entropy' },
      ...(this.schedule ? { schedule: this.schedule } : {}),
      ...(o.clipNorm !== undefined ? { clipNorm: o.clipNorm } : {}),
      ...(o.onNonFinite !== undefined ? { onNonFinite: o.onNonFinite } : {}),
      ...(o.group !== undefined ? { group: o.group } : {}),
      batchSize: this.batchSize,
      threads: this.threads,
      seed: o.seed,
      epochs,
      shuffle,
      ...(validationSplit !== undefined ? { validationSplit } : validation ? { validationData: true } : {}),
      ...(logEvery > 0 ? { logEvery } : {}),
    })) as Record<string, unknown>
  }

  /** Mean loss and the loss's metrics over `data`, computed off the JS thread (dropout off). */
  async evaluate(data: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    checkKeys('', options, ['batchSize'])
    const batchSize = integerInRange('batchSize', options.batchSize ?? 1000, 1, 2 ** 31 - 1)
    const nativeData = this.toNative(data, 'evaluate')
    this.checkIdle('evaluate')
    const r = await awaitNative(callNative(() => this.handle.evaluate(nativeData, batchSize)))
    return clean({ ...r, terms: this.named(r.terms) }) as EvaluateResult
  }

  /**
   * One synchronous optimizer step on one batch of f32 features `[rows, ...inputShape]`
   * with their class labels (integers: one per sample, or one per position for a
   * sequence model whose output is `[positions, classes]`, samples first) or float
   * targets (`Float32Array`, rows × outputDim).
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
    // One label per sample, or one per position of a sequence model's [positions, classes] output.
    const shape = this.net.outputShape
    const positions = shape.length >= 2 ? this.net.outputDim / shape[shape.length - 1]! : 1
    if (y.length !== rows && !(positions > 1 && y.length === rows * positions)) {
      throw new ShapeError(
        `trainBatch: ${rows} samples (${dim} features each) need ${rows} labels${positions > 1 ? ` or ${rows * positions} (one per position of the output ${fmt(shape)})` : ''}, got ${y.length}`,
      )
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
    // An Embedding's ids, checked over the whole dataset before the first batch.
    if (data.dtype === 'float32') checkIds(net.spec, data.inputs as Float32Array)
    const inputs = data.dtype === 'uint8' ? { pixels: data.inputs as Uint8Array } : { features: data.inputs as Float32Array }
    if (this.lossTerms) {
      // The core checks each term's output against the targets, naming the term.
      if (data.targetsAreInputs) return { ...inputs, targetsAreInputs: true, dim: data.inputDim }
      if (data.targets) return { ...inputs, targets: data.targets, targetDim: data.targetDim, dim: data.inputDim }
      return data.labels instanceof Uint32Array ? { ...inputs, labels32: data.labels, dim: data.inputDim } : { ...inputs, labels: data.labels, dim: data.inputDim }
    }
    if (data.targetsAreInputs) {
      if (this.targetKind === 'classes') throw new OptionError('loss.type', `${what}: ${this.loss?.type ?? 'cross_entropy'} needs class labels but the dataset's targets are its inputs`)
      if (data.inputDim !== net.outputDim) {
        throw new ShapeError(`${what}: the dataset's targets are its inputs (${data.inputDim} values) but the network's output shape is ${fmt(net.outputShape)} (${net.outputDim} values)`)
      }
      return { ...inputs, targetsAreInputs: true, dim: data.inputDim }
    }
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
    if (data.labelsPerSample > 1) {
      // One label per position: the output must be [positions, classes].
      const shape = net.outputShape
      const classes = shape[shape.length - 1]!
      if (shape.length < 2 || net.outputDim !== data.labelsPerSample * classes) {
        throw new ShapeError(`${what}: the dataset has ${data.labelsPerSample} labels per sample, so the network's output must be [${data.labelsPerSample}, classes], got ${fmt(shape)}`)
      }
      if (data.numClasses > classes) throw new ShapeError(`${what}: dataset has ${data.numClasses} classes but the network's output has ${classes} per position (${fmt(shape)})`)
    } else if (data.numClasses > net.outputDim) {
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

function checkCallbacks(value: unknown): readonly Callback[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new OptionError('callbacks', `must be an array of callback objects, got ${describe(value)}`)
  value.forEach((c: unknown, i) => {
    if (typeof c !== 'object' || c === null) throw new OptionError(`callbacks[${i}]`, `must be an object with ${CALLBACK_HOOKS.join(', ')} methods, got ${describe(c)}`)
    const hooks = CALLBACK_HOOKS.filter((h) => (c as Record<string, unknown>)[h] !== undefined)
    if (hooks.length === 0) throw new OptionError(`callbacks[${i}]`, `has none of the hooks ${CALLBACK_HOOKS.join(', ')}`)
    for (const h of hooks) if (typeof (c as Record<string, unknown>)[h] !== 'function') throw new OptionError(`callbacks[${i}].${h}`, `must be a function, got ${describe((c as Record<string, unknown>)[h])}`)
  })
  return [...(value as Callback[])]
}

function checkLog(value: unknown): { path: string; model?: string } | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') return { path: filePath('log', value) }
  const o = checkKeys('log', value, ['path', 'model'])
  const path = filePath('log.path', o.path)
  if (o.model !== undefined && typeof o.model !== 'string') throw new OptionError('log.model', `must be a string, got ${describe(o.model)}`)
  return o.model === undefined ? { path } : { path, model: o.model as string }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function'
}

/** The core counts the steps of one epoch's call; a fit's error counts the fit's. */
function withSteps(error: AbortError, before: number, atRequest: number | undefined, inFit: boolean): AbortError {
  const done = before + (inFit ? (error.stepsDone ?? 0) : 0)
  const out = new AbortError(/after \d+ steps/.test(error.message) ? error.message.replace(/after \d+ steps/, `after ${done} steps`) : `${error.message} (after ${done} steps)`, done)
  if (atRequest !== undefined) out.stepsAtRequest = atRequest
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

/** @internal The native form of optimizer options (checked, PyTorch's names). */
export function nativeOptimizer(o: OptimizerOptions): Record<string, unknown> {
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
  bce: ['type'],
  cross_entropy: ['type', 'classWeights', 'labelSmoothing'],
  mse: ['type'],
  l1: ['type'],
  smooth_l1: ['type', 'beta'],
  huber: ['type', 'delta'],
  bce_with_logits: ['type', 'posWeight'],
}

const TERM_KEYS = ['output', 'loss', 'weight', 'reduction', 'name'] as const

/** A list of loss terms: checked, names filled in, and as the addon takes them. */
function checkTerms(list: readonly LossTerm[], net: Net): { given: readonly Readonly<LossTerm>[]; native: Record<string, unknown>[] } {
  const outputs = net.spec.outputs
  if (list.length === 0 || list.length > 8) throw new OptionError('loss', `a list of 1 to 8 terms, got ${list.length}`)
  const names = new Set<string>()
  const given: Readonly<LossTerm>[] = []
  const nativeTerms = list.map((t, k) => {
    const where = `loss[${k}]`
    const r = checkKeys(where, t, TERM_KEYS)
    if (typeof r.output !== 'string' || !outputs.includes(r.output)) {
      throw new OptionError(`${where}.output`, `must name an output of the network (${outputs.map((o) => JSON.stringify(o)).join(', ')}), got ${describe(r.output)}`)
    }
    const name = r.name ?? r.output
    if (typeof name !== 'string' || name === '') throw new OptionError(`${where}.name`, `must be a non-empty string, got ${describe(name)}`)
    if (names.has(name)) throw new OptionError(`${where}.name`, `${JSON.stringify(name)} names two terms; give each a name`)
    names.add(name)
    const weight = r.weight === undefined ? 1 : r.weight
    if (typeof weight !== 'number' || !Number.isFinite(weight)) throw new OptionError(`${where}.weight`, `must be a finite number, got ${describe(weight)}`)
    const reduction = oneOf(`${where}.reduction`, r.reduction ?? 'mean', ['mean', 'sum'] as const)
    const loss = r.loss
    if (loss === undefined) throw new OptionError(`${where}.loss`, `is required: 'value' or a loss (${Object.keys(LOSS_KEYS).join(', ')})`)
    let nativeTermLoss: Record<string, unknown>
    if (loss === 'value') nativeTermLoss = { kind: 'value' }
    else {
      const options = (typeof loss === 'string' ? { type: loss } : loss) as LossOptions
      const dim = net.outputDimOf(r.output)
      nativeTermLoss = nativeLoss(options, dim, `${where}.loss`)
    }
    given.push(Object.freeze({ ...(t as LossTerm), name, weight, reduction }))
    return { name, output: r.output, loss: nativeTermLoss, weight, reduction }
  })
  return { given: Object.freeze(given), native: nativeTerms }
}

function nativeLoss(l: LossOptions, outputs: number, where = 'loss'): Record<string, unknown> {
  if (typeof l !== 'object' || l === null) throw new OptionError(where, `must be an object like { type: 'mse' }, got ${describe(l)}`)
  const type = oneOf(`${where}.type`, (l as { type?: unknown }).type, Object.keys(LOSS_KEYS) as LossType[])
  const r = checkKeys(where, l, LOSS_KEYS[type])
  const numbers = (field: string, v: unknown, check: (f: string, x: unknown) => number): number[] => {
    if (!Array.isArray(v) || v.length !== outputs) throw new OptionError(field, `must be an array of ${outputs} numbers (one per output), got ${describe(v)}`)
    return v.map((x, i) => check(`${field}[${i}]`, x))
  }
  switch (type) {
    case 'cross_entropy': {
      const labelSmoothing = opt(`${where}.labelSmoothing`, r.labelSmoothing, (f, v) => {
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new OptionError(f, `must be a number in [0, 1], got ${describe(v)}`)
        return v
      })
      return { kind: type, classWeights: r.classWeights === undefined ? undefined : numbers(`${where}.classWeights`, r.classWeights, nonNegativeNumber), labelSmoothing }
    }
    case 'smooth_l1':
      return { kind: type, beta: opt(`${where}.beta`, r.beta, nonNegativeNumber) }
    case 'huber':
      return { kind: type, delta: opt(`${where}.delta`, r.delta, positiveNumber) }
    case 'bce_with_logits': {
      const pw = r.posWeight
      const posWeight = pw === undefined ? undefined : typeof pw === 'number' ? new Array<number>(outputs).fill(nonNegativeNumber(`${where}.posWeight`, pw)) : numbers(`${where}.posWeight`, pw, nonNegativeNumber)
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
