/**
 * Spec + tensors → ONNX `ModelProto`: graph inputs and outputs with a symbolic batch
 * dimension, the tensors as initializers under their `state_dict` names, and each
 * spec node through its converter (./ops.ts).
 */

import type { ModelSpec } from '../graph.js'
import { fmt, inferShape, normalizeLayer } from '../layers.js'
import { GraphBuilder, onnx, valueInfo } from './builder.js'
import { OnnxExportError } from './errors.js'
import { CONVERTERS, type ConvertContext, type ConverterTable } from './ops.js'

/** The lowest opset written (Erf, Softmax on one axis, optional Gemm bias, BatchNormalization-15 all hold from it). */
export const MIN_OPSET = 17
/** The highest opset accepted: every op written here was checked against the ONNX changelog up to it. */
export const MAX_OPSET = 23
/** The symbolic name of the batch dimension of every graph input and output. */
export const BATCH_DIM = 'batch'

/**
 * The IR version written for an opset: 8 (ONNX 1.13) for opsets 17 and 18, else the
 * first IR version released with that opset, so a checker never sees an opset newer than its IR.
 */
export function irVersionFor(opset: number): number {
  if (opset <= 18) return 8
  if (opset <= 20) return 9
  if (opset <= 22) return 10
  return 11
}

/** A tensor to write: `state_dict` name, PyTorch shape, values. */
export interface NamedTensor {
  readonly name: string
  readonly shape: readonly number[]
  readonly data: ArrayLike<number>
}

/** Checked options of the exporter. */
export interface BuildOptions {
  readonly opset: number
  readonly producerName: string
  readonly producerVersion: string
}

/**
 * The ONNX model of `spec` with `tensors` as its initializers (in order), converting
 * each node with `converters[node.op]`.
 * @throws {@link OnnxExportError} naming the node and op when an op has no converter
 *   or a node has no ONNX equivalent, or when two values would share a name.
 */
export function buildModel(spec: ModelSpec, tensors: readonly NamedTensor[], options: BuildOptions, converters: ConverterTable = CONVERTERS): InstanceType<typeof onnx.ModelProto> {
  const g = new GraphBuilder()
  const shapes = new Map<string, readonly number[]>()
  const clash = (name: string, what: string) =>
    new OnnxExportError(`${JSON.stringify(name)} names both ${what} and another value of the graph; ONNX needs distinct value names`)

  const inputs = spec.inputs.map((i) => {
    if (!g.claim(i.name)) throw clash(i.name, 'a graph input')
    shapes.set(i.name, i.shape)
    return valueInfo(i.name, [BATCH_DIM, ...i.shape])
  })
  for (const n of spec.nodes) if (!g.claim(n.name)) throw clash(n.name, `node ${n.name} (${n.op})`)
  // Weight tying: a Linear's tiedTo weight is the Embedding's initializer (one copy).
  const aliases = new Map<string, string>()
  for (const n of spec.nodes) {
    const tiedTo = n.op === 'Linear' ? n.config?.tiedTo : undefined
    if (typeof tiedTo === 'string') aliases.set(`${n.name}.weight`, `${tiedTo}.weight`)
  }
  const params = new Set<string>()
  for (const t of tensors) {
    if (aliases.has(t.name)) continue
    if (g.has(t.name)) throw clash(t.name, 'a tensor')
    g.initializer(t.name, t.shape, t.data)
    params.add(t.name)
  }

  for (const node of spec.nodes) {
    const layer = normalizeLayer(node.op, node.config, `spec.nodes[${node.name}].config`, `spec.nodes[${node.name}].op`)
    const inputShapes = node.inputs.map((i) => {
      const s = shapes.get(i)
      if (!s) throw new OnnxExportError(`${node.name} (${node.op}) reads ${JSON.stringify(i)}, which is neither an input nor a node listed before it`, { node: node.name, op: node.op })
      return s
    })
    const outputShape = inferShape(layer, inputShapes, node.name)
    const convert = converters[layer.op] as ((ctx: ConvertContext) => void) | undefined
    if (!convert) {
      throw new OnnxExportError(`${node.name} (${node.op}): the ONNX exporter has no converter for op ${node.op}`, { node: node.name, op: node.op })
    }
    convert({
      g,
      opset: options.opset,
      node,
      layer,
      inputs: node.inputs,
      inputShapes,
      outputShape,
      output: node.name,
      param: (suffix) => {
        const name = aliases.get(`${node.name}.${suffix}`) ?? `${node.name}.${suffix}`
        return params.has(name) ? name : undefined
      },
    })
    shapes.set(node.name, outputShape)
  }

  const seen = new Set<string>()
  const outputs = spec.outputs.map((o) => {
    const shape = shapes.get(o)
    if (!shape) throw new OnnxExportError(`output ${JSON.stringify(o)} is not a node or input of the spec`)
    if (seen.has(o)) throw new OnnxExportError(`output ${JSON.stringify(o)} is listed twice; ONNX graph outputs need distinct names`)
    if (spec.inputs.some((i) => i.name === o)) {
      throw new OnnxExportError(`output ${JSON.stringify(o)} is a graph input; ONNX needs the outputs computed by nodes (add a layer, e.g. Net.dropout(0) as an identity)`)
    }
    seen.add(o)
    return valueInfo(o, [BATCH_DIM, ...shape])
  })

  return onnx.ModelProto.create({
    irVersion: irVersionFor(options.opset),
    opsetImport: [{ domain: '', version: options.opset }],
    producerName: options.producerName,
    producerVersion: options.producerVersion,
    graph: {
      name: 'ferronet',
      docString: `ferronet model, per-sample input shape${spec.inputs.length > 1 ? 's' : ''} ${spec.inputs.map((i) => fmt(i.shape)).join(', ')}`,
      node: g.nodes,
      initializer: g.initializers,
      input: inputs,
      output: outputs,
    },
  })
}
