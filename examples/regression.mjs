#!/usr/bin/env node
// Regression with ferronet: from the upper half of a handwritten digit, predict how much
// ink its lower half holds (mean intensity of the lower 14 rows, ×10), with MSE, on the
// 10,000 real digits of the `mnist` package (8,000 train / 2,000 held out).
//
//   node examples/regression.mjs [--epochs 5] [--json]

import { Dataset, Net, Trainer, mnist } from '../dist/index.js'

const args = process.argv.slice(2)
const epochs = Number(args[args.indexOf('--epochs') + 1] ?? 5) || 5
const json = args.includes('--json')

const digits = await mnist.loadDigits()
const n = digits.size
const upper = new Float32Array(n * 392)
const ink = new Float32Array(n)
for (let i = 0; i < n; i++) {
  const img = digits.inputs.subarray(i * 784, (i + 1) * 784)
  let sum = 0
  for (let j = 0; j < 392; j++) upper[i * 392 + j] = img[j] / 255
  for (let j = 392; j < 784; j++) sum += img[j] / 255
  ink[i] = (sum / 392) * 10
}
const all = Dataset.fromArrays({ inputs: upper, targets: ink, targetShape: [1], sampleShape: [14, 28] })
const [train, test] = all.split(8000, { seed: 0 })

// The baseline a model must beat: always predicting the training mean.
const mean = train.targets.reduce((a, b) => a + b, 0) / train.size
const baselineMse = test.targets.reduce((a, t) => a + (t - mean) ** 2, 0) / test.size

const net = Net.sequential([14, 28], [Net.flatten(), Net.dense(128), Net.relu(), Net.dense(1)], { seed: 0 })
const trainer = new Trainer(net, { loss: { type: 'mse' }, optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 32 })
const { epochs: stats } = await trainer.fit(train, { epochs })
const { mse, mae } = await trainer.evaluate(test)
const result = { testMse: mse, testMae: mae, baselineMse, trainMse: stats.at(-1).mse, epochs }
if (json) console.log(JSON.stringify(result))
else console.log(`held-out MSE ${mse.toFixed(4)} (MAE ${mae.toFixed(4)}) vs ${baselineMse.toFixed(4)} for predicting the mean`)
