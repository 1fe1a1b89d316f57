/**
 * Parity with PyTorch through the public API and the addon: the fixture is
 * written by scripts/make_fixtures.py (PyTorch, float64 math). Tolerance:
 * |ferronet - torch| <= 1e-5 · max(|torch|, 1e-2 · max|tensor|); the floor keeps
 * entries that are ~0 in exact arithmetic from demanding impossible f32 precision.
 */

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { Net, Trainer, type LayerSpec, type OptimizerOptions } from '../src/index.js'

interface Tensor { name: string; shape: number[]; data: number[] }
interface OptimizerRun {
  type: 'adam' | 'sgd'
  lr: number
  betas?: [number, number]
  eps?: number
  weight_decay: number
  momentum?: number
  dampening?: number
  nesterov?: boolean
  steps: number
  losses: number[]
  params_after: Tensor[]
}
interface Fixture {
  input_dim: number
  layers: { type: 'dense' | 'relu'; units?: number }[]
  x: number[]
  y: number[]
  params: Tensor[]
  logits: number[]
  loss: number
  grads: Tensor[]
  optimizers: OptimizerRun[]
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/parity/mlp.json', import.meta.url), 'utf8')) as Fixture
const x = Float32Array.from(fixture.x)
const y = Uint8Array.from(fixture.y)

function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>) {
  expect(got.length, what).toBe(want.length)
  let scale = 0
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!))
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!)
    const tol = 1e-5 * Math.max(Math.abs(want[i]!), 1e-2 * scale)
    if (err > tol) expect.fail(`${what}[${i}]: ferronet ${got[i]} vs PyTorch ${want[i]} (err ${err.toExponential(2)} > ${tol.toExponential(2)})`)
  }
}

function netFromFixture(): Net {
  const layers: LayerSpec[] = fixture.layers.map((l) => (l.type === 'dense' ? Net.dense(l.units!) : Net.relu()))
  const net = Net.sequential(fixture.input_dim, layers, { seed: 123 })
  net.setParameters(fixture.params.map((p) => Float32Array.from(p.data)))
  return net
}

function optimizerOf(run: OptimizerRun): OptimizerOptions {
  return run.type === 'adam'
    ? { type: 'adam', lr: run.lr, betas: run.betas!, eps: run.eps!, weightDecay: run.weight_decay }
    : { type: 'sgd', lr: run.lr, momentum: run.momentum!, dampening: run.dampening!, nesterov: run.nesterov!, weightDecay: run.weight_decay }
}

describe('parity with PyTorch', () => {
  it('names and shapes the parameters as PyTorch does', () => {
    expect(netFromFixture().parameters().map((p) => [p.name, p.shape])).toEqual(fixture.params.map((p) => [p.name, p.shape]))
  })

  it('matches the logits, the loss and every gradient', () => {
    const net = netFromFixture()
    expectClose('logits', net.predict(x), fixture.logits)
    // A step with a tiny SGD lr leaves the gradients of the original weights in place.
    const trainer = new Trainer(net, { optimizer: { type: 'sgd', lr: 1e-30 } })
    const loss = trainer.trainBatch(x, y)
    expectClose('loss', [loss], [fixture.loss])
    net.gradients().forEach((g, i) => {
      expect(g.name).toBe(fixture.grads[i]!.name)
      expectClose(`grad ${g.name}`, g.data, fixture.grads[i]!.data)
    })
  })

  for (const run of fixture.optimizers) {
    const label = `${run.type} ${JSON.stringify(optimizerOf(run))}`
    it(`matches ${run.steps} steps of ${label}`, () => {
      const net = netFromFixture()
      const trainer = new Trainer(net, { optimizer: optimizerOf(run) })
      const losses = Array.from({ length: run.steps }, () => trainer.trainBatch(x, y))
      expectClose('losses', losses, run.losses)
      net.parameters().forEach((p, i) => expectClose(`${p.name} after ${run.steps} steps`, p.data, run.params_after[i]!.data))
    })
  }
})
