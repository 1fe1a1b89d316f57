// Peak RSS of loading an MNIST-style dataset, each measurement in a fresh `node` process.
//
//   npm run build:ts && node bench/load_rss.mjs [--data DIR]
//
// Prints, per child: process.resourceUsage().maxRSS (KiB, the peak) and
// process.memoryUsage() (current), for (a) a process that only imports ferronet and
// (b) one that also loads the train and test splits of DIR (default: Fashion-MNIST
// from /usr/share/datasets/fashion-mnist). The data bytes are the pixels + labels held
// by the two datasets; the target is peak(b) <= peak(a) + ~1.3 × data bytes.

import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const MiB = 1024 * 1024
const args = process.argv.slice(2)
const role = args[0] === '--child' ? args[1] : undefined
const dataIndex = args.indexOf('--data')
const dataDir = dataIndex === -1 ? '/usr/share/datasets/fashion-mnist' : args[dataIndex + 1]

function snapshot(extra) {
  const mem = process.memoryUsage()
  return {
    maxRssKiB: process.resourceUsage().maxRSS,
    rssKiB: Math.round(mem.rss / 1024),
    heapUsedKiB: Math.round(mem.heapUsed / 1024),
    externalKiB: Math.round(mem.external / 1024),
    arrayBuffersKiB: Math.round(mem.arrayBuffers / 1024),
    ...extra,
  }
}

if (role !== undefined) {
  const { mnist } = await import('../dist/index.js')
  let extra = {}
  if (role === 'load') {
    const t0 = performance.now()
    const train = await mnist.load(dataDir, 'train')
    const test = await mnist.load(dataDir, 'test')
    const ms = performance.now() - t0
    const dataBytes = train.inputs.byteLength + train.labels.byteLength + test.inputs.byteLength + test.labels.byteLength
    extra = { dataBytes, loadMs: Math.round(ms), sizes: [train.size, test.size] }
  }
  process.stdout.write(`${JSON.stringify(snapshot(extra))}\n`)
} else {
  const self = fileURLToPath(import.meta.url)
  const run = (what) => JSON.parse(execFileSync(process.execPath, [self, '--child', what, ...args], { encoding: 'utf8' }))
  const base = run('import')
  const loaded = run('load')
  console.log('import only :', JSON.stringify(base))
  console.log('import+load :', JSON.stringify(loaded))
  const overMiB = (loaded.maxRssKiB - base.maxRssKiB) / 1024
  const dataMiB = loaded.dataBytes / MiB
  console.log(
    `peak RSS: baseline ${(base.maxRssKiB / 1024).toFixed(1)} MiB, after load ${(loaded.maxRssKiB / 1024).toFixed(1)} MiB ` +
      `(+${overMiB.toFixed(1)} MiB for ${dataMiB.toFixed(1)} MiB of data = ${(overMiB / dataMiB).toFixed(2)}×; ` +
      `target ≤ 1.3×), load ${loaded.loadMs} ms`,
  )
}
