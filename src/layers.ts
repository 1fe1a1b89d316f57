/**
 * Layer specs: plain, typed objects (a discriminated union on `op`) that are the
 * nodes of the JSON model spec (docs/graph-spec.md), their validation and their
 * shape inference. Every check here runs before any native call; the Rust core
 * checks the compiled graph again with the same rules (PyTorch's formulas).
 */

import { OptionError, ShapeError } from './errors.js'
import { describe } from './validate.js'

/** A size given as one number (the same for height and width) or a pair `[h, w]`, in pixels. */
export type Size2 = number | readonly [number, number]

/** `nn.Linear` on the last dimension: weight `[outFeatures, in]`, bias `[outFeatures]`. Built by {@link Net.dense}. */
export interface LinearSpec {
  /** The op name in the spec. */
  readonly op: 'Linear'
  /** Output features, an integer >= 1; the input features come from the input shape. */
  readonly outFeatures: number
  /** Whether the layer adds a bias (default `true`). */
  readonly bias?: boolean
  /**
   * Weight tying: the name of an {@link EmbeddingSpec} node listed before this one whose
   * weight `[numEmbeddings, embeddingDim]` this layer uses as its own `[outFeatures, in]`
   * (a GPT's output projection: nanoGPT's `lm_head.weight = wte.weight`). One tensor,
   * listed under both names by {@link Net.parameters}, its gradient the sum of both uses.
   */
  readonly tiedTo?: string
}
/** `nn.Conv2d` on `[C, H, W]`: weight `[outChannels, C / groups, kh, kw]`, output `[outChannels, H', W']` (PyTorch's formula). Built by {@link Net.conv2d}. */
export interface Conv2dSpec {
  /** The op name in the spec. */
  readonly op: 'Conv2d'
  /** Output channels, an integer >= 1 divisible by `groups`. */
  readonly outChannels: number
  /** Kernel height and width in pixels. */
  readonly kernelSize: Size2
  /** Step between windows in pixels (default `1`). */
  readonly stride?: Size2
  /** Zero padding added on each side in pixels (default `0`). */
  readonly padding?: Size2
  /** Spacing between kernel taps (default `1`). */
  readonly dilation?: Size2
  /** Blocked connections between input and output channels (default `1`); both channel counts must divide by it. */
  readonly groups?: number
  /** Whether the layer adds a bias `[outChannels]` (default `true`). */
  readonly bias?: boolean
}
/** `nn.MaxPool2d` on `[C, H, W]`. Built by {@link Net.maxPool2d}. */
export interface MaxPool2dSpec {
  /** The op name in the spec. */
  readonly op: 'MaxPool2d'
  /** Window height and width in pixels. */
  readonly kernelSize: Size2
  /** Step between windows in pixels (default: the kernel size). */
  readonly stride?: Size2
  /** Implicit padding on each side (default `0`), at most half the kernel size. */
  readonly padding?: Size2
}
/** `nn.AvgPool2d` on `[C, H, W]` (count_include_pad = true). Built by {@link Net.avgPool2d}. */
export interface AvgPool2dSpec {
  /** The op name in the spec. */
  readonly op: 'AvgPool2d'
  /** Window height and width in pixels. */
  readonly kernelSize: Size2
  /** Step between windows in pixels (default: the kernel size). */
  readonly stride?: Size2
  /** Zero padding on each side (default `0`), counted in the average; at most half the kernel size. */
  readonly padding?: Size2
}
/** `nn.AdaptiveAvgPool2d`: `[C, H, W]` → `[C, outH, outW]`. Built by {@link Net.adaptiveAvgPool2d}. */
export interface AdaptiveAvgPool2dSpec {
  /** The op name in the spec. */
  readonly op: 'AdaptiveAvgPool2d'
  /** Output height and width in pixels (`1` for global average pooling). */
  readonly outputSize: Size2
}
/** `nn.BatchNorm1d` on `[F]` or `[C, L]`: weight and bias `[F]` (or `[C]`), buffers `running_mean`, `running_var` of that size (no `num_batches_tracked`). Built by {@link Net.batchNorm1d}. */
export interface BatchNorm1dSpec {
  /** The op name in the spec. */
  readonly op: 'BatchNorm1d'
  /** Added to the variance, > 0 (default `1e-5`). */
  readonly eps?: number
  /** Weight of the new batch in the running statistics, in `[0, 1]` (default `0.1`). */
  readonly momentum?: number
  /** Whether it has a learned scale and shift (default `true`). */
  readonly affine?: boolean
}
/** `nn.BatchNorm2d` on `[C, H, W]`, per channel: weight and bias `[C]`, running statistics as buffers. Built by {@link Net.batchNorm2d}. */
export interface BatchNorm2dSpec {
  /** The op name in the spec. */
  readonly op: 'BatchNorm2d'
  /** Added to the variance, > 0 (default `1e-5`). */
  readonly eps?: number
  /** Weight of the new batch in the running statistics, in `[0, 1]` (default `0.1`). */
  readonly momentum?: number
  /** Whether it has a learned scale and shift (default `true`). */
  readonly affine?: boolean
}
/** `nn.Dropout`: zeroes each value with probability `p` and scales the rest by 1/(1-p) in training, the identity in evaluation. Built by {@link Net.dropout}. */
export interface DropoutSpec {
  /** The op name in the spec. */
  readonly op: 'Dropout'
  /** Probability of zeroing a value, in `[0, 1)` (default `0.5`). */
  readonly p?: number
}
/**
 * `nn.MultiheadAttention(C, numHeads, dropout, bias, batch_first=True)` as self-attention on
 * `[steps, C]` sequences, `mha(x, x, x, need_weights=False, attn_mask=causal mask)`: output
 * `[steps, C]`. Tensors `in_proj_weight` `[3C, C]`, `in_proj_bias` `[3C]`, `out_proj.weight`
 * `[C, C]`, `out_proj.bias` `[C]` (PyTorch's names and init). Built by {@link Net.multiHeadAttention}.
 */
export interface MultiHeadAttentionSpec {
  /** The op name in the spec. */
  readonly op: 'MultiHeadAttention'
  /** Attention heads, an integer >= 1 that divides the embedding size C (the input's last dimension). */
  readonly numHeads: number
  /** Whether step t attends only to steps <= t (default `false`). */
  readonly causal?: boolean
  /** Dropout probability on the attention weights in training, in `[0, 1)` (default `0`). */
  readonly dropout?: number
  /** Whether the input and output projections add biases (default `true`). */
  readonly bias?: boolean
}
/** `nn.Flatten()` (start_dim 1): `[C, H, W]` → `[C·H·W]`. Built by {@link Net.flatten}. */
export interface FlattenSpec {
  /** The op name in the spec. */
  readonly op: 'Flatten'
}
/** `nn.ReLU()`: max(x, 0), element-wise. Built by {@link Net.relu}. */
export interface ReluSpec {
  /** The op name in the spec. */
  readonly op: 'ReLU'
}
/** `nn.Sigmoid()`, element-wise. Built by {@link Net.sigmoid}. */
export interface SigmoidSpec {
  /** The op name in the spec. */
  readonly op: 'Sigmoid'
}
/** `nn.Tanh()`, element-wise. Built by {@link Net.tanh}. */
export interface TanhSpec {
  /** The op name in the spec. */
  readonly op: 'Tanh'
}
/** `nn.SiLU()`: x · sigmoid(x), element-wise. Built by {@link Net.silu}. */
export interface SiluSpec {
  /** The op name in the spec. */
  readonly op: 'SiLU'
}
/** `nn.LeakyReLU`: x for x >= 0, `negativeSlope` · x below, element-wise. Built by {@link Net.leakyRelu}. */
export interface LeakyReluSpec {
  /** The op name in the spec. */
  readonly op: 'LeakyReLU'
  /** Slope for negative inputs, a finite number (default `0.01`). */
  readonly negativeSlope?: number
}
/** `nn.GELU`, element-wise. Built by {@link Net.gelu}. */
export interface GeluSpec {
  /** The op name in the spec. */
  readonly op: 'GELU'
  /** `'none'` (default): the exact x · Φ(x) with the error function; `'tanh'`: the tanh approximation. */
  readonly approximate?: 'none' | 'tanh'
}
/** `nn.Softmax(dim)`: probabilities along `dim`. Built by {@link Net.softmax}. */
export interface SoftmaxSpec {
  /** The op name in the spec. */
  readonly op: 'Softmax'
  /** Dimension, counted as in PyTorch with the batch as dim 0 (default `-1`, the last); the batch dim itself is refused. */
  readonly dim?: number
}
/** `nn.LogSoftmax(dim)`: log-probabilities along `dim`. Built by {@link Net.logSoftmax}. */
export interface LogSoftmaxSpec {
  /** The op name in the spec. */
  readonly op: 'LogSoftmax'
  /** Dimension, counted as in PyTorch with the batch as dim 0 (default `-1`, the last); the batch dim itself is refused. */
  readonly dim?: number
}
/** Element-wise sum of two or more inputs of one shape (functional API only). Built by {@link Net.add}. */
export interface AddSpec {
  /** The op name in the spec. */
  readonly op: 'Add'
}
/** `torch.cat` of two or more inputs along `dim`; the other dims must be equal (functional API only). Built by {@link Net.concat}. */
export interface ConcatSpec {
  /** The op name in the spec. */
  readonly op: 'Concat'
  /** Dimension, counted with the batch as dim 0 (default `1`: channels or features). */
  readonly dim?: number
}
/** What a recurrent layer outputs: every step's h, the last step's h, or every layer's final state. */
export type RecurrentReturns = 'sequence' | 'last' | 'state'
/**
 * `nn.LSTM(in, hiddenSize, numLayers, bias, batch_first=True)` on sequences `[T, F]` per sample.
 * Parameters per layer k: `weight_ih_l{k}` `[4·hiddenSize, in]`, `weight_hh_l{k}` `[4·hiddenSize, hiddenSize]`,
 * `bias_ih_l{k}`, `bias_hh_l{k}` `[4·hiddenSize]` (gates i, f, g, o, as PyTorch). Inputs `[x]`, or
 * `[x, h0, c0]` with initial states `[numLayers, hiddenSize]` per sample. Built by {@link Net.lstm}.
 */
export interface LstmSpec {
  /** The op name in the spec. */
  readonly op: 'LSTM'
  /** Units of the hidden state h (and of the cell state c), an integer >= 1. */
  readonly hiddenSize: number
  /** Stacked layers, each reading the sequence of the one below (default `1`). */
  readonly numLayers?: number
  /** Whether the layers have biases `bias_ih` and `bias_hh` (default `true`). */
  readonly bias?: boolean
  /** `'sequence'` (default): `[T, hiddenSize]`, the top layer's h at every step; `'last'`: `[hiddenSize]`, its h at the last step; `'state'`: `[2, numLayers, hiddenSize]`, h_n then c_n of every layer. */
  readonly returns?: RecurrentReturns
}
/**
 * `nn.GRU(in, hiddenSize, numLayers, bias, batch_first=True)` on sequences `[T, F]` per sample.
 * Parameters per layer k: `weight_ih_l{k}` `[3·hiddenSize, in]`, `weight_hh_l{k}` `[3·hiddenSize, hiddenSize]`,
 * `bias_ih_l{k}`, `bias_hh_l{k}` `[3·hiddenSize]` (gates r, z, n, as PyTorch). Inputs `[x]`, or `[x, h0]`
 * with the initial state `[numLayers, hiddenSize]` per sample. Built by {@link Net.gru}.
 */
export interface GruSpec {
  /** The op name in the spec. */
  readonly op: 'GRU'
  /** Units of the hidden state h, an integer >= 1. */
  readonly hiddenSize: number
  /** Stacked layers, each reading the sequence of the one below (default `1`). */
  readonly numLayers?: number
  /** Whether the layers have biases `bias_ih` and `bias_hh` (default `true`). */
  readonly bias?: boolean
  /** `'sequence'` (default): `[T, hiddenSize]`, the top layer's h at every step; `'last'`: `[hiddenSize]`, its h at the last step; `'state'`: `[numLayers, hiddenSize]`, h_n of every layer. */
  readonly returns?: RecurrentReturns
}

/**
 * `nn.Embedding`: a lookup table. Per sample, integer ids `[T]` (carried as floats,
 * exact up to 2^24) → their rows `[T, embeddingDim]`. Weight `[numEmbeddings,
 * embeddingDim]`, init N(0, 1). Ids that are not integers in `0..numEmbeddings` are an
 * {@link InvalidInputError}. Built by {@link Net.embedding}.
 */
export interface EmbeddingSpec {
  /** The op name in the spec. */
  readonly op: 'Embedding'
  /** Rows of the table (the vocabulary size), an integer in 1..2^24. */
  readonly numEmbeddings: number
  /** Width of a row, an integer >= 1. */
  readonly embeddingDim: number
  /** An id whose row starts at zero and gets no gradient (padding); negative counts from the end. */
  readonly paddingIdx?: number
}
/**
 * Learned absolute positions (GPT-2's `wpe`): `[T, C]` → input + weight`[0..T]`; weight
 * `[numPositions, C]`, init N(0, 1). Built by {@link Net.positionEmbedding}.
 */
export interface PositionEmbeddingSpec {
  /** The op name in the spec. */
  readonly op: 'PositionEmbedding'
  /** Rows of the table, at least the input's steps T (default: T). */
  readonly numPositions?: number
}
/**
 * `nn.LayerNorm(C)` over the last dimension of `[F]` or `[T, F]` samples: each row
 * normalised by its own mean and variance, then scaled by weight `[C]` (ones) and
 * shifted by bias `[C]` (zeros). Built by {@link Net.layerNorm}.
 */
export interface LayerNormSpec {
  /** The op name in the spec. */
  readonly op: 'LayerNorm'
  /** Added to the variance, > 0 (default `1e-5`). */
  readonly eps?: number
  /** Whether it has a learned weight (and bias) (default `true`). */
  readonly elementwiseAffine?: boolean
  /** Whether it has a learned bias, with `elementwiseAffine` (default `true`). */
  readonly bias?: boolean
}
/**
 * A VAE's sampling step on inputs `[mean, logvar]` (one shape): z = mean +
 * exp(0.5·logvar)·ε, ε ~ N(0, 1) drawn per training step from the net's seed
 * (the same for any thread count); differentiable in mean and logvar. In eval mode
 * (predict, evaluate) it outputs the mean, unless `sampleInEval` (functional API only).
 * Built by {@link Net.reparameterize}.
 */
export interface ReparameterizeSpec {
  /** The op name in the spec. */
  readonly op: 'Reparameterize'
  /** Also sample in eval mode (as PyTorch's examples/vae does in its test loop); default `false`: output the mean. */
  readonly sampleInEval?: boolean
}
/**
 * KL(N(mean, exp(logvar)) ‖ N(0, 1)) per sample on inputs `[mean, logvar]`: output `[1]`,
 * −0.5·Σ(1 + logvar − mean² − exp(logvar)); a VAE's prior term, trained as a loss term
 * `{ output, loss: 'value' }` (functional API only). Built by {@link Net.klDivergence}.
 */
export interface KLDivergenceSpec {
  /** The op name in the spec. */
  readonly op: 'KLDivergence'
}

/** One layer: a node of the model spec without its name and inputs. */
export type LayerSpec =
  | LinearSpec | Conv2dSpec | MaxPool2dSpec | AvgPool2dSpec | AdaptiveAvgPool2dSpec
  | BatchNorm1dSpec | BatchNorm2dSpec | DropoutSpec | FlattenSpec
  | ReluSpec | SigmoidSpec | TanhSpec | SiluSpec | LeakyReluSpec | GeluSpec
  | SoftmaxSpec | LogSoftmaxSpec | AddSpec | ConcatSpec
  | EmbeddingSpec | PositionEmbeddingSpec | LayerNormSpec
  | MultiHeadAttentionSpec
  | ReparameterizeSpec | KLDivergenceSpec | LstmSpec | GruSpec

/** Every op name of the spec. */
export type OpName = LayerSpec['op']

type FieldCheck = (field: string, value: unknown) => unknown
interface OpInfo {
  /** Config fields: checker; `required` ones must be present. */
  fields: Record<string, FieldCheck>
  required?: readonly string[]
  /** Inputs taken: exactly `1` or `2`, `'many'` (two or more), or one of the listed counts. */
  arity: Arity
}

/** How many inputs an op takes: exactly `1` or `2`, `'many'` (two or more), or one of the listed counts. */
export type Arity = 1 | 2 | 'many' | readonly number[]

const int = (min: number) => (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new OptionError(field, `must be an integer >= ${min}, got ${describe(v)}`)
  return v
}
const anyInt = (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new OptionError(field, `must be an integer, got ${describe(v)}`)
  return v
}
const size2 = (min: number) => (field: string, v: unknown): Size2 => {
  if (Array.isArray(v)) {
    if (v.length !== 2) throw new OptionError(field, `must be an integer or a pair [h, w], got ${describe(v)}`)
    return Object.freeze([int(min)(`${field}[0]`, v[0]), int(min)(`${field}[1]`, v[1])]) as readonly [number, number]
  }
  return int(min)(field, v)
}
const bool = (field: string, v: unknown): boolean => {
  if (typeof v !== 'boolean') throw new OptionError(field, `must be true or false, got ${describe(v)}`)
  return v
}
const finite = (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new OptionError(field, `must be a finite number, got ${describe(v)}`)
  return v
}
const positive = (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new OptionError(field, `must be a finite number > 0, got ${describe(v)}`)
  return v
}
const unit = (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new OptionError(field, `must be a number in [0, 1), got ${describe(v)}`)
  return v
}
const momentum = (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new OptionError(field, `must be a number in [0, 1], got ${describe(v)}`)
  return v
}
const approximate = (field: string, v: unknown): 'none' | 'tanh' => {
  if (v !== 'none' && v !== 'tanh') throw new OptionError(field, `must be "none" or "tanh", got ${describe(v)}`)
  return v
}

const nodeName = (field: string, v: unknown): string => {
  if (typeof v !== 'string' || v === '') throw new OptionError(field, `must be the name of a node, got ${describe(v)}`)
  return v
}
/** Ids are carried as f32: integers are exact up to 2^24. */
export const MAX_EXACT_ID = 2 ** 24
const maxInt = (min: number, max: number) => (field: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new OptionError(field, `must be an integer in ${min}..${max}, got ${describe(v)}`)
  return v
}
const returns = (field: string, v: unknown): RecurrentReturns => {
  if (v !== 'sequence' && v !== 'last' && v !== 'state') throw new OptionError(field, `must be "sequence", "last" or "state", got ${describe(v)}`)
  return v
}

const BN = { eps: positive, momentum, affine: bool }
const RNN = { hiddenSize: int(1), numLayers: int(1), bias: bool, returns }
const POOL = { kernelSize: size2(1), stride: size2(1), padding: size2(0) }

/** What each op takes. */
export const OPS: Readonly<Record<OpName, OpInfo>> = {
  Linear: { fields: { outFeatures: int(1), bias: bool, tiedTo: nodeName }, required: ['outFeatures'], arity: 1 },
  Conv2d: {
    fields: { outChannels: int(1), kernelSize: size2(1), stride: size2(1), padding: size2(0), dilation: size2(1), groups: int(1), bias: bool },
    required: ['outChannels', 'kernelSize'],
    arity: 1,
  },
  MaxPool2d: { fields: POOL, required: ['kernelSize'], arity: 1 },
  AvgPool2d: { fields: POOL, required: ['kernelSize'], arity: 1 },
  AdaptiveAvgPool2d: { fields: { outputSize: size2(1) }, required: ['outputSize'], arity: 1 },
  BatchNorm1d: { fields: BN, arity: 1 },
  BatchNorm2d: { fields: BN, arity: 1 },
  Dropout: { fields: { p: unit }, arity: 1 },
  Flatten: { fields: {}, arity: 1 },
  ReLU: { fields: {}, arity: 1 },
  Sigmoid: { fields: {}, arity: 1 },
  Tanh: { fields: {}, arity: 1 },
  SiLU: { fields: {}, arity: 1 },
  LeakyReLU: { fields: { negativeSlope: finite }, arity: 1 },
  GELU: { fields: { approximate }, arity: 1 },
  Softmax: { fields: { dim: anyInt }, arity: 1 },
  LogSoftmax: { fields: { dim: anyInt }, arity: 1 },
  Add: { fields: {}, arity: 'many' },
  Concat: { fields: { dim: anyInt }, arity: 'many' },
  Embedding: { fields: { numEmbeddings: maxInt(1, MAX_EXACT_ID), embeddingDim: int(1), paddingIdx: anyInt }, required: ['numEmbeddings', 'embeddingDim'], arity: 1 },
  PositionEmbedding: { fields: { numPositions: int(1) }, arity: 1 },
  LayerNorm: { fields: { eps: positive, elementwiseAffine: bool, bias: bool }, arity: 1 },
  MultiHeadAttention: { fields: { numHeads: int(1), causal: bool, dropout: unit, bias: bool }, required: ['numHeads'], arity: 1 },
  Reparameterize: { fields: { sampleInEval: bool }, arity: 2 },
  KLDivergence: { fields: {}, arity: 2 },
  LSTM: { fields: RNN, required: ['hiddenSize'], arity: [1, 3] },
  GRU: { fields: RNN, required: ['hiddenSize'], arity: [1, 2] },
}

const OP_NAMES = Object.keys(OPS) as OpName[]

/**
 * Checks a layer object (from a builder, a hand-written object or a saved spec's
 * `op` + `config`) and returns a frozen, normalised copy without undefined fields.
 * `path` prefixes the field names of errors (`layers[2]`, `conv2d`, `nodes[conv1].config`).
 */
export function normalizeLayer(op: unknown, config: unknown, path: string, opPath = `${path}.op`): LayerSpec {
  if (typeof op !== 'string' || !(OP_NAMES as string[]).includes(op)) {
    throw new OptionError(opPath, `must be one of ${OP_NAMES.join(', ')}, got ${describe(op)}`)
  }
  const info = OPS[op as OpName]
  if (config !== undefined && config !== null && (typeof config !== 'object' || Array.isArray(config))) {
    throw new OptionError(path, `must be an object of ${op} options, got ${describe(config)}`)
  }
  const out: Record<string, unknown> = { op }
  const given = (config ?? {}) as Record<string, unknown>
  for (const [key, value] of Object.entries(given)) {
    const check = info.fields[key]
    if (!check) {
      const known = Object.keys(info.fields)
      throw new OptionError(`${path}.${key}`, `is not an option of ${op}${known.length ? ` (it takes ${known.join(', ')})` : ' (it takes none)'}`)
    }
    if (value !== undefined) out[key] = check(`${path}.${key}`, value)
  }
  for (const key of info.required ?? []) {
    if (out[key] === undefined) throw new OptionError(`${path}.${key}`, `is required by ${op}`)
  }
  if (op === 'Conv2d') {
    const groups = (out.groups as number | undefined) ?? 1
    if ((out.outChannels as number) % groups !== 0) {
      throw new OptionError(`${path}.groups`, `outChannels (${String(out.outChannels)}) must be divisible by groups (${groups})`)
    }
  }
  if (op === 'Embedding' && out.paddingIdx !== undefined) {
    const v = out.numEmbeddings as number, p = out.paddingIdx as number
    if (p < -v || p >= v) throw new OptionError(`${path}.paddingIdx`, `${p} is out of range for numEmbeddings ${v} (use -${v}..${v - 1})`)
  }
  if (op === 'MaxPool2d' || op === 'AvgPool2d') {
    const [kh, kw] = pair(out.kernelSize as Size2)
    const [ph, pw] = pair((out.padding as Size2 | undefined) ?? 0)
    if (ph > kh / 2 || pw > kw / 2) {
      throw new OptionError(`${path}.padding`, `must be at most half the kernel size (${kh}×${kw}), got ${ph}×${pw}`)
    }
  }
  return Object.freeze(out) as unknown as LayerSpec
}

/** The spec `config` of a layer: its fields but `op`, or undefined when it has none. */
export function layerConfig(layer: LayerSpec): Record<string, unknown> | undefined {
  const { op: _op, ...rest } = layer as unknown as Record<string, unknown>
  const clean = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined))
  return Object.keys(clean).length ? clean : undefined
}

/** How many inputs a layer takes: exactly 1 or 2, 2 and more, or one of the listed counts. */
export function layerArity(layer: LayerSpec): Arity {
  return OPS[layer.op].arity
}

/** Whether a layer can take a single input (and so sit in a {@link Net.sequential} chain). */
export function takesOneInput(layer: LayerSpec): boolean {
  const arity = OPS[layer.op].arity
  return arity === 1 || (Array.isArray(arity) && arity.includes(1))
}

export function pair(v: Size2): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]]
}

export const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`

/**
 * The per-sample output shape of `layer` on `inputs`, PyTorch's formulas; throws a
 * ShapeError naming `label` (e.g. `layer 3` or `conv2`) and the shapes when the inputs do not fit.
 */
export function inferShape(layer: LayerSpec, inputs: readonly (readonly number[])[], label: string, node: string = label): number[] {
  const who = `${label} (${layer.op})`
  const arity = OPS[layer.op].arity
  if (arity === 1 && inputs.length !== 1) throw new ShapeError(`${who} takes 1 input, got ${inputs.length}`, node)
  if (arity === 'many' && inputs.length < 2) throw new ShapeError(`${who} takes two or more inputs, got ${inputs.length}`, node)
  if (arity === 2 && inputs.length !== 2) throw new ShapeError(`${who} takes 2 inputs [mean, logvar], got ${inputs.length}`, node)
  if (Array.isArray(arity) && !arity.includes(inputs.length)) throw new ShapeError(`${who} takes ${arity.join(' or ')} inputs, got ${inputs.length}`, node)
  const x = inputs[0]!
  const spatial = (what: string): [number, number, number] => {
    if (x.length !== 3) {
      throw new ShapeError(`${who} needs [channels, height, width], got ${fmt(x)}${x.length === 1 ? `: ${what}` : ''}`, node)
    }
    return [x[0]!, x[1]!, x[2]!]
  }
  const window = (c: number, h: number, w: number, k: Size2, s: Size2, p: Size2, d: Size2, outC: number): number[] => {
    const [kh, kw] = pair(k), [sh, sw] = pair(s), [ph, pw] = pair(p), [dh, dw] = pair(d)
    const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1
    const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1
    if (oh < 1 || ow < 1) {
      throw new ShapeError(`${who} with kernel ${kh}×${kw}${dh * dw > 1 ? `, dilation ${dh}×${dw}` : ''} and padding ${ph}×${pw} does not fit input shape ${fmt([c, h, w])} (output would be ${oh}×${ow})`, node)
    }
    return [outC, oh, ow]
  }
  const reshapeHint = 'reshape the input to [channels, height, width], e.g. Net.sequential([1, 28, 28], ...)'
  switch (layer.op) {
    case 'Linear':
      if (x.length === 0 || x.length > 2) {
        throw new ShapeError(`${who} needs [features] or [steps, features], got ${fmt(x)}${x.length > 2 ? ': add Net.flatten() before it' : ''}`, node)
      }
      return [...x.slice(0, -1), layer.outFeatures]
    case 'Conv2d': {
      const [c, h, w] = spatial(reshapeHint)
      const groups = layer.groups ?? 1
      if (c % groups !== 0) throw new ShapeError(`${who} expects input channels divisible by groups ${groups}, got ${c} (input shape ${fmt(x)})`, node)
      return window(c, h, w, layer.kernelSize, layer.stride ?? 1, layer.padding ?? 0, layer.dilation ?? 1, layer.outChannels)
    }
    case 'MaxPool2d':
    case 'AvgPool2d': {
      const [c, h, w] = spatial(reshapeHint)
      return window(c, h, w, layer.kernelSize, layer.stride ?? layer.kernelSize, layer.padding ?? 0, 1, c)
    }
    case 'AdaptiveAvgPool2d': {
      const [c] = spatial(reshapeHint)
      const [oh, ow] = pair(layer.outputSize)
      return [c, oh, ow]
    }
    case 'BatchNorm1d':
      if (x.length !== 1 && x.length !== 2) throw new ShapeError(`${who} needs [features] or [channels, length], got ${fmt(x)}${x.length === 3 ? ': use Net.batchNorm2d() for images' : ''}`, node)
      return [...x]
    case 'BatchNorm2d':
      if (x.length !== 3) throw new ShapeError(`${who} needs [channels, height, width], got ${fmt(x)}${x.length <= 2 ? ': use Net.batchNorm1d() for features' : ''}`, node)
      return [...x]
    case 'Flatten':
      return [x.reduce((a, b) => a * b, 1)]
    case 'Embedding': {
      const out = [...x, layer.embeddingDim]
      // The core reads ids and rows in their given order: shapes it stores channels-last are refused.
      if (channelsLast(x) || channelsLast(out)) throw new ShapeError(`${who} takes ids of shape [T] (or any shape whose output S + [C] is not a 3-d image), got input shape ${fmt(x)}`, node)
      return out
    }
    case 'PositionEmbedding': {
      if (x.length !== 2) throw new ShapeError(`${who} takes a sequence [steps, features] per sample, got input shape ${fmt(x)}`, node)
      const p = layer.numPositions ?? x[0]!
      if (p < x[0]!) throw new ShapeError(`${who}: ${p} positions (numPositions) is fewer than the input's ${x[0]} steps (input shape ${fmt(x)})`, node)
      return [...x]
    }
    case 'LayerNorm':
      if (x.length === 0 || channelsLast(x)) throw new ShapeError(`${who} normalises the last dimension of [features] or [steps, features] samples, got input shape ${fmt(x)}`, node)
      return [...x]
    case 'Softmax':
    case 'LogSoftmax':
      batchDim(who, node, layer.dim ?? -1, x.length)
      return [...x]
    case 'Add':
      inputs.forEach((s, i) => {
        if (fmt(s) !== fmt(x)) throw new ShapeError(`${who} needs inputs of one shape, got ${inputs.map(fmt).join(' and ')} (input ${i} differs)`, node)
      })
      return [...x]
    case 'Concat': {
      const d = batchDim(who, node, layer.dim ?? 1, x.length) - 1
      const out = [...x]
      inputs.forEach((s, i) => {
        const fits = s.length === x.length && s.every((v, k) => k === d || v === x[k])
        if (!fits) throw new ShapeError(`${who} along dim ${d + 1} needs inputs equal in every other dim, got ${inputs.map(fmt).join(' and ')} (input ${i} differs)`, node)
        if (i > 0) out[d]! += s[d]!
      })
      return out
    }
    case 'MultiHeadAttention':
      if (x.length !== 2) throw new ShapeError(`${who} needs [steps, embedding], got ${fmt(x)}`, node)
      if (x[1]! % layer.numHeads !== 0) {
        throw new ShapeError(`${who}: the embedding size ${x[1]} (input shape ${fmt(x)}) must be divisible by numHeads ${layer.numHeads}`, node)
      }
      return [...x]
    case 'Reparameterize':
    case 'KLDivergence':
      if (fmt(inputs[1]!) !== fmt(x)) throw new ShapeError(`${who}: mean and logvar need one shape, got ${fmt(x)} and ${fmt(inputs[1]!)}`, node)
      return layer.op === 'KLDivergence' ? [1] : [...x]
    case 'LSTM':
    case 'GRU': {
      if (x.length !== 2) throw new ShapeError(`${who} needs a sequence [steps, features] per sample (batch-first), got ${fmt(x)}`, node)
      const layers = layer.numLayers ?? 1, hidden = layer.hiddenSize
      inputs.slice(1).forEach((s, i) => {
        if (fmt(s) !== fmt([layers, hidden])) {
          throw new ShapeError(`${who} takes its initial state ${i === 0 ? 'h0' : 'c0'} (input ${i + 1}) as [numLayers, hiddenSize] = ${fmt([layers, hidden])} per sample, got ${fmt(s)}`, node)
        }
      })
      switch (layer.returns ?? 'sequence') {
        case 'sequence':
          return [x[0]!, hidden]
        case 'last':
          return [hidden]
        default:
          return layer.op === 'LSTM' ? [2, layers, hidden] : [layers, hidden]
      }
    }
    default:
      return [...x]
  }
}

/** Whether the core stores a per-sample shape channels-last ([C, H, W] with C > 1). */
function channelsLast(shape: readonly number[]): boolean {
  return shape.length === 3 && shape[0]! > 1
}

/** A PyTorch dim over [batch, ...sample] normalised to 1..rank (batch dim 0 is refused). */
function batchDim(who: string, node: string, dim: number, rank: number): number {
  const full = rank + 1
  if (dim < -full || dim >= full) throw new ShapeError(`${who} dim ${dim} is out of range for inputs of ${rank} dims per sample (${full} with the batch)`, node)
  const d = dim < 0 ? dim + full : dim
  if (d === 0) throw new ShapeError(`${who} dim ${dim} is the batch dimension; pick a per-sample dim (1..${rank} or negative)`, node)
  return d
}
