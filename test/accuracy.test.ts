/**
 * Accuracy on real data with the seed network (784→500→10, ReLU, Adam 1e-3, batch 64).
 * Thresholds from PyTorch on the same setup (bench/pytorch_mlp.py, results in
 * bench/results/pytorch-reference-2026-11-28.json).
 */

import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { Net, Trainer, mnist } from '../src/index.js'

const FASHION = '/usr/share/datasets/fashion-mnist'
const seedNetwork = () => Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 0 })

describe('accuracy on real data', () => {
  // CI installs Debian's dataset-fashion-mnist; without it this cannot run.
  it.skipIf(!existsSync(FASHION))('Fashion-MNIST: >= 0.83 test accuracy after 2 epochs', async () => {
    const [train, test] = await Promise.all([mnist.load(FASHION, 'train'), mnist.load(FASHION, 'test')])
    const trainer = new Trainer(seedNetwork(), { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64 })
    await trainer.fit(train, { epochs: 2 })
    const { accuracy } = await trainer.evaluate(test)
    console.log(`Fashion-MNIST, 2 epochs: test accuracy ${accuracy}`)
    expect(accuracy).toBeGreaterThanOrEqual(0.83)
  })

  it('mnist package digits: >= 0.94 test accuracy after 10 epochs on the 8000/2000 split', async () => {
    const [train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
    expect([train.size, test.size]).toEqual([8000, 2000])
    const trainer = new Trainer(seedNetwork(), { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64 })
    await trainer.fit(train, { epochs: 10 })
    const { accuracy } = await trainer.evaluate(test)
    console.log(`mnist digits, 10 epochs: test accuracy ${accuracy}`)
    expect(accuracy).toBeGreaterThanOrEqual(0.94)
  })
})
