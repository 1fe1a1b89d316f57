/**
 * ONNX export of a {@link Net}: the spec's graph in inference semantics (Dropout is
 * the identity, BatchNorm uses its running statistics), the tensors as initializers
 * under their PyTorch `state_dict` names, NCHW as in PyTorch, a symbolic batch
 * dimension `"batch"`. The per-op mapping lives in `./onnx/ops.ts`.
 */

import { readFileSync } from 'node:fs'
import { OptionError } from './errors.js'
import { writeFileAtomic } from './files.js'
import type { Net } from './net.js'
import { onnx } from './onnx/builder.js'
import { buildModel, MAX_OPSET, MIN_OPSET } from './onnx/export.js'
import { describe, unknownOption } from './validate.js'

export { OnnxExportError } from './onnx/errors.js'
export { BATCH_DIM, MAX_OPSET, MIN_OPSET } from './onnx/export.js'

/** Options of {@link toOnnx} and {@link exportOnnx}. */
export interface OnnxOptions {
  /**
   * ONNX opset of the default domain, an integer in 17..23 (default `17`). The IR
   * version is 8 for opsets 17 and 18, and the IR version released with the opset
   * above (9 for 19–20, 10 for 21–22, 11 for 23). From opset 20 GELU is ONNX's `Gelu`
   * op; below, it is built from `Erf` (or `Tanh`) and arithmetic.
   */
  opset?: number
  /** `producer_name` of the model (default `"ferronet"`); `producer_version` is ferronet's version. */
  producerName?: string
}

const OPTION_KEYS = ['opset', 'producerName']

let packageVersion: string | undefined
function version(): string {
  packageVersion ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  return packageVersion
}

function checkOptions(options: unknown): { opset: number; producerName: string } {
  if (options === undefined) return { opset: MIN_OPSET, producerName: 'ferronet' }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new OptionError('options', `must be an options object, got ${describe(options)}`)
  for (const k of Object.keys(options)) {
    if (!OPTION_KEYS.includes(k)) throw unknownOption(`options.${k}`, k, OPTION_KEYS)
  }
  const o = options as OnnxOptions
  const opset = o.opset ?? MIN_OPSET
  if (typeof opset !== 'number' || !Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new OptionError('opset', `must be an integer in ${MIN_OPSET}..${MAX_OPSET} (ferronet writes opset ${MIN_OPSET} and later), got ${describe(opset)}`)
  }
  const producerName = o.producerName ?? 'ferronet'
  if (typeof producerName !== 'string' || producerName === '') throw new OptionError('producerName', `must be a non-empty string, got ${describe(producerName)}`)
  return { opset, producerName }
}

/**
 * The ONNX model of `net` (a serialised `ModelProto`), for ONNX Runtime and other
 * ONNX tools. Graph inputs and outputs are named as the spec's inputs and outputs,
 * with shape `["batch", ...per-sample shape]`; the weights and buffers are
 * initializers named as {@link Net.parameters} names them (`"0.weight"`,
 * `"1.running_mean"`). Outputs equal {@link Net.predict}'s (evaluation mode) up to
 * float rounding.
 *
 * ```ts
 * import * as ort from 'onnxruntime-node'
 * const bytes = toOnnx(net)                          // opset 17, IR version 8
 * const session = await ort.InferenceSession.create(bytes)
 * // Net.sequential names the input "input" and the output after its last node ("11" for LeNet-5).
 * const results = await session.run({ input: new ort.Tensor('float32', features, [rows, 1, 28, 28]) })
 * const logits = results[net.spec.outputs[0]!]!.data as Float32Array
 * ```
 * @throws {@link OptionError} for a bad option (an opset below 17, naming `opset`);
 *   {@link OnnxExportError} naming the node and op when a node has no ONNX equivalent
 *   (an `AdaptiveAvgPool2d` whose output size does not divide its input).
 */
export function toOnnx(net: Net, options?: OnnxOptions): Uint8Array {
  checkNet(net)
  const o = checkOptions(options)
  const model = buildModel(net.spec, net.parameters(), { ...o, producerVersion: version() })
  const bytes = onnx.ModelProto.encode(model).finish()
  // protobufjs hands out a Buffer under Node: return a plain Uint8Array view of it.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * Writes {@link toOnnx}`(net, options)` to `path` atomically (a temporary file in the
 * same folder, flushed, then renamed over `path`): on failure an existing file at
 * `path` is left as it was and no temporary file remains.
 *
 * ```ts
 * await exportOnnx(net, 'mnist.onnx')
 * await exportOnnx(net, 'mnist-20.onnx', { opset: 20 })
 * ```
 * @throws the errors of {@link toOnnx} (before anything is written), and the file
 *   system's (`ENOENT` for a missing folder, `EACCES`, `EISDIR` when `path` is a directory).
 */
export async function exportOnnx(net: Net, path: string, options?: OnnxOptions): Promise<void> {
  checkNet(net)
  if (typeof path !== 'string' || path === '') throw new OptionError('path', `must be a file path, got ${describe(path)}`)
  const bytes = toOnnx(net, options)
  await writeFileAtomic(path, bytes)
}

/** A Net (checked by shape: importing the class here would be circular). */
function checkNet(net: unknown): void {
  const n = net as { spec?: unknown; parameters?: unknown } | null
  if (typeof n !== 'object' || n === null || typeof n.spec !== 'object' || typeof n.parameters !== 'function') {
    throw new OptionError('net', `must be a Net, got ${describe(net)}`)
  }
}
