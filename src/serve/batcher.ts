/**
 * The request batcher of the prediction server: rows of concurrent requests are
 * queued and run through one synchronous `net.predict` call per batch, and the
 * outputs are split back per request.
 *
 * @module serve/batcher
 */

import { performance } from 'node:perf_hooks'

/** What the batcher needs of a model: a synchronous batch predict and the row widths. */
export interface BatchModel {
  /** Row-major `[rows, outputDim]` outputs of row-major `[rows, inputDim]` inputs. */
  predict(inputs: Float32Array): Float32Array
  readonly inputDim: number
  readonly outputDim: number
}

/** One native predict call, reported to {@link BatcherOptions.onBatch}. */
export interface BatchReport<M extends BatchModel = BatchModel> {
  readonly model: M
  /** Rows in the call. */
  readonly rows: number
  /** Requests coalesced into it. */
  readonly requests: number
  /** Wall time of the native call. */
  readonly seconds: number
  /** The outputs, `[rows, outputDim]` (do not modify). */
  readonly outputs: Float32Array
}

/** Options of a {@link Batcher}. */
export interface BatcherOptions<M extends BatchModel = BatchModel> {
  /** Most rows per native call; a single request with more rows runs alone, never split. */
  maxBatch: number
  /** Longest wait, in ms, from the first queued request to its batch's call; 0 = the next turn of the event loop. */
  batchWindowMs: number
  /** Called after every native call (metrics). Must not throw. */
  onBatch?: (report: BatchReport<M>) => void
}

interface Job<M extends BatchModel> {
  readonly model: M
  readonly inputs: Float32Array
  readonly rows: number
  readonly enqueued: number
  readonly resolve: (outputs: Float32Array) => void
  readonly reject: (error: unknown) => void
}

/**
 * Coalesces concurrent {@link Batcher.predict} calls into batched calls of
 * `model.predict`. Each job is bound to the model it was submitted with: a batch only
 * holds jobs of one model, so a model swapped in by a reload serves the jobs submitted
 * after the swap while the queued ones finish on the model they were checked against.
 */
export class Batcher<M extends BatchModel = BatchModel> {
  private readonly queue: Job<M>[] = []
  private queuedRows = 0
  private timer: NodeJS.Timeout | undefined
  private immediate: NodeJS.Immediate | undefined
  private closed = false
  private draining = false
  private readonly maxBatch: number
  private readonly windowMs: number
  private readonly onBatch: ((report: BatchReport<M>) => void) | undefined

  constructor(options: BatcherOptions<M>) {
    this.maxBatch = options.maxBatch
    // setTimeout takes at most 2^31 - 1 ms (a longer delay fires after 1 ms).
    this.windowMs = Math.min(options.batchWindowMs, 2 ** 31 - 1)
    this.onBatch = options.onBatch
  }

  /** Rows waiting for a native call. */
  get pendingRows(): number {
    return this.queuedRows
  }

  /** Requests waiting for a native call. */
  get pendingRequests(): number {
    return this.queue.length
  }

  /**
   * Queues `inputs` (row-major, a positive multiple of `model.inputDim` values) and
   * resolves with that request's `[rows, outputDim]` outputs. Rejects if the native
   * call of its batch throws, or if the batcher is closed first.
   */
  predict(model: M, inputs: Float32Array): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('the batcher is closed'))
    const rows = inputs.length / model.inputDim
    return new Promise((resolve, reject) => {
      this.queue.push({ model, inputs, rows, enqueued: performance.now(), resolve, reject })
      this.queuedRows += rows
      this.schedule()
    })
  }

  /**
   * From now on, runs queued and new jobs without waiting for the window (still in
   * batches of at most `maxBatch` rows): for a server that is closing.
   */
  drain(): void {
    this.draining = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.schedule()
  }

  /** Rejects every queued job and stops the timers. Jobs already running finish. */
  close(): void {
    this.closed = true
    this.clearTimers()
    const error = new Error('the server is closing')
    for (const job of this.queue.splice(0)) job.reject(error)
    this.queuedRows = 0
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.immediate) clearImmediate(this.immediate)
    this.timer = undefined
    this.immediate = undefined
  }

  /** Arms the next flush: now if a full batch waits (or the window is 0), else when the oldest job's window ends. */
  private schedule(): void {
    if (this.queue.length === 0 || this.immediate) return
    const wait = this.draining || this.queuedRows >= this.maxBatch ? 0 : this.queue[0]!.enqueued + this.windowMs - performance.now()
    if (wait <= 0) {
      if (this.timer) clearTimeout(this.timer)
      this.timer = undefined
      this.immediate = setImmediate(() => this.flush())
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), wait)
    }
  }

  /** Runs one batch: the longest prefix of the queue on one model that fits in `maxBatch` rows (at least one job). */
  private flush(): void {
    this.clearTimers()
    if (this.queue.length === 0) return
    const model = this.queue[0]!.model
    let count = 0
    let rows = 0
    for (const job of this.queue) {
      if (job.model !== model || (count > 0 && rows + job.rows > this.maxBatch)) break
      count++
      rows += job.rows
    }
    const jobs = this.queue.splice(0, count)
    this.queuedRows -= rows
    this.schedule()
    this.run(model, jobs, rows)
  }

  private run(model: M, jobs: Job<M>[], rows: number): void {
    let inputs: Float32Array
    if (jobs.length === 1) {
      inputs = jobs[0]!.inputs
    } else {
      inputs = new Float32Array(rows * model.inputDim)
      let offset = 0
      for (const job of jobs) {
        inputs.set(job.inputs, offset)
        offset += job.inputs.length
      }
    }
    let outputs: Float32Array
    const start = performance.now()
    try {
      outputs = model.predict(inputs)
      if (outputs.length !== rows * model.outputDim) {
        throw new Error(`internal: predict returned ${outputs.length} values for ${rows} rows of ${model.outputDim} outputs`)
      }
    } catch (error) {
      for (const job of jobs) job.reject(error)
      return
    }
    const seconds = (performance.now() - start) / 1000
    try {
      this.onBatch?.({ model, rows, requests: jobs.length, seconds, outputs })
    } catch {
      // Metrics must never fail a prediction.
    }
    const width = model.outputDim
    let row = 0
    for (const job of jobs) {
      job.resolve(jobs.length === 1 ? outputs : outputs.subarray(row * width, (row + job.rows) * width))
      row += job.rows
    }
  }
}
