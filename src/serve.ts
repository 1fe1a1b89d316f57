/**
 * A prediction server for a {@link Net}: the library part of `ferronet serve`.
 * fastify on loopback by default, request batching into single native predict calls,
 * Prometheus metrics and model reloads that never drop a request.
 *
 * HTTP API (details and every error code in `docs/serve.md`):
 *
 * - `POST /predict`: a JSON body `{"inputs": [[...], ...]}` (rows, each the input
 *   shape flattened) or `{"inputs": [...]}` (one row), optional `"top": k` and
 *   `"outputs": true`; or image bytes with `Content-Type: image/*` (when the server has
 *   a `decodeImage`). `?top=k&outputs=true` work for both. Answers
 *   `{"modelVersion", "predictions": [{"class", "label"?, "probability", "top": [...], "outputs"?}]}`
 *   for classifiers, `{"modelVersion", "predictions": [{"outputs": [...]}]}` for regression.
 * - `GET /health` → `{"status": "ok", "modelVersion", "uptimeSeconds"}`.
 * - `GET /model` → {@link ModelInfo}.
 * - `GET /metrics` → Prometheus text: requests, errors by code, latency, rows per native
 *   predict call, predicted classes, model version (the list in `docs/serve.md`).
 *
 * Errors are `{"error": {"code", "message"}}` with 400 (bad input, naming the
 * problem), 404, 413 (body too large), 415 (media type) or 500 (the model failed).
 *
 * @module serve
 */

import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Registry } from 'prom-client'
import { FerronetError, OptionError } from './errors.js'
import type { ModelSpec } from './graph.js'
import type { Net } from './net.js'
import { buildApp, type ImageDecoder } from './serve/app.js'
import { Batcher } from './serve/batcher.js'
import { ServeMetrics } from './serve/metrics.js'
import type { ProtocolModel } from './serve/protocol.js'
import { outputKindOf } from './probabilities.js'
import { describe, integerInRange, nonNegativeNumber, oneOf, unknownOption } from './validate.js'

export type { ImageDecoder } from './serve/app.js'
export type { ClassScore, PredictResponse, RowPrediction } from './serve/protocol.js'

/** A net with metadata, as a {@link ServeOptions.load} function may return it. */
export interface LoadedModel {
  /** The network to serve. */
  readonly net: Net
  /** Names of the output classes (overrides {@link ServeOptions.classNames} for this model). */
  readonly classNames?: readonly string[]
}

/** What the served model's outputs mean: `auto` is classification for a 1-D output of ≥ 2 values or when class names are given, else regression. */
export type ServeTask = 'auto' | 'classification' | 'regression'

/** Options of {@link createServer}. */
export interface ServeOptions {
  /**
   * Returns the net to serve (or a {@link LoadedModel}); called once at start and
   * again on every {@link PredictionServer.reload}, e.g. `() => Net.load('m.safetensors')`.
   */
  load: () => Promise<Net | LoadedModel> | Net | LoadedModel
  /** TCP port (default `8080`; `0` picks a free one, see {@link PredictionServer.url}). */
  port?: number
  /** Interface to listen on (default `127.0.0.1`, loopback only; `0.0.0.0` for every IPv4 interface). */
  host?: string
  /** Largest request body in bytes, JSON or image (default 4 MiB); larger → 413. */
  maxBodyBytes?: number
  /** Most rows in one request (default `1024`); more → 400 `ERR_TOO_MANY_ROWS`. */
  maxBatchRows?: number
  /** Most rows per native predict call when coalescing requests (default `256`); a larger request runs alone, never split. */
  maxBatch?: number
  /**
   * Longest wait in ms for more requests to join a batch (default `0`: the next turn of the
   * event loop, so a batch is whatever arrived while the previous native call ran: no idle
   * wait at low load, large batches under load; a quick bench at 4 connections answered 2.9×
   * fewer requests/s with a 2 ms window).
   */
  batchWindowMs?: number
  /** Decodes an image body (`Content-Type: image/*`) to one input row; without it images get 415. `imageInput` from `src/image.ts` fits. */
  decodeImage?: ImageDecoder
  /** Names of the output classes, one per output (used for `label` and the class metric). */
  classNames?: readonly string[]
  /** What the outputs mean (default `'auto'`, see {@link ServeTask}). */
  task?: ServeTask
  /** fastify's `logger` option: `false` (default), `true`, pino options or a pino-compatible logger. */
  logger?: FastifyServerOptions['logger']
}

/** `GET /model`'s body: the model serving new requests. */
export interface ModelInfo {
  /** 1 for the model loaded at start, +1 per successful reload. */
  readonly version: number
  /** When it was loaded (ISO 8601). */
  readonly loadedAt: string
  /** What the outputs mean, {@link ServeOptions.task} resolved. */
  readonly task: 'classification' | 'regression'
  /** What the outputs are: `logits` (softmax applied for probabilities), `probabilities` (a final Softmax) or `log-probabilities` (a final LogSoftmax). */
  readonly outputKind: 'logits' | 'probabilities' | 'log-probabilities'
  /** Per-sample input shape, PyTorch order ({@link Net.inputShape}). */
  readonly inputShape: readonly number[]
  /** Per-sample output shape ({@link Net.outputShape}). */
  readonly outputShape: readonly number[]
  /** Values per input row: the product of `inputShape`. */
  readonly inputDim: number
  /** Values per output row: the product of `outputShape`. */
  readonly outputDim: number
  /** Trainable scalars of the net ({@link Net.parameterCount}). */
  readonly parameterCount: number
  /** Names of the classes, one per output, or `null` when none were given. */
  readonly classNames: readonly string[] | null
  /** The net's model spec ({@link Net.spec}). */
  readonly spec: ModelSpec
}

/** A running server from {@link createServer}. */
export interface PredictionServer {
  /** Base URL it listens on, e.g. `http://127.0.0.1:8080` (the real port when `port: 0`). */
  readonly url: string
  /** The fastify instance (e.g. `app.inject()` in tests, or more routes before traffic). */
  readonly app: FastifyInstance
  /** The prom-client Registry of this server's metrics. */
  readonly registry: Registry
  /** The net serving new requests. */
  readonly net: Net
  /** What `GET /model` answers. */
  readonly model: ModelInfo
  /**
   * Calls `load` again and swaps the new net in between batches: requests already
   * admitted finish on the model they started with, later ones use the new one.
   * Resolves once the swap is done. If loading (or a check of the new net) fails, the
   * old model keeps serving and this rejects with that error. Concurrent calls run one
   * after another.
   */
  reload(): Promise<void>
  /** Stops accepting connections, lets admitted requests finish, then closes. Idempotent. */
  close(): Promise<void>
}

const OPTION_KEYS = ['load', 'port', 'host', 'maxBodyBytes', 'maxBatchRows', 'maxBatch', 'batchWindowMs', 'decodeImage', 'classNames', 'task', 'logger'] as const

interface Checked {
  load: ServeOptions['load']
  port: number
  host: string
  maxBodyBytes: number
  maxBatchRows: number
  maxBatch: number
  batchWindowMs: number
  decodeImage: ImageDecoder | undefined
  classNames: readonly string[] | undefined
  task: ServeTask
  logger: FastifyServerOptions['logger']
}

function checkClassNames(field: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.length === 0) throw new OptionError(field, `must be a non-empty array of class names, got ${describe(value)}`)
  const seen = new Set<string>()
  value.forEach((name, i) => {
    if (typeof name !== 'string' || name === '') throw new OptionError(`${field}[${i}]`, `must be a non-empty string, got ${describe(name)}`)
    if (seen.has(name)) throw new OptionError(`${field}[${i}]`, `${JSON.stringify(name)} appears twice; class names must be unique`)
    seen.add(name)
  })
  return Object.freeze([...value] as string[])
}

function checkOptions(options: unknown): Checked {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new OptionError('options', `must be an options object, got ${describe(options)}`)
  const o = options as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k)) throw unknownOption(`options.${k}`, k, OPTION_KEYS)
  }
  if (typeof o.load !== 'function') throw new OptionError('load', `is required: a function returning the Net to serve, got ${describe(o.load)}`)
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) throw new OptionError('host', `must be a host name or IP address, got ${describe(o.host)}`)
  if (o.decodeImage !== undefined && typeof o.decodeImage !== 'function') throw new OptionError('decodeImage', `must be a function (source, inputShape) => Promise<Float32Array>, got ${describe(o.decodeImage)}`)
  const logger = o.logger
  if (logger !== undefined && typeof logger !== 'boolean' && (typeof logger !== 'object' || logger === null)) throw new OptionError('logger', `must be true, false, logger options or a logger, got ${describe(logger)}`)
  return {
    load: o.load as ServeOptions['load'],
    port: integerInRange('port', o.port ?? 8080, 0, 65535),
    host: (o.host as string | undefined) ?? '127.0.0.1',
    maxBodyBytes: integerInRange('maxBodyBytes', o.maxBodyBytes ?? 4 * 1024 * 1024, 1),
    maxBatchRows: integerInRange('maxBatchRows', o.maxBatchRows ?? 1024, 1),
    maxBatch: integerInRange('maxBatch', o.maxBatch ?? 256, 1),
    batchWindowMs: Math.min(nonNegativeNumber('batchWindowMs', o.batchWindowMs ?? 0), 60_000),
    decodeImage: o.decodeImage as ImageDecoder | undefined,
    classNames: o.classNames === undefined ? undefined : checkClassNames('classNames', o.classNames),
    task: oneOf('task', o.task ?? 'auto', ['auto', 'classification', 'regression'] as const),
    logger: logger as FastifyServerOptions['logger'],
  }
}

/** A loaded net with what the protocol and `GET /model` need. */
interface ServedModel extends ProtocolModel {
  readonly net: Net
  readonly outputShape: readonly number[]
  readonly loadedAt: Date
  readonly info: ModelInfo
}

function isNet(x: unknown): x is Net {
  const n = x as Net
  return typeof x === 'object' && x !== null && typeof n.predict === 'function' && Array.isArray(n.inputShape) && Array.isArray(n.outputShape)
}

/** Calls `load` and checks what it returns; the model gets `version`. */
async function loadModel(o: Checked, version: number): Promise<ServedModel> {
  let loaded: unknown
  try {
    loaded = await o.load()
  } catch (error) {
    if (error instanceof Error) throw error
    throw new FerronetError('ERR_LOAD', `load() failed: ${String(error)}`, { cause: error })
  }
  let net: Net
  let classNames = o.classNames
  if (isNet(loaded)) {
    net = loaded
  } else if (typeof loaded === 'object' && loaded !== null && isNet((loaded as LoadedModel).net)) {
    net = (loaded as LoadedModel).net
    const names = (loaded as LoadedModel).classNames
    if (names !== undefined) classNames = checkClassNames('load().classNames', names)
  } else {
    throw new FerronetError('ERR_LOAD', `load() returned ${describe(loaded)}, not a Net or {net, classNames}`)
  }
  const inputShape = Object.freeze([...net.inputShape])
  const outputShape = Object.freeze([...net.outputShape])
  const inputDim = inputShape.reduce((a, b) => a * b, 1)
  const outputDim = outputShape.reduce((a, b) => a * b, 1)
  if (classNames && classNames.length !== outputDim) {
    throw new OptionError('classNames', `has ${classNames.length} names but the model has ${outputDim} outputs (output shape [${outputShape.join(', ')}])`)
  }
  let task: ServedModel['task']
  if (o.task === 'auto') {
    task = classNames || (outputShape.length === 1 && outputDim >= 2) ? 'classification' : 'regression'
  } else {
    task = o.task
    if (task === 'classification' && outputDim < 2) throw new OptionError('task', `is 'classification' but the model has ${outputDim} output; a classifier needs one output per class`)
    if (task === 'regression' && classNames) throw new OptionError('task', `is 'regression' but class names were given`)
  }
  const spec = net.spec
  const outputKind: ServedModel['outputKind'] = spec.outputs.length === 1 ? outputKindOf(spec) : 'logits'
  // Check the net answers before it serves anything.
  const probe = net.predict(new Float32Array(inputDim))
  if (probe.length !== outputDim) throw new FerronetError('ERR_LOAD', `the loaded net returned ${probe.length} outputs for one row, its output shape [${outputShape.join(', ')}] says ${outputDim}`)
  const loadedAt = new Date()
  const info: ModelInfo = Object.freeze({
    version, loadedAt: loadedAt.toISOString(), task, outputKind, inputShape, outputShape, inputDim, outputDim,
    parameterCount: net.parameterCount, classNames: classNames ?? null, spec,
  })
  return { net, version, loadedAt, inputShape, outputShape, inputDim, outputDim, task, outputKind, classNames, info, predict: (x) => net.predict(x) }
}

/**
 * Loads the model with `options.load`, then serves it over HTTP until
 * {@link PredictionServer.close}. Rejects with an {@link OptionError} naming a bad
 * option, with the loader's error if the first load fails, or with the listen error
 * (e.g. `EADDRINUSE`); nothing keeps running then.
 *
 * ```ts
 * import { Net, createServer, reloadOnSighup } from 'ferronet'
 *
 * const server = await createServer({ load: () => Net.load('model.safetensors'), port: 8080, classNames: ['cat', 'dog'] })
 * reloadOnSighup(server) // kill -HUP <pid> reloads model.safetensors
 * // curl -s localhost:8080/predict -H 'content-type: application/json' -d '{"inputs": [[0.1, 0.2, 0.3, 0.4]]}'
 * // → {"modelVersion":1,"predictions":[{"class":1,"label":"dog","probability":0.73,"top":[...]}]}
 * await server.close()
 * ```
 */
export async function createServer(options: ServeOptions): Promise<PredictionServer> {
  const o = checkOptions(options)
  let current = await loadModel(o, 1)
  let closed = false
  let closing: Promise<void> | undefined
  let chain: Promise<void> = Promise.resolve()

  const batcher = new Batcher<ServedModel>({
    maxBatch: o.maxBatch,
    batchWindowMs: o.batchWindowMs,
    onBatch: (r) => {
      metrics.batchRows.observe(r.rows)
      metrics.batchRequests.observe(r.requests)
      metrics.predictSeconds.observe(r.seconds)
    },
  })
  const metrics = new ServeMetrics({ maxBatch: o.maxBatch, maxBatchRows: o.maxBatchRows, queueRows: () => batcher.pendingRows })
  const showModel = (m: ServedModel): void => {
    metrics.modelVersion.set(m.version)
    metrics.modelLoaded.set(m.loadedAt.getTime() / 1000)
    // Every class appears at 0 from the start, so a dashboard sees a class that is never predicted.
    if (m.task === 'classification') for (let c = 0; c < m.outputDim; c++) metrics.classes.inc({ class: m.classNames ? m.classNames[c]! : String(c) }, 0)
  }
  showModel(current)

  const app = buildApp<ServedModel>({
    model: () => current,
    describe: (m) => m.info,
    batcher,
    metrics,
    maxBodyBytes: o.maxBodyBytes,
    maxBatchRows: o.maxBatchRows,
    decodeImage: o.decodeImage,
    logger: o.logger,
    startedAt: performance.now(),
    closing: () => closed,
  })
  try {
    await app.listen({ port: o.port, host: o.host })
  } catch (error) {
    batcher.close()
    await app.close().catch(() => undefined)
    throw error
  }
  const address = app.server.address() as AddressInfo
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`

  const reloadOnce = async (): Promise<void> => {
    if (closed) throw new FerronetError('ERR_CLOSED', 'the server is closed')
    let next: ServedModel
    try {
      next = await loadModel(o, current.version + 1)
    } catch (error) {
      metrics.reloads.inc({ result: 'error' })
      app.log.error({ err: error }, `model reload failed; still serving version ${current.version}`)
      throw error
    }
    if (closed) throw new FerronetError('ERR_CLOSED', 'the server closed while the model was loading')
    // Requests admitted so far hold the old model; everything after this line gets the new one.
    current = next
    showModel(next)
    metrics.reloads.inc({ result: 'ok' })
    app.log.info(`model version ${next.version} serving`)
  }

  return {
    url,
    app,
    registry: metrics.registry,
    get net() {
      return current.net
    },
    get model() {
      return current.info
    },
    reload() {
      const run = chain.then(reloadOnce, reloadOnce)
      chain = run.catch(() => undefined)
      return run
    },
    close() {
      closing ??= (async () => {
        closed = true
        // Admitted requests run now instead of waiting out the batch window.
        batcher.drain()
        await app.close()
        batcher.close()
      })()
      return closing
    },
  }
}

/** Options of {@link reloadOnSighup}. */
export interface SighupOptions {
  /** Called when a SIGHUP reload fails (the old model keeps serving). Default: one line on stderr. */
  onError?: (error: unknown) => void
  /** Called after a SIGHUP reload succeeded. */
  onReload?: (model: ModelInfo) => void
}

/**
 * Reloads `server`'s model on every SIGHUP (`kill -HUP <pid>`). Returns a function
 * that removes the handler (after which SIGHUP has its default effect again unless
 * another handler is installed).
 *
 * ```ts
 * const stop = reloadOnSighup(server, { onReload: (m) => console.log(`model v${m.version}`) })
 * // ...
 * stop()
 * ```
 */
export function reloadOnSighup(server: PredictionServer, options: SighupOptions = {}): () => void {
  const onError = options.onError ?? ((error: unknown) => {
    process.stderr.write(`ferronet serve: reload on SIGHUP failed, still serving model version ${server.model.version}: ${(error as Error)?.message ?? String(error)}\n`)
  })
  const handler = (): void => {
    server.reload().then(() => options.onReload?.(server.model), onError)
  }
  process.on('SIGHUP', handler)
  return () => {
    process.off('SIGHUP', handler)
  }
}
