/**
 * The metrics log of {@link Trainer.fit} (`log: 'metrics.jsonl'`): JSON Lines, appended,
 * one object per line:
 *
 * ```text
 * {"kind":"run","started":"<ISO>","model":"<name or path>","spec":{...},"options":{...},"trainSamples":N,"validationSamples":N}
 * {"kind":"batch","epoch":1,"batch":100,"batches":938,"loss":0.41,"accuracy":0.86,"lr":0.001,"samplesPerSecond":51234,"gradNorm":1.7}
 * {"kind":"epoch","epoch":1,"loss":0.41,"accuracy":0.86,"valLoss":0.38,"valAccuracy":0.87,"lr":0.001,"samplesPerSecond":51234,"gradNorm":1.7,"seconds":1.2}
 * ```
 *
 * One `run` line per `fit` call, a `batch` line every `logEvery` batches, an `epoch`
 * line per finished epoch. Regression losses write `mse`/`mae` (and `valMse`/`valMae`)
 * instead of `accuracy`; a loss of terms (a VAE's) adds `"terms":{"recon":240.1,"kl":25.3}`
 * (and `valTerms`) after the other keys, `loss` being their weighted total; keys without a value (no validation, no gradient norm yet) are
 * left out. Writing never stops training: the first write error is kept (and emitted
 * once as a process warning), later lines are dropped.
 * @module
 */

import { open, type FileHandle } from 'node:fs/promises'
import { FerronetError } from './errors.js'

/** The keys of a `batch` line, in order. */
export const BATCH_KEYS = ['epoch', 'batch', 'batches', 'loss', 'accuracy', 'mse', 'mae', 'lr', 'samplesPerSecond', 'gradNorm'] as const
/** The keys of an `epoch` line, in order. */
export const EPOCH_KEYS = ['epoch', 'loss', 'accuracy', 'mse', 'mae', 'valLoss', 'valAccuracy', 'valMse', 'valMae', 'lr', 'samplesPerSecond', 'gradNorm', 'seconds', 'skippedBatches'] as const

/** `{ kind, ...the keys in order }`, dropping absent and non-finite values (JSON has no NaN). */
export function logLine(kind: 'batch' | 'epoch', keys: readonly string[], values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { kind }
  for (const k of keys) {
    let v = values[k]
    if (typeof v !== 'number' || !Number.isFinite(v)) continue
    // The optimizer keeps the rate in f32: 0.0010000000474974513 is written 0.001.
    if (k === 'lr') v = Number(v.toPrecision(7))
    out[k] = v
  }
  // A loss of terms: each term by name (and on the validation data).
  for (const k of ['terms', 'valTerms']) {
    const t = values[k]
    if (typeof t === 'object' && t !== null) out[k] = Object.fromEntries(Object.entries(t).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)))
  }
  return out
}

/** An open metrics log. `write` never throws; `close` resolves once every line is written (or dropped). */
export class MetricsLog {
  /** The first write error, if any (`path: message`). */
  error: string | undefined
  private chain: Promise<void> = Promise.resolve()

  private constructor(readonly path: string, private readonly handle: FileHandle) {}

  /** Opens `path` for appending (created if missing). A file that cannot be opened is an error before training starts. */
  static async open(path: string): Promise<MetricsLog> {
    try {
      return new MetricsLog(path, await open(path, 'a'))
    } catch (error) {
      throw new FerronetError('ERR_LOG_FILE', `${path}: cannot open the metrics log: ${(error as Error).message}`, { cause: error })
    }
  }

  /** Queues one line. */
  write(record: Record<string, unknown>): void {
    if (this.error !== undefined) return
    const line = JSON.stringify(record) + '\n'
    this.chain = this.chain.then(async () => {
      if (this.error !== undefined) return
      try {
        await this.handle.write(line)
      } catch (error) {
        this.error = `${this.path}: ${(error as Error).message}`
        process.emitWarning(`ferronet: writing the metrics log failed, training goes on without it: ${this.error}`, { code: 'FERRONET_LOG_WRITE' })
      }
    })
  }

  /** Waits for the queued lines, then closes the file. */
  async close(): Promise<void> {
    await this.chain
    await this.handle.close().catch((error: Error) => {
      if (this.error === undefined) {
        this.error = `${this.path}: ${error.message}`
        process.emitWarning(`ferronet: closing the metrics log failed: ${this.error}`, { code: 'FERRONET_LOG_WRITE' })
      }
    })
  }
}
