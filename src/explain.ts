/**
 * Explanations of one decision of a {@link Net}: which input values the score of a
 * class depends on. Four methods, each checked against PyTorch autograd
 * (`test/explain.test.ts`, fixtures by `scripts/make_explain_fixtures.mjs`):
 *
 * - {@link saliency}: the gradient of the class score with respect to the input
 *   (Simonyan et al. 2014);
 * - {@link smoothGrad}: the mean gradient over Gaussian-noised copies of the input
 *   (Smilkov et al. 2017);
 * - {@link integratedGradients}: `(x − baseline) ×` the gradient averaged along the
 *   straight path from the baseline to `x` (Sundararajan et al. 2017), with Captum's
 *   default quadrature (Gauss–Legendre) and the completeness gap;
 * - {@link gradCam}: a convolutional layer's feature maps weighted by the spatial mean
 *   of their gradients (Selvaraju et al. 2017), upsampled to the input.
 *
 * The class score is the net's output for that class: a logit for a classifier
 * without a final Softmax (what ferronet's presets and `ferronet train` build). Every
 * method runs one eval-mode forward and backward pass over all of its rows in the
 * native core (`NativeNet.explain`, on an unfused copy: Dropout is the identity,
 * BatchNorm uses its running statistics); the net itself is not changed. Nets with
 * several outputs are explained through their first output.
 *
 * {@link heatmapPng} draws a map over the input image.
 */

import { OptionError, ShapeError } from './errors.js'
import type { NativeExplanation } from './native.js'
import { callNative } from './native.js'
import type { Net } from './net.js'
import { createRandom } from './random.js'
import { describe, integerInRange, nonNegativeNumber, oneOf } from './validate.js'

export { COLORMAPS, heatmapPng } from './explain/heatmap.js'
export type { Colormap, HeatmapLayout, HeatmapOptions } from './explain/heatmap.js'
export { integrationRule, INTEGRATION_METHODS } from './explain/quadrature.js'
export type { IntegrationMethod } from './explain/quadrature.js'
import { integrationRule, INTEGRATION_METHODS, type IntegrationMethod } from './explain/quadrature.js'

/** One input sample: `net.inputDim` values in PyTorch's order (NCHW); a `Uint8Array` holds pixels, scaled by 1/255 as in training. */
export type ExplainInput = Float32Array | Uint8Array | readonly number[]

/** What every method returns besides its map. */
export interface ExplainedDecision {
  /** The class explained: `classIndex`, or the predicted class when none was given. */
  readonly classIndex: number
  /** The most likely class of the input (argmax of `net.predict`). */
  readonly predictedClass: number
  /** The net's outputs for the input (eval mode), `net.outputDim` values. */
  readonly outputs: Float32Array
  /** `outputs[classIndex]`: the score that is explained. */
  readonly score: number
}

/** A per-input-value attribution: {@link saliency}, {@link smoothGrad}, {@link integratedGradients}. */
export interface Attribution extends ExplainedDecision {
  /** One value per input value, in the input's order; `shape` is `net.inputShape`. */
  readonly map: Float32Array
  /** The shape of `map`: the net's input shape, `net.inputShape`. */
  readonly shape: readonly number[]
}

/** What {@link integratedGradients} returns. */
export interface IntegratedGradientsResult extends Attribution {
  /** The quadrature rule used. */
  readonly method: IntegrationMethod
  /** The rule's number of points, i.e. gradient evaluations along the path (`options.steps`, default 50). */
  readonly steps: number
  /** The class score at the baseline, f(baseline). */
  readonly baselineScore: number
  /** Σ map: by completeness it approximates `score − baselineScore`. */
  readonly attributionSum: number
  /**
   * `attributionSum − (score − baselineScore)`: the quadrature's error (Captum's
   * "convergence delta"). Small against `|score − baselineScore|` when `steps` suffice.
   */
  readonly completenessGap: number
}

/** What {@link gradCam} returns. */
export interface GradCamResult extends ExplainedDecision {
  /** The map at the input's resolution, `[H, W]` row-major, min–max normalised to [0, 1]. */
  readonly map: Float32Array
  /** `[H, W]` of the input. */
  readonly shape: readonly [number, number]
  /** The node whose feature maps were used. */
  readonly layer: string
  /** That node's per-sample output shape `[C, h, w]`. */
  readonly layerShape: readonly [number, number, number]
  /** Per channel, the spatial mean of ∂score/∂A_k: the channel's weight. */
  readonly weights: Float32Array
  /** `ReLU(Σ_k w_k A_k)` at the layer's resolution `[h, w]`, before upsampling and normalisation. */
  readonly cam: Float32Array
}

/** Options of {@link saliency}. */
export interface SaliencyOptions {
  /** The class to explain, an integer in `0..outputDim-1`; default: the predicted class. */
  classIndex?: number
  /**
   * Return `|∂score/∂x|` instead of the signed gradient (default `false`). Captum's
   * `Saliency` takes the absolute value by default; {@link heatmapPng} shows magnitudes either way.
   */
  absolute?: boolean
}

/** Options of {@link smoothGrad}. */
export interface SmoothGradOptions extends SaliencyOptions {
  /** Noisy copies averaged, an integer in 1..10000 (default 25). */
  samples?: number
  /**
   * Standard deviation of the Gaussian noise as a fraction of the input's range
   * (`max(x) − min(x)`), a number >= 0 (default 0.15; the paper recommends 0.1–0.2).
   */
  noise?: number
  /** Seed of the noise, a safe integer (default 0): the same seed gives the same map. */
  seed?: number
}

/** Options of {@link integratedGradients}. */
export interface IntegratedGradientsOptions {
  /** The class to explain; default: the predicted class. */
  classIndex?: number
  /**
   * The reference input: `'zeros'` (default, Captum's), a number for every value, or
   * one sample of `inputDim` values (a `Uint8Array` is scaled by 1/255).
   */
  baseline?: 'zeros' | number | ExplainInput
  /** Points of the quadrature, an integer in 1..10000 (2.. for `riemann_trapezoid`), default 50 (Captum's). */
  steps?: number
  /** The quadrature rule, default `'gausslegendre'` (Captum's); see {@link IntegrationMethod}. */
  method?: IntegrationMethod
}

/** Options of {@link gradCam}. */
export interface GradCamOptions {
  /** The class to explain; default: the predicted class. */
  classIndex?: number
  /**
   * The node whose output feature maps `[C, h, w]` are weighted (any node, e.g. a
   * ReLU or a pooling layer); default: the last Conv2d (see {@link defaultCamLayer}).
   */
  layer?: string
}

/** Rows per native call: bounds the memory of one forward and backward pass. */
const MAX_ROWS = 256

/**
 * The gradient of the class score with respect to the input: how much each input
 * value moves the score, to first order. One forward and backward pass.
 *
 * ```ts
 * const s = saliency(net, x)            // the predicted class
 * s.map                                 // Float32Array, net.inputShape, ∂score/∂x
 * await writeFile('s.png', await heatmapPng(x, s))
 * ```
 * @throws {@link ShapeError} when `input` is not one sample of `net.inputDim` values;
 *   {@link OptionError} naming a bad option.
 */
export function saliency(net: Net, input: ExplainInput, options: SaliencyOptions = {}): Attribution {
  const o = checkOptions('saliency', options, ['classIndex', 'absolute'])
  checkNet(net)
  const x = sample(net, input, 'input')
  const absolute = bool('absolute', o.absolute, false)
  const decision = decide(net, x, o.classIndex)
  const e = explainRows(net, x, 1, decision.classIndex)
  const map = e.inputGradient
  if (absolute) for (let j = 0; j < map.length; j++) map[j] = Math.abs(map[j]!)
  return { ...decision.of(e.outputs), map, shape: net.inputShape }
}

/**
 * SmoothGrad: the mean of the saliency over `samples` copies of the input with
 * Gaussian noise of standard deviation `noise × (max(x) − min(x))` added (not
 * clipped), which averages away the gradient's pixel-level noise. The noise comes
 * from a seeded generator (mulberry32, Box–Muller), so a seed gives the same map on
 * every machine; all copies go through one native call. With `absolute`, the mean of
 * `|gradient|`. `outputs` and `score` are those of the input itself.
 *
 * @throws as {@link saliency}.
 */
export function smoothGrad(net: Net, input: ExplainInput, options: SmoothGradOptions = {}): Attribution {
  const o = checkOptions('smoothGrad', options, ['classIndex', 'absolute', 'samples', 'noise', 'seed'])
  checkNet(net)
  const x = sample(net, input, 'input')
  const absolute = bool('absolute', o.absolute, false)
  const samples = o.samples === undefined ? 25 : integerInRange('samples', o.samples, 1, 10_000)
  const noise = o.noise === undefined ? 0.15 : nonNegativeNumber('noise', o.noise)
  const seed = o.seed === undefined ? 0 : safeInteger('seed', o.seed)
  const decision = decide(net, x, o.classIndex)
  const dim = x.length
  // Row 0: the input itself, with a zero output gradient (for `outputs`); then the noisy copies.
  const rows = new Float32Array((samples + 1) * dim)
  rows.set(x)
  rows.set(smoothGradNoise(x, samples, noise, seed), dim)
  const weights = new Float64Array(samples + 1).fill(1)
  weights[0] = 0
  const e = explainRows(net, rows, samples + 1, decision.classIndex, weights)
  const map = new Float32Array(dim)
  const sum = new Float64Array(dim)
  for (let r = 1; r <= samples; r++) {
    const g = e.inputGradient.subarray(r * dim, (r + 1) * dim)
    for (let j = 0; j < dim; j++) sum[j]! += absolute ? Math.abs(g[j]!) : g[j]!
  }
  for (let j = 0; j < dim; j++) map[j] = sum[j]! / samples
  return { ...decision.of(e.outputs.subarray(0, net.outputDim)), map, shape: net.inputShape }
}

/**
 * The noisy copies {@link smoothGrad} averages over: `samples` rows of
 * `x + N(0, (noise · (max x − min x))²)`, float32, from the seed. @internal
 */
export function smoothGradNoise(x: Float32Array, samples: number, noise: number, seed: number): Float32Array {
  let lo = Infinity
  let hi = -Infinity
  for (const v of x) {
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  const sigma = noise * (hi - lo)
  const random = createRandom(seed)
  const out = new Float32Array(samples * x.length)
  let spare: number | undefined
  const gaussian = (): number => {
    if (spare !== undefined) {
      const v = spare
      spare = undefined
      return v
    }
    // Box–Muller; 1 − u keeps the logarithm finite.
    const u = 1 - random.nextFloat()
    const v = random.nextFloat()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
  for (let i = 0; i < out.length; i++) out[i] = x[i % x.length]! + sigma * gaussian()
  return out
}

/**
 * Integrated Gradients: `(x − baseline) × ∫₀¹ ∂score/∂x (baseline + α(x − baseline)) dα`,
 * the integral by a quadrature of `steps` points. The default is Captum's: 50 points
 * of Gauss–Legendre (`IntegratedGradients.attribute(n_steps=50, method='gausslegendre')`),
 * which integrates polynomials of degree 99 exactly; `riemann_left`, `_right`,
 * `_middle` and `_trapezoid` are there too (see {@link IntegrationMethod}). All points,
 * the input and the baseline go through one native call (in chunks of 256 rows).
 *
 * Completeness: the attributions sum to `f(x) − f(baseline)`; `completenessGap` is how
 * far the quadrature is from that.
 *
 * @throws as {@link saliency}; {@link ShapeError} for a baseline of the wrong length.
 */
export function integratedGradients(net: Net, input: ExplainInput, options: IntegratedGradientsOptions = {}): IntegratedGradientsResult {
  const o = checkOptions('integratedGradients', options, ['classIndex', 'baseline', 'steps', 'method'])
  checkNet(net)
  const x = sample(net, input, 'input')
  const method = o.method === undefined ? 'gausslegendre' : oneOf('method', o.method, INTEGRATION_METHODS)
  const steps = o.steps === undefined ? 50 : integerInRange('steps', o.steps, method === 'riemann_trapezoid' ? 2 : 1, 10_000)
  const base = baselineOf(net, o.baseline)
  const decision = decide(net, x, o.classIndex)
  const { alphas, weights: stepWeights } = integrationRule(method, steps)
  const dim = x.length
  // Rows: the input, the baseline (zero output gradients: their scores), then the path.
  const rows = new Float32Array((steps + 2) * dim)
  rows.set(x)
  rows.set(base, dim)
  for (let s = 0; s < steps; s++) {
    const a = alphas[s]!
    const row = rows.subarray((s + 2) * dim, (s + 3) * dim)
    for (let j = 0; j < dim; j++) row[j] = base[j]! + a * (x[j]! - base[j]!)
  }
  const weights = new Float64Array(steps + 2).fill(1)
  weights[0] = 0
  weights[1] = 0
  const e = explainRows(net, rows, steps + 2, decision.classIndex, weights)
  const total = new Float64Array(dim)
  for (let s = 0; s < steps; s++) {
    const w = stepWeights[s]!
    const g = e.inputGradient.subarray((s + 2) * dim, (s + 3) * dim)
    for (let j = 0; j < dim; j++) total[j]! += w * g[j]!
  }
  const map = new Float32Array(dim)
  let attributionSum = 0
  for (let j = 0; j < dim; j++) {
    const v = total[j]! * (x[j]! - base[j]!)
    map[j] = v
    attributionSum += v
  }
  const k = net.outputDim
  const result = decision.of(e.outputs.subarray(0, k))
  const baselineScore = e.outputs[k + decision.classIndex]!
  return {
    ...result, map, shape: net.inputShape, method, steps, baselineScore, attributionSum,
    completenessGap: attributionSum - (result.score - baselineScore),
  }
}

/**
 * Grad-CAM: with `A_k` the `[h, w]` feature maps of `layer` and
 * `w_k = mean_{i,j} ∂score/∂A_k[i, j]`, the map `ReLU(Σ_k w_k A_k)`, upsampled to the
 * input's `H × W` bilinearly (PyTorch's `F.interpolate(mode='bilinear',
 * align_corners=False)`), then min–max normalised to [0, 1] (a constant map, which
 * shows no place, becomes all zeros). One forward and backward pass.
 *
 * ```ts
 * const cam = gradCam(net, x)           // the last conv layer, the predicted class
 * cam.map                               // Float32Array [28, 28] in [0, 1]
 * ```
 * @throws {@link OptionError} (`layer`) for a net without a Conv2d when no layer is
 *   given, a layer that is not a node, or one whose output is not `[C, h, w]`;
 *   {@link ShapeError} for an input that is not `[C, H, W]`; as {@link saliency}.
 */
export function gradCam(net: Net, input: ExplainInput, options: GradCamOptions = {}): GradCamResult {
  const o = checkOptions('gradCam', options, ['classIndex', 'layer'])
  checkNet(net)
  const x = sample(net, input, 'input')
  const layer = o.layer === undefined ? defaultCamLayer(net) : nodeName(net, o.layer)
  const inputShape = net.inputShape
  if (inputShape.length !== 3) {
    throw new ShapeError(`gradCam: the input shape is [${inputShape.join(', ')}], not [C, H, W]: Grad-CAM maps a convolutional net's image input`)
  }
  const decision = decide(net, x, o.classIndex)
  const e = explainRows(net, x, 1, decision.classIndex, undefined, layer)
  const shape = e.nodeShape ?? []
  if (shape.length !== 3) {
    throw new OptionError('layer', `node ${JSON.stringify(layer)} (${opOf(net, layer)}) outputs [${shape.join(', ')}], not feature maps [C, h, w]: pick a convolutional layer`)
  }
  const [c, h, w] = shape as [number, number, number]
  const a = e.activation!
  const g = e.activationGradient!
  const plane = h * w
  const weights = new Float32Array(c)
  const cam64 = new Float64Array(plane)
  for (let k = 0; k < c; k++) {
    let s = 0
    for (let p = 0; p < plane; p++) s += g[k * plane + p]!
    const wk = s / plane
    weights[k] = wk
    for (let p = 0; p < plane; p++) cam64[p]! += wk * a[k * plane + p]!
  }
  const cam = new Float32Array(plane)
  for (let p = 0; p < plane; p++) cam[p] = Math.max(0, cam64[p]!)
  const [, height, width] = inputShape as [number, number, number]
  const map = normaliseMinMax(bilinear(cam, h, w, height, width))
  return { ...decision.of(e.outputs), map, shape: [height, width], layer, layerShape: [c, h, w], weights, cam }
}

/**
 * The node {@link gradCam} uses by default: the last Conv2d (in spec order), its own
 * output. Not the ReLU after it: there the gradient of a Flatten + Linear head is the
 * head's weights whatever the input, so the channel weights are the same for every
 * image and often all negative (an empty map for a third of the digits in our tests);
 * before the ReLU the gradient is masked by where it is active, which makes the map
 * depend on the image. Pass `layer` for another choice.
 * @throws {@link OptionError} (`layer`) when the net has no Conv2d.
 */
export function defaultCamLayer(net: Net): string {
  const nodes = net.spec.nodes
  const conv = [...nodes].reverse().find((n) => n.op === 'Conv2d')
  if (!conv) {
    throw new OptionError('layer', `the net has no Conv2d node, so Grad-CAM has no feature maps to weigh (nodes: ${nodes.map((n) => `${n.name} ${n.op}`).join(', ')}); use saliency, smoothGrad or integratedGradients, or pass a layer with [C, h, w] outputs`)
  }
  return conv.name
}

// ---------------------------------------------------------------------------
// Internals.

interface Decision {
  classIndex: number
  predictedClass: number
  of(outputs: Float32Array): ExplainedDecision
}

function decide(net: Net, x: Float32Array, classIndex: unknown): Decision {
  const k = net.outputDim
  const predicted = callNative(() => net.native.predict(x))
  let best = 0
  for (let c = 1; c < k; c++) if (predicted[c]! > predicted[best]!) best = c
  const cls = classIndex === undefined ? best : integerInRange('classIndex', classIndex, 0, k - 1)
  return {
    classIndex: cls,
    predictedClass: best,
    of: (outputs) => ({ classIndex: cls, predictedClass: best, outputs: Float32Array.from(outputs), score: outputs[cls]! }),
  }
}

/**
 * `NativeNet.explain` over `rows` rows with ∂L/∂output = `weights[r]` at `classIndex`
 * (1 by default), in chunks of {@link MAX_ROWS}; outputs and gradients concatenated.
 */
function explainRows(net: Net, inputs: Float32Array, rows: number, classIndex: number, weights?: Float64Array, node?: string): NativeExplanation {
  const k = net.outputDim
  const dim = net.inputDim
  if (rows <= MAX_ROWS) return callNative(() => net.native.explain(inputs, oneHot(rows, k, classIndex, weights, 0), node))
  const outputs = new Float32Array(rows * k)
  const inputGradient = new Float32Array(rows * dim)
  for (let start = 0; start < rows; start += MAX_ROWS) {
    const n = Math.min(MAX_ROWS, rows - start)
    const part = callNative(() => net.native.explain(inputs.subarray(start * dim, (start + n) * dim), oneHot(n, k, classIndex, weights, start), node))
    outputs.set(part.outputs, start * k)
    inputGradient.set(part.inputGradient, start * dim)
  }
  return { outputs, inputGradient }
}

function oneHot(rows: number, k: number, classIndex: number, weights: Float64Array | undefined, offset: number): Float32Array {
  const g = new Float32Array(rows * k)
  for (let r = 0; r < rows; r++) g[r * k + classIndex] = weights ? weights[offset + r]! : 1
  return g
}

function checkNet(net: unknown): asserts net is Net {
  const n = net as Net | null | undefined
  if (typeof n !== 'object' || n === null || typeof n.native?.explain !== 'function' || typeof n.inputDim !== 'number') {
    throw new OptionError('net', `must be a Net, got ${describe(net)}`)
  }
  if (n.spec.inputs.length !== 1) {
    throw new OptionError('net', `has ${n.spec.inputs.length} inputs (${n.spec.inputs.map((i) => i.name).join(', ')}); explanations need a net with one input`)
  }
}

/** One sample as float32 values, checked: length `inputDim`, finite. */
function sample(net: Net, value: unknown, field: string): Float32Array {
  const dim = net.inputDim
  const shape = `[${net.inputShape.join(', ')}]`
  let x: Float32Array
  if (value instanceof Float32Array) x = Float32Array.from(value)
  else if (value instanceof Uint8Array) x = Float32Array.from(value, (v) => v / 255)
  else if (Array.isArray(value) && value.every((v) => typeof v === 'number')) x = Float32Array.from(value as number[])
  else throw new OptionError(field, `must be one sample: a Float32Array (or Uint8Array of pixels, or number[]) of ${dim} values ${shape}, got ${describe(value)}`)
  if (x.length !== dim) {
    const rows = x.length > dim && x.length % dim === 0 ? ` (${x.length / dim} samples: explain them one at a time)` : ''
    throw new ShapeError(`${field}: has ${x.length} values, but an explanation is of one sample of the net's input shape ${shape} (${dim} values)${rows}`)
  }
  for (let j = 0; j < dim; j++) {
    if (!Number.isFinite(x[j])) throw new OptionError(`${field}[${j}]`, `is ${x[j]}, inputs must be finite`)
  }
  return x
}

function baselineOf(net: Net, value: unknown): Float32Array {
  if (value === undefined || value === 'zeros') return new Float32Array(net.inputDim)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new OptionError('baseline', `must be 'zeros', a finite number or one sample, got ${value}`)
    return new Float32Array(net.inputDim).fill(value)
  }
  if (typeof value === 'string') throw new OptionError('baseline', `must be 'zeros', a number or one sample of ${net.inputDim} values, got ${describe(value)}`)
  return sample(net, value, 'baseline')
}

function nodeName(net: Net, value: unknown): string {
  const names = net.spec.nodes.map((n) => n.name)
  if (typeof value !== 'string' || !names.includes(value)) {
    throw new OptionError('layer', `${describe(value)} is not a node of this net (nodes: ${net.spec.nodes.map((n) => `${n.name} ${n.op}`).join(', ')})`)
  }
  return value
}

function opOf(net: Net, name: string): string {
  return net.spec.nodes.find((n) => n.name === name)?.op ?? '?'
}

function checkOptions(where: string, o: unknown, keys: readonly string[]): Record<string, unknown> {
  if (o === undefined) return {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new OptionError('options', `${where}: must be an options object, got ${describe(o)}`)
  for (const key of Object.keys(o)) {
    if (!keys.includes(key)) throw new OptionError(key, `is not an option of ${where} (options: ${keys.join(', ')})`)
  }
  return o as Record<string, unknown>
}

function bool(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new OptionError(field, `must be true or false, got ${describe(value)}`)
  return value
}

function safeInteger(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new OptionError(field, `must be a safe integer, got ${describe(value)}`)
  return value
}

/**
 * Bilinear resampling of an `[h, w]` map to `[H, W]` as PyTorch's
 * `F.interpolate(mode='bilinear', align_corners=False)`: source coordinate
 * `(i + 0.5) · h/H − 0.5`, clamped at 0, neighbours clamped at the edge. @internal
 */
export function bilinear(src: Float32Array, h: number, w: number, height: number, width: number): Float32Array {
  const out = new Float32Array(height * width)
  const axis = (inSize: number, outSize: number) => {
    const scale = inSize / outSize
    return Array.from({ length: outSize }, (_, i) => {
      const s = Math.max(0, (i + 0.5) * scale - 0.5)
      const i0 = Math.min(Math.floor(s), inSize - 1)
      const i1 = Math.min(i0 + 1, inSize - 1)
      const f = s - i0
      return { i0, i1, f }
    })
  }
  const ys = axis(h, height)
  const xs = axis(w, width)
  for (let y = 0; y < height; y++) {
    const { i0: y0, i1: y1, f: fy } = ys[y]!
    for (let x = 0; x < width; x++) {
      const { i0: x0, i1: x1, f: fx } = xs[x]!
      const top = (1 - fx) * src[y0 * w + x0]! + fx * src[y0 * w + x1]!
      const bottom = (1 - fx) * src[y1 * w + x0]! + fx * src[y1 * w + x1]!
      out[y * width + x] = (1 - fy) * top + fy * bottom
    }
  }
  return out
}

/** `(m − min) / (max − min)`; all zeros when the map is constant. */
function normaliseMinMax(m: Float32Array): Float32Array {
  let lo = Infinity
  let hi = -Infinity
  for (const v of m) {
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  const out = new Float32Array(m.length)
  if (!(hi > lo)) return out
  for (let j = 0; j < m.length; j++) out[j] = (m[j]! - lo) / (hi - lo)
  return out
}
