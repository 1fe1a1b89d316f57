/**
 * One ONNX converter per spec op (docs/graph-spec.md), in inference semantics:
 * Dropout is the identity, BatchNorm uses its running statistics. A converter
 * writes the node's result under the node's name; helper values and nodes are
 * named `<node>/<what>` ('/' never occurs in a spec name, so they cannot clash).
 * Supporting a new op is one entry of {@link CONVERTERS}.
 */

import type { NodeSpec } from '../graph.js'
import { pair, type LayerSpec, type OpName, type Size2 } from '../layers.js'
import { INT64, type AttributeValue, type GraphBuilder } from './builder.js'
import { OnnxExportError } from './errors.js'

/** What a converter gets for one spec node. */
export interface ConvertContext<T extends LayerSpec = LayerSpec> {
  /** The graph being built. */
  readonly g: GraphBuilder
  /** The target opset version (17 or more). */
  readonly opset: number
  /** The spec node. */
  readonly node: NodeSpec
  /** Its layer, normalised (config fields with their given values; defaults are the converter's job). */
  readonly layer: T
  /** ONNX value names of the node's inputs. */
  readonly inputs: readonly string[]
  /** Per-sample shapes (batch left out) of the inputs and of the output. */
  readonly inputShapes: readonly (readonly number[])[]
  readonly outputShape: readonly number[]
  /** The value name the result must be written to (the node's name). */
  readonly output: string
  /** The initializer of this node's `state_dict` tensor `<node>.<suffix>`, or undefined when the net has none (a Conv2d without bias). */
  param(suffix: string): string | undefined
}

/** Converts one spec node into ONNX nodes. */
export type Converter<T extends LayerSpec = LayerSpec> = (ctx: ConvertContext<T>) => void

/** The converter table's type: one optional entry per op, typed by the op's layer spec. */
export type ConverterTable = { readonly [K in OpName]?: Converter<Extract<LayerSpec, { op: K }>> }

const ints = (v: readonly number[]): AttributeValue => ({ ints: v })

/** A helper value name under the node's scope. */
function scoped(ctx: ConvertContext, what: string): string {
  return ctx.g.fresh(`${ctx.node.name}/${what}`)
}

function required(ctx: ConvertContext, suffix: string): string {
  const name = ctx.param(suffix)
  if (name === undefined) throw new Error(`internal: ${ctx.node.name} (${ctx.node.op}) has no tensor ${ctx.node.name}.${suffix}`)
  return name
}

/** A one-input op without attributes. */
const unary = (opType: string): Converter => (ctx) => ctx.g.node(opType, [ctx.inputs[0]!], [ctx.output], {}, ctx.node.name)

/** ONNX's `pads` of a symmetric PyTorch padding: `[top, left, bottom, right]`. */
function pads(padding: Size2 | undefined): number[] {
  const [ph, pw] = pair(padding ?? 0)
  return [ph, pw, ph, pw]
}

/** `dim` of Softmax / LogSoftmax / Concat (PyTorch's, batch = 0) as an axis of the batched tensor, 1..rank. */
function axis(dim: number, rank: number): number {
  return dim < 0 ? dim + rank + 1 : dim
}

/** `0.5 · x · (1 + erf(x / √2))` or its tanh approximation, from elementary ops (opset < 20). */
function geluDecomposed(ctx: ConvertContext, x: string, tanh: boolean): void {
  const { g, node } = ctx
  const c = (what: string, v: number) => g.constant(`${node.name}/${what}`, [], [v])
  let inner: string
  if (tanh) {
    // tanh(√(2/π) · (x + 0.044715 · x³))
    const x2 = scoped(ctx, 'x2'), x3 = scoped(ctx, 'x3'), cx3 = scoped(ctx, 'cx3'), sum = scoped(ctx, 'inner'), arg = scoped(ctx, 'arg')
    g.node('Mul', [x, x], [x2])
    g.node('Mul', [x2, x], [x3])
    g.node('Mul', [x3, c('coef', 0.044715)], [cx3])
    g.node('Add', [x, cx3], [sum])
    g.node('Mul', [sum, c('sqrt_2_over_pi', Math.sqrt(2 / Math.PI))], [arg])
    inner = scoped(ctx, 'tanh')
    g.node('Tanh', [arg], [inner])
  } else {
    const scaled = scoped(ctx, 'scaled')
    g.node('Div', [x, c('sqrt2', Math.SQRT2)], [scaled])
    inner = scoped(ctx, 'erf')
    g.node('Erf', [scaled], [inner])
  }
  const onePlus = scoped(ctx, 'one_plus'), half = scoped(ctx, 'half_x')
  g.node('Add', [inner, c('one', 1)], [onePlus])
  g.node('Mul', [x, c('half', 0.5)], [half])
  g.node('Mul', [half, onePlus], [ctx.output], {}, node.name)
}

function batchNorm(ctx: ConvertContext<Extract<LayerSpec, { op: 'BatchNorm1d' | 'BatchNorm2d' }>>): void {
  const { g, node, layer } = ctx
  const channels = ctx.inputShapes[0]![0]!
  const affine = layer.affine ?? true
  const scale = affine ? required(ctx, 'weight') : g.constant(`${node.name}/ones`, [channels], new Float32Array(channels).fill(1))
  const bias = affine ? required(ctx, 'bias') : g.constant(`${node.name}/zeros`, [channels], new Float32Array(channels))
  g.node('BatchNormalization', [ctx.inputs[0]!, scale, bias, required(ctx, 'running_mean'), required(ctx, 'running_var')], [ctx.output], {
    epsilon: { float: layer.eps ?? 1e-5 },
  }, node.name)
}

function pool(opType: 'MaxPool' | 'AveragePool') {
  return (ctx: ConvertContext<Extract<LayerSpec, { op: 'MaxPool2d' | 'AvgPool2d' }>>): void => {
    const { layer } = ctx
    const attributes: Record<string, AttributeValue> = {
      kernel_shape: ints(pair(layer.kernelSize)),
      strides: ints(pair(layer.stride ?? layer.kernelSize)),
      pads: ints(pads(layer.padding)),
    }
    // nn.AvgPool2d's default: padded zeros count in the divisor.
    if (opType === 'AveragePool') attributes.count_include_pad = { int: 1 }
    ctx.g.node(opType, [ctx.inputs[0]!], [ctx.output], attributes, ctx.node.name)
  }
}

/**
 * `LSTM` / `GRU` as one ONNX LSTM / GRU node per layer (time-major, layout 0: the input
 * is transposed to [T, batch, F] once and back at the end). PyTorch's gate blocks are
 * reordered to ONNX's (LSTM i, f, g, o → i, o, f, c; GRU r, z, n → z, r, h) by Split
 * and Concat of the weights; GRU runs with linear_before_reset = 1, PyTorch's
 * n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn)). `returns` picks Y, Y_h or every
 * layer's (Y_h, Y_c) by Squeeze, Concat and Transpose.
 */
function recurrent(ctx: ConvertContext<Extract<LayerSpec, { op: 'LSTM' | 'GRU' }>>): void {
  const { g, node, layer } = ctx
  const lstm = layer.op === 'LSTM'
  const hidden = layer.hiddenSize, layers = layer.numLayers ?? 1, gates = lstm ? 4 : 3
  const order = lstm ? [0, 3, 1, 2] : [1, 0, 2]
  const returns = layer.returns ?? 'sequence'
  const ints64 = (what: string, v: number[]) => g.constantInt64(`${node.name}/${what}`, [v.length], v)
  const axis0 = ints64('axis0', [0]), axis1 = ints64('axis1', [1])
  const sizes = ints64('gate_sizes', new Array<number>(gates).fill(hidden))
  /** Gate blocks of a [G·H, …] weight or [G·H] bias in ONNX's order. */
  const reorder = (tensor: string, what: string): string[] => {
    const parts = Array.from({ length: gates }, (_, i) => scoped(ctx, `${what}_gate${i}`))
    g.node('Split', [tensor, sizes], parts, { axis: { int: 0 } })
    return order.map((i) => parts[i]!)
  }
  /** Concat of `parts` along axis 0, with a leading num_directions = 1 axis. */
  const stack = (parts: string[], what: string): string => {
    const cat = scoped(ctx, `${what}_onnx_order`)
    g.node('Concat', parts, [cat], { axis: { int: 0 } })
    const out = scoped(ctx, what)
    g.node('Unsqueeze', [cat, axis0], [out])
    return out
  }
  const transpose = (x: string, perm: number[], out = scoped(ctx, `${x}_t`), name?: string): string => {
    g.node('Transpose', [x], [out], { perm: ints(perm) }, name)
    return out
  }
  let x = transpose(ctx.inputs[0]!, [1, 0, 2], scoped(ctx, 'x_time_major'))
  const finals: { h: string; c: string }[] = []
  for (let k = 0; k < layers; k++) {
    const w = stack(reorder(required(ctx, `weight_ih_l${k}`), `W${k}`), `W${k}`)
    const r = stack(reorder(required(ctx, `weight_hh_l${k}`), `R${k}`), `R${k}`)
    const bih = ctx.param(`bias_ih_l${k}`), bhh = ctx.param(`bias_hh_l${k}`)
    const b = bih !== undefined && bhh !== undefined ? stack([...reorder(bih, `Wb${k}`), ...reorder(bhh, `Rb${k}`)], `B${k}`) : ''
    // Initial states [batch, L, H] → layer k's [1, batch, H].
    const initial = ctx.inputs.slice(1).map((s, i) => {
      const sliced = scoped(ctx, `${i === 0 ? 'h0' : 'c0'}_l${k}`)
      g.node('Slice', [s, ints64(`start${k}`, [k]), ints64(`end${k}`, [k + 1]), axis1], [sliced])
      return transpose(sliced, [1, 0, 2])
    })
    const y = scoped(ctx, `Y${k}`), yh = scoped(ctx, `Y_h${k}`), yc = lstm ? scoped(ctx, `Y_c${k}`) : ''
    const attributes: Record<string, AttributeValue> = { hidden_size: { int: hidden } }
    if (!lstm) attributes.linear_before_reset = { int: 1 }
    const inputs = [x, w, r, b, '', ...initial]
    while (inputs[inputs.length - 1] === '') inputs.pop()
    g.node(layer.op, inputs, lstm ? [y, yh, yc] : [y, yh], attributes, `${node.name}/${layer.op}${k}`)
    finals.push({ h: yh, c: yc })
    // Y [T, 1, batch, H] → [T, batch, H], the next layer's input.
    x = scoped(ctx, `seq${k}`)
    g.node('Squeeze', [y, axis1], [x])
  }
  if (returns === 'sequence') {
    transpose(x, [1, 0, 2], ctx.output, node.name)
  } else if (returns === 'last') {
    g.node('Squeeze', [finals[layers - 1]!.h, axis0], [ctx.output], {}, node.name)
  } else {
    // Every layer's final state: [L, batch, H] each, then LSTM [2, L, batch, H].
    const all = (which: 'h' | 'c'): string => {
      const out = scoped(ctx, `${which}_n`)
      g.node('Concat', finals.map((f) => f[which]), [out], { axis: { int: 0 } })
      return out
    }
    if (lstm) {
      const both = [all('h'), all('c')].map((s) => {
        const u = scoped(ctx, `${s}_1`)
        g.node('Unsqueeze', [s, axis0], [u])
        return u
      })
      const state = scoped(ctx, 'state')
      g.node('Concat', both, [state], { axis: { int: 0 } })
      transpose(state, [2, 0, 1, 3], ctx.output, node.name)
    } else {
      transpose(all('h'), [1, 0, 2], ctx.output, node.name)
    }
  }
}

/**
 * Self-attention from standard ops, x [N, T, C], H heads of d = C / H:
 *   qkv = x · in_proj_weightᵀ (+ in_proj_bias)           MatMul (+ Add)   [N, T, 3C]
 *   → Reshape [N, T, 3, H, d] → Transpose [3, N, H, T, d] → Gather q, k, v [N, H, T, d]
 *   s = q · kᵀ · (1/√d) (+ mask: −∞ above the diagonal)   MatMul, Mul (Add) [N, H, T, T]
 *   y = Softmax(s) · v → Transpose [N, T, H, d] → Reshape [N, T, C]
 *   out = y · out_proj.weightᵀ (+ out_proj.bias)
 * Dropout is off at inference. The causal mask is a constant [T, T] broadcast over N
 * and H; every row keeps its diagonal, so Softmax never sees a row of −∞ only.
 */
function multiHeadAttention(ctx: ConvertContext<Extract<LayerSpec, { op: 'MultiHeadAttention' }>>): void {
  const { g, node, layer } = ctx
  const [t, c] = ctx.inputShapes[0] as [number, number]
  const heads = layer.numHeads, d = c / heads
  const at = (what: string) => `${node.name}/${what}`
  const linear = (x: string, weight: string, bias: string | undefined, out: string, what: string) => {
    const wt = scoped(ctx, `${what}_weight_t`)
    g.node('Transpose', [weight], [wt], { perm: ints([1, 0]) })
    const product = bias === undefined ? out : scoped(ctx, `${what}_matmul`)
    g.node('MatMul', [x, wt], [product], {}, bias === undefined && out === ctx.output ? node.name : at(`${what}/MatMul`))
    if (bias !== undefined) g.node('Add', [product, bias], [out], {}, out === ctx.output ? node.name : at(`${what}/Add`))
  }
  const qkv = scoped(ctx, 'qkv')
  linear(ctx.inputs[0]!, required(ctx, 'in_proj_weight'), ctx.param('in_proj_bias'), qkv, 'in_proj')
  const split = scoped(ctx, 'qkv_heads'), heads5 = scoped(ctx, 'qkv_by_head')
  g.node('Reshape', [qkv, g.constantInt64(at('qkv_shape'), [5], [-1, t, 3, heads, d])], [split])
  g.node('Transpose', [split], [heads5], { perm: ints([2, 0, 3, 1, 4]) })
  const [q, k, v] = ['q', 'k', 'v'].map((name, i) => {
    const out = scoped(ctx, name)
    g.node('Gather', [heads5, g.constantInt64(at(`${name}_index`), [], [i])], [out], { axis: { int: 0 } })
    return out
  }) as [string, string, string]
  const kt = scoped(ctx, 'k_t'), product = scoped(ctx, 'qk'), scores = scoped(ctx, 'scores')
  g.node('Transpose', [k], [kt], { perm: ints([0, 1, 3, 2]) })
  g.node('MatMul', [q, kt], [product])
  g.node('Mul', [product, g.constant(at('scale'), [], [1 / Math.sqrt(d)])], [scores])
  let logits = scores
  if (layer.causal ?? false) {
    const mask = new Float32Array(t * t)
    for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) mask[i * t + j] = -Infinity
    logits = scoped(ctx, 'masked_scores')
    g.node('Add', [scores, g.constant(at('causal_mask'), [t, t], mask)], [logits])
  }
  const probs = scoped(ctx, 'probs'), yh = scoped(ctx, 'y_heads'), yt = scoped(ctx, 'y_steps'), y = scoped(ctx, 'y')
  g.node('Softmax', [logits], [probs], { axis: { int: -1 } })
  g.node('MatMul', [probs, v], [yh])
  g.node('Transpose', [yh], [yt], { perm: ints([0, 2, 1, 3]) })
  g.node('Reshape', [yt, g.constantInt64(at('y_shape'), [3], [-1, t, c])], [y])
  linear(y, required(ctx, 'out_proj.weight'), ctx.param('out_proj.bias'), ctx.output, 'out_proj')
}

/** The converters, by op. */
export const CONVERTERS: ConverterTable = {
  Linear(ctx) {
    const { g, node } = ctx
    const weight = required(ctx, 'weight')
    const bias = ctx.param('bias')
    if (ctx.inputShapes[0]!.length === 1) {
      // [batch, in] · weightᵀ + bias
      g.node('Gemm', bias === undefined ? [ctx.inputs[0]!, weight] : [ctx.inputs[0]!, weight, bias], [ctx.output], { transB: { int: 1 } }, node.name)
      return
    }
    // [batch, steps, in] · weightᵀ (+ bias), broadcast over batch and steps.
    const transposed = scoped(ctx, 'weight_t')
    g.node('Transpose', [weight], [transposed], { perm: ints([1, 0]) })
    const product = bias === undefined ? ctx.output : scoped(ctx, 'matmul')
    g.node('MatMul', [ctx.inputs[0]!, transposed], [product], {}, bias === undefined ? node.name : `${node.name}/MatMul`)
    if (bias !== undefined) g.node('Add', [product, bias], [ctx.output], {}, node.name)
  },

  Conv2d(ctx) {
    const { layer } = ctx
    const bias = ctx.param('bias')
    const inputs = [ctx.inputs[0]!, required(ctx, 'weight'), ...(bias === undefined ? [] : [bias])]
    ctx.g.node('Conv', inputs, [ctx.output], {
      kernel_shape: ints(pair(layer.kernelSize)),
      strides: ints(pair(layer.stride ?? 1)),
      pads: ints(pads(layer.padding)),
      dilations: ints(pair(layer.dilation ?? 1)),
      group: { int: layer.groups ?? 1 },
    }, ctx.node.name)
  },

  MaxPool2d: pool('MaxPool'),
  AvgPool2d: pool('AveragePool'),

  AdaptiveAvgPool2d(ctx) {
    const [, h, w] = ctx.inputShapes[0] as [number, number, number]
    const [oh, ow] = pair(ctx.layer.outputSize)
    if (oh === 1 && ow === 1) {
      ctx.g.node('GlobalAveragePool', [ctx.inputs[0]!], [ctx.output], {}, ctx.node.name)
    } else if (h % oh === 0 && w % ow === 0) {
      // Equal windows that tile the input: a plain average pool.
      const kernel = [h / oh, w / ow]
      ctx.g.node('AveragePool', [ctx.inputs[0]!], [ctx.output], { kernel_shape: ints(kernel), strides: ints(kernel) }, ctx.node.name)
    } else {
      throw new OnnxExportError(
        `${ctx.node.name} (AdaptiveAvgPool2d): output size ${oh}×${ow} does not divide the input's ${h}×${w}, so its windows differ in size and no ONNX pooling op matches; ` +
          'pick an output size that divides the input',
        { node: ctx.node.name, op: 'AdaptiveAvgPool2d' },
      )
    }
  },

  BatchNorm1d: batchNorm,
  BatchNorm2d: batchNorm,

  Dropout: unary('Identity'),

  Flatten: (ctx) => ctx.g.node('Flatten', [ctx.inputs[0]!], [ctx.output], { axis: { int: 1 } }, ctx.node.name),

  ReLU: unary('Relu'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),

  SiLU(ctx) {
    const sigmoid = scoped(ctx, 'sigmoid')
    ctx.g.node('Sigmoid', [ctx.inputs[0]!], [sigmoid])
    ctx.g.node('Mul', [ctx.inputs[0]!, sigmoid], [ctx.output], {}, ctx.node.name)
  },

  LeakyReLU: (ctx) => ctx.g.node('LeakyRelu', [ctx.inputs[0]!], [ctx.output], { alpha: { float: ctx.layer.negativeSlope ?? 0.01 } }, ctx.node.name),

  GELU(ctx) {
    const approximate = ctx.layer.approximate ?? 'none'
    if (ctx.opset >= 20) ctx.g.node('Gelu', [ctx.inputs[0]!], [ctx.output], { approximate: { string: approximate } }, ctx.node.name)
    else geluDecomposed(ctx, ctx.inputs[0]!, approximate === 'tanh')
  },

  Softmax: (ctx) =>
    ctx.g.node('Softmax', [ctx.inputs[0]!], [ctx.output], { axis: { int: axis(ctx.layer.dim ?? -1, ctx.outputShape.length) } }, ctx.node.name),
  LogSoftmax: (ctx) =>
    ctx.g.node('LogSoftmax', [ctx.inputs[0]!], [ctx.output], { axis: { int: axis(ctx.layer.dim ?? -1, ctx.outputShape.length) } }, ctx.node.name),

  Add(ctx) {
    // Left to right, as `a + b + c` sums.
    let sum = ctx.inputs[0]!
    ctx.inputs.slice(1).forEach((x, i) => {
      const last = i === ctx.inputs.length - 2
      const out = last ? ctx.output : scoped(ctx, `sum${i + 1}`)
      ctx.g.node('Add', [sum, x], [out], {}, last ? ctx.node.name : `${ctx.node.name}/Add${i + 1}`)
      sum = out
    })
  },

  Concat: (ctx) =>
    ctx.g.node('Concat', [...ctx.inputs], [ctx.output], { axis: { int: axis(ctx.layer.dim ?? 1, ctx.outputShape.length) } }, ctx.node.name),

  Embedding(ctx) {
    // The float ids → int64, then rows of the table: Gather(weight, ids) on axis 0.
    const ids = scoped(ctx, 'ids')
    ctx.g.node('Cast', [ctx.inputs[0]!], [ids], { to: { int: INT64 } })
    ctx.g.node('Gather', [required(ctx, 'weight'), ids], [ctx.output], { axis: { int: 0 } }, ctx.node.name)
  },

  PositionEmbedding(ctx) {
    // input [batch, T, C] + weight[0..T] (broadcast over the batch).
    const { g, node } = ctx
    const steps = ctx.inputShapes[0]![0]!
    const positions = ctx.layer.numPositions ?? steps
    let table = required(ctx, 'weight')
    if (positions !== steps) {
      const sliced = scoped(ctx, 'weight_0_T')
      g.node('Slice', [table, g.constantInt64(`${node.name}/starts`, [1], [0]), g.constantInt64(`${node.name}/ends`, [1], [steps]), g.constantInt64(`${node.name}/axes`, [1], [0])], [sliced])
      table = sliced
    }
    g.node('Add', [ctx.inputs[0]!, table], [ctx.output], {}, node.name)
  },

  LayerNorm(ctx) {
    // LayerNormalization (opset 17) over the last axis; without affine, scale = 1.
    const { g, node, layer } = ctx
    const c = ctx.inputShapes[0]!.at(-1)!
    const scale = ctx.param('weight') ?? g.constant(`${node.name}/ones`, [c], new Float32Array(c).fill(1))
    const bias = ctx.param('bias')
    g.node('LayerNormalization', bias === undefined ? [ctx.inputs[0]!, scale] : [ctx.inputs[0]!, scale, bias], [ctx.output], {
      axis: { int: -1 },
      epsilon: { float: layer.eps ?? 1e-5 },
    }, node.name)
  },
  MultiHeadAttention: multiHeadAttention,
  Reparameterize(ctx) {
    const { g, node } = ctx
    const [mean, logvar] = ctx.inputs as [string, string]
    // At inference z = mean, unless the net samples in eval mode too: then
    // mean + exp(0.5·logvar)·ε with ONNX Runtime's own ε (not ferronet's stream).
    if (!ctx.layer.sampleInEval) return g.node('Identity', [mean], [ctx.output], {}, node.name)
    const half = scoped(ctx, 'half_logvar'), std = scoped(ctx, 'std'), eps = scoped(ctx, 'eps'), noise = scoped(ctx, 'noise')
    g.node('Mul', [logvar, g.constant(`${node.name}/half`, [], [0.5])], [half])
    g.node('Exp', [half], [std])
    g.node('RandomNormalLike', [mean], [eps], { mean: { float: 0 }, scale: { float: 1 } })
    g.node('Mul', [std, eps], [noise])
    g.node('Add', [mean, noise], [ctx.output], {}, node.name)
  },

  KLDivergence(ctx) {
    const { g, node } = ctx
    const [mean, logvar] = ctx.inputs as [string, string]
    // −0.5 · ReduceSum(1 + logvar − mean² − exp(logvar)) over each sample's values → [batch, 1].
    const v = (what: string) => scoped(ctx, what)
    const [m2, e, a, b, t, flat, sum] = ['mean2', 'exp', 'one_plus', 'minus_mean2', 'terms', 'flat', 'sum'].map(v) as [string, string, string, string, string, string, string]
    g.node('Mul', [mean, mean], [m2])
    g.node('Exp', [logvar], [e])
    g.node('Add', [logvar, g.constant(`${node.name}/one`, [], [1])], [a])
    g.node('Sub', [a, m2], [b])
    g.node('Sub', [b, e], [t])
    g.node('Flatten', [t], [flat], { axis: { int: 1 } })
    g.node('ReduceSum', [flat, g.constantInt64(`${node.name}/axes`, [1], [1])], [sum], { keepdims: { int: 1 } })
    g.node('Mul', [sum, g.constant(`${node.name}/minus_half`, [], [-0.5])], [ctx.output], {}, node.name)
  },

  LSTM: recurrent,
  GRU: recurrent,
}
