/**
 * `Net`: a layer graph whose weights live in the Rust core. Build it with
 * {@link Net.sequential} (a chain, named as `nn.Sequential` names it), the functional
 * API ({@link Net.input}, `layer.apply`, {@link Net.graph}) or a saved spec
 * ({@link Net.fromSpec}); train it with a {@link Trainer}; call {@link Net.predict}.
 */

import { Dataset } from './dataset.js'
import { OptionError, ShapeError } from './errors.js'
import { checkShape, checkSpec, graphSpec, input, makeLayer, sequentialSpec, type Layer, type ModelSpec, type SymbolicTensor } from './graph.js'
import {
  fmt, normalizeLayer,
  type AdaptiveAvgPool2dSpec, type AddSpec, type AvgPool2dSpec, type BatchNorm1dSpec, type BatchNorm2dSpec, type ConcatSpec,
  type Conv2dSpec, type DropoutSpec, type EmbeddingSpec, type FlattenSpec, type LayerNormSpec, type PositionEmbeddingSpec, type GeluSpec, type LayerSpec, type LeakyReluSpec, type LinearSpec,
  type LogSoftmaxSpec, type MaxPool2dSpec, type MultiHeadAttentionSpec, type ReluSpec, type SigmoidSpec, type SiluSpec, type Size2, type SoftmaxSpec, type TanhSpec,
  type KLDivergenceSpec, type ReparameterizeSpec, type LstmSpec, type GruSpec, type RecurrentReturns,
} from './layers.js'
import {
  gradCam, integratedGradients, saliency, smoothGrad,
  type Attribution, type ExplainInput, type GradCamOptions, type GradCamResult, type IntegratedGradientsOptions,
  type IntegratedGradientsResult, type SaliencyOptions, type SmoothGradOptions,
} from './explain.js'
import { asFileError, isReservedKey, onFile } from './model-file.js'
import { callNative, native, type NativeNet } from './native.js'
import { exportOnnx, toOnnx, type OnnxOptions } from './onnx.js'
import {
  Optimizer, StepState, stepBackward, stepForward, stepInputGrad,
  type BackwardOptions, type ForwardOptions, type InputGradOptions, type StepOptimizerOptions,
} from './step.js'
import { generate, type GenerateOptions, type Generation } from './generate.js'
import { boolean, describe, filePath, integerInRange, stringRecord, unknownOption } from './validate.js'

/** Options of {@link Net.sequential}, {@link Net.graph} and {@link Net.fromSpec}. */
export interface NetOptions {
  /**
   * Seed of the weight initialisation, a safe integer >= 0 (default `0`). With the
   * same seed, build and thread count, two nets are identical bit for bit. It is
   * also the default shuffle seed of a {@link Trainer} on this net.
   */
  seed?: number
}

/** A named tensor in PyTorch layout: `"0.weight"` of a Linear is `[out, in]`, of a Conv2d `[out, in/groups, kh, kw]`. */
export interface Parameter {
  /** The `state_dict` name: node name, a dot, the tensor (`"0.weight"`, `"conv1.bias"`, `"3.running_mean"`). */
  readonly name: string
  /** The tensor's shape, PyTorch layout (`[out, in]` for a Linear weight). */
  readonly shape: readonly number[]
  /** The values, row-major over {@link Parameter.shape}: a copy, writing to it changes nothing (use {@link Net.setParameter}). */
  readonly data: Float32Array
  /** False for buffers (BatchNorm's `running_mean`, `running_var`): saved, never trained. */
  readonly trainable: boolean
  /** The node's parameter group (`""` if none). */
  readonly group: string
  /**
   * Weight tying: the tensor this one is (`"wte.weight"` for `lm_head.weight` of a
   * `Net.dense(v, { tiedTo: 'wte' })`): both names hold the same values and gradient,
   * as in PyTorch's `state_dict`; the tensor is stored, counted and trained once.
   */
  readonly tiedTo?: string
}

/** Options of {@link Net.save}. */
export interface SaveOptions {
  /**
   * Extra strings for the file's header (`__metadata__`), e.g. `{ classNames: JSON.stringify(names) }`;
   * they come back as {@link Net.metadata} after {@link Net.load}. Keys `format`,
   * `ferronet.*` and `trainer.*` are reserved.
   */
  metadata?: Record<string, string>
}

/** Inputs to {@link Net.predict}: a dataset, f32 features or u8 pixels (scaled by 1/255, as in training), rows × inputDim, NCHW order. */
export type PredictInput = Dataset | Float32Array | Uint8Array

function options(where: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new OptionError(where, `must be an options object, got ${describe(o)}`)
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw unknownOption(`${where}.${k}`, k, keys)
  return o as Record<string, unknown>
}

function checkSeed(o: NetOptions | undefined, where: string): number {
  const opts = options(where, o, ['seed'])
  return integerInRange('seed', opts.seed ?? 0, 0)
}

/** A builder: validates `config` under `path` and attaches `apply`. */
function build<T extends LayerSpec>(op: T['op'], path: string, config: Record<string, unknown>): Layer<T> {
  return makeLayer(normalizeLayer(op, config, path) as T)
}

/**
 * A neural network: a graph of layers (the versioned JSON {@link ModelSpec}) compiled
 * by the Rust core, which holds the weights (f32). Shapes are per sample, in PyTorch
 * order (`[C, H, W]` for images), the batch dimension left out; inputs and outputs
 * are flat row-major `Float32Array`s of `rows × inputDim` / `rows × outputDim` values.
 *
 * Build one with {@link Net.sequential} (a chain), the functional API
 * ({@link Net.input}, `layer.apply`, {@link Net.graph}), a saved spec
 * ({@link Net.fromSpec}), a preset (`models.mlp()`, `models.lenet()`, `models.cnn()`) or
 * a file ({@link Net.load}). Train it with a {@link Trainer}; predict with
 * {@link Net.predict} / {@link Net.predictClasses}; save it with {@link Net.save}
 * (safetensors, loadable by PyTorch) or export it with {@link Net.exportOnnx}.
 *
 * Layer builders (`Net.dense`, `Net.conv2d`, …) return plain {@link LayerSpec} objects
 * named after their PyTorch modules; they are validated when built, and shapes are
 * checked when the net is built, before any native call. Every builder throws an
 * {@link OptionError} naming the field (`conv2d.stride`, `dropout.p`) for a bad option.
 *
 * ```ts
 * import { Net, Trainer, mnist } from 'ferronet'
 *
 * const net = Net.sequential([1, 28, 28], [
 *   Net.conv2d(8, 3, { padding: 1 }), Net.relu(), Net.maxPool2d(2),
 *   Net.flatten(), Net.dense(10),
 * ], { seed: 0 })
 * const digits = await mnist.loadDigits()                 // 10,000 × [28, 28] pixels
 * const [train, test] = digits.split(8000, { shuffle: false })
 * await new Trainer(net).fit(train, { epochs: 1 })
 * const classes = net.predictClasses(test)               // Uint32Array(2000)
 * await net.save('digits.safetensors')
 * ```
 */
export class Net {
  /** @internal */
  readonly native: NativeNet
  private readonly specObject: ModelSpec
  private readonly nodeLayers: readonly LayerSpec[]
  private readonly shapes: { input: readonly number[]; output: readonly number[] }
  private shapeCache: Map<string, readonly number[]> | undefined
  private infoCache: { name: string; shape: readonly number[]; length: number; trainable: boolean; group: string }[] | undefined
  private readonly stepState = new StepState()
  private inputSizes: number[] | undefined

  private constructor(handle: NativeNet, spec: ModelSpec, layers: readonly LayerSpec[]) {
    this.native = handle
    this.specObject = deepFreeze(JSON.parse(JSON.stringify(spec)) as ModelSpec)
    this.nodeLayers = Object.freeze([...layers])
    this.shapes = { input: Object.freeze([...handle.inputShape]), output: Object.freeze([...handle.outputShape]) }
  }

  private static compile(built: { spec: ModelSpec; layers: LayerSpec[] }, seed: number): Net {
    const { spec, layers, outputShape } = checkSpec(built.spec)
    const handle = callNative(() => native.NativeNet.fromSpec(JSON.stringify(spec), seed))
    if (fmt(handle.outputShape) !== fmt(outputShape)) {
      // Both sides implement PyTorch's formulas; a difference is a bug in one of them.
      throw new ShapeError(`internal: the native core infers output shape ${fmt(handle.outputShape)} but TypeScript inferred ${fmt(outputShape)}; please report it`)
    }
    return new Net(handle, spec, built.layers.length === layers.length ? built.layers : layers)
  }

  /**
   * A chain of `layers` applied in order to inputs of `input` features (a number) or
   * of per-sample shape `input` (`[1, 28, 28]`). Nodes are named `"0"`, `"1"`, … as
   * `nn.Sequential` names them, so parameters are `"0.weight"`, `"0.bias"`, ….
   *
   * ```ts
   * const net = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 0 })
   * ```
   * @throws {@link OptionError} for a bad option, naming it; {@link ShapeError} naming the
   *   layer and shapes when a layer does not fit its input (before any native call).
   */
  static sequential(input: number | readonly number[], layers: readonly LayerSpec[], options: NetOptions = {}): Net {
    const shape = checkShape(typeof input === 'number' ? 'inputDim' : 'input', input)
    const seed = checkSeed(options, 'options')
    return Net.compile(sequentialSpec(shape, layers), seed)
  }

  /**
   * A graph input of the functional API, of per-sample shape `shape` (`[1, 28, 28]`, or a
   * feature count). Named `"input"` (`"input1"`, … for more) unless `options.name` is given.
   * @throws {@link OptionError} (`shape`, `name`) for a shape that is not positive integers or a bad name.
   */
  static input(shape: number | readonly number[], options: { name?: string } = {}): SymbolicTensor {
    return input(shape, options)
  }

  /**
   * A network from the functional API: every node between `inputs` and `outputs`.
   *
   * ```ts
   * const x = Net.input([1, 28, 28])
   * const h = Net.conv2d(8, 3, { padding: 1 }).apply(x, { name: 'conv1' })
   * const y = Net.add().apply([Net.relu().apply(h), h])
   * const net = Net.graph({ inputs: x, outputs: Net.dense(10).apply(Net.flatten().apply(y)) }, { seed: 0 })
   * ```
   * Unnamed nodes are named after their op and a counter (`conv2d1`, `relu1`, …).
   * @throws {@link OptionError} when `inputs` or `outputs` is missing, two tensors share a
   *   name, or the outputs depend on an input not listed in `inputs`.
   */
  static graph(io: { inputs: SymbolicTensor | readonly SymbolicTensor[]; outputs: SymbolicTensor | readonly SymbolicTensor[] }, options: NetOptions = {}): Net {
    const o = Net.checkIo(io)
    const seed = checkSeed(options, 'options')
    return Net.compile(graphSpec(o.inputs, o.outputs), seed)
  }

  private static checkIo(io: unknown): { inputs: SymbolicTensor | readonly SymbolicTensor[]; outputs: SymbolicTensor | readonly SymbolicTensor[] } {
    const o = options('graph', io, ['inputs', 'outputs'])
    if (o.inputs === undefined) throw new OptionError('inputs', 'is required: the tensor(s) from Net.input()')
    if (o.outputs === undefined) throw new OptionError('outputs', 'is required: the tensor(s) the network outputs')
    return o as never
  }

  /**
   * Builds a network from a saved spec (an object or its JSON text, e.g. `JSON.stringify(net.spec)`),
   * validating it first; the weights are freshly initialised from `options.seed`
   * (load them with {@link Net.loadWeights}, or use {@link Net.load} for a saved file).
   *
   * ```ts
   * const copy = Net.fromSpec(JSON.stringify(net.spec), { seed: 1 })
   * ```
   * @throws {@link OptionError} naming the spec field at fault (`spec.nodes[conv1].config.kernelSize`),
   *   {@link ShapeError} naming the node whose input shape does not fit.
   */
  static fromSpec(spec: ModelSpec | string | object, options: NetOptions = {}): Net {
    const seed = checkSeed(options, 'options')
    const checked = checkSpec(spec)
    return Net.compile(checked, seed)
  }

  /**
   * Rebuilds a network from a file {@link Net.save} (or {@link Trainer.save}) wrote:
   * the spec comes from the file's header, the weights and buffers from its tensors.
   *
   * ```ts
   * const net = await Net.load('digits.safetensors')
   * net.predictClasses(pixels)
   * ```
   * @throws {@link ModelFileError} naming the file and the problem (missing,
   *   truncated, hostile, not a ferronet file, tensors not matching the spec).
   */
  static async load(path: string): Promise<Net> {
    const file = filePath('path', path)
    const handle = await onFile(file, () => native.NativeNet.load(file))
    try {
      return Net.fromHandle(handle)
    } catch (error) {
      throw asFileError(file, 'holds a model spec ferronet cannot use', error)
    }
  }

  /** @internal A Net around a compiled native model (loaded from a file). */
  static fromHandle(handle: NativeNet): Net {
    const { spec, layers } = checkSpec(handle.spec)
    return new Net(handle, spec, layers)
  }

  /**
   * `nn.Linear` with `units` outputs (PyTorch's init): op `Linear`. `tiedTo` names an
   * {@link Net.embedding} node whose weight `[units, in]` it shares (weight tying, a
   * GPT's output projection; name the embedding with `apply(x, { name: 'wte' })`, or
   * use its index in {@link Net.sequential}, `'0'`).
   *
   * ```ts
   * const ids = Net.input([64])
   * const wte = Net.embedding(96, 32).apply(ids, { name: 'wte' })
   * const logits = Net.dense(96, { bias: false, tiedTo: 'wte' }).apply(Net.layerNorm().apply(wte))
   * ```
   */
  static dense(units: number, options: { bias?: boolean; tiedTo?: string } = {}): Layer<LinearSpec> {
    return build('Linear', 'dense', { outFeatures: units, ...opts('dense', options, ['bias', 'tiedTo']) })
  }
  /**
   * `nn.Embedding(numEmbeddings, embeddingDim)`: integer ids `[T]` → rows `[T, embeddingDim]`
   * of a table initialised N(0, 1). Ids travel as floats (exact up to 2^24); one that is
   * not an integer in `0..numEmbeddings` is an {@link InvalidInputError} naming the
   * sample, the position and the value. `paddingIdx`: that id's row starts at zero and
   * is never trained.
   */
  static embedding(numEmbeddings: number, embeddingDim: number, options: { paddingIdx?: number } = {}): Layer<EmbeddingSpec> {
    return build('Embedding', 'embedding', { numEmbeddings, embeddingDim, ...opts('embedding', options, ['paddingIdx']) })
  }
  /** Learned absolute positions (GPT-2's `wpe`): `[T, C]` → input + weight`[0..T]`, weight `[numPositions, C]` (default `numPositions` = T), init N(0, 1). */
  static positionEmbedding(options: { numPositions?: number } = {}): Layer<PositionEmbeddingSpec> {
    return build('PositionEmbedding', 'positionEmbedding', opts('positionEmbedding', options, ['numPositions']))
  }
  /** `nn.LayerNorm` over the last dimension (`eps` 1e-5; weight and bias unless `elementwiseAffine` / `bias` are false). */
  static layerNorm(options: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}): Layer<LayerNormSpec> {
    return build('LayerNorm', 'layerNorm', opts('layerNorm', options, ['eps', 'elementwiseAffine', 'bias']))
  }
  /** `nn.Conv2d(in, outChannels, kernelSize, ...)` on `[C, H, W]`; `in` comes from the input. */
  static conv2d(outChannels: number, kernelSize: Size2, options: { stride?: Size2; padding?: Size2; dilation?: Size2; groups?: number; bias?: boolean } = {}): Layer<Conv2dSpec> {
    return build('Conv2d', 'conv2d', { outChannels, kernelSize, ...opts('conv2d', options, ['stride', 'padding', 'dilation', 'groups', 'bias']) })
  }
  /** `nn.MaxPool2d`; stride defaults to the kernel size. */
  static maxPool2d(kernelSize: Size2, options: { stride?: Size2; padding?: Size2 } = {}): Layer<MaxPool2dSpec> {
    return build('MaxPool2d', 'maxPool2d', { kernelSize, ...opts('maxPool2d', options, ['stride', 'padding']) })
  }
  /** `nn.AvgPool2d` (count_include_pad = true); stride defaults to the kernel size. */
  static avgPool2d(kernelSize: Size2, options: { stride?: Size2; padding?: Size2 } = {}): Layer<AvgPool2dSpec> {
    return build('AvgPool2d', 'avgPool2d', { kernelSize, ...opts('avgPool2d', options, ['stride', 'padding']) })
  }
  /** `nn.AdaptiveAvgPool2d(outputSize)`. */
  static adaptiveAvgPool2d(outputSize: Size2): Layer<AdaptiveAvgPool2dSpec> {
    return build('AdaptiveAvgPool2d', 'adaptiveAvgPool2d', { outputSize })
  }
  /** `nn.BatchNorm1d` on `[F]` or `[C, L]`; the feature count comes from the input. */
  static batchNorm1d(options: { eps?: number; momentum?: number; affine?: boolean } = {}): Layer<BatchNorm1dSpec> {
    return build('BatchNorm1d', 'batchNorm1d', opts('batchNorm1d', options, ['eps', 'momentum', 'affine']))
  }
  /** `nn.BatchNorm2d` on `[C, H, W]`. */
  static batchNorm2d(options: { eps?: number; momentum?: number; affine?: boolean } = {}): Layer<BatchNorm2dSpec> {
    return build('BatchNorm2d', 'batchNorm2d', opts('batchNorm2d', options, ['eps', 'momentum', 'affine']))
  }
  /** `nn.Dropout(p)` (default 0.5): identity when predicting or evaluating. */
  static dropout(p?: number): Layer<DropoutSpec> {
    return build('Dropout', 'dropout', { p })
  }
  /**
   * `nn.MultiheadAttention(C, numHeads, dropout, bias, batch_first=True)` as self-attention
   * on `[steps, C]` sequences: `[steps, C]` → `[steps, C]`, C (the embedding size) taken
   * from the input and divisible by `numHeads`. With `causal: true` step t attends only to
   * steps up to t (PyTorch's `attn_mask` True above the diagonal). `dropout` (default 0)
   * drops attention weights in training; `bias` (default true) adds the projections' biases.
   *
   * ```ts
   * // Rows of an image as a sequence of 28 steps of 28 features.
   * const net = Net.sequential([28, 28], [
   *   Net.dense(32), Net.multiHeadAttention(4), Net.flatten(), Net.dense(10),
   * ])
   * ```
   */
  static multiHeadAttention(numHeads: number, options: { causal?: boolean; dropout?: number; bias?: boolean } = {}): Layer<MultiHeadAttentionSpec> {
    return build('MultiHeadAttention', 'multiHeadAttention', { numHeads, ...opts('multiHeadAttention', options, ['causal', 'dropout', 'bias']) })
  }
  /** `nn.Flatten()`: `[C, H, W]` → `[C·H·W]`, PyTorch's order. */
  static flatten(): Layer<FlattenSpec> {
    return build('Flatten', 'flatten', {})
  }
  /** `nn.ReLU()`: max(x, 0), element-wise, any shape. */
  static relu(): Layer<ReluSpec> {
    return build('ReLU', 'relu', {})
  }
  /** `nn.Sigmoid()`: 1 / (1 + e^-x), element-wise, any shape. */
  static sigmoid(): Layer<SigmoidSpec> {
    return build('Sigmoid', 'sigmoid', {})
  }
  /** `nn.Tanh()`, element-wise, any shape. */
  static tanh(): Layer<TanhSpec> {
    return build('Tanh', 'tanh', {})
  }
  /** `nn.SiLU()` (swish): x · sigmoid(x), element-wise, any shape. */
  static silu(): Layer<SiluSpec> {
    return build('SiLU', 'silu', {})
  }
  /** `nn.LeakyReLU(negativeSlope)` (default 0.01). */
  static leakyRelu(negativeSlope?: number): Layer<LeakyReluSpec> {
    return build('LeakyReLU', 'leakyRelu', { negativeSlope })
  }
  /** `nn.GELU(approximate)` (default `'none'`). */
  static gelu(options: { approximate?: 'none' | 'tanh' } = {}): Layer<GeluSpec> {
    return build('GELU', 'gelu', opts('gelu', options, ['approximate']))
  }
  /** `nn.Softmax(dim)` (default -1; the batch is dim 0). */
  static softmax(dim?: number): Layer<SoftmaxSpec> {
    return build('Softmax', 'softmax', { dim })
  }
  /** `nn.LogSoftmax(dim)` (default -1; the batch is dim 0). */
  static logSoftmax(dim?: number): Layer<LogSoftmaxSpec> {
    return build('LogSoftmax', 'logSoftmax', { dim })
  }
  /** The sum of two or more tensors of one shape (functional API only). */
  static add(): Layer<AddSpec> {
    return build('Add', 'add', {})
  }
  /** `torch.cat` along `dim` (default 1, the channels or features; functional API only). */
  static concat(dim?: number): Layer<ConcatSpec> {
    return build('Concat', 'concat', { dim })
  }
  /**
   * `nn.LSTM(in, hiddenSize, numLayers, bias, batch_first=True)` on sequences `[T, F]` per
   * sample (`in` comes from the input): op `LSTM`, gates i, f, g, o, PyTorch's parameters
   * (`weight_ih_l0` `[4·hiddenSize, F]`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, … per layer) and init.
   * `returns` picks the output: `'sequence'` (default) `[T, hiddenSize]`, `'last'` `[hiddenSize]` (the
   * top layer's h at the last step, for a classifier), `'state'` `[2, numLayers, hiddenSize]` (h_n, c_n).
   * Applied to `[x, h0, c0]` (functional API), it starts from the initial states `[numLayers, hiddenSize]`
   * instead of zeros; their gradients flow.
   *
   * ```ts
   * // Fashion-MNIST as 28 steps of 28 pixels
   * const net = Net.sequential([28, 28], [Net.lstm(128, { returns: 'last' }), Net.dense(10)])
   * ```
   */
  static lstm(hiddenSize: number, options: { numLayers?: number; bias?: boolean; returns?: RecurrentReturns } = {}): Layer<LstmSpec> {
    return build('LSTM', 'lstm', { hiddenSize, ...opts('lstm', options, ['numLayers', 'bias', 'returns']) })
  }
  /**
   * `nn.GRU(in, hiddenSize, numLayers, bias, batch_first=True)` on sequences `[T, F]` per sample:
   * op `GRU`, gates r, z, n with n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn)), PyTorch's parameters
   * (`weight_ih_l0` `[3·hiddenSize, F]`, …) and init. `returns` as for {@link Net.lstm}, with `'state'`
   * `[numLayers, hiddenSize]` (h_n). Applied to `[x, h0]` (functional API), it starts from h0.
   *
   * ```ts
   * const net = Net.sequential([28, 28], [Net.gru(128, { returns: 'last' }), Net.dense(10)])
   * ```
   */
  static gru(hiddenSize: number, options: { numLayers?: number; bias?: boolean; returns?: RecurrentReturns } = {}): Layer<GruSpec> {
    return build('GRU', 'gru', { hiddenSize, ...opts('gru', options, ['numLayers', 'bias', 'returns']) })
  }

  /**
   * A VAE's sampling step, applied to `[mean, logvar]` (functional API only): z = mean +
   * exp(0.5·logvar)·ε with ε ~ N(0, 1) drawn per training step from the net's seed.
   * In eval mode (predict, evaluate) z = mean, unless `sampleInEval` (PyTorch's
   * examples/vae samples in its test loop too).
   *
   * ```ts
   * const z = Net.reparameterize().apply([mu, logvar], { name: 'z' })
   * ```
   */
  static reparameterize(options: { sampleInEval?: boolean } = {}): Layer<ReparameterizeSpec> {
    const o = opts('reparameterize', options, ['sampleInEval'])
    return build('Reparameterize', 'reparameterize', { sampleInEval: o.sampleInEval })
  }
  /**
   * KL(N(mean, exp(logvar)) ‖ N(0, 1)) per sample of `[mean, logvar]`, output `[1]`
   * (functional API only): a VAE's prior term, trained as the loss term
   * `{ output: 'kl', loss: 'value', reduction: 'sum' }`.
   */
  static klDivergence(): Layer<KLDivergenceSpec> {
    return build('KLDivergence', 'klDivergence', {})
  }

  /**
   * The part of this network from node `from`'s output to output `to` as a new network
   * whose input (named `from`) has that node's shape: the nodes between, with their
   * weights and buffers copied by name (the two nets are independent afterwards). A
   * VAE's decoder, to sample from the prior:
   *
   * ```ts
   * const decoder = vae.subnet({ from: 'z', to: 'recon' })
   * const images = decoder.predict(randomNormal(64 * 20, { seed: 1 }))
   * ```
   * @throws {@link OptionError} (`from`, `to`) for names that are not nodes of this net,
   *   or when `to` reads another graph input or a node that does not depend on `from`.
   */
  subnet(options: { from: string; to: string }): Net {
    const o = opts('subnet', options, ['from', 'to'])
    const spec = this.specObject
    const from = o.from, to = o.to
    const byName = new Map(spec.nodes.map((n) => [n.name, n]))
    if (typeof from !== 'string' || !(byName.has(from) || spec.inputs.some((i) => i.name === from))) {
      throw new OptionError('from', `must name a node or input of this net, got ${describe(from)}`)
    }
    if (typeof to !== 'string' || !byName.has(to)) throw new OptionError('to', `must name a node of this net, got ${describe(to)}`)
    // The nodes `to` needs, walking back until `from`.
    const needed = new Set<string>()
    const visit = (name: string, path: string): void => {
      if (name === from || needed.has(name)) return
      const node = byName.get(name)
      if (!node) throw new OptionError('to', `${JSON.stringify(to)} reads ${JSON.stringify(name)} (via ${path}), which is not computed from ${JSON.stringify(from)}`)
      needed.add(name)
      for (const i of node.inputs) visit(i, `${path} ← ${node.name}`)
    }
    visit(to, to)
    const nodes = spec.nodes.filter((n) => needed.has(n.name))
    const sub = Net.fromSpec({ format: spec.format, version: spec.version, inputs: [{ name: from, shape: [...this.shapeOf(from)] }], nodes, outputs: [to] }, { seed: this.seed })
    const mine = new Map(this.parameters().map((p) => [p.name, p.data]))
    sub.setParameters(sub.parameters().map((p) => mine.get(p.name)!))
    return sub
  }

  /** Per-sample input shape, PyTorch order. */
  get inputShape(): readonly number[] {
    return this.shapes.input
  }
  /** Per-sample output shape. */
  get outputShape(): readonly number[] {
    return this.shapes.output
  }
  /** Values per input sample (the product of {@link Net.inputShape}). */
  get inputDim(): number {
    return this.shapes.input.reduce((a, b) => a * b, 1)
  }
  /**
   * Per-sample shape of the network's output (or any node) named `name`.
   * @throws {@link OptionError} (`name`) when the spec has no such node or input.
   */
  shapeOf(name: string): readonly number[] {
    const shape = this.nodeShapes().get(name)
    if (!shape) throw new OptionError('name', `${JSON.stringify(name)} is not a node or input of this network`)
    return shape
  }

  /** Values per sample of the output (or node) named `name`. */
  outputDimOf(name: string): number {
    return this.shapeOf(name).reduce((a, b) => a * b, 1)
  }

  private nodeShapes(): Map<string, readonly number[]> {
    this.shapeCache ??= checkSpec(this.specObject).shapes
    return this.shapeCache
  }

  /** Values per output sample (logits of a classifier). */
  get outputDim(): number {
    return this.shapes.output.reduce((a, b) => a * b, 1)
  }
  /** The versioned JSON model spec, a frozen plain object (save it with `JSON.stringify`). */
  get spec(): ModelSpec {
    return this.specObject
  }
  /** Each node's layer in spec order; for {@link Net.sequential}, the layers given. */
  get layers(): readonly LayerSpec[] {
    return this.nodeLayers
  }
  /** The initialisation seed. */
  get seed(): number {
    return this.native.seed
  }
  /** Number of trainable scalars. */
  get parameterCount(): number {
    return this.native.parameterCount
  }
  /** The compiled execution plan after fusion, e.g. `["0:Linear+ReLU", "2:Linear"]`. */
  get plan(): readonly string[] {
    return callNative(() => this.native.plan())
  }

  /**
   * Outputs for a batch, row-major `[rows, outputDim]` (logits for a classifier, in
   * evaluation mode: dropout off, BatchNorm on its running statistics). `inputs` holds
   * `rows × inputDim` values in NCHW order; a `Uint8Array` is scaled by 1/255 as in
   * training. Synchronous: meant for batches up to a few thousand rows.
   *
   * ```ts
   * const logits = net.predict(await mnistImage('seven.png'))   // Float32Array(10)
   * ```
   * @throws {@link ShapeError} when the input length is not a positive multiple of
   *   {@link Net.inputDim} (or a dataset's sample shape does not fit); {@link OptionError}
   *   for another input type; {@link NativeError} `ERR_BUSY` while a `fit` runs on this net.
   */
  predict(inputs: PredictInput): Float32Array {
    const data = this.checkInputs(inputs)
    return callNative(() => (data instanceof Uint8Array ? this.native.predictPixels(data) : this.native.predict(data)))
  }

  /**
   * The most likely class of each row (argmax of the outputs; the first on ties), one per row.
   * @throws the errors of {@link Net.predict}.
   */
  predictClasses(inputs: PredictInput): Uint32Array {
    const logits = this.predict(inputs)
    const classes = this.outputDim
    const out = new Uint32Array(logits.length / classes)
    for (let r = 0; r < out.length; r++) {
      let best = 0
      for (let c = 1; c < classes; c++) if (logits[r * classes + c]! > logits[r * classes + best]!) best = c
      out[r] = best
    }
    return out
  }

  /**
   * Saves the network in the safetensors format: every tensor under its PyTorch
   * `state_dict` name and shape, the spec in the header, so that {@link Net.load}
   * rebuilds it from the file alone and PyTorch loads it with
   * `model.load_state_dict(safetensors.torch.load_file(path))`. The write is atomic
   * (a temporary file in the same folder, fsync, rename): if it fails, the previous
   * file is unchanged. Rejects with `ERR_BUSY` while a `fit` runs on this net.
   *
   * ```ts
   * await net.save('digits.safetensors', { metadata: { classNames: JSON.stringify(names) } })
   * ```
   * @throws {@link OptionError} for a bad path or metadata (a reserved key, a value
   *   that is not a string); {@link ModelFileError} naming the file when it cannot be
   *   written; {@link NativeError} `ERR_BUSY` while a `fit` runs on this net.
   */
  async save(path: string, options: SaveOptions = {}): Promise<void> {
    const file = filePath('path', path)
    const o = opts('save', options, ['metadata'])
    const metadata = stringRecord('metadata', o.metadata)
    await onFile(file, () => this.native.save(file, metadata))
  }

  /**
   * Loads weights and buffers from any safetensors file into this network, by
   * `state_dict` name: one saved by PyTorch (`safetensors.torch.save_file(model.state_dict(), path)`)
   * for the same architecture, or one of ours. All or nothing: on any error (a
   * missing tensor, a wrong shape or dtype, a non-finite value; with `strict`, a
   * tensor this net does not have) the network is unchanged. `strict` defaults to `true`.
   *
   * ```ts
   * const net = Net.fromSpec(spec)
   * await net.loadWeights('from-pytorch.safetensors')
   * ```
   * @throws {@link ModelFileError} naming the file and the tensor at fault.
   */
  async loadWeights(path: string, options: { strict?: boolean } = {}): Promise<void> {
    const file = filePath('path', path)
    const o = opts('loadWeights', options, ['strict'])
    const strict = boolean('strict', o.strict ?? true)
    await onFile(file, () => this.native.loadWeights(file, strict))
    this.infoCache = undefined
  }

  /**
   * Frees the network's native memory (weights, gradients, batch buffers) now, instead
   * of whenever a garbage collection collects it; afterwards every use is an
   * `ERR_DISPOSED` error. `using net = …` calls it at the end of the block. V8 is told
   * what each net holds either way, so dropped nets are collected promptly.
   * @throws {@link NativeError} `ERR_BUSY` while a fit runs on it.
   */
  dispose(): void {
    callNative(() => this.native.dispose())
    this.infoCache = undefined
  }

  /** {@link Net.dispose}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.dispose()
  }

  /** Bytes of native memory this network holds now (weights, gradients, batch buffers). */
  get nativeBytes(): number {
    return this.native.nativeBytes
  }

  /** The user metadata of the file this network was loaded from (`{}` for a network built in code). */
  get metadata(): Readonly<Record<string, string>> {
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(this.native.fileMetadata)) if (!isReservedKey(k)) out[k] = v
    return Object.freeze(out)
  }

  /**
   * The saliency map of one input: ∂(score of `classIndex`, default the predicted
   * class)/∂input, in the input's order (see {@link saliency}).
   *
   * ```ts
   * const { map, predictedClass } = net.saliency(await mnistImage('digit.png'))
   * ```
   */
  saliency(input: ExplainInput, options: SaliencyOptions = {}): Attribution {
    return saliency(this, input, options)
  }

  /** SmoothGrad: the mean saliency over seeded noisy copies of the input (see {@link smoothGrad}). */
  smoothGrad(input: ExplainInput, options: SmoothGradOptions = {}): Attribution {
    return smoothGrad(this, input, options)
  }

  /** Integrated Gradients from a baseline, with the completeness gap (see {@link integratedGradients}). */
  integratedGradients(input: ExplainInput, options: IntegratedGradientsOptions = {}): IntegratedGradientsResult {
    return integratedGradients(this, input, options)
  }

  /** Grad-CAM at a convolutional layer (default: the last Conv2d), upsampled to the input (see {@link gradCam}). */
  gradCam(input: ExplainInput, options: GradCamOptions = {}): GradCamResult {
    return gradCam(this, input, options)
  }

  /** This network as an ONNX model (opset 17 by default, a dynamic batch dimension); see {@link toOnnx}. */
  toOnnx(options?: OnnxOptions): Uint8Array {
    return toOnnx(this, options)
  }

  /**
   * Writes this network as an ONNX file that ONNX Runtime runs (atomically); see {@link exportOnnx}.
   *
   * ```ts
   * await net.exportOnnx('digits.onnx')
   * ```
   */
  exportOnnx(path: string, options?: OnnxOptions): Promise<void> {
    return exportOnnx(this, path, options)
  }

  /**
   * Forward of one batch for custom loops (see the step API, {@link Optimizer}):
   * `inputs` holds `rows × inputDim` values in PyTorch's order (an array of them for a
   * net with several graph inputs, one per input). `mode: 'train'` runs dropout and
   * BatchNorm's batch statistics as training does; `'eval'` (the default) as
   * {@link Net.predict}. A {@link Net.backward} may follow either.
   *
   * Returns output 0, `rows × outputDim` values. Unless you pass `options.out`, the
   * array is the net's own and is REUSED: the next `forward` with the same row count
   * overwrites it (copy it with `.slice()` to keep it). One synchronous native call,
   * no allocation once the batch size is steady.
   *
   * ```ts
   * const logits = net.forward(x, { mode: 'train' })
   * ```
   * @throws {@link ShapeError} naming the argument and shapes for a wrong length;
   *   {@link NativeError} `ERR_BUSY` while a fit, evaluate or generate runs on this net.
   */
  forward(inputs: Float32Array | readonly Float32Array[], options?: ForwardOptions): Float32Array {
    return stepForward(this.native, this.stepState, inputs, options, { input: this.inputDim, inputShape: this.inputShape, output: this.outputDim })
  }

  /**
   * {@link Net.forward} off the JS thread (for large batches): resolves with output 0.
   * The net is busy until it settles (other calls on it: `ERR_BUSY`); do not read or
   * write the output array (`options.out` or the net's own) before then.
   */
  async forwardAsync(inputs: Float32Array | readonly Float32Array[], options?: ForwardOptions): Promise<Float32Array> {
    return await stepForward(this.native, this.stepState, inputs, options, { input: this.inputDim, inputShape: this.inputShape, output: this.outputDim }, true)
  }

  /** {@link Net.backward} off the JS thread: resolves with the mean loss (`undefined` for `outputGrad`). The net is busy until it settles. */
  async backwardAsync(options: BackwardOptions): Promise<number | undefined> {
    return await stepBackward(this.native, options, this.outputDim, true)
  }

  /**
   * Backpropagates through the last {@link Net.forward}: from a loss
   * (`{ loss: 'bceWithLogits', targets }`, mean over the batch as PyTorch's
   * `reduction="mean"`; returns that mean loss) or from a given output gradient
   * (`{ outputGrad }`; returns `undefined`). Parameter gradients ACCUMULATE across
   * calls until {@link Net.zeroGrad}, as PyTorch's `.grad`; frozen tensors get
   * gradients too (optimizers skip them). `inputGrad: true` also computes ∂L/∂input
   * for {@link Net.inputGrad}.
   *
   * ```ts
   * net.zeroGrad()
   * net.forward(x, { mode: 'train' })
   * const loss = net.backward({ loss: 'crossEntropy', targets: labels })
   * opt.step()
   * ```
   * @throws {@link OptionError} before any forward or for a bad loss/targets kind;
   *   {@link ShapeError} naming `targets`/`outputGrad` and the shapes for a wrong length.
   */
  backward(options: BackwardOptions): number | undefined {
    return stepBackward(this.native, options, this.outputDim)
  }

  /**
   * ∂L/∂input of the last {@link Net.backward} (which must have passed
   * `inputGrad: true`), `rows × inputDim` values, PyTorch's order: what a GAN's
   * generator backpropagates from its discriminator. Unless `options.out` is given the
   * array is the net's own, overwritten by the next `inputGrad` call with that row count.
   * @throws {@link OptionError} when the last backward did not compute it.
   */
  inputGrad(options?: InputGradOptions): Float32Array {
    const sizes = (this.inputSizes ??= this.specObject.inputs.map((i) => i.shape.reduce((a, b) => a * b, 1)))
    return stepInputGrad(this.native, this.stepState, options, (k) => sizes[k] ?? 0)
  }

  /** Zeroes every parameter gradient (PyTorch's `optimizer.zero_grad()` / `model.zero_grad()`): the next {@link Net.backward} starts from zero. */
  zeroGrad(): void {
    callNative(() => this.native.zeroGrad())
  }

  /**
   * An {@link Optimizer} over this net's trainable tensors, or one parameter group's
   * (`group`, set with `apply(x, { group })`), stepped by {@link Optimizer.step} from
   * the gradients of {@link Net.backward}. Options as a {@link Trainer}'s optimizer.
   *
   * ```ts
   * const opt = net.optimizer({ type: 'adam', lr: 2e-4, betas: [0.5, 0.999] })
   * ```
   * @throws {@link OptionError} for a bad option or a group this net does not have.
   */
  optimizer(options: StepOptimizerOptions): Optimizer {
    return new Optimizer(this.native, options)
  }

  /**
   * Samples a continuation of `promptIds` from a language model: a net whose input is
   * `[T]` token ids and whose output is `[T, V]` logits (see {@link generate}). One
   * native call off the JS thread.
   *
   * ```ts
   * const { ids, tokensPerSecond } = await lm.generate(prompt, { maxNewTokens: 200, temperature: 0.8, topK: 40, seed: 1 })
   * ```
   */
  generate(promptIds: ArrayLike<number>, options: GenerateOptions): Promise<Generation> {
    return generate(this, promptIds, options)
  }

  /** Copies of every tensor, weights and buffers, in `state_dict` order and layout. */
  parameters(): Parameter[] {
    const params = callNative(() => this.native.parameters())
    this.infoCache ??= params.map((p) => ({ name: p.name, shape: Object.freeze([...p.shape]), length: p.data.length, trainable: p.trainable, group: p.group }))
    return params.map(({ tiedTo, ...p }) => (tiedTo ? { ...p, tiedTo } : p))
  }

  /** Gradients of the last training step of the trainable tensors, by name (copies, same shapes as the tensors). */
  gradients(): Parameter[] {
    return callNative(() => this.native.gradients()).map(({ tiedTo, ...p }) => (tiedTo ? { ...p, tiedTo } : p))
  }

  /** Names, shapes and kinds of the tensors (cached: they never change). */
  private info(): NonNullable<Net['infoCache']> {
    if (!this.infoCache) this.parameters()
    return this.infoCache!
  }

  /**
   * Overwrites every tensor (weights and buffers), in {@link Net.parameters} order; lengths must match. Nothing is written unless all fit.
   * @throws {@link ShapeError} naming the tensor whose length differs (or when the count
   *   of tensors differs); {@link OptionError} naming the first non-finite value.
   */
  setParameters(values: readonly (Float32Array | Parameter)[]): void {
    if (!Array.isArray(values)) throw new OptionError('values', `must be an array of Float32Arrays (or Parameters), one per tensor, got ${describe(values)}`)
    const info = this.info()
    if (values.length !== info.length) {
      throw new ShapeError(`setParameters: expected ${info.length} tensors (${info.map((p) => p.name).join(', ')}), got ${Array.isArray(values) ? values.length : describe(values)}`)
    }
    const arrays = values.map((v, i) => checkTensor(info[i]!, v instanceof Float32Array ? v : v?.data, 'setParameters'))
    arrays.forEach((data, i) => callNative(() => this.native.setParameter(i, data)))
  }

  /**
   * Overwrites the tensor called `name` (e.g. `"0.weight"`), PyTorch layout, row-major.
   * @throws {@link OptionError} (`name`) for a name this net does not have, or naming a
   *   non-finite value; {@link ShapeError} when the length differs from the tensor's.
   */
  setParameter(name: string, values: Float32Array): void {
    const info = this.info()
    const index = info.findIndex((p) => p.name === name)
    if (index < 0) throw new OptionError('name', `${describe(name)} is not a tensor of this net (it has ${info.map((p) => p.name).join(', ')})`)
    const data = checkTensor(info[index]!, values, 'setParameter')
    callNative(() => this.native.setParameter(index, data))
  }

  /**
   * Stops optimizers from updating the tensors of `prefix`: a node name (`"0"`), a
   * dotted scope (`"block1"`), a tensor name (`"0.weight"`) or `""` for all. Returns how many
   * tensors it matched. Frozen tensors still take part in the forward and backward pass.
   *
   * ```ts
   * net.freeze('0')         // the first layer's weight and bias
   * ```
   * @throws {@link OptionError} (`prefix`) when it matches no tensor of this net.
   */
  freeze(prefix: string): number {
    return this.setFrozen(prefix, true)
  }

  /**
   * Undoes {@link Net.freeze} for `prefix`; returns how many tensors it matched.
   * @throws {@link OptionError} (`prefix`) when it matches no tensor of this net.
   */
  unfreeze(prefix: string): number {
    return this.setFrozen(prefix, false)
  }

  private setFrozen(prefix: string, frozen: boolean): number {
    if (typeof prefix !== 'string') throw new OptionError('prefix', `must be a node name, scope or tensor name, got ${describe(prefix)}`)
    const names = this.info().map((p) => p.name)
    // "1" must not match "10.weight": match whole scopes unless a tensor is named.
    const native = prefix === '' || prefix.endsWith('.') || names.includes(prefix) ? prefix : `${prefix}.`
    if (!names.some((n) => n.startsWith(native))) {
      throw new OptionError('prefix', `${JSON.stringify(prefix)} matches no tensor of this net (it has ${names.join(', ') || 'none'})`)
    }
    return callNative(() => this.native.setFrozen(native, frozen))
  }

  private checkInputs(inputs: PredictInput): Float32Array | Uint8Array {
    const dim = this.inputDim
    let data: Float32Array | Uint8Array
    if (inputs instanceof Dataset) {
      if (inputs.inputDim !== dim) {
        throw new ShapeError(`predict: dataset samples have shape ${fmt(inputs.sampleShape)} (${inputs.inputDim} values) but the network's input shape is ${fmt(this.inputShape)} (${dim} values)`)
      }
      data = inputs.inputs
    } else if (inputs instanceof Float32Array || inputs instanceof Uint8Array) {
      data = inputs
    } else {
      throw new OptionError('inputs', 'must be a Dataset, a Float32Array of features or a Uint8Array of pixels')
    }
    if (data.length === 0 || data.length % dim !== 0) {
      throw new ShapeError(`predict: input has ${data.length} values, not a positive multiple of the network's input size ${dim} (shape ${fmt(this.inputShape)})`)
    }
    return data
  }
}

function opts(where: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  return options(where, o, keys)
}

function checkTensor(info: { name: string; shape: readonly number[]; length: number }, data: unknown, what: string): Float32Array {
  if (!(data instanceof Float32Array) || data.length !== info.length) {
    throw new ShapeError(`${what}: ${info.name} needs a Float32Array of ${info.length} values ${fmt(info.shape)}, got ${data instanceof Float32Array ? `${data.length} values` : describe(data)}`, info.name)
  }
  for (let j = 0; j < data.length; j++) {
    if (!Number.isFinite(data[j])) throw new OptionError(`${info.name}[${j}]`, `is ${data[j]}, parameters must be finite`)
  }
  return data
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}
