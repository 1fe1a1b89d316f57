/**
 * The fastify application of the prediction server: routes, body parsers, the JSON
 * error format and the request metrics.
 *
 * @module serve/app
 */

import { fastify, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { performance } from 'node:perf_hooks'
import type { Batcher } from './batcher.js'
import type { ServeMetrics } from './metrics.js'
import { formatPredictions, parseJsonBody, parseQuery, RequestError, type ParsedRequest, type ProtocolModel } from './protocol.js'

/** A decoder of image bytes into one row of model inputs (`src/image.ts`' `imageInput` fits). */
export type ImageDecoder = (source: Uint8Array, inputShape: readonly number[]) => Promise<Float32Array> | Float32Array

/** What the app needs from the server around it. */
export interface AppContext<M extends ProtocolModel> {
  /** The model serving new requests. */
  model(): M
  /** `GET /model`'s body for a model. */
  describe(model: M): object
  batcher: Batcher<M>
  metrics: ServeMetrics
  maxBodyBytes: number
  maxBatchRows: number
  decodeImage: ImageDecoder | undefined
  logger: FastifyServerOptions['logger']
  startedAt: number
  /** True once the server is closing: answers then carry `Connection: close`. */
  closing(): boolean
}

const ROUTES = 'POST /predict, GET /health, GET /model, GET /metrics'

/** Sends `{ error: { code, message } }` with `status`, remembering the code for the metrics. */
function sendError(codes: WeakMap<FastifyRequest, string>, request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  codes.set(request, code)
  return reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message } })
}

/** Maps fastify's and the protocol's errors to the JSON error format; anything unexpected is a logged 500. */
function errorAnswer(error: FastifyError | RequestError | Error, maxBodyBytes: number): { status: number; code: string; message: string; internal: boolean } {
  if (error instanceof RequestError) return { status: error.status, code: error.code, message: error.message, internal: error.status >= 500 }
  const fe = error as FastifyError
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'ERR_BODY_TOO_LARGE', message: `the request body is over this server's limit of ${maxBodyBytes} bytes (maxBodyBytes)`, internal: false }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'ERR_UNSUPPORTED_MEDIA_TYPE', message: `${fe.message}: send JSON (Content-Type: application/json) or an image (Content-Type: image/*)`, internal: false }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'ERR_BAD_JSON', message: 'the body is empty but the Content-Type is application/json: send {"inputs": [...]}', internal: false }
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'ERR_BAD_REQUEST', message: 'the body length does not match the Content-Length header', internal: false }
  }
  if (error instanceof SyntaxError) return { status: 400, code: 'ERR_BAD_JSON', message: `the body is not valid JSON: ${error.message}`, internal: false }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500
  if (status >= 400 && status < 500) return { status, code: fe.code ?? 'ERR_BAD_REQUEST', message: fe.message, internal: false }
  return { status: 500, code: 'ERR_INTERNAL', message: 'internal server error (see the server log)', internal: true }
}

/** Builds the fastify app (not listening). */
export function buildApp<M extends ProtocolModel>(ctx: AppContext<M>): FastifyInstance {
  const options: FastifyServerOptions = { bodyLimit: ctx.maxBodyBytes, return503OnClosing: true, forceCloseConnections: 'idle' }
  const app = fastify({ ...options, logger: ctx.logger ?? false }) as unknown as FastifyInstance
  const { metrics } = ctx
  const started = new WeakMap<FastifyRequest, number>()
  const codes = new WeakMap<FastifyRequest, string>()

  // JSON or images only: text bodies get 415 rather than a confusing "not an object".
  app.removeContentTypeParser('text/plain')
  // Images arrive as raw bytes, under the same body limit.
  app.addContentTypeParser(/^image\/[\w.+-]+$/i, { parseAs: 'buffer' }, (_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => done(null, body))

  app.addHook('onRequest', async (request) => {
    started.set(request, performance.now())
  })
  // While closing, keep-alive sockets close after their answer instead of holding
  // the close up until their idle timeout.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (ctx.closing()) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched')
    const method = request.method
    const t0 = started.get(request)
    if (t0 !== undefined) metrics.latency.observe({ method, route }, (performance.now() - t0) / 1000)
    metrics.requests.inc({ method, route, status: String(reply.statusCode) })
    const code = codes.get(request)
    if (code !== undefined) metrics.errors.inc({ route, code })
  })

  app.setErrorHandler((error, request, reply) => {
    const answer = errorAnswer(error, ctx.maxBodyBytes)
    if (answer.internal) request.log.error({ err: error }, 'request failed')
    return sendError(codes, request, reply, answer.status, answer.code, answer.message)
  })
  app.setNotFoundHandler((request, reply) => {
    return sendError(codes, request, reply, 404, 'ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]} (routes: ${ROUTES})`)
  })

  app.post('/predict', async (request) => {
    // Bind the model now: the request is checked, decoded and predicted with this one,
    // even if a reload swaps another in meanwhile.
    const model = ctx.model()
    const query = parseQuery(request.query)
    const body: unknown = request.body
    let parsed: ParsedRequest
    if (body instanceof Uint8Array) {
      parsed = { ...query, inputs: await decode(ctx.decodeImage, body, model), rows: 1 }
    } else {
      parsed = parseJsonBody(body, model, ctx.maxBatchRows, query)
    }
    let outputs: Float32Array
    try {
      outputs = await ctx.batcher.predict(model, parsed.inputs)
    } catch (error) {
      request.log.error({ err: error }, 'predict failed')
      throw new RequestError(500, 'ERR_PREDICT', `the model failed to predict: ${(error as Error)?.message ?? String(error)}`, { cause: error })
    }
    const names = model.classNames
    return formatPredictions(model, outputs, parsed, (c) => metrics.classes.inc({ class: names ? names[c]! : String(c) }))
  })

  app.get('/health', async () => ({ status: 'ok', modelVersion: ctx.model().version, uptimeSeconds: (performance.now() - ctx.startedAt) / 1000 }))

  app.get('/model', async () => ctx.describe(ctx.model()))

  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render()
    return reply.type(contentType).send(body)
  })

  return app
}

async function decode(decoder: ImageDecoder | undefined, bytes: Uint8Array, model: ProtocolModel): Promise<Float32Array> {
  if (!decoder) {
    throw new RequestError(415, 'ERR_NO_IMAGE_DECODER', 'this server takes no images (it was started without decodeImage): send JSON {"inputs": [...]}')
  }
  if (bytes.length === 0) throw new RequestError(400, 'ERR_BAD_IMAGE', 'the image body is empty')
  let row: unknown
  try {
    row = await decoder(bytes, model.inputShape)
  } catch (error) {
    throw new RequestError(400, 'ERR_BAD_IMAGE', `the image could not be decoded: ${(error as Error)?.message ?? String(error)}`, { cause: error })
  }
  if (!(row instanceof Float32Array) || row.length !== model.inputDim) {
    const got = row instanceof Float32Array ? `${row.length} values` : typeof row
    throw new RequestError(500, 'ERR_DECODER', `decodeImage returned ${got}, not a Float32Array of the model's ${model.inputDim} input values`)
  }
  for (let j = 0; j < row.length; j++) {
    if (!Number.isFinite(row[j])) throw new RequestError(500, 'ERR_DECODER', `decodeImage returned ${row[j]} at index ${j}; inputs must be finite`)
  }
  return row
}
