/**
 * Callbacks of {@link Trainer.fit} and the built-in ones: {@link earlyStopping},
 * {@link checkpoint} and {@link reduceLrOnPlateau}.
 *
 * ```ts
 * import { Trainer, callbacks } from 'ferronet'
 * await trainer.fit(train, {
 *   epochs: 50,
 *   validationSplit: 0.1,
 *   callbacks: [
 *     callbacks.earlyStopping({ monitor: 'valLoss', patience: 3 }),
 *     callbacks.checkpoint({ path: 'run-{epoch}.ckpt.safetensors', every: 5 }),
 *     { onEpochEnd: ({ epoch, metrics }) => console.log(epoch, metrics.valAccuracy) },
 *   ],
 * })
 * ```
 * @module
 */

import { OptionError } from './errors.js'
import type { Parameter } from './net.js'
import type { EpochResult, Progress, Trainer } from './trainer.js'
import { boolean, describe, filePath, integerInRange, nonNegativeNumber, oneOf, unknownOption } from './validate.js'

/** The per-epoch numbers a callback can watch (`val…`: on the validation data). */
export type MetricName = 'loss' | 'accuracy' | 'mse' | 'mae' | 'valLoss' | 'valAccuracy' | 'valMse' | 'valMae'

/** Every {@link MetricName}, in the order epochs report them: the values `monitor` accepts. */
export const METRIC_NAMES: readonly MetricName[] = ['loss', 'accuracy', 'mse', 'mae', 'valLoss', 'valAccuracy', 'valMse', 'valMae']

/** What `onTrainBegin` gets: the fit about to run. */
export interface TrainBeginInfo {
  /** The trainer running the fit. */
  trainer: Trainer
  /** The number of this fit's first epoch (epochs count over the trainer's life, from 1). */
  firstEpoch: number
  /** The number of the last epoch this fit runs, unless it is stopped. */
  lastEpoch: number
  /** Samples trained on (the data minus the held-out part). */
  trainSamples: number
  /** Samples validated on after every epoch (0 without validation). */
  validationSamples: number
  /** The metrics every epoch of this fit reports. */
  metrics: readonly MetricName[]
}

/** What `onEpochEnd` gets, after the epoch's validation. */
export interface EpochEndInfo {
  /** The epoch just finished (over the trainer's life, from 1). */
  epoch: number
  /** The number of the last epoch this fit runs, unless it is stopped. */
  lastEpoch: number
  /** This epoch's training and validation metrics. */
  metrics: EpochResult
  /** Every epoch of this fit so far, this one last. */
  history: readonly EpochResult[]
  /** The trainer running the fit: free to use here (`save`, `setLearningRate`, `evaluate`, …). */
  trainer: Trainer
  /** Ends the fit after this epoch (the other callbacks still see it); `fit` resolves with `stopped: true` and the reason. */
  stop(reason?: string): void
}

/** What `onBatchEnd` gets, every `progressEvery` batches. */
export interface BatchEndInfo {
  /** The epoch running (over the trainer's life, from 1). */
  epoch: number
  /** The number of the last epoch this fit runs, unless it is stopped. */
  lastEpoch: number
  /** Batches done in this epoch (a multiple of `progressEvery`). */
  batch: number
  /** Batches per epoch. */
  batches: number
  /** The epoch's running training metrics (means over its batches so far). */
  metrics: Progress
  /** The finished epochs of this fit. */
  history: readonly EpochResult[]
  /** The trainer running the fit; it is busy training, so its `save`, `evaluate` and `setLearningRate` are refused (`ERR_BUSY`) here. */
  trainer: Trainer
  /**
   * Ends the fit within a batch or so (training runs off the JS thread and may be a
   * batch ahead of this report); the unfinished epoch is not in the result, its steps
   * are kept in the weights. `fit` resolves with `stopped: true` and the reason.
   */
  stop(reason?: string): void
}

/** What `onTrainEnd` gets, when the fit finishes or is stopped (not when it fails or is aborted). */
export interface TrainEndInfo {
  /** The last finished epoch (the first epoch's number − 1 if none finished). */
  epoch: number
  /** Every finished epoch of this fit, in order. */
  history: readonly EpochResult[]
  /** The trainer that ran the fit: free to use here. */
  trainer: Trainer
  /** Whether a callback called `stop()`. */
  stopped: boolean
  /** The reason given to `stop()` (or a default), when stopped. */
  stopReason?: string
}

/**
 * A callback: any object with some of these methods. `fit` awaits the promise an
 * `onTrainBegin`, `onEpochEnd` or `onTrainEnd` returns; `onBatchEnd` runs while the
 * epoch goes on. A callback that throws (or rejects) stops training and becomes
 * `fit`'s rejection. Callbacks run in the order given.
 */
export interface Callback {
  /** Called once before the first epoch (after the metrics log is opened); awaited. Throw here to reject bad settings. */
  onTrainBegin?(info: TrainBeginInfo): void | Promise<void>
  /** Called after every epoch and its validation; awaited before the next epoch starts. */
  onEpochEnd?(info: EpochEndInfo): void | Promise<void>
  /**
   * Called every `progressEvery` batches (never without `progressEvery`), while the
   * epoch goes on; not awaited (but a returned promise's rejection becomes `fit`'s).
   */
  onBatchEnd?(info: BatchEndInfo): void
  /** Called once when the fit finishes or is stopped (not when it fails or is aborted); awaited before `fit` resolves. */
  onTrainEnd?(info: TrainEndInfo): void | Promise<void>
}

/** The names of the {@link Callback} hooks; a callback has at least one of them. */
export const CALLBACK_HOOKS = ['onTrainBegin', 'onEpochEnd', 'onBatchEnd', 'onTrainEnd'] as const

/** `min` for losses and errors, `max` for accuracies. */
function modeOf(monitor: MetricName, mode: 'auto' | 'min' | 'max'): 'min' | 'max' {
  if (mode !== 'auto') return mode
  return monitor === 'accuracy' || monitor === 'valAccuracy' ? 'max' : 'min'
}

function options(where: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new OptionError(where, `must be an options object, got ${describe(o)}`)
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw unknownOption(`${where}.${k}`, k, keys)
  return o as Record<string, unknown>
}

function monitorOption(where: string, v: unknown): MetricName | undefined {
  return v === undefined ? undefined : oneOf(`${where}.monitor`, v, METRIC_NAMES)
}

function modeOption(where: string, v: unknown): 'auto' | 'min' | 'max' {
  return v === undefined ? 'auto' : oneOf(`${where}.mode`, v, ['auto', 'min', 'max'] as const)
}

/** The monitor, or the default (`valLoss` when the fit validates, else `loss`), checked against what the fit reports. */
function resolveMonitor(where: string, monitor: MetricName | undefined, info: TrainBeginInfo): MetricName {
  const m = monitor ?? (info.metrics.includes('valLoss') ? 'valLoss' : 'loss')
  if (!info.metrics.includes(m)) {
    const hint = m.startsWith('val') && !info.metrics.includes('valLoss') ? ': pass validationData or validationSplit to fit' : ''
    throw new OptionError(`${where}.monitor`, `${JSON.stringify(m)} is not reported by this fit (it reports ${info.metrics.join(', ')})${hint}`)
  }
  return m
}

/** Whether `current` beats `best` by more than `minDelta`. */
function improves(current: number, best: number, mode: 'min' | 'max', minDelta: number): boolean {
  return mode === 'min' ? current < best - minDelta : current > best + minDelta
}

function metricOf(where: string, monitor: MetricName, metrics: EpochResult): number {
  const v = (metrics as unknown as Record<string, unknown>)[monitor]
  if (typeof v !== 'number') throw new OptionError(`${where}.monitor`, `${JSON.stringify(monitor)} is missing from epoch ${metrics.epoch}'s metrics`)
  return v
}

const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)).toString() : String(x))

/** Options of {@link earlyStopping}. */
export interface EarlyStoppingOptions {
  /** What to watch; default `valLoss` when the fit validates, else `loss`. */
  monitor?: MetricName
  /** Stop after this many epochs in a row without improvement, default `0`: at the first (as in Keras, 0 and 1 are the same). */
  patience?: number
  /** How much better than the best so far counts as an improvement, default `0`. */
  minDelta?: number
  /** `min` (losses, errors), `max` (accuracies) or `auto` (default: by the name). */
  mode?: 'auto' | 'min' | 'max'
  /**
   * At the end of the fit (stopped or not), put back the weights (and buffers) of the
   * best epoch. Default `true` (Keras's default is false). The optimizer state stays
   * that of the last epoch.
   */
  restoreBestWeights?: boolean
}

/** The callback {@link earlyStopping} returns; its fields describe the last fit. */
export interface EarlyStopping extends Callback {
  /** The metric watched in the last fit (resolved when it starts; undefined before any fit). */
  readonly monitor: MetricName | undefined
  /** The best value of `monitor` seen in the last fit. */
  readonly best: number | undefined
  /** The epoch of `best`. */
  readonly bestEpoch: number | undefined
  /** The epoch the last fit stopped after (undefined if it ran to the end). */
  readonly stoppedEpoch: number | undefined
  /** Whether the best weights were put back at the end of the last fit. */
  readonly restored: boolean
}

/**
 * Stops the fit once `monitor` has not improved (by more than `minDelta`) for
 * `patience` epochs, as Keras's `EarlyStopping`; by default it then puts back the
 * best epoch's weights.
 *
 * ```ts
 * await trainer.fit(train, { epochs: 100, validationSplit: 0.1, callbacks: [callbacks.earlyStopping({ patience: 5 })] })
 * ```
 * @throws {@link OptionError} naming the option (`earlyStopping.patience`, …); a monitor
 *   the fit does not report (`valLoss` without validation data) is rejected when the fit starts.
 */
export function earlyStopping(opts: EarlyStoppingOptions = {}): EarlyStopping {
  const w = 'earlyStopping'
  const o = options(w, opts, ['monitor', 'patience', 'minDelta', 'mode', 'restoreBestWeights'])
  const asked = monitorOption(w, o.monitor)
  const patience = integerInRange(`${w}.patience`, o.patience ?? 0, 0)
  const minDelta = nonNegativeNumber(`${w}.minDelta`, o.minDelta ?? 0)
  const modeAsked = modeOption(w, o.mode)
  const restoreBestWeights = boolean(`${w}.restoreBestWeights`, o.restoreBestWeights ?? true)

  let monitor: MetricName | undefined
  let mode: 'min' | 'max' = 'min'
  let best: number | undefined
  let bestEpoch: number | undefined
  let bestWeights: Parameter[] | undefined
  let stoppedEpoch: number | undefined
  let restored = false
  let wait = 0
  return {
    get monitor() { return monitor },
    get best() { return best },
    get bestEpoch() { return bestEpoch },
    get stoppedEpoch() { return stoppedEpoch },
    get restored() { return restored },
    onTrainBegin(info) {
      monitor = resolveMonitor(w, asked, info)
      mode = modeOf(monitor, modeAsked)
      best = bestEpoch = bestWeights = stoppedEpoch = undefined
      restored = false
      wait = 0
    },
    onEpochEnd(info) {
      const current = metricOf(w, monitor!, info.metrics)
      if (best === undefined || improves(current, best, mode, minDelta)) {
        best = current
        bestEpoch = info.epoch
        wait = 0
        if (restoreBestWeights) bestWeights = info.trainer.net.parameters()
        return
      }
      wait++
      if (wait >= patience) {
        stoppedEpoch = info.epoch
        info.stop(`early stopping: ${monitor} did not improve${minDelta ? ` by more than ${minDelta}` : ''} for ${wait} epoch${wait === 1 ? '' : 's'} (best ${fmt(best)} at epoch ${bestEpoch})`)
      }
    },
    onTrainEnd(info) {
      if (restoreBestWeights && bestWeights && bestEpoch !== info.epoch) {
        info.trainer.net.setParameters(bestWeights)
        restored = true
      }
      bestWeights = undefined
    },
  }
}

/** Options of {@link checkpoint}. */
export interface CheckpointOptions {
  /** The checkpoint file; `{epoch}` in it is replaced by the epoch number (one file per checkpoint), else each checkpoint replaces the last. */
  path: string
  /** Save after every this many epochs (epochs `every`, `2 × every`, … of the trainer's life), default `1`. */
  every?: number
  /** Save only when `monitor` is better than at every earlier save of this fit, default `false`. */
  onlyBest?: boolean
  /** What `onlyBest` compares; default `valLoss` when the fit validates, else `loss`. */
  monitor?: MetricName
  /** Whether lower (`min`) or higher (`max`) `monitor` is better; `auto` (default): `max` for accuracies, else `min`. */
  mode?: 'auto' | 'min' | 'max'
}

/** The callback {@link checkpoint} returns. */
export interface Checkpoint extends Callback {
  /** The files written, in order, over this callback's life. */
  readonly saved: readonly string[]
}

/**
 * Writes a checkpoint with {@link Trainer.save} (atomic: complete or absent) every
 * `every` epochs, that {@link Trainer.resume} continues from.
 *
 * ```ts
 * callbacks.checkpoint({ path: 'run-{epoch}.ckpt.safetensors', every: 5 })
 * ```
 */
export function checkpoint(opts: CheckpointOptions): Checkpoint {
  const w = 'checkpoint'
  if (opts === undefined) throw new OptionError(`${w}.path`, 'is required')
  const o = options(w, opts, ['path', 'every', 'onlyBest', 'monitor', 'mode'])
  const path = filePath(`${w}.path`, o.path)
  const every = integerInRange(`${w}.every`, o.every ?? 1, 1)
  const onlyBest = boolean(`${w}.onlyBest`, o.onlyBest ?? false)
  const asked = monitorOption(w, o.monitor)
  const modeAsked = modeOption(w, o.mode)
  const saved: string[] = []
  let monitor: MetricName = 'loss'
  let mode: 'min' | 'max' = 'min'
  let best: number | undefined
  return {
    saved,
    onTrainBegin(info) {
      if (onlyBest || asked !== undefined) monitor = resolveMonitor(w, asked, info)
      mode = modeOf(monitor, modeAsked)
      best = undefined
    },
    async onEpochEnd(info) {
      if (info.epoch % every !== 0) return
      if (onlyBest) {
        const current = metricOf(w, monitor, info.metrics)
        if (best !== undefined && !improves(current, best, mode, 0)) return
        best = current
      }
      const file = path.replaceAll('{epoch}', String(info.epoch))
      await info.trainer.save(file)
      saved.push(file)
    },
  }
}

/** Options of {@link reduceLrOnPlateau}. */
export interface ReduceLrOnPlateauOptions {
  /** What to watch; default `valLoss` when the fit validates, else `loss`. */
  monitor?: MetricName
  /** New lr = lr × factor, in (0, 1); default `0.1`. */
  factor?: number
  /** Reduce after this many epochs in a row without improvement, default `10` (0 and 1: at the first). */
  patience?: number
  /** Improvement smaller than this does not count, default `1e-4`. */
  minDelta?: number
  /** Epochs after a reduction whose lack of improvement does not count, default `0`. */
  cooldown?: number
  /** The lr never goes below this, default `0`. */
  minLr?: number
  /** Whether lower (`min`) or higher (`max`) `monitor` is better; `auto` (default): `max` for accuracies, else `min`. */
  mode?: 'auto' | 'min' | 'max'
}

/** The callback {@link reduceLrOnPlateau} returns. */
export interface ReduceLrOnPlateau extends Callback {
  /** Each reduction: after which epoch, and the new lr. */
  readonly reductions: readonly {
    /** The epoch after which the lr was lowered. */
    epoch: number
    /** The new learning rate (as the optimizer keeps it, in f32). */
    lr: number
  }[]
}

/**
 * Lowers the learning rate when `monitor` stops improving, as Keras's
 * `ReduceLROnPlateau`, through {@link Trainer.setLearningRate}. Needs a trainer
 * without a `schedule` (a schedule sets the rate every step; use the `plateau`
 * schedule there instead).
 */
export function reduceLrOnPlateau(opts: ReduceLrOnPlateauOptions = {}): ReduceLrOnPlateau {
  const w = 'reduceLrOnPlateau'
  const o = options(w, opts, ['monitor', 'factor', 'patience', 'minDelta', 'cooldown', 'minLr', 'mode'])
  const asked = monitorOption(w, o.monitor)
  const factor = o.factor ?? 0.1
  if (typeof factor !== 'number' || !(factor > 0 && factor < 1)) throw new OptionError(`${w}.factor`, `must be a number in (0, 1), got ${describe(factor)}`)
  const patience = integerInRange(`${w}.patience`, o.patience ?? 10, 0)
  const minDelta = nonNegativeNumber(`${w}.minDelta`, o.minDelta ?? 1e-4)
  const cooldown = integerInRange(`${w}.cooldown`, o.cooldown ?? 0, 0)
  const minLr = nonNegativeNumber(`${w}.minLr`, o.minLr ?? 0)
  const modeAsked = modeOption(w, o.mode)
  const reductions: { epoch: number; lr: number }[] = []
  let monitor: MetricName = 'loss'
  let mode: 'min' | 'max' = 'min'
  let best: number | undefined
  let wait = 0
  let cooling = 0
  return {
    reductions,
    onTrainBegin(info) {
      if (info.trainer.schedule !== undefined) {
        throw new OptionError(`${w}`, `needs a trainer without a schedule (this one has a ${info.trainer.schedule.type} schedule, which sets the lr at every step); use schedule { type: 'plateau' } instead`)
      }
      monitor = resolveMonitor(w, asked, info)
      mode = modeOf(monitor, modeAsked)
      best = undefined
      wait = 0
      cooling = 0
    },
    onEpochEnd(info) {
      const current = metricOf(w, monitor, info.metrics)
      const better = best === undefined || improves(current, best, mode, minDelta)
      if (better) {
        best = current
        wait = 0
      } else {
        wait++
      }
      // Epochs in the cooldown after a reduction do not count (as in PyTorch).
      if (cooling > 0) {
        cooling--
        wait = 0
      }
      if (better || wait < Math.max(1, patience)) return
      const lr = info.trainer.learningRate
      // The optimizer keeps the rate in f32.
      if (!(lr > Math.fround(minLr))) return
      const next = Math.max(lr * factor, minLr)
      if (!(next > 0) || next >= lr) return
      info.trainer.setLearningRate(next)
      reductions.push({ epoch: info.epoch, lr: info.trainer.learningRate })
      cooling = cooldown
      wait = 0
    },
  }
}
