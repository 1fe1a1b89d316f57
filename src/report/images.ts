/**
 * Images of the report: input samples, weight tiles and saliency maps as PNG data URIs
 * (encoded by sharp, upscaled with nearest-neighbour so pixels stay crisp), and the
 * colour maps that turn values into pixels.
 */

import type { InputArray } from '../dataset.js'
import { FerronetError } from '../errors.js'

type SharpModule = typeof import('sharp')

let sharpPromise: Promise<SharpModule> | undefined

/** sharp, an optional dependency, imported on first use. */
function loadSharp(): Promise<SharpModule> {
  sharpPromise ??= import('sharp').then(
    (m) => ((m as { default?: SharpModule }).default ?? m) as SharpModule,
    (error: unknown) => {
      sharpPromise = undefined
      throw new FerronetError(
        'ERR_MISSING_DEPENDENCY',
        `the training report encodes its images with the npm package \`sharp\`, an optional dependency of ferronet that did not load here (${(error as Error)?.message ?? String(error)}): run \`npm install sharp\``,
        { cause: error },
      )
    },
  )
  return sharpPromise
}

/** How an input sample is an image: `channels` planes of `height × width` (CHW order in the data). */
export interface ImageGeometry {
  channels: 1 | 3
  height: number
  width: number
}

/**
 * The image shape of per-sample `shape`, if it is one: `[1, H, W]`, `[3, H, W]`,
 * `[H, W]`, or `[H*W]` when H*W is a square (`[784]` is 28×28).
 */
export function imageGeometry(shape: readonly number[]): ImageGeometry | undefined {
  if (shape.length === 3 && (shape[0] === 1 || shape[0] === 3) && shape[1]! >= 2 && shape[2]! >= 2) {
    return { channels: shape[0] as 1 | 3, height: shape[1]!, width: shape[2]! }
  }
  if (shape.length === 2 && shape[0]! >= 2 && shape[1]! >= 2) return { channels: 1, height: shape[0]!, width: shape[1]! }
  if (shape.length === 1) {
    const side = Math.round(Math.sqrt(shape[0]!))
    if (side >= 4 && side * side === shape[0]) return { channels: 1, height: side, width: side }
  }
  return undefined
}

/** An RGB raster, row-major HWC, 8 bits per channel. */
export interface Raster {
  width: number
  height: number
  data: Uint8Array
}

/** A colour map: `t` in [0, 1] to RGB. */
export type ColorMap = (t: number) => [number, number, number]

function fromStops(stops: readonly string[]): ColorMap {
  const rgb = stops.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number])
  return (t) => {
    const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (rgb.length - 1)
    const i = Math.min(rgb.length - 2, Math.floor(x))
    const f = x - i
    const a = rgb[i]!, b = rgb[i + 1]!
    return [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * f)) as [number, number, number]
  }
}

/** Diverging blue–white–red (ColorBrewer RdBu, reversed): 0 blue (negative), 0.5 white, 1 red (positive). */
export const DIVERGING: ColorMap = fromStops(['#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b', '#67001f'])
/** Sequential black–purple–orange–yellow (inferno-like) for saliency. */
export const HEAT: ColorMap = fromStops(['#000004', '#1b0c41', '#4a0c6b', '#781c6d', '#a52c60', '#cf4446', '#ed6925', '#fb9b06', '#f7d13d', '#fcffa4'])
/** Gray scale, black to white. */
export const GRAY: ColorMap = (t) => {
  const v = Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)))
  return [v, v, v]
}

/** Values (one plane, `width × height`) through a colour map, `t = (v - lo) / (hi - lo)`. */
export function colorize(values: ArrayLike<number>, width: number, height: number, map: ColorMap, lo: number, hi: number): Raster {
  const data = new Uint8Array(width * height * 3)
  const span = hi > lo ? hi - lo : 1
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = map((values[i]! - lo) / span)
    data[3 * i] = r
    data[3 * i + 1] = g
    data[3 * i + 2] = b
  }
  return { width, height, data }
}

/**
 * One input sample as an RGB raster. `uint8` pixels are shown as they are; float
 * features in [0, 1] are scaled by 255, other floats stretched from their min to max.
 */
export function sampleRaster(input: InputArray, g: ImageGeometry): Raster {
  const plane = g.height * g.width
  let scale = 1
  let offset = 0
  if (input instanceof Float32Array) {
    let lo = Infinity, hi = -Infinity
    for (const v of input) {
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    if (lo >= 0 && hi <= 1) scale = 255
    else {
      scale = hi > lo ? 255 / (hi - lo) : 1
      offset = lo
    }
  }
  const data = new Uint8Array(plane * 3)
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = input[(g.channels === 3 ? c * plane : 0) + i]!
      data[3 * i + c] = Math.max(0, Math.min(255, Math.round((v - offset) * scale)))
    }
  }
  return { width: g.width, height: g.height, data }
}

/** Input values on the training scale, as the network sees them: `uint8` pixels / 255, floats as they are. */
export function networkInput(input: InputArray): Float32Array {
  if (input instanceof Float32Array) return Float32Array.from(input)
  const out = new Float32Array(input.length)
  for (let i = 0; i < input.length; i++) out[i] = input[i]! / 255
  return out
}

/** A saliency map (a value per input) as one plane: the largest |value| over the channels at each pixel. */
export function saliencyPlane(map: ArrayLike<number>, g: ImageGeometry): Float32Array {
  const plane = g.height * g.width
  const out = new Float32Array(plane)
  for (let c = 0; c < g.channels; c++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.abs(map[c * plane + i]!)
      if (Number.isFinite(v) && v > out[i]!) out[i] = v
    }
  }
  return out
}

/** The nearest-neighbour upscale factor that shows a `side`-pixel image at about `target` pixels. */
export function upscale(side: number, target: number): number {
  return Math.max(1, Math.round(target / side))
}

/** A raster as a PNG data URI, upscaled `scale`× with nearest-neighbour sampling. */
export async function pngDataUri(raster: Raster, scale = 1): Promise<string> {
  const sharp = await loadSharp()
  let image = sharp(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength), {
    raw: { width: raster.width, height: raster.height, channels: 3 },
  })
  if (scale > 1) image = image.resize(raster.width * scale, raster.height * scale, { kernel: 'nearest' })
  const png = await image.png({ compressionLevel: 9 }).toBuffer()
  return `data:image/png;base64,${png.toString('base64')}`
}

/** A horizontal colour bar of `map`, `width × height` pixels, as a PNG data URI. */
export async function colorBar(map: ColorMap, width = 240, height = 12): Promise<string> {
  const data = new Uint8Array(width * height * 3)
  for (let x = 0; x < width; x++) {
    const [r, g, b] = map(x / (width - 1))
    for (let y = 0; y < height; y++) data.set([r, g, b], 3 * (y * width + x))
  }
  return pngDataUri({ width, height, data })
}
