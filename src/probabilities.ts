/**
 * Class probabilities from a net's outputs, shared by the server, the CLI and the
 * report: a numerically stable softmax for logits, the values as they are after a
 * final Softmax, exp after a final LogSoftmax.
 */

import type { ModelSpec } from './graph.js'

/** What a net's first output holds. */
export type OutputKind = 'logits' | 'probabilities' | 'log-probabilities'

/** The kind of the spec's first output, from the op that produces it. */
export function outputKindOf(spec: ModelSpec): OutputKind {
  const op = spec.nodes.find((n) => n.name === spec.outputs[0])?.op
  return op === 'Softmax' ? 'probabilities' : op === 'LogSoftmax' ? 'log-probabilities' : 'logits'
}

/** Class probabilities of one row of outputs, into `out` (a new array by default). */
export function probabilities(row: Float32Array, kind: OutputKind, out: Float64Array = new Float64Array(row.length)): Float64Array {
  const n = row.length
  if (kind === 'probabilities') {
    for (let c = 0; c < n; c++) out[c] = row[c]!
    return out
  }
  if (kind === 'log-probabilities') {
    for (let c = 0; c < n; c++) out[c] = Math.exp(row[c]!)
    return out
  }
  let max = -Infinity
  for (let c = 0; c < n; c++) if (row[c]! > max) max = row[c]!
  let sum = 0
  for (let c = 0; c < n; c++) {
    const e = Math.exp(row[c]! - max)
    out[c] = e
    sum += e
  }
  for (let c = 0; c < n; c++) out[c] = out[c]! / sum
  return out
}
