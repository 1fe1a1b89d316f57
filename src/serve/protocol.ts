/**
 * The JSON protocol of `POST /predict`: request checks (each failure a
 * {@link RequestError} naming the problem) and the response rows.
 *
 * @module serve/protocol
 */

import { FerronetError } from '../errors.js'
import { probabilities, type OutputKind } from '../probabilities.js'
import { describe } from '../validate.js'
import type { BatchModel } from './batcher.js'

/** What a served model looks like to the protocol. */
export interface ProtocolModel extends BatchModel {
  readonly version: number
  readonly inputShape: readonly number[]
  readonly task: 'classification' | 'regression'
  /** What the net's outputs are: `logits` get a softmax, `log-probabilities` an exp, `probabilities` neither. */
  readonly outputKind: OutputKind
  readonly classNames: readonly string[] | undefined
}

/**
 * An error answered to the client as `{ "error": { "code", "message" } }` with an
 * HTTP status. Codes are stable; see the table in `docs/serve.md`.
 */
export class RequestError extends FerronetError {
  /** The HTTP status of the answer. */
  readonly status: number
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.status = status
  }
}

/** Default number of classes in `top` (clamped to the class count). */
export const DEFAULT_TOP = 5

/** Options of one request, from the query string and/or the JSON body (the body wins). */
export interface PredictParams {
  /** How many classes to list in `top`, >= 1 (clamped to the class count). */
  top?: number
  /** Whether to include the raw outputs of each row. */
  outputs?: boolean
}

const BODY_FIELDS = ['inputs', 'top', 'outputs'] as const
const QUERY_FIELDS = ['top', 'outputs'] as const

function param(message: string): RequestError {
  return new RequestError(400, 'ERR_BAD_PARAMETER', message)
}

function checkTop(where: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw param(`${where} must be an integer >= 1, got ${describe(value)}`)
  return value
}

/** Parses `?top=k&outputs=true`; unknown or repeated parameters are rejected by name. */
export function parseQuery(query: unknown): PredictParams {
  const params: PredictParams = {}
  if (query === null || typeof query !== 'object') return params
  for (const [key, raw] of Object.entries(query as Record<string, unknown>)) {
    if (!(QUERY_FIELDS as readonly string[]).includes(key)) throw param(`unknown query parameter \`${key}\` (parameters: ${QUERY_FIELDS.join(', ')})`)
    if (typeof raw !== 'string') throw param(`query parameter \`${key}\` is given more than once`)
    if (key === 'top') {
      const n = /^\d+$/.test(raw) ? Number(raw) : NaN
      if (!Number.isSafeInteger(n) || n < 1) throw param(`query parameter \`top\` must be an integer >= 1, got ${JSON.stringify(raw)}`)
      params.top = n
    } else {
      if (!['true', 'false', '1', '0', ''].includes(raw)) throw param(`query parameter \`outputs\` must be true or false, got ${JSON.stringify(raw)}`)
      params.outputs = raw === 'true' || raw === '1' || raw === ''
    }
  }
  return params
}

/** Float32 value of `v`, or a 400 naming `path` if it is not a finite number that fits a float32. */
function value(v: unknown, path: string): number {
  if (typeof v !== 'number') {
    const what = Array.isArray(v) ? 'an array' : v === null ? 'null' : `${typeof v} ${describe(v)}`
    throw new RequestError(400, 'ERR_INPUT_TYPE', `${path} is ${what}, not a number`)
  }
  const f = Math.fround(v)
  if (!Number.isFinite(f)) {
    throw new RequestError(400, 'ERR_NON_FINITE', Number.isFinite(v)
      ? `${path} is ${v}, outside the float32 range (±3.4028235e38)`
      : `${path} is ${v}: inputs must be finite numbers`)
  }
  return f
}

function rowLength(path: string, got: number, model: ProtocolModel, hint = ''): RequestError {
  return new RequestError(400, 'ERR_ROW_LENGTH',
    `${path} has ${got} values but the model takes ${model.inputDim} per row (input shape [${model.inputShape.join(', ')}])${hint}`)
}

/** A checked request: row-major inputs and its options. */
export interface ParsedRequest extends PredictParams {
  readonly inputs: Float32Array
  readonly rows: number
}

/**
 * Checks a JSON body `{ "inputs": [[...], ...] | [...], "top"?: k, "outputs"?: bool }`
 * against `model` and the row limit, and converts the rows to float32. `query` holds
 * the query string's options; the body's override them.
 */
export function parseJsonBody(body: unknown, model: ProtocolModel, maxBatchRows: number, query: PredictParams = {}): ParsedRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestError(400, 'ERR_BAD_BODY', `the body must be a JSON object {"inputs": [...]}, got ${body === undefined ? 'no body' : Array.isArray(body) ? 'an array' : describe(body)}`)
  }
  const o = body as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!(BODY_FIELDS as readonly string[]).includes(key)) throw new RequestError(400, 'ERR_BAD_BODY', `unknown field \`${key}\` (fields: ${BODY_FIELDS.join(', ')})`)
  }
  const params: PredictParams = { ...query }
  if (o.top !== undefined) params.top = checkTop('`top`', o.top)
  if (o.outputs !== undefined) {
    if (typeof o.outputs !== 'boolean') throw param(`\`outputs\` must be true or false, got ${describe(o.outputs)}`)
    params.outputs = o.outputs
  }
  const inputs = o.inputs
  if (inputs === undefined) throw new RequestError(400, 'ERR_MISSING_INPUTS', 'the body has no `inputs`: send {"inputs": [[...], ...]} (rows) or {"inputs": [...]} (one row)')
  if (!Array.isArray(inputs)) throw new RequestError(400, 'ERR_INPUT_TYPE', `\`inputs\` must be an array of rows or one row of numbers, got ${describe(inputs)}`)
  if (inputs.length === 0) throw new RequestError(400, 'ERR_EMPTY_INPUTS', '`inputs` is empty: send at least one row')
  const dim = model.inputDim
  if (!Array.isArray(inputs[0])) {
    // One row, flat.
    if (inputs.length !== dim) {
      throw rowLength('`inputs`', inputs.length, model, inputs.length % dim === 0 ? `; send ${inputs.length / dim} rows as an array of arrays` : '')
    }
    const data = new Float32Array(dim)
    for (let j = 0; j < dim; j++) data[j] = value(inputs[j], `inputs[${j}]`)
    return { ...params, inputs: data, rows: 1 }
  }
  const rows = inputs.length
  if (rows > maxBatchRows) {
    throw new RequestError(400, 'ERR_TOO_MANY_ROWS', `\`inputs\` has ${rows} rows, over this server's limit of ${maxBatchRows} per request (maxBatchRows): split the request`)
  }
  const data = new Float32Array(rows * dim)
  for (let i = 0; i < rows; i++) {
    const row: unknown = inputs[i]
    if (!Array.isArray(row)) throw new RequestError(400, 'ERR_INPUT_TYPE', `inputs[${i}] is ${describe(row)}, not a row (an array of ${dim} numbers)`)
    // A nested sample ([C][H][W] arrays) gets the flattening hint, not a length error.
    const nested = row.findIndex(Array.isArray)
    if (nested >= 0) {
      throw new RequestError(400, 'ERR_INPUT_TYPE', `inputs[${i}][${nested}] is an array: each row must be a flat array of ${dim} numbers (the input shape [${model.inputShape.join(', ')}] flattened in row-major order)`)
    }
    if (row.length !== dim) throw rowLength(`inputs[${i}]`, row.length, model)
    const base = i * dim
    for (let j = 0; j < dim; j++) data[base + j] = value(row[j], `inputs[${i}][${j}]`)
  }
  return { ...params, inputs: data, rows }
}

/** One class of a `top` list. */
export interface ClassScore {
  /** Class index (position in the outputs). */
  readonly class: number
  /** Class name, when the server has class names. */
  readonly label?: string
  /** Its probability, in `[0, 1]` (softmax of the outputs, unless the net ends in Softmax/LogSoftmax). */
  readonly probability: number
}

/** The answer for one row. Classification models fill every field but `outputs` (unless asked); regression models only `outputs`. */
export interface RowPrediction {
  /** The most likely class (argmax of the outputs). */
  readonly class?: number
  /** Its name, when the server has class names. */
  readonly label?: string
  /** Its probability (softmax of the outputs). */
  readonly probability?: number
  /** The `top` most likely classes, most likely first. */
  readonly top?: readonly ClassScore[]
  /** The raw outputs of the net (`outputDim` values, the output shape flattened). */
  readonly outputs?: readonly number[]
}

/** The body of a 200 answer of `POST /predict`. */
export interface PredictResponse {
  /** Version of the model that answered (see `GET /model`). */
  readonly modelVersion: number
  /** One entry per input row, in order. */
  readonly predictions: readonly RowPrediction[]
}

/**
 * Turns `[rows, outputDim]` outputs into the response; `classes` receives each row's
 * predicted class index (classification only) for the metrics.
 */
export function formatPredictions(model: ProtocolModel, outputs: Float32Array, params: PredictParams, classes?: (index: number) => void): PredictResponse {
  const width = model.outputDim
  const rows = outputs.length / width
  const predictions: RowPrediction[] = new Array(rows)
  if (model.task === 'regression') {
    for (let r = 0; r < rows; r++) predictions[r] = { outputs: Array.from(outputs.subarray(r * width, (r + 1) * width)) }
    return { modelVersion: model.version, predictions }
  }
  const k = Math.min(params.top ?? DEFAULT_TOP, width)
  const names = model.classNames
  const probs = new Float64Array(width)
  for (let r = 0; r < rows; r++) {
    const row = outputs.subarray(r * width, (r + 1) * width)
    probabilities(row, model.outputKind, probs)
    const order = topIndices(row, k)
    const top: ClassScore[] = new Array(k)
    for (let t = 0; t < k; t++) {
      const c = order[t]!
      top[t] = names ? { class: c, label: names[c]!, probability: probs[c]! } : { class: c, probability: probs[c]! }
    }
    const best = top[0]!
    classes?.(best.class)
    const p: { -readonly [K in keyof RowPrediction]: RowPrediction[K] } = { class: best.class }
    if (names) p.label = best.label!
    p.probability = best.probability
    p.top = top
    if (params.outputs) p.outputs = Array.from(row)
    predictions[r] = p
  }
  return { modelVersion: model.version, predictions }
}

/** Indices of the `k` largest values, largest first; ties keep the lower index first (as `Net.predictClasses`' argmax does). */
export function topIndices(row: Float32Array, k: number): number[] {
  const idx: number[] = []
  for (let c = 0; c < row.length; c++) {
    const v = row[c]!
    const full = idx.length === k
    if (full && !(v > row[idx[k - 1]!]!)) continue
    let pos = full ? k - 1 : idx.length
    while (pos > 0 && v > row[idx[pos - 1]!]!) {
      idx[pos] = idx[pos - 1]!
      pos--
    }
    idx[pos] = c
  }
  return idx
}

/** Class probabilities of one row of outputs (see `src/probabilities.ts`). */
export { probabilities } from '../probabilities.js'
