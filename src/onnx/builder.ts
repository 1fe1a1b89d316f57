/**
 * A small ONNX graph builder over `onnx-proto`'s generated classes: value names kept
 * unique, nodes with typed attributes, float initializers and `Constant` nodes. It
 * knows nothing of ferronet's ops (the per-op converters in `./ops.ts` use it).
 */

import { createRequire } from 'node:module'
import { FerronetError } from '../errors.js'

type OnnxNamespace = typeof import('onnx-proto').onnx

let loaded: OnnxNamespace | undefined

/**
 * `onnx-proto` is an optional dependency (an install without it still trains):
 * loaded on the first export, with an error that says how to get it.
 */
function load(): OnnxNamespace {
  if (loaded) return loaded
  try {
    loaded = (createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto')).onnx
  } catch (error) {
    throw new FerronetError(
      'ERR_MISSING_DEPENDENCY',
      'ONNX export needs the npm package `onnx-proto`, an optional dependency of ferronet that is not installed here: run `npm install onnx-proto`',
      { cause: error },
    )
  }
  return loaded
}

/** The `onnx` namespace of `onnx-proto` (protobufjs-generated `ModelProto`, `GraphProto`, …), loaded on first use. */
export const onnx: OnnxNamespace = new Proxy({} as OnnxNamespace, { get: (_, key) => load()[key as keyof OnnxNamespace] })

/** `TensorProto.DataType.FLOAT`, the element type of every tensor ferronet exports. */
export const FLOAT = 1
/** `TensorProto.DataType.INT64`, for the shape and index constants of Reshape and Gather. */
export const INT64 = 7

/** An attribute value, tagged with its ONNX attribute type. */
export type AttributeValue =
  | { readonly int: number }
  | { readonly float: number }
  | { readonly ints: readonly number[] }
  | { readonly string: string }
  | { readonly tensor: InstanceType<typeof onnx.TensorProto> }

/** A dimension of a graph input or output: a fixed size or a symbolic name (`"batch"`). */
export type Dim = number | string

/** Little-endian bytes of `values` as float32 (TensorProto `raw_data`). */
function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 4)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true)
  return bytes
}

function attribute(name: string, value: AttributeValue): InstanceType<typeof onnx.AttributeProto> {
  const A = onnx.AttributeProto.AttributeType
  if ('int' in value) return onnx.AttributeProto.create({ name, type: A.INT, i: value.int })
  if ('float' in value) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: value.float })
  if ('ints' in value) return onnx.AttributeProto.create({ name, type: A.INTS, ints: [...value.ints] })
  if ('tensor' in value) return onnx.AttributeProto.create({ name, type: A.TENSOR, t: value.tensor })
  return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(value.string) })
}

/** A graph input or output called `name`: a float32 tensor of `dims`. */
export function valueInfo(name: string, dims: readonly Dim[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  })
}

/**
 * Collects the nodes and initializers of one ONNX graph. Every value name is
 * claimed once: {@link GraphBuilder.claim} refuses a second use, {@link GraphBuilder.fresh}
 * derives a free name from a base.
 */
export class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = []
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = []
  private readonly names = new Set<string>()
  private readonly nodeNames = new Set<string>()

  /** Whether `name` is already a value (input, initializer or node output) of the graph. */
  has(name: string): boolean {
    return this.names.has(name)
  }

  /** Reserves `name`; returns false if it was taken. */
  claim(name: string): boolean {
    if (this.names.has(name)) return false
    this.names.add(name)
    return true
  }

  /** A free value name: `base` itself, else `base_1`, `base_2`, … (and claims it). */
  fresh(base: string): string {
    let name = base
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`
    this.names.add(name)
    return name
  }

  /**
   * Appends a node `opType(inputs) -> outputs`; `outputs` must have been claimed
   * (or made with {@link GraphBuilder.fresh}). `''` in `inputs` is an omitted optional input.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[], attributes: Readonly<Record<string, AttributeValue>> = {}, name?: string): void {
    let nodeName = name ?? outputs[0] ?? opType
    for (let k = 1; this.nodeNames.has(nodeName); k++) nodeName = `${name ?? outputs[0] ?? opType}_${k}`
    this.nodeNames.add(nodeName)
    this.nodes.push(onnx.NodeProto.create({
      name: nodeName,
      opType,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    }))
  }

  /** A float32 initializer called `name` (claimed here) of shape `dims`. */
  initializer(name: string, dims: readonly number[], data: ArrayLike<number>): void {
    if (!this.claim(name)) throw new Error(`internal: initializer name ${JSON.stringify(name)} is taken`)
    this.initializers.push(onnx.TensorProto.create({ name, dims: [...dims], dataType: FLOAT, rawData: float32Bytes(data) }))
  }

  /** A `Constant` node holding float32 `data` of shape `dims` (`[]` for a scalar); returns its output name. */
  constant(base: string, dims: readonly number[], data: ArrayLike<number>): string {
    const out = this.fresh(base)
    const value = onnx.TensorProto.create({ name: out, dims: [...dims], dataType: FLOAT, rawData: float32Bytes(data) })
    this.node('Constant', [], [out], { value: { tensor: value } })
    return out
  }

  /** A `Constant` node holding int64 `data` of shape `dims` (shapes, indices, the axes of a reduction); returns its output name. */
  constantInt64(base: string, dims: readonly number[], data: readonly number[]): string {
    const out = this.fresh(base)
    const bytes = new Uint8Array(data.length * 8)
    const view = new DataView(bytes.buffer)
    data.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true))
    const value = onnx.TensorProto.create({ name: out, dims: [...dims], dataType: INT64, rawData: bytes })
    this.node('Constant', [], [out], { value: { tensor: value } })
    return out
  }
}
