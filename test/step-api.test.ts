/**
 * The per-batch step API (net.forward / backward / inputGrad / zeroGrad, Optimizer),
 * GanTrainer and net.generate.
 */

import { describe, expect, it } from 'vitest'

import { Dataset, GanTrainer, NativeError, Net, OptionError, ShapeError, Trainer } from '../src/index.js'

function mlp(seed = 0): Net {
  return Net.sequential(5, [Net.dense(8), Net.relu(), Net.dense(3)], { seed })
}

function batch(rows: number, salt = 0): { x: Float32Array; y: Uint32Array } {
  const x = new Float32Array(rows * 5).map((_, i) => (((i + salt) * 2654435761) % 1000) / 500 - 1)
  const y = new Uint32Array(rows).map((_, i) => (i + salt) % 3)
  return { x, y }
}

const params = (net: Net) => net.parameters().map((p) => Array.from(p.data))
const grads = (net: Net) => net.gradients().map((p) => Array.from(p.data))

describe('step API', () => {
  it('optimizer.step() refuses a NaN or infinite gradient, naming the tensor, and leaves the weights as they were', () => {
    // Inputs of 3e19 into a linear regression: the MSE (summed in f64) is finite, dW = Σ x·dy overflows.
    const net = Net.sequential(4, [Net.dense(1)], { seed: 3 })
    const opt = net.optimizer({ type: 'sgd', lr: 1e-3 })
    const before = params(net)
    net.forward(new Float32Array(16 * 4).fill(3e19), { mode: 'train' })
    expect(Number.isFinite(net.backward({ loss: 'mse', targets: new Float32Array(16) }))).toBe(true)
    expect(() => opt.step()).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE_GRADIENT', message: expect.stringMatching(/gradient of 0\.weight became NaN or infinite before optimizer\.step\(\); no update was made/) }))
    expect(params(net)).toEqual(before)
    // zeroGrad() and a finite batch: the step goes through.
    net.zeroGrad()
    net.forward(new Float32Array(16 * 4).fill(0.5), { mode: 'train' })
    net.backward({ loss: 'mse', targets: new Float32Array(16) })
    opt.step()
    expect(params(net)).not.toEqual(before)
    expect(params(net).flat().every(Number.isFinite)).toBe(true)
  })

  it('one forward + backward + optimizer step equals trainBatch exactly, and a fit step to 1e-6', async () => {
    const { x, y } = batch(6)
    const a = mlp(1)
    const trainer = new Trainer(a, { optimizer: { type: 'adam', lr: 1e-2 } })
    const b = mlp(1)
    const opt = b.optimizer({ type: 'adam', lr: 1e-2 })
    for (let s = 0; s < 3; s++) {
      const lossA = trainer.trainBatch(x, y)
      b.zeroGrad()
      b.forward(x, { mode: 'train' })
      const lossB = b.backward({ loss: 'crossEntropy', targets: y })
      opt.step()
      expect(lossB).toBe(lossA)
    }
    expect(params(b)).toEqual(params(a))
    expect(opt.steps).toBe(3)

    // fit: one epoch of one batch (shuffled: the same rows in another order).
    const c = mlp(2)
    await new Trainer(c, { optimizer: { type: 'sgd', lr: 0.1 }, batchSize: 6 }).fit(Dataset.fromArrays({ inputs: x, labels: y, numClasses: 3 }), { epochs: 1 })
    const d = mlp(2)
    const sgd = d.optimizer({ type: 'sgd', lr: 0.1 })
    d.forward(x, { mode: 'train' })
    d.backward({ loss: 'cross_entropy', targets: Array.from(y) })
    sgd.step()
    params(d).flat().forEach((v, i) => expect(v).toBeCloseTo(params(c).flat()[i]!, 6))
  })

  it('crossEntropy takes one label per position of a [T, V] output, as trainBatch does', () => {
    const make = () => Net.sequential([4, 2], [Net.dense(6), Net.tanh(), Net.dense(5)], { seed: 7 })
    const x = new Float32Array(3 * 8).map((_, i) => Math.cos(i))
    const y = new Uint32Array(3 * 4).map((_, i) => (i * 3) % 5)
    const a = make()
    const trainer = new Trainer(a, { optimizer: { type: 'sgd', lr: 0.3 } })
    const b = make()
    const opt = b.optimizer({ type: 'sgd', lr: 0.3 })
    for (let s = 0; s < 2; s++) {
      const la = trainer.trainBatch(x, y)
      b.zeroGrad()
      b.forward(x, { mode: 'train' })
      expect(b.backward({ loss: 'crossEntropy', targets: y })).toBe(la)
      opt.step()
    }
    expect(params(b)).toEqual(params(a))
    b.forward(x)
    expect(() => b.backward({ loss: 'crossEntropy', targets: y.subarray(0, 5) })).toThrow(/3 class ids \(one per row of the last forward\) or 12 \(one per position of the output \[4, 5\]\)/)
  })

  it('gradients accumulate across backward calls until zeroGrad', () => {
    const net = mlp(3)
    const A = batch(4, 0)
    const B = batch(4, 7)
    const one = (b: { x: Float32Array; y: Uint32Array }) => {
      net.forward(b.x, { mode: 'train' })
      net.backward({ loss: 'crossEntropy', targets: b.y })
    }
    net.zeroGrad()
    one(A)
    const ga = grads(net)
    net.zeroGrad()
    expect(grads(net).flat().every((g) => g === 0)).toBe(true)
    one(B)
    const gb = grads(net)
    net.zeroGrad()
    one(A)
    one(B)
    expect(grads(net)).toEqual(ga.map((t, i) => t.map((v, j) => Math.fround(v + gb[i]![j]!))))
  })

  it('backward from an output gradient equals backward from the loss that gives it', () => {
    const net = mlp(4)
    const { x } = batch(3)
    const targets = new Float32Array(9).map((_, i) => i / 9)
    const y = net.forward(x).slice()
    net.zeroGrad()
    net.backward({ loss: 'mse', targets })
    const viaLoss = grads(net)
    // d mean((y - t)^2) / dy = 2 (y - t) / n
    const g = new Float32Array(9).map((_, i) => (2 * (y[i]! - targets[i]!)) / 9)
    net.zeroGrad()
    net.forward(x)
    expect(net.backward({ outputGrad: g })).toBeUndefined()
    grads(net).flat().forEach((v, i) => expect(v).toBeCloseTo(viaLoss.flat()[i]!, 6))
  })

  it('inputGrad matches central finite differences', () => {
    const net = Net.sequential(4, [Net.dense(6), Net.tanh(), Net.dense(2)], { seed: 5 })
    const x = new Float32Array([0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.0, 0.7])
    const t = new Float32Array([1, 0, 0, 1])
    const loss = (v: Float32Array) => {
      net.forward(v)
      return net.backward({ loss: 'bceWithLogits', targets: t, inputGrad: true })!
    }
    loss(x)
    const g = net.inputGrad().slice()
    expect(g.length).toBe(8)
    for (let i = 0; i < x.length; i++) {
      const p = x.slice()
      const q = x.slice()
      p[i]! += 1e-2
      q[i]! -= 1e-2
      const fd = (loss(p) - loss(q)) / 2e-2
      expect(Math.abs(fd - g[i]!)).toBeLessThan(1e-3 * (1 + Math.abs(fd)))
    }
  })

  it('an optimizer of one group leaves the other groups unchanged', () => {
    const x = Net.input(4)
    const h = Net.leakyRelu(0.2).apply(Net.dense(6).apply(x, { name: 'enc', group: 'a' }))
    const net = Net.graph({ inputs: x, outputs: Net.dense(2).apply(h, { name: 'head', group: 'b' }) }, { seed: 0 })
    const before = net.parameters()
    const opt = net.optimizer({ type: 'sgd', lr: 0.5, group: 'b' })
    net.forward(new Float32Array(8).fill(0.5), { mode: 'train' })
    net.backward({ loss: 'mse', targets: new Float32Array(4).fill(3) })
    opt.step()
    const after = net.parameters()
    for (const [i, p] of after.entries()) {
      if (p.group === 'a') expect(Array.from(p.data)).toEqual(Array.from(before[i]!.data))
      else expect(Array.from(p.data)).not.toEqual(Array.from(before[i]!.data))
    }
    expect(() => net.optimizer({ type: 'adam', group: 'c' })).toThrow(OptionError)
  })

  it('optimizer state saves and restores as bytes: the next step continues exactly', () => {
    const { x, y } = batch(5)
    const step = (net: Net, opt: ReturnType<Net['optimizer']>) => {
      net.zeroGrad()
      net.forward(x, { mode: 'train' })
      net.backward({ loss: 'crossEntropy', targets: y })
      opt.step()
    }
    const a = mlp(6)
    const optA = a.optimizer({ type: 'adam', lr: 1e-2, betas: [0.5, 0.999] })
    step(a, optA)
    const bytes = optA.stateBytes
    const mid = a.parameters()
    step(a, optA)
    const b = mlp(9)
    b.setParameters(mid)
    const optB = b.optimizer({ type: 'adam', lr: 1e-2, betas: [0.5, 0.999] })
    optB.loadStateBytes(bytes)
    expect(optB.steps).toBe(1)
    step(b, optB)
    expect(params(b)).toEqual(params(a))
    expect(() => b.optimizer({ type: 'sgd', momentum: 0.9 }).loadStateBytes(bytes)).toThrow(/adam/)
  })

  it('a net with two graph inputs takes one array per input, and gives each input its gradient', () => {
    const a = Net.input([5], { name: 'x' })
    const b = Net.input([3], { name: 'h' })
    const net = Net.graph({ inputs: [a, b], outputs: Net.add().apply([Net.dense(4).apply(a, { name: 'fa' }), Net.dense(4).apply(b, { name: 'fb' })]) }, { seed: 3 })
    const p = Object.fromEntries(net.parameters().map((t) => [t.name, t.data]))
    const xa = new Float32Array(10).map((_, i) => i / 10 - 0.5)
    const xb = new Float32Array(6).map((_, i) => 0.3 - i / 7)
    const y = net.forward([xa, xb])
    for (let r = 0; r < 2; r++) {
      for (let o = 0; o < 4; o++) {
        let v = p['fa.bias']![o]! + p['fb.bias']![o]!
        for (let i = 0; i < 5; i++) v += p['fa.weight']![o * 5 + i]! * xa[r * 5 + i]!
        for (let i = 0; i < 3; i++) v += p['fb.weight']![o * 3 + i]! * xb[r * 3 + i]!
        expect(y[r * 4 + o]).toBeCloseTo(v, 5)
      }
    }
    net.backward({ outputGrad: new Float32Array(8).fill(1), inputGrad: true })
    const gb = net.inputGrad({ input: 1 })
    expect(gb.length).toBe(6)
    for (let i = 0; i < 3; i++) {
      const colSum = [0, 1, 2, 3].reduce((s, o) => s + p['fb.weight']![o * 3 + i]!, 0)
      expect(gb[i]).toBeCloseTo(colSum, 5)
      expect(gb[3 + i]).toBeCloseTo(colSum, 5)
    }
    expect(net.inputGrad({ input: 0 }).length).toBe(10)
    expect(() => net.forward(xa)).toThrow(/forward inputs: expected 2 array\(s\), one per graph input, got 1 array/)
    expect(() => net.forward([xa, new Float32Array(5)])).toThrow(/forward input 1: expected 2 rows × 3 values \(input shape \[3\]\) = 6, got 5 values/)
  })

  it('forwardAsync and backwardAsync give the sync calls\' results; the net is busy meanwhile', async () => {
    const { x, y } = batch(6)
    const [a, b] = [mlp(8), mlp(8)]
    const ya = a.forward(x, { mode: 'train' }).slice()
    const la = a.backward({ loss: 'crossEntropy', targets: y, inputGrad: true })
    const pending = b.forwardAsync(x, { mode: 'train' })
    expect(() => b.forward(x)).toThrow(/busy/)
    expect(Array.from(await pending)).toEqual(Array.from(ya))
    expect(await b.backwardAsync({ loss: 'crossEntropy', targets: y, inputGrad: true })).toBe(la)
    expect(grads(b)).toEqual(grads(a))
    expect(Array.from(b.inputGrad())).toEqual(Array.from(a.inputGrad()))
    expect(await b.backwardAsync({ outputGrad: new Float32Array(18) })).toBeUndefined()
    await expect(b.forwardAsync(new Float32Array(7))).rejects.toThrow(ShapeError)
  })

  it('forward reuses its output array, or writes into the one given', () => {
    const net = mlp(0)
    const { x } = batch(2)
    const y1 = net.forward(x)
    const y2 = net.forward(x, { mode: 'train' })
    expect(y2).toBe(y1)
    const out = new Float32Array(6)
    expect(net.forward(x, { out })).toBe(out)
    expect(Array.from(out)).toEqual(Array.from(net.predict(x)))
  })

  it('errors name the argument and the shapes', async () => {
    const net = mlp(0)
    expect(() => net.backward({ loss: 'mse', targets: new Float32Array(3) })).toThrow(/forward first/)
    expect(() => net.forward(new Float32Array(7))).toThrow(ShapeError)
    expect(() => net.forward(new Float32Array(7))).toThrow(/forward input: 7 values, not a positive multiple of 5/)
    expect(() => net.forward(new Float32Array(10), { out: new Float32Array(5) })).toThrow(/forward out: 2 rows need 6 values/)
    net.forward(new Float32Array(10))
    expect(() => net.backward({ loss: 'crossEntropy', targets: [0, 1, 2] })).toThrow(/backward targets: expected 2 class ids/)
    expect(() => net.backward({ loss: 'mse', targets: new Float32Array(5) })).toThrow(/expected 2 rows × 3 values \(output shape \[3\]\) = 6, got 5 values/)
    expect(() => net.backward({ outputGrad: new Float32Array(4) })).toThrow(ShapeError)
    expect(() => net.backward({ loss: 'crossEntropy', targets: new Float32Array(2) })).toThrow(OptionError)
    expect(() => net.backward({ loss: 'hinge' as never, targets: new Float32Array(6) })).toThrow(OptionError)
    expect(() => net.backward({ loss: 'toString' as never, targets: new Float32Array(6) })).toThrow(OptionError)
    expect(() => net.backward({ outputGrad: new Float32Array(6), loss: 'mse' })).toThrow(/exactly one/)
    net.backward({ outputGrad: new Float32Array(6) })
    expect(() => net.inputGrad()).toThrow(/inputGrad: true/)
    expect(() => net.forward(new Float32Array(10), { mode: 'training' as never })).toThrow(OptionError)

    // A net in a running fit cannot be stepped.
    const data = Dataset.fromArrays({ inputs: new Float32Array(5 * 20000).fill(0.1), labels: new Uint8Array(20000), numClasses: 3 })
    let done = false
    const fit = new Trainer(net, { batchSize: 8 }).fit(data, { epochs: 1 }).then(() => (done = true))
    let busy: unknown
    while (!done && busy === undefined) {
      try {
        net.forward(new Float32Array(5))
      } catch (e) {
        busy = e
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    await fit
    expect(busy).toBeInstanceOf(NativeError)
    expect((busy as NativeError).code).toBe('ERR_BUSY')
  })
})

describe('GanTrainer', () => {
  const nd = 4
  const dim = 6
  const makeG = () => Net.sequential(nd, [Net.dense(10), Net.leakyRelu(0.2), Net.dense(dim), Net.tanh()], { seed: 1 })
  const makeD = () => Net.sequential(dim, [Net.dense(10), Net.leakyRelu(0.2), Net.dense(1)], { seed: 2 })
  const real = (n: number) => new Float32Array(n * dim).map((_, i) => Math.sin(i * 0.37) * 0.8)
  const adam = { type: 'adam', lr: 2e-3, betas: [0.5, 0.999] } as const

  it('a batch is the discriminator step, then the generator step through a D that stays unchanged', async () => {
    const [G, D] = [makeG(), makeD()]
    const x = real(8)
    const gan = new GanTrainer(G, D, { optG: G.optimizer({ ...adam, betas: [0.5, 0.999] }), optD: { ...adam, betas: [0.5, 0.999] }, seed: 3 })
    const reports: unknown[] = []
    const [epoch] = await gan.fit(x, { epochs: 1, batchSize: 8, shuffle: false, onProgress: (p) => reports.push(p) })
    expect(reports.length).toBe(1)

    // The same batch with the step API.
    const [G2, D2] = [makeG(), makeD()]
    const [oG, oD] = [G2.optimizer({ ...adam, betas: [0.5, 0.999] }), D2.optimizer({ ...adam, betas: [0.5, 0.999] })]
    const z = GanTrainer.noise(3, 1, 1, 8, nd)
    const fake = G2.forward(z, { mode: 'train' }).slice()
    D2.zeroGrad()
    D2.forward(x, { mode: 'train' })
    const lr = D2.backward({ loss: 'bceWithLogits', targets: new Float32Array(8).fill(1) })!
    D2.forward(fake, { mode: 'train' })
    const lf = D2.backward({ loss: 'bceWithLogits', targets: new Float32Array(8) })!
    oD.step()
    const dAfterDStep = params(D2)
    D2.zeroGrad()
    D2.forward(fake, { mode: 'train' })
    const lg = D2.backward({ loss: 'bceWithLogits', targets: new Float32Array(8).fill(1), inputGrad: true })!
    G2.zeroGrad()
    G2.backward({ outputGrad: D2.inputGrad() })
    oG.step()

    expect(epoch!.dLoss).toBe(lr + lf)
    expect(epoch!.gLoss).toBe(lg)
    expect(params(D)).toEqual(dAfterDStep) // the generator phase did not move D
    expect(params(G)).toEqual(params(G2))
    expect(params(G)).not.toEqual(params(makeG()))
  })

  it('epochs report finite losses; the nets are busy during a fit; stops on a signal', async () => {
    const [G, D] = [makeG(), makeD()]
    const gan = new GanTrainer(G, D)
    const progress: number[] = []
    const fit = gan.fit(real(64), { epochs: 2, batchSize: 8, progressEvery: 4, onProgress: (p) => progress.push(p.batch) })
    expect(() => G.forward(new Float32Array(nd))).toThrow(/busy/)
    const epochs = await fit
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2])
    for (const e of epochs) {
      for (const v of [e.dLoss, e.gLoss, e.dReal, e.dFake]) expect(Number.isFinite(v)).toBe(true)
    }
    expect(progress).toEqual([4, 8, 4, 8])
    expect(gan.epochsDone).toBe(2)
    const ac = new AbortController()
    const stopped = gan.fit(real(64), { epochs: 50, batchSize: 1, signal: ac.signal })
    ac.abort()
    await expect(stopped).rejects.toMatchObject({ code: 'ABORT_ERR' })
    expect(() => new GanTrainer(G, Net.sequential(5, [Net.dense(1)]))).toThrow(ShapeError)
    expect(() => new GanTrainer(G, D, { optG: D.optimizer({ type: 'sgd' }) })).toThrow(/another net/)
  })
})

describe('generate', () => {
  // A position-wise (so causal) model on [T, 1] ids: next-token logits from the last id.
  const T = 6
  const V = 7
  const lm = () => Net.sequential([T, 1], [Net.dense(16), Net.tanh(), Net.dense(V)], { seed: 4 })

  it('greedy decoding equals an argmax loop over predict with the padded context', async () => {
    const net = lm()
    const g = await net.generate([3, 1], { maxNewTokens: 9, temperature: 0 })
    const ids = [3, 1]
    for (let s = 0; s < 9; s++) {
      const ctx = ids.slice(-T)
      const x = new Float32Array(T)
      x.set(ctx)
      const logits = net.predict(x).subarray((ctx.length - 1) * V, ctx.length * V)
      ids.push(logits.indexOf(Math.max(...logits)))
    }
    expect(Array.from(g.ids)).toEqual(ids)
    expect(Array.from(g.newIds)).toEqual(ids.slice(2))
    expect(g.tokensPerSecond).toBeGreaterThan(0)
    const k1 = await net.generate([3, 1], { maxNewTokens: 9, temperature: 1.5, topK: 1, seed: 8 })
    expect(Array.from(k1.ids)).toEqual(ids)
  })

  it('sampling is deterministic per seed and stays in the vocabulary', async () => {
    const net = lm()
    const a = await net.generate([0], { maxNewTokens: 50, temperature: 1, topK: 4, seed: 1 })
    const b = await net.generate([0], { maxNewTokens: 50, temperature: 1, topK: 4, seed: 1 })
    const c = await net.generate([0], { maxNewTokens: 50, temperature: 1, topK: 4, seed: 2 })
    expect(Array.from(a.ids)).toEqual(Array.from(b.ids))
    expect(Array.from(a.ids)).not.toEqual(Array.from(c.ids))
    expect(a.ids.every((id) => id < V)).toBe(true)
  })

  it('a causal attention model learns a cycle and generates it; its last position ignores the padding', async () => {
    const net = Net.sequential([T, 1], [Net.dense(16), Net.tanh(), Net.multiHeadAttention(2, { causal: true }), Net.dense(V)], { seed: 1 })
    // Windows of the cycle 0 1 … 6 0 1 …, each position labelled with the next id.
    const x = new Float32Array(V * T)
    const y = new Uint32Array(V * T)
    for (let s = 0; s < V; s++) {
      for (let t = 0; t < T; t++) {
        x[s * T + t] = (s + t) % V
        y[s * T + t] = (s + t + 1) % V
      }
    }
    const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-2 } })
    for (let i = 0; i < 300; i++) trainer.trainBatch(x, y)
    const g = await net.generate([3], { maxNewTokens: 12, temperature: 0 })
    expect(Array.from(g.newIds)).toEqual([4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1])
    // Causal: position 1's logits are the same whatever fills positions 2…T−1.
    const a = net.predict(new Float32Array([3, 4, 0, 0, 0, 0])).subarray(V, 2 * V)
    const b = net.predict(new Float32Array([3, 4, 6, 5, 2, 1])).subarray(V, 2 * V)
    Array.from(a).forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 5))
  })

  it('a tied Embedding + causal attention language model on [T] ids: trained with the step API, it generates its cycle', async () => {
    const ids = Net.input([T])
    const wte = Net.embedding(V, 16).apply(ids, { name: 'wte' })
    const h = Net.multiHeadAttention(2, { causal: true }).apply(Net.positionEmbedding().apply(wte))
    const net = Net.graph({ inputs: ids, outputs: Net.dense(V, { bias: false, tiedTo: 'wte' }).apply(Net.layerNorm().apply(h)) }, { seed: 2 })
    const x = new Float32Array(V * T)
    const y = new Uint32Array(V * T)
    for (let s = 0; s < V; s++) {
      for (let t = 0; t < T; t++) {
        x[s * T + t] = (s + t) % V
        y[s * T + t] = (s + t + 1) % V
      }
    }
    // Accumulation with a tied weight: two backward calls give the sum of each alone.
    const g1 = (() => {
      net.zeroGrad()
      net.forward(x.subarray(0, 3 * T), { mode: 'train' })
      net.backward({ loss: 'crossEntropy', targets: y.subarray(0, 3 * T) })
      return grads(net)
    })()
    net.zeroGrad()
    net.forward(x.subarray(3 * T), { mode: 'train' })
    net.backward({ loss: 'crossEntropy', targets: y.subarray(3 * T) })
    const g2 = grads(net)
    net.forward(x.subarray(0, 3 * T), { mode: 'train' })
    net.backward({ loss: 'crossEntropy', targets: y.subarray(0, 3 * T) })
    grads(net).flat().forEach((v, i) => expect(v).toBeCloseTo(g1.flat()[i]! + g2.flat()[i]!, 6))

    const opt = net.optimizer({ type: 'adam', lr: 2e-2 })
    let loss = Infinity
    for (let i = 0; i < 200; i++) {
      net.zeroGrad()
      net.forward(x, { mode: 'train' })
      loss = net.backward({ loss: 'crossEntropy', targets: y })!
      opt.step()
    }
    expect(loss).toBeLessThan(0.1)
    const g = await net.generate([5, 6], { maxNewTokens: 12, temperature: 0 })
    expect(Array.from(g.newIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4])
    const sampled = await net.generate([5, 6], { maxNewTokens: 12, temperature: 0.5, topK: 3, seed: 1 })
    expect(sampled.ids.every((id) => id < V)).toBe(true)
  })

  it('refuses nets that are not [T] → [T, V], bad prompts and options', async () => {
    await expect(mlp().generate([1], { maxNewTokens: 2 })).rejects.toThrow(/output is \[T, V\] logits with T = 5/)
    await expect(Net.sequential([2, 3], [Net.dense(2)]).generate([1], { maxNewTokens: 2 })).rejects.toThrow(/input is \[T\] token ids/)
    await expect(lm().generate([], { maxNewTokens: 2 })).rejects.toThrow(/promptIds/)
    await expect(lm().generate([9], { maxNewTokens: 2 })).rejects.toThrow(/vocabulary of 7/)
    await expect(lm().generate([1.5], { maxNewTokens: 2 })).rejects.toThrow(OptionError)
    await expect(lm().generate([1], { maxNewTokens: 2, temperature: -1 })).rejects.toThrow(OptionError)
  })
})
