/**
 * Heat maps as PNG: an explanation map blended over the (grayscale or RGB) input
 * image, upscaled, encoded by sharp (loaded on first use, as for reading images).
 */

import { OptionError } from '../errors.js'
import { imageLayout, loadSharp } from '../image.js'
import { describe, integerInRange, oneOf } from '../validate.js'

/** Color scales of {@link heatmapPng}, low → high: `jet` (blue → red, Grad-CAM's usual), `inferno`, `viridis`, `hot`. */
export type Colormap = 'jet' | 'inferno' | 'viridis' | 'hot'
/** Every {@link Colormap}: the values `colormap` accepts. */
export const COLORMAPS: readonly Colormap[] = ['jet', 'inferno', 'viridis', 'hot']

/** `'overlay'`: the map blended over the image; `'side-by-side'`: image | map | overlay. */
export type HeatmapLayout = 'overlay' | 'side-by-side'

/** Options of {@link heatmapPng}. */
export interface HeatmapOptions {
  /**
   * The image's shape: `[H*W]` (a square), `[H, W]`, `[1, H, W]` or `[3, H, W]` (CHW).
   * Default: the map's `shape` when the map is an explanation result, else a square
   * gray image (or RGB, when the length is 3 × a square).
   */
  shape?: readonly number[]
  /** The color scale of the map, default `'jet'`. */
  colormap?: Colormap
  /** Opacity of the map over the image, in [0, 1] (default 0.5). */
  alpha?: number
  /** Height of each panel in pixels, 8..4096 (default 280); the width keeps the image's aspect. */
  size?: number
  /** How image and map are arranged, default `'overlay'`. */
  layout?: HeatmapLayout
}

const KEYS = ['shape', 'colormap', 'alpha', 'size', 'layout']
const GAP = 4

/**
 * A PNG of `map` over `image`: the map's magnitudes `|m| / max |m|` (a map with one
 * value per input value, `[C, H, W]`, is reduced to the largest magnitude over the
 * channels, as Simonyan et al. show saliency) through `colormap`, blended with opacity
 * `alpha` over the image, which is shown as it is if its values are in [0, 1] and
 * min–max stretched otherwise. The image is upscaled by nearest neighbour (its pixels
 * stay visible), the map bilinearly, to `size` pixels high. With `layout:
 * 'side-by-side'`, three panels: the image, the map alone, the overlay.
 *
 * ```ts
 * const x = await imageInput('digit.png', net.inputShape)
 * await writeFile('saliency.png', await heatmapPng(x, saliency(net, x)))
 * await writeFile('cam.png', await heatmapPng(x, gradCam(net, x), { layout: 'side-by-side' }))
 * ```
 * @param image - The input, as given to the net (values on the training scale; a `Uint8Array` is pixels).
 * @param map - An explanation (`saliency`, …, `gradCam`) or its `map`.
 * @returns The PNG file's bytes.
 * @throws {@link OptionError} naming a bad option or a map whose size does not fit the image.
 */
export async function heatmapPng(
  image: Float32Array | Uint8Array,
  map: Float32Array | { readonly map: Float32Array; readonly shape: readonly number[] },
  options: HeatmapOptions = {},
): Promise<Buffer> {
  const o = checkOptions(options)
  if (!(image instanceof Float32Array) && !(image instanceof Uint8Array)) {
    throw new OptionError('image', `must be a Float32Array (or Uint8Array of pixels) of the input, got ${describe(image)}`)
  }
  const values = map instanceof Float32Array ? map : (map as { map?: unknown })?.map
  if (!(values instanceof Float32Array)) throw new OptionError('map', `must be an explanation or its map (a Float32Array), got ${describe(map)}`)
  const mapShape = map instanceof Float32Array ? undefined : map.shape
  const { channels, height, width } = layoutOf(image.length, o.shape ?? (mapShape && mapShape.length === 3 ? mapShape : undefined), mapShape)
  const plane = height * width
  if (values.length !== plane && values.length !== channels * plane) {
    throw new OptionError('map', `has ${values.length} values, but the image is ${channels}×${height}×${width}: expected ${plane} (H×W) or ${channels * plane} (C×H×W)`)
  }
  const heat = magnitudes(values, plane)
  const gray = displayImage(image, channels, plane)
  const colormap = o.colormap ?? 'jet'
  const alpha = o.alpha ?? 0.5
  const outH = o.size ?? 280
  const outW = Math.max(1, Math.round((outH * width) / height))
  const heatUp = resizeBilinear(heat, height, width, outH, outW)
  const panels = o.layout === 'side-by-side' ? 3 : 1
  const totalW = panels * outW + (panels - 1) * GAP
  const rgb = new Uint8Array(totalW * outH * 3).fill(32)
  const lut = colormapLut(colormap)
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / outH))
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / outW))
      const p = sy * width + sx
      const h = heatUp[y * outW + x]!
      const li = Math.round(Math.min(1, Math.max(0, h)) * 255) * 3
      for (let c = 0; c < 3; c++) {
        const img = gray[(channels === 3 ? c * plane : 0) + p]!
        const col = lut[li + c]!
        const blend = (1 - alpha) * img + alpha * col
        if (panels === 1) {
          rgb[(y * totalW + x) * 3 + c] = blend
        } else {
          rgb[(y * totalW + x) * 3 + c] = img
          rgb[(y * totalW + outW + GAP + x) * 3 + c] = col
          rgb[(y * totalW + 2 * (outW + GAP) + x) * 3 + c] = blend
        }
      }
    }
  }
  const sharp = await loadSharp()
  return sharp(rgb, { raw: { width: totalW, height: outH, channels: 3 } }).png().toBuffer()
}

function checkOptions(options: unknown): HeatmapOptions {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new OptionError('options', `heatmapPng: must be an options object, got ${describe(options)}`)
  for (const k of Object.keys(options)) if (!KEYS.includes(k)) throw new OptionError(k, `is not an option of heatmapPng (options: ${KEYS.join(', ')})`)
  const o = options as Record<string, unknown>
  const out: HeatmapOptions = {}
  if (o.shape !== undefined) {
    if (!Array.isArray(o.shape)) throw new OptionError('shape', `must be an image shape such as [1, 28, 28], got ${describe(o.shape)}`)
    out.shape = o.shape as number[]
  }
  if (o.colormap !== undefined) out.colormap = oneOf('colormap', o.colormap, COLORMAPS)
  if (o.alpha !== undefined) {
    if (typeof o.alpha !== 'number' || !(o.alpha >= 0 && o.alpha <= 1)) throw new OptionError('alpha', `must be a number in [0, 1], got ${describe(o.alpha)}`)
    out.alpha = o.alpha
  }
  if (o.size !== undefined) out.size = integerInRange('size', o.size, 8, 4096)
  if (o.layout !== undefined) out.layout = oneOf('layout', o.layout, ['overlay', 'side-by-side'] as const)
  return out
}

function layoutOf(imageLength: number, shape: readonly number[] | undefined, mapShape: readonly number[] | undefined): { channels: 1 | 3; height: number; width: number } {
  if (shape !== undefined) {
    let l: { channels: 1 | 3; height: number; width: number }
    try {
      l = imageLayout(shape, 'image')
    } catch (error) {
      throw new OptionError('shape', (error as Error).message.replace(/^image: /, ''))
    }
    if (l.channels * l.height * l.width !== imageLength) {
      throw new OptionError('image', `has ${imageLength} values, but the shape [${shape.join(', ')}] holds ${l.channels * l.height * l.width}`)
    }
    return l
  }
  if (mapShape && mapShape.length === 2) {
    const [height, width] = mapShape as [number, number]
    const channels = imageLength / (height * width)
    if (channels === 1 || channels === 3) return { channels, height, width }
    throw new OptionError('image', `has ${imageLength} values, which is not 1 or 3 channels of the map's ${height}×${width}; pass options.shape`)
  }
  for (const channels of [1, 3] as const) {
    const side = Math.round(Math.sqrt(imageLength / channels))
    if (side * side * channels === imageLength) return { channels, height: side, width: side }
  }
  throw new OptionError('shape', `is needed: an image of ${imageLength} values is not a square gray or RGB image`)
}

/** Per pixel, the largest |value| over the channels, scaled by the map's largest. */
function magnitudes(values: Float32Array, plane: number): Float32Array {
  const out = new Float32Array(plane)
  for (let j = 0; j < values.length; j++) {
    const v = Math.abs(values[j]!)
    const p = j % plane
    if (v > out[p]!) out[p] = v
  }
  let max = 0
  for (const v of out) if (v > max) max = v
  if (max > 0 && Number.isFinite(max)) for (let p = 0; p < plane; p++) out[p]! /= max
  return out
}

/** The image as 0..255 values, CHW: as it is when in [0, 1] (or pixels), else stretched. */
function displayImage(image: Float32Array | Uint8Array, channels: number, plane: number): Float32Array {
  const out = new Float32Array(channels * plane)
  if (image instanceof Uint8Array) {
    out.set(image)
    return out
  }
  let lo = Infinity
  let hi = -Infinity
  for (const v of image) {
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  const stretch = lo < 0 || hi > 1
  const span = hi > lo ? hi - lo : 1
  for (let j = 0; j < out.length; j++) {
    const v = stretch ? (image[j]! - lo) / span : image[j]!
    out[j] = 255 * Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0))
  }
  return out
}

/** Bilinear upscaling between pixel centres (align_corners = false). */
function resizeBilinear(src: Float32Array, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(outH * outW)
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / outH - 0.5))
    const y0 = Math.floor(sy)
    const y1 = Math.min(h - 1, y0 + 1)
    const fy = sy - y0
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / outW - 0.5))
      const x0 = Math.floor(sx)
      const x1 = Math.min(w - 1, x0 + 1)
      const fx = sx - x0
      const top = (1 - fx) * src[y0 * w + x0]! + fx * src[y0 * w + x1]!
      const bottom = (1 - fx) * src[y1 * w + x0]! + fx * src[y1 * w + x1]!
      out[y * outW + x] = (1 - fy) * top + fy * bottom
    }
  }
  return out
}

/** Stops (evenly spaced) of the perceptual colormaps, from matplotlib's. */
const STOPS: Record<'inferno' | 'viridis', readonly number[]> = {
  inferno: [0x000004, 0x1b0c41, 0x4a0c6b, 0x781c6d, 0xa52c60, 0xcf4446, 0xed6925, 0xfb9b06, 0xfcffa4],
  viridis: [0x440154, 0x482878, 0x3e4989, 0x31688e, 0x26828e, 0x1f9e89, 0x35b779, 0x6ece58, 0xb5de2b, 0xfde725],
}

const lutCache = new Map<Colormap, Uint8Array>()

/** 256 RGB entries of a colormap. @internal */
export function colormapLut(name: Colormap): Uint8Array {
  const cached = lutCache.get(name)
  if (cached) return cached
  const lut = new Uint8Array(256 * 3)
  const clamp = (v: number) => Math.min(1, Math.max(0, v))
  for (let i = 0; i < 256; i++) {
    const t = i / 255
    let rgb: [number, number, number]
    if (name === 'jet') rgb = [clamp(1.5 - Math.abs(4 * t - 3)), clamp(1.5 - Math.abs(4 * t - 2)), clamp(1.5 - Math.abs(4 * t - 1))]
    else if (name === 'hot') rgb = [clamp(3 * t), clamp(3 * t - 1), clamp(3 * t - 2)]
    else {
      const stops = STOPS[name]
      const s = t * (stops.length - 1)
      const k = Math.min(stops.length - 2, Math.floor(s))
      const f = s - k
      const a = stops[k]!
      const b = stops[k + 1]!
      const ch = (v: number, shift: number) => ((v >> shift) & 0xff) / 255
      rgb = [0, 1, 2].map((c) => (1 - f) * ch(a, 16 - 8 * c) + f * ch(b, 16 - 8 * c)) as [number, number, number]
    }
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(255 * rgb[c]!)
  }
  lutCache.set(name, lut)
  return lut
}
