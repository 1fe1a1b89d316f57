/**
 * What the report computes from the network and the test set: predictions and their
 * confidence, the confusion matrix, per-class accuracy, the model's layer table and
 * its first layer's weights as tiles.
 */

import type { Dataset } from '../dataset.js'
import { fmt, inferShape, pair, type LayerSpec } from '../layers.js'
import type { Net } from '../net.js'
import { outputKindOf, probabilities } from '../probabilities.js'
import { colorize, DIVERGING, type ImageGeometry, type Raster } from './images.js'

/** Rows per predict call: `Net.predict` is synchronous and meant for a few thousand rows. */
const CHUNK = 1024

/** A classifier's results on a labelled test set. */
export interface ClassEvaluation {
  /** One name per class. */
  names: readonly string[]
  /** The test set's labels. */
  labels: ArrayLike<number>
  /** Argmax of each row. */
  predicted: Uint32Array
  /** Probability of the predicted class. */
  confidence: Float32Array
  /** Probability given to the true class. */
  trueProbability: Float32Array
  /** `confusion[true][predicted]` counts. */
  confusion: number[][]
  perClass: { name: string; correct: number; total: number; accuracy: number }[]
  accuracy: number
}

/** Predictions of `net` on the labelled `test` set, in chunks. */
export function evaluateClasses(net: Net, test: Dataset, names: readonly string[]): ClassEvaluation {
  const k = names.length
  const outputs = net.outputDim
  const kind = outputKindOf(net.spec)
  const labels = test.labels!
  const predicted = new Uint32Array(test.size)
  const confidence = new Float32Array(test.size)
  const trueProbability = new Float32Array(test.size)
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0))
  for (let start = 0; start < test.size; start += CHUNK) {
    const end = Math.min(test.size, start + CHUNK)
    const logits = net.predict(test.subset(start, end))
    for (let r = 0; r < end - start; r++) {
      const i = start + r
      const p = probabilities(logits.subarray(r * outputs, (r + 1) * outputs), kind)
      let best = 0
      for (let c = 1; c < outputs; c++) if (p[c]! > p[best]!) best = c
      predicted[i] = best
      confidence[i] = p[best]!
      trueProbability[i] = p[labels[i]!] ?? 0
      confusion[labels[i]!]![best]! += 1
    }
  }
  const perClass = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0)
    return { name: names[c]!, correct: row[c]!, total, accuracy: total ? row[c]! / total : NaN }
  })
  const correct = perClass.reduce((a, r) => a + r.correct, 0)
  return { names, labels, predicted, confidence, trueProbability, confusion, perClass, accuracy: test.size ? correct / test.size : NaN }
}

/** Test samples the net got wrong, most confident first. */
export function confidentMistakes(e: ClassEvaluation, count: number): number[] {
  const wrong: number[] = []
  for (let i = 0; i < e.predicted.length; i++) if (e.predicted[i] !== e.labels[i]) wrong.push(i)
  return wrong.sort((a, b) => e.confidence[b]! - e.confidence[a]! || a - b).slice(0, count)
}

/** One row of the layer table. */
export interface LayerRow {
  name: string
  op: string
  details: string
  inputs: readonly string[]
  outputShape: readonly number[]
  parameters: number
}

/** The layers of `net` with their output shapes and trainable parameter counts. */
export function layerTable(net: Net): LayerRow[] {
  const shapes = new Map<string, readonly number[]>()
  for (const input of net.spec.inputs) shapes.set(input.name, input.shape)
  const counts = new Map<string, number>()
  // A tensor is its node's name + '.' + a suffix that may have dots too
  // ('attn.out_proj.weight'): the longest node name that prefixes it owns it.
  const byLength = net.spec.nodes.map((n) => n.name).sort((a, b) => b.length - a.length)
  for (const p of net.parameters()) {
    // A tied tensor (weight tying) counts once, at its owner (the Embedding).
    if (!p.trainable || p.tiedTo !== undefined) continue
    const node = byLength.find((n) => p.name.startsWith(`${n}.`)) ?? p.name.slice(0, p.name.lastIndexOf('.'))
    counts.set(node, (counts.get(node) ?? 0) + p.data.length)
  }
  return net.spec.nodes.map((node, i) => {
    const layer = net.layers[i]!
    const ins = node.inputs.map((n) => shapes.get(n)!)
    const out = inferShape(layer, ins, node.name)
    shapes.set(node.name, out)
    return { name: node.name, op: node.op, details: describeLayer(layer, ins[0]!), inputs: node.inputs, outputShape: out, parameters: counts.get(node.name) ?? 0 }
  })
}

const size = (v: Parameters<typeof pair>[0]): string => {
  const [h, w] = pair(v)
  return h === w ? String(h) : `${h}×${w}`
}

function describeLayer(layer: LayerSpec, input: readonly number[]): string {
  switch (layer.op) {
    case 'Linear':
      return `${input.at(-1)} → ${layer.outFeatures}${layer.bias === false ? ', no bias' : ''}`
    case 'Conv2d': {
      const [kh, kw] = pair(layer.kernelSize)
      const parts = [`${input[0]} → ${layer.outChannels} channels`, `${kh}×${kw} kernel`]
      if (layer.stride !== undefined && size(layer.stride) !== '1') parts.push(`stride ${size(layer.stride)}`)
      if (layer.padding !== undefined && size(layer.padding) !== '0') parts.push(`padding ${size(layer.padding)}`)
      if (layer.dilation !== undefined && size(layer.dilation) !== '1') parts.push(`dilation ${size(layer.dilation)}`)
      if (layer.groups !== undefined && layer.groups !== 1) parts.push(`${layer.groups} groups`)
      if (layer.bias === false) parts.push('no bias')
      return parts.join(', ')
    }
    case 'MaxPool2d':
    case 'AvgPool2d': {
      const [kh, kw] = pair(layer.kernelSize)
      const parts = [`${kh}×${kw}`]
      if (layer.stride !== undefined && size(layer.stride) !== size(layer.kernelSize)) parts.push(`stride ${size(layer.stride)}`)
      if (layer.padding !== undefined && size(layer.padding) !== '0') parts.push(`padding ${size(layer.padding)}`)
      return parts.join(', ')
    }
    case 'AdaptiveAvgPool2d':
      return `to ${size(layer.outputSize)}`
    case 'Dropout':
      return `p = ${layer.p ?? 0.5}`
    case 'LeakyReLU':
      return `slope ${layer.negativeSlope ?? 0.01}`
    case 'Softmax':
    case 'LogSoftmax':
    case 'Concat':
      return layer.dim === undefined ? '' : `dim ${layer.dim}`
    case 'MultiHeadAttention': {
      const parts = [`${layer.numHeads} head${layer.numHeads === 1 ? '' : 's'} of ${input.at(-1)! / layer.numHeads}`]
      if (layer.causal) parts.push('causal')
      if (layer.dropout) parts.push(`dropout ${layer.dropout}`)
      if (layer.bias === false) parts.push('no bias')
      return parts.join(', ')
    }
    default:
      return ''
  }
}

/** A tile of the first layer's weights. */
export interface WeightTile {
  label: string
  raster: Raster
  /** The tile's scale: its colours span −max … +max. */
  max: number
}

/** The first layer's weights as tiles, or why there are none. */
export type FirstLayer =
  | { ok: true; node: string; op: 'Linear' | 'Conv2d'; description: string; tiles: WeightTile[]; total: number; tileSide: number }
  | { ok: false; reason: string }

const MAX_TILES = 64

/** Per-tile symmetric scale: −max|w| blue, 0 white, +max|w| red. */
function tile(values: ArrayLike<number>, width: number, height: number, label: string): WeightTile {
  let max = 0
  for (let i = 0; i < width * height; i++) max = Math.max(max, Math.abs(values[i]!))
  return { label, raster: colorize(values, width, height, DIVERGING, -(max || 1), max || 1), max }
}

/**
 * The first Linear or Conv2d of `net` as tiles: a Linear on an image input (784 =
 * 28×28 inputs) gives each of its first 64 units' weights as an image; a Conv2d gives
 * its first 64 filters, each input channel side by side (up to 4 channels) or their mean.
 */
export function firstLayerTiles(net: Net, geometry: ImageGeometry | undefined): FirstLayer {
  const index = net.spec.nodes.findIndex((n) => n.op === 'Linear' || n.op === 'Conv2d')
  if (index < 0) return { ok: false, reason: 'The network has no Linear or Conv2d layer, so there are no first-layer weights to show.' }
  const node = net.spec.nodes[index]!
  const weight = net.parameters().find((p) => p.name === `${node.name}.weight`)
  if (!weight) return { ok: false, reason: `The first weighted layer, ${node.name} (${node.op}), has no weight tensor.` }
  if (node.op === 'Linear') {
    const [units, inFeatures] = weight.shape as [number, number]
    if (!geometry || geometry.channels * geometry.height * geometry.width !== inFeatures) {
      return { ok: false, reason: `The first layer, ${node.name} (Linear ${inFeatures} → ${units}), does not read an image${geometry ? ` of ${geometry.channels}×${geometry.height}×${geometry.width} values` : ''}, so its weights cannot be shown as images.` }
    }
    const { height, width, channels } = geometry
    const plane = height * width
    const shown = Math.min(units, MAX_TILES)
    const tiles: WeightTile[] = []
    for (let u = 0; u < shown; u++) {
      const row = weight.data.subarray(u * inFeatures, (u + 1) * inFeatures)
      let values: ArrayLike<number> = row
      if (channels > 1) {
        const mean = new Float32Array(plane)
        for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) mean[i]! += row[c * plane + i]! / channels
        values = mean
      }
      tiles.push(tile(values, width, height, `unit ${u}`))
    }
    const what = channels > 1 ? `each unit's ${inFeatures} weights averaged over the ${channels} colour channels` : `each unit's ${inFeatures} weights`
    return { ok: true, node: node.name, op: 'Linear', description: `${node.name}: Linear ${inFeatures} → ${units}; ${what} as a ${height}×${width} image (${shown === units ? 'all' : `the first ${shown} of`} ${units} units).`, tiles, total: units, tileSide: Math.max(height, width) }
  }
  const [filters, inPer, kh, kw] = weight.shape as [number, number, number, number]
  const shown = Math.min(filters, MAX_TILES)
  const spread = inPer > 1 && inPer <= 4
  const tiles: WeightTile[] = []
  const k = kh * kw
  for (let f = 0; f < shown; f++) {
    const w = weight.data.subarray(f * inPer * k, (f + 1) * inPer * k)
    if (spread) {
      // Channels side by side, one column of zeros (white) between them.
      const width = inPer * kw + (inPer - 1)
      const values = new Float32Array(width * kh)
      for (let c = 0; c < inPer; c++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) values[y * width + c * (kw + 1) + x] = w[c * k + y * kw + x]!
      tiles.push(tile(values, width, kh, `filter ${f}`))
    } else if (inPer > 1) {
      const mean = new Float32Array(k)
      for (let c = 0; c < inPer; c++) for (let i = 0; i < k; i++) mean[i]! += w[c * k + i]! / inPer
      tiles.push(tile(mean, kw, kh, `filter ${f}`))
    } else {
      tiles.push(tile(w, kw, kh, `filter ${f}`))
    }
  }
  const how = inPer === 1 ? '' : spread ? `, its ${inPer} input channels side by side` : `, the mean over its ${inPer} input channels`
  return { ok: true, node: node.name, op: 'Conv2d', description: `${node.name}: Conv2d with ${filters} filters of ${kh}×${kw}${how} (${shown === filters ? 'all' : `the first ${shown} of`} ${filters} filters).`, tiles, total: filters, tileSide: Math.max(kh, kw) }
}

/** `[1, 28, 28]` */
export const shapeText = fmt
