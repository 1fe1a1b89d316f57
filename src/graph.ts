/**
 * The model spec (docs/graph-spec.md) in TypeScript: its types, the functional API's
 * symbolic tensors, and the checks of a spec (names, order, configs, shapes) that run
 * before the native core compiles it.
 */

import { InvalidInputError, OptionError, ShapeError } from './errors.js'
import { fmt, inferShape, layerArity, layerConfig, normalizeLayer, takesOneInput, type LayerSpec } from './layers.js'
import { describe, unknownOption } from './validate.js'

export const SPEC_FORMAT = 'ferronet-graph'
export const SPEC_VERSION = 1

/** A graph input of the spec. */
export interface InputSpec {
  /** The input's name, which nodes list in their `inputs` (`"input"` for {@link Net.sequential}). */
  readonly name: string
  /** Per sample, PyTorch order (`[C, H, W]`, `[T, F]`, `[F]`), batch left out. */
  readonly shape: readonly number[]
}

/** A node of the spec: one layer applied to earlier inputs or nodes. */
export interface NodeSpec {
  /** Unique name (`"0"`, `"conv1"`, dotted for scopes: `"block1.conv"`); its tensors are `<name>.weight`, …. */
  readonly name: string
  /** The layer's op, e.g. `"Conv2d"` (see {@link OpName}). */
  readonly op: LayerSpec['op']
  /** Names of the inputs or nodes it reads, each listed before it; two or more for `Add` and `Concat`. */
  readonly inputs: readonly string[]
  /** The op's options (the {@link LayerSpec} fields but `op`); left out when all are defaults. */
  readonly config?: Readonly<Record<string, unknown>>
  /** Parameter group of this node's tensors. */
  readonly group?: string
}

/**
 * The versioned JSON model spec (docs/graph-spec.md): what {@link Net.spec} returns,
 * {@link Net.fromSpec} takes and model files carry in their header.
 *
 * ```json
 * {"format": "ferronet-graph", "version": 1,
 *  "inputs": [{"name": "input", "shape": [784]}],
 *  "nodes": [{"name": "0", "op": "Linear", "inputs": ["input"], "config": {"outFeatures": 10}}],
 *  "outputs": ["0"]}
 * ```
 */
export interface ModelSpec {
  /** Always `"ferronet-graph"`. */
  readonly format: typeof SPEC_FORMAT
  /** The spec version, `1`. */
  readonly version: typeof SPEC_VERSION
  /** The graph inputs (one for {@link Net.sequential}). */
  readonly inputs: readonly InputSpec[]
  /** The nodes, each after the nodes it reads (topological order). */
  readonly nodes: readonly NodeSpec[]
  /** Names of the nodes (or inputs) the network outputs; {@link Net.predict} returns the first. */
  readonly outputs: readonly string[]
}

/** Options of {@link Applicable.apply}. */
export interface ApplyOptions {
  /** Node name, unique in the graph; dots give scopes (`'block1.conv'`). Default: `conv2d1`, `linear2`, … */
  name?: string
  /** Parameter group of the node's tensors (a trainer can train one group). */
  group?: string
}

let created = 0

/** A symbolic value of the functional API: a graph input or a node's output, with its per-sample shape. */
export class SymbolicTensor {
  /** Per-sample shape, PyTorch order. */
  readonly shape: readonly number[]
  /** @internal creation order: a node is created after its inputs. */
  readonly order: number
  /** @internal */
  readonly producer: { readonly layer: LayerSpec; readonly inputs: readonly SymbolicTensor[]; readonly group?: string } | undefined
  private readonly givenName: string | undefined

  /** @internal */
  constructor(shape: readonly number[], name: string | undefined, producer: SymbolicTensor['producer']) {
    this.shape = Object.freeze([...shape])
    this.givenName = name
    this.producer = producer
    this.order = created++
  }

  /** The name given at `Net.input` / `apply`, if any (others are named by `Net.graph`). */
  get name(): string | undefined {
    return this.givenName
  }

  /** The op that produced this tensor, or `'input'`. */
  get op(): string {
    return this.producer?.layer.op ?? 'input'
  }

  /** `name [shape]`, e.g. `"conv1 [8, 28, 28]"` (the op for unnamed tensors). */
  toString(): string {
    return `${this.givenName ?? this.op} ${fmt(this.shape)}`
  }
}

/** What every layer builder's object can do besides describing the layer. */
export interface Applicable {
  /** Applies the layer to one tensor (or several, for `add` / `concat`); the shape is checked now. */
  apply(inputs: SymbolicTensor | readonly SymbolicTensor[], options?: ApplyOptions): SymbolicTensor
}

/** A layer as the builders return it: its plain spec plus `apply` (not enumerable, not serialised). */
export type Layer<T extends LayerSpec = LayerSpec> = T & Applicable

function checkName(field: string, name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.\-]*$/.test(name) || name.endsWith('.') || name.includes('..')) {
    throw new OptionError(field, `must be a name of letters, digits, _ and - with dots between scopes (e.g. "block1.conv"), got ${describe(name)}`)
  }
  return name
}

function checkGroup(field: string, group: unknown): string | undefined {
  if (group === undefined) return undefined
  if (typeof group !== 'string' || group === '') throw new OptionError(field, `must be a non-empty string, got ${describe(group)}`)
  return group
}

/** Attaches a non-enumerable `apply` to a normalised layer. */
export function makeLayer<T extends LayerSpec>(layer: T): Layer<T> {
  const copy = { ...layer }
  Object.defineProperty(copy, 'apply', {
    enumerable: false,
    value: (inputs: SymbolicTensor | readonly SymbolicTensor[], options: ApplyOptions = {}) => applyLayer(layer, inputs, options),
  })
  return Object.freeze(copy) as Layer<T>
}

function applyLayer(layer: LayerSpec, inputs: SymbolicTensor | readonly SymbolicTensor[], options: ApplyOptions): SymbolicTensor {
  if (typeof options !== 'object' || options === null) throw new OptionError('apply options', `must be an object { name?, group? }, got ${describe(options)}`)
  for (const key of Object.keys(options)) if (key !== 'name' && key !== 'group') throw new OptionError(`apply.${key}`, 'is not an option of apply (it takes name, group)')
  const name = options.name === undefined ? undefined : checkName('apply.name', options.name)
  const group = checkGroup('apply.group', options.group)
  const list = inputs instanceof SymbolicTensor ? [inputs] : inputs
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => t instanceof SymbolicTensor)) {
    throw new OptionError('apply inputs', `must be a tensor from Net.input() or another layer's apply(), or an array of them; got ${describe(inputs)}`)
  }
  const label = name ?? `a ${layer.op} layer`
  const shape = inferShape(layer, list.map((t) => t.shape), label, name ?? layer.op)
  return new SymbolicTensor(shape, name, { layer, inputs: list, ...(group !== undefined ? { group } : {}) })
}

/** A graph input of the functional API. */
export function input(shape: number | readonly number[], options: { name?: string } = {}): SymbolicTensor {
  const s = checkShape('shape', shape)
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new OptionError('options', `must be an options object, got ${describe(options)}`)
  for (const k of Object.keys(options)) if (k !== 'name') throw unknownOption(`options.${k}`, k, ['name'])
  const name = options.name === undefined ? undefined : checkName('name', options.name)
  return new SymbolicTensor(s, name, undefined)
}

export function checkShape(field: string, shape: unknown): number[] {
  const s = typeof shape === 'number' ? [shape] : shape
  if (!Array.isArray(s) || s.length === 0) throw new OptionError(field, `must be a feature count or a non-empty shape array like [1, 28, 28], got ${describe(shape)}`)
  s.forEach((d: unknown, k) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > 2 ** 31 - 1) {
      throw new OptionError(typeof shape === 'number' ? field : `${field}[${k}]`, `must be an integer in 1..${2 ** 31 - 1}, got ${describe(d)}`)
    }
  })
  return [...(s as number[])]
}

/** The spec of a functional graph: reachable nodes in creation order, unnamed ones named `<op>N`. */
export function graphSpec(inputsArg: SymbolicTensor | readonly SymbolicTensor[], outputsArg: SymbolicTensor | readonly SymbolicTensor[]): { spec: ModelSpec; layers: LayerSpec[] } {
  const asList = (field: string, v: SymbolicTensor | readonly SymbolicTensor[]): readonly SymbolicTensor[] => {
    const list = v instanceof SymbolicTensor ? [v] : v
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => t instanceof SymbolicTensor)) {
      throw new OptionError(field, `must be a tensor (or an array of tensors) of the functional API, got ${describe(v)}`)
    }
    return list
  }
  const inputs = asList('inputs', inputsArg)
  const outputs = asList('outputs', outputsArg)
  inputs.forEach((t, i) => {
    if (t.producer) throw new OptionError(`inputs[${i}]`, `must come from Net.input(), got the output of ${t.op}`)
  })
  const seen = new Set<SymbolicTensor>()
  const stack = [...outputs]
  while (stack.length) {
    const t = stack.pop()!
    if (seen.has(t)) continue
    seen.add(t)
    if (t.producer) stack.push(...t.producer.inputs)
    else if (!inputs.includes(t)) throw new OptionError('inputs', `the outputs depend on the input ${t.toString()}, which is not among the graph's inputs`)
  }
  const ordered = [...seen].sort((a, b) => a.order - b.order)
  const names = new Map<SymbolicTensor, string>()
  const taken = new Set<string>()
  const claim = (t: SymbolicTensor, name: string) => {
    if (taken.has(name)) throw new OptionError('name', `${JSON.stringify(name)} names two tensors of the graph; names must be unique`)
    taken.add(name)
    names.set(t, name)
  }
  for (const t of inputs) if (t.name !== undefined) claim(t, t.name)
  for (const t of ordered) if (t.producer && t.name !== undefined) claim(t, t.name)
  const unnamedInputs = inputs.filter((t) => t.name === undefined)
  unnamedInputs.forEach((t, i) => {
    let n = i === 0 ? 'input' : `input${i}`
    for (let k = i; taken.has(n); k++) n = `input${k + 1}`
    claim(t, n)
  })
  const counters = new Map<string, number>()
  for (const t of ordered) {
    if (!t.producer || names.has(t)) continue
    const base = t.producer.layer.op.toLowerCase()
    let n = counters.get(base) ?? 0
    let name: string
    do name = `${base}${++n}`
    while (taken.has(name))
    counters.set(base, n)
    claim(t, name)
  }
  const nodes: NodeSpec[] = []
  const layers: LayerSpec[] = []
  for (const t of ordered) {
    if (!t.producer) continue
    const config = layerConfig(t.producer.layer)
    nodes.push({
      name: names.get(t)!,
      op: t.producer.layer.op,
      inputs: t.producer.inputs.map((i) => names.get(i)!),
      ...(config ? { config } : {}),
      ...(t.producer.group !== undefined ? { group: t.producer.group } : {}),
    })
    layers.push(t.producer.layer)
  }
  const spec: ModelSpec = {
    format: SPEC_FORMAT,
    version: SPEC_VERSION,
    inputs: inputs.map((t) => ({ name: names.get(t)!, shape: [...t.shape] })),
    nodes,
    outputs: outputs.map((t) => names.get(t)!),
  }
  return { spec, layers }
}

/** The spec of a chain: input `"input"`, nodes `"0"`, `"1"`, … as `nn.Sequential` names them. */
export function sequentialSpec(shape: readonly number[], layersArg: unknown): { spec: ModelSpec; layers: LayerSpec[] } {
  if (!Array.isArray(layersArg) || layersArg.length === 0) {
    throw new OptionError('layers', 'must be a non-empty array of layers, e.g. [Net.dense(10)]')
  }
  const layers = layersArg.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null) throw new OptionError(`layers[${i}]`, `must be a layer such as Net.dense(10), got ${describe(raw)}`)
    const { op, ...config } = raw as Record<string, unknown>
    const layer = normalizeLayer(op, config, `layers[${i}]`)
    if (!takesOneInput(layer)) throw new OptionError(`layers[${i}]`, `${layer.op} takes ${layerArity(layer) === 2 ? 'two inputs' : 'two or more inputs'}: build this model with the functional API (Net.input, layer.apply, Net.graph)`)
    return layer
  })
  let current: readonly number[] = shape
  const nodes: NodeSpec[] = layers.map((layer, i) => {
    current = inferShape(layer, [current], `layer ${i}`, String(i))
    const config = layerConfig(layer)
    return { name: String(i), op: layer.op, inputs: [i === 0 ? 'input' : String(i - 1)], ...(config ? { config } : {}) }
  })
  return {
    spec: { format: SPEC_FORMAT, version: SPEC_VERSION, inputs: [{ name: 'input', shape: [...shape] }], nodes, outputs: [String(layers.length - 1)] },
    layers,
  }
}

/**
 * Validates a saved spec (object or JSON text): format and version, names, node order,
 * every op's config, and the shapes. Returns a clean copy and the nodes' layers.
 */
export function checkSpec(raw: unknown): { spec: ModelSpec; layers: LayerSpec[]; outputShape: number[]; shapes: Map<string, number[]> } {
  let value = raw
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw)
    } catch (error) {
      throw new OptionError('spec', `is not valid JSON: ${(error as Error).message}`)
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OptionError('spec', `must be a model spec object, got ${describe(value)}`)
  const s = value as Record<string, unknown>
  for (const key of Object.keys(s)) {
    if (!['format', 'version', 'inputs', 'nodes', 'outputs'].includes(key)) throw new OptionError(`spec.${key}`, 'is not a field of a model spec (it has format, version, inputs, nodes, outputs)')
  }
  if (s.format !== SPEC_FORMAT) throw new OptionError('spec.format', `must be ${JSON.stringify(SPEC_FORMAT)}, got ${describe(s.format)}`)
  if (s.version !== SPEC_VERSION) throw new OptionError('spec.version', `version ${describe(s.version)} is not supported (this build reads version ${SPEC_VERSION})`)
  if (!Array.isArray(s.inputs) || s.inputs.length === 0) throw new OptionError('spec.inputs', 'must be a non-empty array of { name, shape }')
  if (!Array.isArray(s.nodes)) throw new OptionError('spec.nodes', 'must be an array of nodes')
  if (!Array.isArray(s.outputs) || s.outputs.length === 0) throw new OptionError('spec.outputs', 'must be a non-empty array of names')
  const shapes = new Map<string, number[]>()
  const inputs: InputSpec[] = s.inputs.map((i: unknown, k) => {
    const o = (i ?? {}) as Record<string, unknown>
    for (const key of Object.keys(o)) if (key !== 'name' && key !== 'shape') throw new OptionError(`spec.inputs[${k}].${key}`, 'is not a field of an input (it has name, shape)')
    const name = checkName(`spec.inputs[${k}].name`, o.name)
    if (!Array.isArray(o.shape)) throw new OptionError(`spec.inputs[${k}].shape`, `must be a shape array, got ${describe(o.shape)}`)
    const shape = checkShape(`spec.inputs[${k}].shape`, o.shape)
    if (shapes.has(name)) throw new OptionError(`spec.inputs[${k}].name`, `${JSON.stringify(name)} is used twice`)
    shapes.set(name, shape)
    return { name, shape }
  })
  const layers: LayerSpec[] = []
  const byName = new Map<string, LayerSpec>()
  const nodes: NodeSpec[] = s.nodes.map((n: unknown, k) => {
    const o = (n ?? {}) as Record<string, unknown>
    const where = `spec.nodes[${typeof o.name === 'string' ? o.name : k}]`
    for (const key of Object.keys(o)) {
      if (!['name', 'op', 'inputs', 'config', 'group'].includes(key)) throw new OptionError(`${where}.${key}`, 'is not a field of a node (it has name, op, inputs, config, group)')
    }
    const name = checkName(`${where}.name`, o.name)
    if (shapes.has(name)) throw new ShapeError(`node name ${JSON.stringify(name)} is used twice`, name)
    const layer = normalizeLayer(o.op, o.config, `${where}.config`, `${where}.op`)
    if (!Array.isArray(o.inputs) || o.inputs.length === 0) throw new OptionError(`${where}.inputs`, `must be a non-empty array of names, got ${describe(o.inputs)}`)
    const ins = o.inputs.map((i: unknown) => {
      if (typeof i !== 'string' || !shapes.has(i)) throw new ShapeError(`${name} (${layer.op}) reads ${describe(i)}, which is neither an input nor a node listed before it`, name)
      return i
    })
    const group = checkGroup(`${where}.group`, o.group)
    shapes.set(name, inferShape(layer, ins.map((i) => shapes.get(i)!), name))
    if (layer.op === 'Linear' && layer.tiedTo !== undefined) checkTie(name, layer.outFeatures, shapes.get(ins[0]!)!, layer.tiedTo, byName)
    byName.set(name, layer)
    layers.push(layer)
    const config = layerConfig(layer)
    return { name, op: layer.op, inputs: ins, ...(config ? { config } : {}), ...(group !== undefined ? { group } : {}) }
  })
  const outputs = s.outputs.map((o: unknown, k) => {
    if (typeof o !== 'string' || !shapes.has(o)) throw new OptionError(`spec.outputs[${k}]`, `${describe(o)} is not a node or input of the spec`)
    return o
  })
  return {
    spec: { format: SPEC_FORMAT, version: SPEC_VERSION, inputs, nodes, outputs },
    layers,
    outputShape: shapes.get(outputs[0]!)!,
    shapes,
  }
}

/** A Linear `name` tied to `target`: an Embedding listed before it, of the Linear's weight shape. */
function checkTie(name: string, outFeatures: number, input: readonly number[], target: string, byName: ReadonlyMap<string, LayerSpec>): void {
  const owner = byName.get(target)
  if (owner === undefined) throw new ShapeError(`${name} (Linear) is tied to ${JSON.stringify(target)} (tiedTo), which is not a node listed before it`, name)
  if (owner.op !== 'Embedding') throw new ShapeError(`${name} (Linear) is tied to ${JSON.stringify(target)} (tiedTo), which is a ${owner.op}, not an Embedding`, name)
  const mine = [outFeatures, input[input.length - 1]!]
  const theirs = [owner.numEmbeddings, owner.embeddingDim]
  if (fmt(mine) !== fmt(theirs)) {
    throw new ShapeError(`${name} (Linear) weight ${fmt(mine)} [outFeatures, in features] cannot be tied to ${target}.weight ${fmt(theirs)} (${target} (Embedding) [numEmbeddings, embeddingDim]): the shapes must be equal`, name)
  }
}

/**
 * Checks the ids an Embedding reads straight from graph input 0 (`values`: rows × the
 * input's size, PyTorch's order): integers in `0..numEmbeddings`, as the core checks
 * them per batch; here the whole dataset at once, before anything is trained.
 * @throws {@link InvalidInputError} naming the node, the sample, the position and the value.
 */
export function checkIds(spec: ModelSpec, values: Float32Array): void {
  const input = spec.inputs[0]!
  const size = input.shape.reduce((a, b) => a * b, 1)
  for (const n of spec.nodes) {
    if (n.op !== 'Embedding' || n.inputs[0] !== input.name) continue
    const v = n.config!.numEmbeddings as number
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!
      if (x >= 0 && x < v && Number.isInteger(x)) continue
      const [sample, position] = [Math.floor(i / size), i % size]
      const reason = Number.isNaN(x) ? 'is NaN, not an id' : Number.isInteger(x) ? `is out of range: ids are integers in 0..${v} (numEmbeddings ${v})` : `is not an integer id (ids are integers in 0..${v}, numEmbeddings ${v})`
      throw new InvalidInputError(n.name, sample, position, x, `${n.name} (Embedding): input value ${x} of sample ${sample}, position ${position} ${reason}`)
    }
  }
}
