// Contention: seconds for --epochs (default 10) epochs of 8,000 real digits (784→500→10, Adam, batch 64)
// with the default thread count (all cores) and with one thread, on a quiet machine and
// beside a busy neighbour (a process spinning on one core, pinned there with taskset).
// Median of --repeats runs each; one JSON line. Run it with nothing else on the machine.
//
//     npm run build:ts && node bench/contention.mjs [--repeats 3] [--epochs 10] [--unpinned]
//
// (2 epochs took 0.1–0.2 s on a Zen 5 core: too short to see a helper being benched,
// hence 10.)
import { spawn, spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { Net, Trainer, mnist } from '../dist/index.js'

const flag = (name, fallback) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback)
const repeats = flag('--repeats', 3)
const epochs = flag('--epochs', 10)
const data = (await mnist.loadDigits()).subset(0, 8000)
const cores = availableParallelism()
// --unpinned: the spinner may run on any core (as a compile beside the run would).
const hasTaskset = !process.argv.includes('--unpinned') && spawnSync('taskset', ['--version']).status === 0

async function timeFit(threads) {
  const net = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 0 })
  const trainer = new Trainer(net, { threads, batchSize: 64 })
  const t = process.hrtime.bigint()
  await trainer.fit(data, { epochs })
  return Number(process.hrtime.bigint() - t) / 1e9
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const result = { kind: 'contention', cores, repeats, samples: 8000, epochs, spinnerPinned: hasTaskset }
await timeFit(0) // warm-up
for (const mode of ['quiet', 'busy']) {
  let busy
  if (mode === 'busy') {
    const args = ['-e', 'for (;;) {}']
    busy = hasTaskset ? spawn('taskset', ['-c', String(cores - 1), process.execPath, ...args], { stdio: 'ignore' }) : spawn(process.execPath, args, { stdio: 'ignore' })
    await new Promise((r) => setTimeout(r, 500))
  }
  const all = [], one = []
  for (let i = 0; i < repeats; i++) {
    all.push(await timeFit(0))
    one.push(await timeFit(1))
  }
  busy?.kill('SIGKILL')
  result[mode] = { defaultThreads: median(all), oneThread: median(one), ratioDefaultToOne: +(median(all) / median(one)).toFixed(3), runs: { defaultThreads: all.map((x) => +x.toFixed(3)), oneThread: one.map((x) => +x.toFixed(3)) } }
}
console.log(JSON.stringify(result))
