#!/usr/bin/env node
// Multi-label classification with ferronet: three yes/no questions about a handwritten
// digit at once — is it even, is it greater than 4, does it have a closed loop (0, 6, 8,
// 9) — with binary cross-entropy on logits, on the 10,000 real digits of the `mnist`
// package (8,000 train / 2,000 held out). Accuracy is per label.
//
//   node examples/multilabel.mjs [--epochs 5] [--json]

import { Dataset, Net, Trainer, mnist } from '../dist/index.js'

const args = process.argv.slice(2)
const epochs = Number(args[args.indexOf('--epochs') + 1] ?? 5) || 5
const json = args.includes('--json')

const digits = await mnist.loadDigits()
const loops = new Set([0, 6, 8, 9])
const targets = new Float32Array(digits.size * 3)
digits.labels.forEach((d, i) => targets.set([d % 2 === 0 ? 1 : 0, d > 4 ? 1 : 0, loops.has(d) ? 1 : 0], i * 3))
const all = Dataset.fromArrays({ inputs: digits.inputs, targets, targetShape: [3], sampleShape: [1, 28, 28] })
const [train, test] = all.split(8000, { seed: 0 })

// The baseline: each label's majority value in the training set.
let baseline = 0
for (let k = 0; k < 3; k++) {
  let ones = 0
  for (let i = 0; i < train.size; i++) ones += train.targets[i * 3 + k]
  const majority = ones * 2 >= train.size ? 1 : 0
  let right = 0
  for (let i = 0; i < test.size; i++) right += test.targets[i * 3 + k] === majority ? 1 : 0
  baseline += right / test.size / 3
}

const net = Net.sequential([1, 28, 28], [
  Net.conv2d(8, 5, { padding: 2 }), Net.relu(), Net.maxPool2d(2),
  Net.flatten(), Net.dense(64), Net.relu(), Net.dense(3),
], { seed: 0 })
const trainer = new Trainer(net, { loss: { type: 'bce_with_logits' }, optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 32 })
await trainer.fit(train, { epochs })
const { accuracy, loss } = await trainer.evaluate(test)
const result = { testLabelAccuracy: accuracy, testLoss: loss, baselineLabelAccuracy: baseline, epochs }
if (json) console.log(JSON.stringify(result))
else console.log(`held-out per-label accuracy ${accuracy.toFixed(4)} (loss ${loss.toFixed(4)}) vs ${baseline.toFixed(4)} for the majority answer`)
