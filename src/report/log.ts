/**
 * The metrics log `ferronet train --log metrics.jsonl` writes: one JSON object per
 * line, a `run` record first, then `batch` and `epoch` records. This module reads it
 * back as typed records, rejecting a malformed line with an error naming the file and
 * the line.
 */

import { readFile } from 'node:fs/promises'
import { FerronetError } from '../errors.js'

/** The first record of a run: what was trained, how, on how many samples. */
export interface RunRecord {
  /** Marks a run record. */
  kind: 'run'
  /** When training started, ISO 8601. */
  started?: string
  /** The model's name (a preset) or the path of its spec. */
  model?: string
  /** The model spec (docs/graph-spec.md). */
  spec?: unknown
  /** The trainer's and the run's options as given (optimizer, schedule, batchSize, epochs, …). */
  options?: Record<string, unknown>
  /** Samples trained on (the data minus any held-out part). */
  trainSamples?: number
  /** Samples validated on after every epoch (0 without validation). */
  validationSamples?: number
}

/** Training metrics of a batch or an epoch: `accuracy` for classification, `mse`/`mae` for regression losses. */
export interface TrainingMetrics {
  /** Mean training loss (over the epoch, or the epoch's batches so far); `NaN` when logged as `null`. */
  loss: number
  /** Fraction right, in [0, 1] (classification losses). */
  accuracy?: number
  /** Mean squared error per target value (regression losses). */
  mse?: number
  /** Mean absolute error per target value (regression losses). */
  mae?: number
  /** Learning rate of the last step. */
  lr?: number
  /** Training throughput, samples per second. */
  samplesPerSecond?: number
  /** Global L2 norm of the gradients of the last step. */
  gradNorm?: number
}

/** Progress within an epoch (the loss and metrics so far in the epoch). */
export interface BatchRecord extends TrainingMetrics {
  /** Marks a batch record. */
  kind: 'batch'
  /** 1-based. */
  epoch: number
  /** Batches done in this epoch. */
  batch: number
  /** Batches per epoch. */
  batches?: number
}

/** The end of an epoch, with the validation metrics when the run had a validation set. */
export interface EpochRecord extends TrainingMetrics {
  /** Marks an epoch record. */
  kind: 'epoch'
  /** 1-based. */
  epoch: number
  /** Mean loss on the validation data. */
  valLoss?: number
  /** Accuracy on the validation data, in [0, 1] (classification losses). */
  valAccuracy?: number
  /** Mean squared error per target value on the validation data (regression losses). */
  valMse?: number
  /** Mean absolute error per target value on the validation data (regression losses). */
  valMae?: number
  /** Seconds the epoch took. */
  seconds?: number
}

/** One line of a metrics log. */
export type MetricsRecord = RunRecord | BatchRecord | EpochRecord

/** A metrics log that cannot be read: missing, not JSON lines, or a record with a missing or mistyped field. */
export class MetricsLogError extends FerronetError {
  /** The log file (or the name given to {@link parseMetricsLog}). */
  readonly file: string
  /** The 1-based line at fault, when the error is about one line. */
  readonly line: number | undefined
  constructor(file: string, line: number | undefined, message: string, options?: { cause?: unknown }) {
    super('ERR_METRICS_LOG', `${file}${line === undefined ? '' : `:${line}`}: ${message}`, options)
    this.file = file
    this.line = line
  }
}

const METRICS = ['loss', 'accuracy', 'mse', 'mae', 'lr', 'samplesPerSecond', 'gradNorm'] as const
const EPOCH_METRICS = ['valLoss', 'valAccuracy', 'valMse', 'valMae', 'seconds'] as const

/**
 * Reads a metrics log written by `ferronet train --log FILE` (or the trainer's log
 * option): one JSON object per line. Blank lines and records of unknown kinds are
 * skipped (a newer writer may add kinds); a metric logged as `null` (JSON's spelling
 * of NaN) is read as `NaN` for `loss` and as absent otherwise.
 *
 * ```ts
 * const records = await readMetricsLog('metrics.jsonl')
 * const epochs = records.filter((r) => r.kind === 'epoch')
 * ```
 * @throws {@link MetricsLogError} naming the file (and the line): missing, unreadable,
 *   a line that is not a JSON object, a record without its `kind`, `epoch`, `batch`
 *   or `loss`, a field of the wrong type.
 */
export async function readMetricsLog(path: string): Promise<MetricsRecord[]> {
  if (typeof path !== 'string' || path === '') throw new MetricsLogError(String(path), undefined, 'expected the path of a metrics log (a non-empty string)')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code
    const why = code === 'ENOENT' ? 'no such file (write one with `ferronet train --log FILE`)'
      : code === 'EISDIR' ? 'is a directory, not a metrics log'
        : `cannot be read (${code ?? (error as Error)?.message})`
    throw new MetricsLogError(path, undefined, why, { cause: error })
  }
  return parseMetricsLog(text, path)
}

/** Parses the text of a metrics log; `file` names it in errors. See {@link readMetricsLog}. */
export function parseMetricsLog(text: string, file = 'metrics log'): MetricsRecord[] {
  if (typeof text !== 'string') throw new MetricsLogError(String(file), undefined, `text: expected the text of a metrics log (a string), got ${text === null ? 'null' : typeof text}`)
  const records: MetricsRecord[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '') continue
    const record = parseLine(line, file, i + 1)
    if (record) records.push(record)
  }
  return records
}

function parseLine(line: string, file: string, n: number): MetricsRecord | undefined {
  const fail = (message: string): never => {
    throw new MetricsLogError(file, n, message)
  }
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (error) {
    return fail(`not valid JSON (${(error as Error).message}); each line of a metrics log is one JSON object`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`)
  const o = value as Record<string, unknown>
  if (typeof o.kind !== 'string') return fail(`the record has no "kind" (expected "run", "batch" or "epoch")`)
  /** A number field; `nullable` metrics may be `null` (NaN when required, else absent). */
  const num = (key: string, required: boolean, check?: (v: number) => boolean, what = 'a number', nullable = false): number | undefined => {
    const v = o[key]
    if (v === undefined || (v === null && !nullable)) {
      if (required) fail(v === null ? `"${key}" must be ${what}, got null` : `"${o.kind}" records need "${key}"`)
      return undefined
    }
    if (v === null) return required ? NaN : undefined
    if (typeof v !== 'number' || (check && !check(v))) fail(`"${key}" must be ${what}, got ${JSON.stringify(v)}`)
    return v as number
  }
  const positiveInt = (v: number) => Number.isInteger(v) && v >= 1
  const count = (v: number) => Number.isInteger(v) && v >= 0
  const metrics = (): TrainingMetrics => {
    const out: Record<string, number> = {}
    for (const key of METRICS) {
      const v = num(key, key === 'loss', undefined, 'a number', true)
      if (v !== undefined) out[key] = v
    }
    return out as unknown as TrainingMetrics
  }
  switch (o.kind) {
    case 'run': {
      const run: RunRecord = { kind: 'run' }
      for (const key of ['started', 'model'] as const) {
        if (o[key] === undefined) continue
        if (typeof o[key] !== 'string') fail(`"${key}" must be a string, got ${JSON.stringify(o[key])}`)
        run[key] = o[key] as string
      }
      if (o.options !== undefined) {
        if (typeof o.options !== 'object' || o.options === null || Array.isArray(o.options)) fail(`"options" must be an object, got ${JSON.stringify(o.options)}`)
        run.options = o.options as Record<string, unknown>
      }
      if (o.spec !== undefined) run.spec = o.spec
      const train = num('trainSamples', false, count, 'an integer >= 0')
      const val = num('validationSamples', false, count, 'an integer >= 0')
      if (train !== undefined) run.trainSamples = train
      if (val !== undefined) run.validationSamples = val
      return run
    }
    case 'batch': {
      const epoch = num('epoch', true, positiveInt, 'an integer >= 1')!
      const batch = num('batch', true, count, 'an integer >= 0')!
      const batches = num('batches', false, positiveInt, 'an integer >= 1')
      return { kind: 'batch', epoch, batch, ...(batches !== undefined ? { batches } : {}), ...metrics() }
    }
    case 'epoch': {
      const epoch = num('epoch', true, positiveInt, 'an integer >= 1')!
      const record: EpochRecord = { kind: 'epoch', epoch, ...metrics() }
      for (const key of EPOCH_METRICS) {
        const v = num(key, false, undefined, 'a number', true)
        if (v !== undefined) record[key] = v
      }
      return record
    }
    default:
      return undefined
  }
}

/** The records of a log, sorted out: the (last) run, the epochs (one per number, the last logged wins) and the batches. */
export interface History {
  run: RunRecord | undefined
  epochs: EpochRecord[]
  batches: BatchRecord[]
}

/** Splits records into the run, its epochs (by epoch number) and its batches. */
export function organize(records: readonly MetricsRecord[]): History {
  let run: RunRecord | undefined
  const epochs = new Map<number, EpochRecord>()
  const batches: BatchRecord[] = []
  for (const r of records) {
    if (r.kind === 'run') run = r
    else if (r.kind === 'epoch') epochs.set(r.epoch, r)
    else if (r.kind === 'batch') batches.push(r)
  }
  return { run, epochs: [...epochs.values()].sort((a, b) => a.epoch - b.epoch), batches }
}
