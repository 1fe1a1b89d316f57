// Memory soak: create a net → fit one small epoch → drop it, N cycles, no explicit gc().
// Prints RSS per 10 cycles and the ratio RSS(last) / RSS(cycle 60) as one JSON line.
// V8 is told what each net holds (napi external memory), so dropped nets are collected
// while their native weights still matter. `--dispose` calls net.dispose() instead.
//
//     npm run build:ts && node bench/soak.mjs [--cycles 200] [--hidden 2000] [--dispose]
import { Net, Trainer, mnist } from '../dist/index.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(process.argv[i + 1])
}
const cycles = arg('cycles', 200)
const hidden = arg('hidden', 2000)
const dispose = process.argv.includes('--dispose')
const data = (await mnist.loadDigits()).subset(0, 1000)
const rss = []
for (let c = 1; c <= cycles; c++) {
  const net = Net.sequential(784, [Net.dense(hidden), Net.relu(), Net.dense(10)], { seed: c })
  await new Trainer(net, { threads: 1 }).fit(data, { epochs: 1 })
  if (dispose) net.dispose()
  if (c % 10 === 0) rss.push({ cycle: c, rssMiB: +(process.memoryUsage.rss() / 2 ** 20).toFixed(1) })
}
const at = (n) => rss.find((r) => r.cycle === n)?.rssMiB
const perNetMiB = (784 * hidden + hidden + hidden * 10 + 10) * 4 * 2 / 2 ** 20
console.log(JSON.stringify({ kind: 'soak', cycles, hidden, dispose, perNetMiB: +perNetMiB.toFixed(1), rss, ratioLastTo60: at(60) ? +(at(cycles) / at(60)).toFixed(3) : null }))
