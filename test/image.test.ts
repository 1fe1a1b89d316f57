/**
 * Images in, on real data: test-set digits from the `mnist` package (and Fashion-MNIST
 * for the resize path) rendered to PNG, JPEG and WebP files at other sizes, with
 * margins and on white or grey paper, then read back with mnistImage / imageInput /
 * Dataset.fromImageFolder and compared with the original 28×28 arrays.
 */

import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { Dataset } from '../src/dataset.js'
import { ImageError, OptionError, type ImageErrorReason } from '../src/errors.js'
import { imageInput, imageInputs, mnistImage } from '../src/image.js'
import { Net, Trainer, mnist } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'
const EXAMPLES = fileURLToPath(new URL('../examples/images/', import.meta.url))
/** Test-set images rendered per format. */
const COUNT = 200
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']

let tmp: string
let train: Dataset
let test: Dataset

const pixelsOf = (ds: Dataset, i: number) => Buffer.from(ds.inputs.subarray(i * ds.inputDim, (i + 1) * ds.inputDim))
// sharp outputs sRGB unless told otherwise: `.grayscale()` before `.raw()` keeps one channel.
const raw28 = (px: Uint8Array) => sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
const inverted = (px: Uint8Array) => Buffer.from(px.map((v) => 255 - v))

/** Ways of rendering a real 28×28 digit (light ink on black) as an image file. */
const RENDERS: Record<string, { ext: string; render: (px: Uint8Array, i: number) => Promise<Buffer> }> = {
  // Dark ink on white, 2× (bicubic).
  'png-56-white': { ext: 'png', render: (px) => raw28(inverted(px)).resize(56, 56, { kernel: 'cubic' }).png().toBuffer() },
  // Dark ink on white, 2×, placed off-centre in a 90×70 page, JPEG quality 90.
  'jpeg-90x70-white': {
    ext: 'jpg',
    render: (px) => raw28(inverted(px)).resize(56, 56, { kernel: 'cubic' })
      .extend({ top: 4, bottom: 10, left: 20, right: 14, background: '#ffffff' }).jpeg({ quality: 90 }).toBuffer(),
  },
  // Grey ink on grey, noisy paper (levels 210 → 40), 3×, JPEG quality 80.
  'jpeg-84-grey-paper': {
    ext: 'jpg',
    render: async (px, i) => {
      const big = await raw28(px).resize(84, 84, { kernel: 'cubic' }).grayscale().raw().toBuffer()
      const paper = Buffer.alloc(big.length)
      let state = (i + 1) * 2654435761
      for (let j = 0; j < big.length; j++) {
        state = (state * 1103515245 + 12345) >>> 0
        const noise = ((state >>> 16) % 13) - 6
        paper[j] = Math.max(0, Math.min(255, Math.round(210 - ((big[j] as number) * 170) / 255 + noise)))
      }
      return sharp(paper, { raw: { width: 84, height: 84, channels: 1 } }).jpeg({ quality: 80 }).toBuffer()
    },
  },
  // Black ink whose alpha is the digit, on a transparent background (flattened onto white), lossless WebP, 64×64.
  'webp-64-alpha': {
    ext: 'webp',
    render: async (px) => {
      const alpha = await raw28(px).resize(64, 64, { kernel: 'cubic' }).grayscale().raw().toBuffer()
      const rgba = Buffer.alloc(64 * 64 * 4)
      for (let p = 0; p < 64 * 64; p++) rgba[p * 4 + 3] = alpha[p] as number
      return sharp(rgba, { raw: { width: 64, height: 64, channels: 4 } }).webp({ lossless: true }).toBuffer()
    },
  },
  // The original itself, light on black, 28×28.
  'png-28-original': { ext: 'png', render: (px) => raw28(px).png().toBuffer() },
}

const fileOf = (render: string, i: number) => join(tmp, render, `${i}.${RENDERS[render]!.ext}`)

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ferronet-image-'))
  ;[train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
  for (const [name, { render }] of Object.entries(RENDERS)) {
    await mkdir(join(tmp, name))
    await Promise.all(Array.from({ length: COUNT }, async (_, i) => writeFile(fileOf(name, i), await render(pixelsOf(test, i), i))))
  }
})

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

/** Mean absolute difference and Pearson correlation of two images. */
function compare(a: ArrayLike<number>, b: ArrayLike<number>): { mad: number; corr: number } {
  const n = a.length
  let mad = 0, ma = 0, mb = 0
  for (let i = 0; i < n; i++) {
    mad += Math.abs(a[i]! - b[i]!)
    ma += a[i]!
    mb += b[i]!
  }
  ma /= n
  mb /= n
  let sab = 0, saa = 0, sbb = 0
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb)
    saa += (a[i]! - ma) ** 2
    sbb += (b[i]! - mb) ** 2
  }
  return { mad: mad / n, corr: sab / Math.sqrt(saa * sbb) }
}

/** Mean MAD, mean correlation and the share of images correlating ≥ 0.8, over rows of `dim`. */
function similarity(rows: Float32Array, originals: Dataset, dim: number, offset = 0) {
  let mad = 0, corr = 0, good = 0
  const count = rows.length / dim
  for (let i = 0; i < count; i++) {
    const original = Float32Array.from(pixelsOf(originals, (i + offset) % originals.size), (v) => v / 255)
    const s = compare(original, rows.subarray(i * dim, (i + 1) * dim))
    mad += s.mad
    corr += s.corr
    if (s.corr >= 0.8) good++
  }
  return { mad: mad / count, corr: corr / count, good: good / count }
}

async function expectImageError(action: () => Promise<unknown>, reason: ImageErrorReason, file: string): Promise<ImageError> {
  let caught: unknown
  try {
    await action()
  } catch (error) {
    caught = error
  }
  expect(caught, `expected an ImageError ${reason}`).toBeInstanceOf(ImageError)
  const error = caught as ImageError
  expect(error.code).toBe('ERR_IMAGE')
  expect(error.reason).toBe(reason)
  expect(error.file).toBe(file)
  expect(error.message.startsWith(`${file}: `)).toBe(true)
  return error
}

async function expectOptionError(action: () => Promise<unknown>, field: string): Promise<void> {
  await expect(action()).rejects.toSatisfy((e: unknown) => e instanceof OptionError && e.field === field)
}

describe('mnistImage on re-rendered real digits', () => {
  it('comes back close to the original 28×28 arrays (mean abs diff ≤ 0.04, mean correlation ≥ 0.93)', async () => {
    for (const name of Object.keys(RENDERS)) {
      const files = Array.from({ length: COUNT }, (_, i) => fileOf(name, i))
      const rows = new Float32Array(COUNT * 784)
      for (let i = 0; i < COUNT; i++) {
        const x = await mnistImage(files[i]!)
        expect(x).toBeInstanceOf(Float32Array)
        expect(x.length).toBe(784)
        rows.set(x, i * 784)
      }
      expect(rows.every((v) => v >= 0 && v <= 1)).toBe(true)
      const s = similarity(rows, test, 784)
      // A control: against other digits the same measure is far off.
      const other = similarity(rows, test, 784, 1)
      console.log(`mnistImage ${name}: mean abs diff ${s.mad.toFixed(4)}, mean correlation ${s.corr.toFixed(4)}, ` +
        `${(100 * s.good).toFixed(1)}% ≥ 0.8 (vs the next digit: ${other.mad.toFixed(4)}, ${other.corr.toFixed(4)})`)
      expect(s.mad).toBeLessThanOrEqual(name === 'png-28-original' ? 0.005 : 0.04)
      expect(s.corr).toBeGreaterThanOrEqual(name === 'png-28-original' ? 0.99 : 0.93)
      expect(s.good).toBeGreaterThanOrEqual(0.9)
      expect(other.corr).toBeLessThan(0.5)
      // imageInput with a [1, 28, 28] shape defaults to the same preprocessing.
      expect(await imageInput(files[0]!, [1, 28, 28])).toEqual(rows.subarray(0, 784))
    }
  })

  it('reads bytes as it reads files, and honours invert and size', async () => {
    const file = fileOf('png-56-white', 3)
    const bytes = await readFile(file)
    const fromFile = await mnistImage(file)
    expect(await mnistImage(bytes)).toEqual(fromFile)
    expect(await mnistImage(new Uint8Array(bytes))).toEqual(fromFile)
    // Forcing no inversion on dark-on-white ink finds no ink (the page is the brightest).
    await expectImageError(() => mnistImage(bytes, { invert: false }), 'EMPTY_IMAGE', 'image bytes')
    const small = await mnistImage(bytes, { size: 14 })
    expect(small.length).toBe(196)
    // The 10-pixel box, centred by mass on (7, 7).
    let mass = 0, mx = 0, my = 0
    small.forEach((v, j) => { mass += v; mx += v * (j % 14); my += v * Math.floor(j / 14) })
    expect(Math.abs(mx / mass - 7)).toBeLessThanOrEqual(0.5)
    expect(Math.abs(my / mass - 7)).toBeLessThanOrEqual(0.5)
  })

  it('a net trained on the arrays predicts the same classes through the image files (agreement ≥ 0.95)', async () => {
    const net = Net.sequential(784, [Net.dense(128), Net.relu(), Net.dense(10)], { seed: 0 })
    await new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64 }).fit(train, { epochs: 3 })
    const subset = test.subset(0, COUNT)
    const fromArrays = net.predictClasses(subset)
    const labels = subset.labels!
    const accuracy = (p: Uint32Array) => p.filter((c, i) => c === labels[i]).length / p.length
    for (const name of ['png-56-white', 'jpeg-90x70-white', 'jpeg-84-grey-paper', 'webp-64-alpha']) {
      const files = Array.from({ length: COUNT }, (_, i) => fileOf(name, i))
      const fromFiles = net.predictClasses(await imageInputs(files, net.inputShape))
      const agreement = fromFiles.filter((c, i) => c === fromArrays[i]).length / COUNT
      console.log(`${name}: ${COUNT} test digits, prediction agreement files vs arrays ${agreement.toFixed(3)}; ` +
        `accuracy arrays ${accuracy(fromArrays).toFixed(3)}, files ${accuracy(fromFiles).toFixed(3)}`)
      expect(agreement).toBeGreaterThanOrEqual(0.95)
    }
    // The sample images of examples/images (scripts/make-example-images.mts) read as their digit.
    const examples = (await readdir(EXAMPLES)).filter((f) => /^digit-\d\.(png|jpg)$/.test(f)).sort()
    expect(examples.length).toBeGreaterThanOrEqual(4)
    const predicted = net.predictClasses(await imageInputs(examples.map((f) => join(EXAMPLES, f)), [784]))
    expect([...predicted]).toEqual(examples.map((f) => Number(f[6])))
  })
})

describe('imageInput with resize', () => {
  it.skipIf(!existsSync(FASHION))('Fashion-MNIST re-rendered at 56×56 (PNG) and 84×84 (JPEG) resizes back close to the originals, and a net agrees (≥ 0.9)', async () => {
    const [fashionTrain, fashionTest] = await Promise.all([mnist.load(FASHION, 'train'), mnist.load(FASHION, 'test')])
    const dir = join(tmp, 'fashion')
    await mkdir(dir)
    const files: Record<string, string[]> = { 'png-56': [], 'jpeg-84': [] }
    await Promise.all(Array.from({ length: COUNT }, async (_, i) => {
      const px = pixelsOf(fashionTest, i)
      files['png-56']![i] = join(dir, `${i}.png`)
      files['jpeg-84']![i] = join(dir, `${i}.jpg`)
      await writeFile(files['png-56']![i]!, await raw28(px).resize(56, 56, { kernel: 'cubic' }).png().toBuffer())
      await writeFile(files['jpeg-84']![i]!, await raw28(px).resize(84, 84, { kernel: 'cubic' }).jpeg({ quality: 90 }).toBuffer())
    }))
    const net = Net.sequential([1, 28, 28], [Net.flatten(), Net.dense(128), Net.relu(), Net.dense(10)], { seed: 0 })
    await new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64 }).fit(fashionTrain.subset(0, 12000), { epochs: 1 })
    const fromArrays = net.predictClasses(fashionTest.subset(0, COUNT))
    for (const [name, list] of Object.entries(files)) {
      const rows = await imageInputs(list, net.inputShape, { preprocess: 'resize' })
      const s = similarity(rows, fashionTest, 784)
      const fromFiles = net.predictClasses(rows)
      const agreement = fromFiles.filter((c, i) => c === fromArrays[i]).length / COUNT
      console.log(`Fashion-MNIST resize ${name}: mean abs diff ${s.mad.toFixed(4)}, mean correlation ${s.corr.toFixed(4)}, prediction agreement ${agreement.toFixed(3)}`)
      expect(s.mad).toBeLessThanOrEqual(0.045)
      expect(s.corr).toBeGreaterThanOrEqual(0.96)
      expect(agreement).toBeGreaterThanOrEqual(0.9)
    }
  })

  it('gives channel-first (NCHW) RGB rows, and grayscale for one channel', async () => {
    // 8×4: left half red, right half blue, bottom row green across.
    const w = 8, h = 4
    const rgb = Buffer.alloc(w * h * 3)
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = (y * w + x) * 3
        if (y === h - 1) rgb[p + 1] = 255
        else if (x < w / 2) rgb[p] = 255
        else rgb[p + 2] = 255
      }
    }
    const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer()
    const x = await imageInput(png, [3, h, w], { preprocess: 'resize' })
    expect(x.length).toBe(3 * h * w)
    const at = (c: number, y: number, xx: number) => x[c * h * w + y * w + xx]
    expect([at(0, 0, 0), at(1, 0, 0), at(2, 0, 0)]).toEqual([1, 0, 0])
    expect([at(0, 1, 7), at(1, 1, 7), at(2, 1, 7)]).toEqual([0, 0, 1])
    expect([at(0, 3, 2), at(1, 3, 2), at(2, 3, 2)]).toEqual([0, 1, 0])
    // [H*W] of a non-28 square defaults to resize, grayscale (luminance of pure blue is low, red higher).
    const g = await imageInput(png, [16], { fit: 'fill' })
    expect(g.length).toBe(16)
    expect(g[0]!).toBeGreaterThan(g[3]!)
    // A [3, 28, 28] input with 'mnist' fills all three channels with the gray digit.
    const digit = await imageInput(fileOf('png-56-white', 0), [3, 28, 28], { preprocess: 'mnist' })
    const gray = await mnistImage(fileOf('png-56-white', 0))
    for (let c = 0; c < 3; c++) expect(digit.subarray(c * 784, (c + 1) * 784)).toEqual(gray)
  })
})

describe('Dataset.fromImageFolder', () => {
  const bad = { corrupt: '', text: '', truncated: '' }
  let root: string

  beforeAll(async () => {
    // 100 training digits per class, in folders named by the English word (sorted
    // alphabetically, not in digit order), alternately white-background PNGs and JPEGs.
    root = join(tmp, 'folder')
    const perClass = new Array(10).fill(0)
    const writes: Promise<void>[] = []
    for (let i = 0; i < train.size && perClass.some((n) => n < 100); i++) {
      const label = train.labels![i]!
      if (perClass[label] >= 100) continue
      const n = perClass[label]++
      const render = n % 2 === 0 ? RENDERS['png-56-white']! : RENDERS['jpeg-90x70-white']!
      const file = join(root, WORDS[label]!, `${String(n).padStart(3, '0')}.${render.ext}`)
      writes.push(mkdir(dirname(file), { recursive: true }).then(async () => writeFile(file, await render.render(pixelsOf(train, i), i))))
    }
    await Promise.all(writes)
    const png = await readFile(join(root, 'five', '000.png'))
    bad.corrupt = join(root, 'three', 'corrupt.png')
    bad.text = join(root, 'seven', 'notes.txt')
    bad.truncated = join(root, 'five', 'cut.png')
    // Complete (it ends with IEND) but garbled after the header.
    await writeFile(bad.corrupt, Buffer.concat([png.subarray(0, 33), Buffer.alloc(200, 0x5a), png.subarray(png.length - 12)]))
    await writeFile(bad.text, 'these are not pixels\n')
    await writeFile(bad.truncated, png.subarray(0, Math.floor(png.length / 2)))
    // Ignored: hidden files and folders, and files beside the class folders.
    await writeFile(join(root, 'one', '.DS_Store'), 'x')
    await mkdir(join(root, '.cache'))
    await writeFile(join(root, '.cache', 'x.png'), png)
    await writeFile(join(root, 'README.md'), '# digits\n')
  })

  it('loads one class per sorted folder name, skips and reports the unreadable files, and trains a net', async () => {
    const folder = await Dataset.fromImageFolder(root, { size: 28, grayscale: true, preprocess: 'mnist', concurrency: 3 })
    const { dataset, classNames, files, skipped } = folder
    expect(classNames).toEqual([...WORDS].sort())
    expect(dataset.classNames).toEqual(classNames)
    expect(dataset.size).toBe(1000)
    expect(dataset.sampleShape).toEqual([1, 28, 28])
    expect(dataset.dtype).toBe('uint8')
    expect([...dataset.classCounts()]).toEqual(new Array(10).fill(100))
    expect(skipped.map((s) => [s.file, s.reason])).toEqual([
      [bad.truncated, 'TRUNCATED'],
      [bad.text, 'UNSUPPORTED_FORMAT'],
      [bad.corrupt, 'CORRUPT'],
    ])
    for (const s of skipped) expect(s.message.startsWith(`${s.file}: `)).toBe(true)
    // Every sample's label is its folder.
    expect(files.length).toBe(1000)
    files.forEach((file, i) => expect(basename(dirname(file))).toBe(classNames[dataset.labels![i]!]))
    // The pixels are mnistImage's, quantised to bytes.
    const k = files.indexOf(join(root, 'zero', '001.jpg'))
    const expected = await mnistImage(files[k]!)
    const got = dataset.sample(k).input
    for (let j = 0; j < 784; j++) expect(Math.abs(got[j]! / 255 - expected[j]!)).toBeLessThanOrEqual(0.5 / 255 + 1e-6)
    // classNames survive split.
    const [a, b] = dataset.split(0.8, { seed: 1 })
    expect(a.classNames).toEqual(classNames)
    expect(b.classNames).toEqual(classNames)

    // A net trained on the folder names held-out test digits (files) by folder name.
    const net = Net.sequential(dataset.sampleShape, [Net.flatten(), Net.dense(64), Net.relu(), Net.dense(classNames.length)], { seed: 0 })
    await new Trainer(net, { optimizer: { type: 'adam', lr: 2e-3 }, batchSize: 32 }).fit(dataset, { epochs: 15 })
    const predicted = net.predictClasses(await imageInputs(Array.from({ length: COUNT }, (_, i) => fileOf('png-56-white', i)), net.inputShape))
    const right = [...predicted].filter((p, i) => classNames[p] === WORDS[test.labels![i]!]).length / COUNT
    console.log(`fromImageFolder: net trained on 1,000 folder images names ${COUNT} held-out digits right: ${right.toFixed(3)}`)
    expect(right).toBeGreaterThanOrEqual(0.8)
  })

  it("with onError: 'fail' rejects naming the unreadable file; extensions leaves other files out", async () => {
    const error = await Dataset.fromImageFolder(root, { size: 28, grayscale: true, onError: 'fail' }).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ImageError)
    const { file, message } = error as ImageError
    expect(Object.values(bad)).toContain(file)
    expect(message).toContain(file)
    // Only .jpg files: none of the bad ones is read.
    const jpgs = await Dataset.fromImageFolder(root, { size: 28, grayscale: true, preprocess: 'mnist', onError: 'fail', extensions: ['JPG'] })
    expect(jpgs.dataset.size).toBe(500)
    expect(jpgs.skipped).toEqual([])
    expect(jpgs.files.every((f) => f.endsWith('.jpg'))).toBe(true)
  })

  it('resizes RGB images to [3, H, W] and trains on them', async () => {
    const dir = join(tmp, 'colours')
    const colours: Record<string, [number, number, number]> = { blue: [0, 0, 255], red: [255, 0, 0] }
    for (const [name, [r, g, b]] of Object.entries(colours)) {
      await mkdir(join(dir, name, 'nested'), { recursive: true })
      for (let i = 0; i < 6; i++) {
        const image = sharp({ create: { width: 20 + i, height: 12, channels: 3, background: { r, g, b } } })
        await writeFile(join(dir, name, i < 3 ? '' : 'nested', `${i}.png`), await image.png().toBuffer())
      }
    }
    const { dataset, classNames, skipped } = await Dataset.fromImageFolder(dir, { size: [6, 8] })
    expect(classNames).toEqual(['blue', 'red'])
    expect(skipped).toEqual([])
    expect(dataset.sampleShape).toEqual([3, 6, 8])
    expect(dataset.size).toBe(12)
    const blue = dataset.sample(0)
    expect(blue.label).toBe(0)
    expect([blue.input[0], blue.input[48], blue.input[96]]).toEqual([0, 0, 255])
    const red = dataset.sample(11)
    expect(red.label).toBe(1)
    expect([...red.input.subarray(0, 48)].every((v) => v === 255)).toBe(true)
    expect([...red.input.subarray(96)].every((v) => v === 0)).toBe(true)
    const net = Net.sequential([3, 6, 8], [Net.flatten(), Net.dense(2)], { seed: 0 })
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 0.05 }, batchSize: 4 })
    await trainer.fit(dataset, { epochs: 10 })
    expect((await trainer.evaluate(dataset)).accuracy).toBe(1)
  })

  it('rejects a missing folder, a folder without classes and classes without images, naming the folder', async () => {
    const missing = join(tmp, 'no-such-folder')
    await expectImageError(() => Dataset.fromImageFolder(missing, { size: 28 }), 'NOT_FOUND', missing)
    const empty = join(tmp, 'empty-folder')
    await mkdir(empty)
    await writeFile(join(empty, 'loose.png'), await readFile(fileOf('png-56-white', 0)))
    await expectImageError(() => Dataset.fromImageFolder(empty, { size: 28 }), 'NO_CLASSES', empty)
    await mkdir(join(empty, 'a'))
    await mkdir(join(empty, 'b'))
    await expectImageError(() => Dataset.fromImageFolder(empty, { size: 28 }), 'NO_IMAGES', empty)
    await writeFile(join(empty, 'a', 'junk.jpg'), 'not a jpeg')
    const error = await expectImageError(() => Dataset.fromImageFolder(empty, { size: 28 }), 'NO_IMAGES', empty)
    expect(error.message).toContain(join(empty, 'a', 'junk.jpg'))
    const file = fileOf('png-56-white', 0)
    await expectImageError(() => Dataset.fromImageFolder(file, { size: 28 }), 'NOT_A_DIRECTORY', file)
    await expectOptionError(() => Dataset.fromImageFolder(root, {} as never), 'size')
    await expectOptionError(() => Dataset.fromImageFolder(root, { size: 28, onError: 'ignore' as never }), 'onError')
    await expectOptionError(() => Dataset.fromImageFolder(root, { size: [28, 20], preprocess: 'mnist' }), 'size')
  })
})

describe('bad inputs give an ImageError naming the file', () => {
  it('missing file, directory, empty file, garbage, BMP, truncated and corrupt data, too many pixels', async () => {
    const missing = join(tmp, 'missing.png')
    await expectImageError(() => mnistImage(missing), 'NOT_FOUND', missing)
    await expectImageError(() => imageInput(missing, [784]), 'NOT_FOUND', missing)
    await expectImageError(() => mnistImage(tmp), 'NOT_A_FILE', tmp)
    const empty = join(tmp, 'empty.png')
    await writeFile(empty, '')
    await expectImageError(() => mnistImage(empty), 'EMPTY_FILE', empty)
    await expectImageError(() => imageInput(new Uint8Array(0), [784]), 'EMPTY_FILE', 'image bytes')

    const garbage = Buffer.from('GET / HTTP/1.1\r\nthis is not an image at all\r\n')
    const text = await expectImageError(() => imageInput(garbage, [784]), 'UNSUPPORTED_FORMAT', 'image bytes')
    expect(text.message).toContain('not an image')
    await expectImageError(() => imageInput(garbage, [784], { name: 'request body' }), 'UNSUPPORTED_FORMAT', 'request body')
    const binary = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256))
    const garbageFile = join(tmp, 'garbage.jpg')
    await writeFile(garbageFile, binary)
    await expectImageError(() => mnistImage(garbageFile), 'UNSUPPORTED_FORMAT', garbageFile)
    const bmp = Buffer.alloc(70)
    bmp.write('BM', 0, 'ascii')
    const bmpError = await expectImageError(() => mnistImage(bmp), 'UNSUPPORTED_FORMAT', 'image bytes')
    expect(bmpError.message).toContain('BMP')

    for (const name of ['png-56-white', 'jpeg-90x70-white', 'webp-64-alpha']) {
      const bytes = await readFile(fileOf(name, 7))
      const cut = join(tmp, `cut-${basename(fileOf(name, 7))}`)
      await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)))
      await expectImageError(() => mnistImage(cut), 'TRUNCATED', cut)
      await expectImageError(() => imageInput(cut, [1, 32, 32]), 'TRUNCATED', cut)
    }
    const png = await readFile(fileOf('png-56-white', 7))
    const corrupt = Buffer.concat([png.subarray(0, 33), Buffer.alloc(png.length - 45, 0x41), png.subarray(png.length - 12)])
    await expectImageError(() => mnistImage(corrupt), 'CORRUPT', 'image bytes')
    await expectImageError(() => mnistImage(png, { maxPixels: 1000 }), 'TOO_LARGE', 'image bytes')
    // One bad file among good ones: imageInputs names it.
    const sources = [fileOf('png-56-white', 0), missing, fileOf('png-56-white', 1)]
    await expectImageError(() => imageInputs(sources, [784]), 'NOT_FOUND', missing)
  })

  it('a blank image has no ink for mnist preprocessing (resize accepts it)', async () => {
    const white = join(tmp, 'white.png')
    await writeFile(white, await sharp({ create: { width: 40, height: 30, channels: 3, background: '#ffffff' } }).png().toBuffer())
    const error = await expectImageError(() => mnistImage(white), 'EMPTY_IMAGE', white)
    expect(error.message).toContain('blank')
    await expectImageError(() => imageInput(white, [1, 28, 28]), 'EMPTY_IMAGE', white)
    const transparent = await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer()
    await expectImageError(() => mnistImage(transparent), 'EMPTY_IMAGE', 'image bytes')
    const x = await imageInput(white, [1, 28, 28], { preprocess: 'resize' })
    expect(x.every((v) => v === 1)).toBe(true)
  })

  it('an input shape that is not an image shape, and bad options', async () => {
    const file = fileOf('png-56-white', 0)
    for (const shape of [[10], [2, 28, 28], [4, 8, 8], [1, 2, 3, 4], [], [0, 28], [1.5], [1, 99999, 2]]) {
      const error = await expectImageError(() => imageInput(file, shape), 'BAD_SHAPE', file)
      expect(error.message).toContain('not an image shape')
    }
    await expectImageError(() => imageInput(Buffer.from('x'), [7]), 'BAD_SHAPE', 'image bytes')
    await expectImageError(() => imageInputs([file], [2, 5, 5]), 'BAD_SHAPE', file)
    await expectOptionError(() => imageInput(file, [1, 28, 20], { preprocess: 'mnist' }), 'preprocess')
    await expectOptionError(() => imageInput(file, [784], { preprocess: 'crop' as never }), 'preprocess')
    await expectOptionError(() => imageInput(file, [784], { preproces: 'resize' } as never), 'preproces')
    await expectOptionError(() => mnistImage(file, { threshold: 1 }), 'threshold')
    await expectOptionError(() => mnistImage(file, { invert: 'yes' as never }), 'invert')
    await expectOptionError(() => mnistImage(42 as never), 'source')
    await expectOptionError(() => imageInputs([], [784]), 'sources')
  })
})

describe('Dataset classNames', () => {
  it('fromArrays takes one distinct name per class; subset keeps them', () => {
    const ds = Dataset.fromArrays({ inputs: new Uint8Array(6), labels: [0, 1, 2], classNames: ['a', 'b', 'c'] })
    expect(ds.numClasses).toBe(3)
    expect(ds.classNames).toEqual(['a', 'b', 'c'])
    expect(Object.isFrozen(ds.classNames)).toBe(true)
    expect(ds.subset(1).classNames).toEqual(['a', 'b', 'c'])
    expect(Dataset.fromArrays({ inputs: new Uint8Array(6), labels: [0, 1, 2] }).classNames).toBeUndefined()
    expect(() => Dataset.fromArrays({ inputs: new Uint8Array(6), labels: [0, 1, 2], classNames: ['a', 'b'] })).toThrow(OptionError)
    expect(() => Dataset.fromArrays({ inputs: new Uint8Array(6), labels: [0, 1, 2], numClasses: 3, classNames: ['a', 'b', 'a'] })).toThrow(/twice/)
    expect(() => Dataset.fromArrays({ inputs: new Float32Array(3), targets: new Float32Array(3), classNames: ['a'] })).toThrow(OptionError)
  })
})
