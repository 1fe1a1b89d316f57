/**
 * The examples in examples/ run as a user runs them and do what their header says.
 * The .mjs ones run with node against dist/; the .ts ones run from src/ through tsx
 * (`node --import tsx`, what `npx tsx` does), small: 1 epoch, a subset where the script
 * takes `--limit`, 1 thread, files into a temporary folder; each prints its figures as
 * one JSON object on its last line.
 */

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { Net, mnist } from '../src/index.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>

function run(script: string, ...args: string[]): Json {
  const node = script.endsWith('.ts') ? ['--import', 'tsx'] : []
  const r = spawnSync(process.execPath, [...node, `examples/${script}`, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 })
  expect(r.status, `${script} ${args.join(' ')} exited with ${r.status}:\n${r.stderr}\n${r.stdout}`).toBe(0)
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Json
}

const out = mkdtempSync(join(tmpdir(), 'ferronet-examples-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))
const small = ['--epochs', '1', '--threads', '1', '--seed', '0']

describe('examples', () => {
  it('the .ts examples type-check against src/ (tsx runs them without checking)', () => {
    const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'examples/tsconfig.json'], { encoding: 'utf8' })
    expect(r.status, r.stdout + r.stderr).toBe(0)
  })

  it('regression.mjs: held-out MSE well below predicting the mean', () => {
    const r = run('regression.mjs', '--epochs', '3')
    expect(r.testMse).toBeLessThan(r.baselineMse! * 0.5)
    expect(r.testMae).toBeGreaterThan(0)
  })

  it('multilabel.mjs: per-label accuracy well above the majority answers', () => {
    const r = run('multilabel.mjs', '--epochs', '2')
    expect(r.testLabelAccuracy).toBeGreaterThan(Math.max(0.9, r.baselineLabelAccuracy! + 0.2))
  })

  const model = join(out, 'mnist-mlp.safetensors')

  it('train-and-save.ts: beats chance on the held-out digits and writes a model that loads back', async () => {
    const r = run('train-and-save.ts', ...small, '--out', out)
    expect(r.model).toBe(model)
    expect(r.epochs).toBe(1)
    expect(r.threads).toBe(1)
    expect(r.trainSamples).toBe(8000)
    expect(r.testSamples).toBe(2000)
    expect(r.testAccuracy).toBeGreaterThan(0.8) // chance: 0.1
    expect(r.reloadedSame).toBe(true)
    expect(statSync(model).size).toBe(r.bytes)
    const net = await Net.load(model)
    expect(net.parameterCount).toBe(r.parameters)
    expect(JSON.parse(net.metadata.classNames!)).toEqual([...'0123456789'])
    expect(net.metadata['input.preprocess']).toBe('mnist')
  })

  it('predict-image.ts: reads each example image as the digit its name says', () => {
    const images = readdirSync('examples/images').filter((f) => /^digit-\d\.(png|jpg)$/.test(f))
    expect(images.length).toBeGreaterThanOrEqual(4)
    const r = run('predict-image.ts', '--model', model, '--top', '3')
    expect(r.predictions).toHaveLength(images.length)
    for (const p of r.predictions) {
      expect(p.class, p.file).toBe(p.expected)
      expect(p.label).toBe(String(p.expected))
      expect(p.top).toHaveLength(3)
      expect(p.top[0].probability).toBe(p.probability)
      expect(p.probability).toBeGreaterThan(0.5)
    }
    expect(r.correct).toBe(images.length)
  })

  it('resume.ts: the resumed run has the uninterrupted run\'s losses and weights exactly', () => {
    const r = run('resume.ts', '--before', '1', '--epochs', '1', '--limit', '2000', '--threads', '1', '--out', out)
    expect(r.uninterrupted).toHaveLength(2)
    expect(r.interrupted).toEqual(r.uninterrupted)
    expect(r.lossesEqual).toBe(true)
    expect(r.weightsEqual).toBe(true)
    expect(r.maxWeightDiff).toBe(0)
    expect(r.uninterrupted[1]).toBeLessThan(r.uninterrupted[0])
    expect(existsSync(r.checkpoint)).toBe(true)
  })

  it('export-onnx.ts: ONNX Runtime gives net.predict\'s outputs within 1e-5', () => {
    const r = run('export-onnx.ts', ...small, '--limit', '1000', '--rows', '500', '--out', out)
    expect(r.onnx).toBe(join(out, 'model.onnx'))
    expect(statSync(r.onnx).size).toBe(r.bytes)
    expect(r.opset).toBe(17)
    expect(r.rows).toBe(500)
    expect(r.maxError).toBeLessThanOrEqual(1e-5)
    expect(r.sameClasses).toBe(500)
    expect(r.accuracy).toBeGreaterThan(0.1)
  })

  it('cnn.ts: LeNet-5 beats chance on Fashion-MNIST (or the digits) and is saved', () => {
    const fashion = existsSync('/usr/share/datasets/fashion-mnist')
    const r = run('cnn.ts', ...small, '--limit', '6000', '--out', out)
    expect(r.dataset).toBe(fashion ? 'Fashion-MNIST' : 'mnist package digits')
    expect(r.model).toBe('lenet')
    expect(r.trainSamples).toBe(6000)
    expect(r.testSamples).toBe(1200)
    expect(r.perEpoch).toHaveLength(1)
    expect(r.testAccuracy).toBeGreaterThan(0.5) // chance: 0.1; 0.65 measured
    expect(r.perClass).toHaveLength(10)
    expect(existsSync(r.saved)).toBe(true)
  })

  it('gan-digits.ts: finite losses per epoch and a PNG grid of 64 samples', async () => {
    const r = run('gan-digits.ts', ...small, '--limit', '640', '--out', out)
    expect(r.samples).toBe(640)
    expect(r.dLoss).toHaveLength(1)
    expect(r.gLoss).toHaveLength(1)
    expect(Number.isFinite(r.dLoss[0]) && Number.isFinite(r.gLoss[0])).toBe(true)
    expect(r.epochSeconds[0]).toBeGreaterThan(0)
    expect(r.pngs).toHaveLength(2)
    const { default: sharp } = await import('sharp')
    const meta = await sharp(r.png).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 484, 484])
  })

  it('vae-fashion.ts: the test loss per image falls below an untrained decoder\'s, and both PNGs are written', async () => {
    const r = run('vae-fashion.ts', ...small, '--limit', '3000', '--out', join(out, 'vae'))
    expect(r.trainSamples).toBe(3000)
    expect(r.testSamples).toBe(600)
    expect(r.testLoss).toHaveLength(1)
    expect(r.epochSeconds).toHaveLength(1)
    // An untrained decoder gives ≈ 784·ln 2 ≈ 543 per image; one epoch of 3000 ≈ 350.
    expect(r.testLoss[0]).toBeLessThan(450)
    expect(Object.keys(r.testTerms[0])).toEqual(['recon', 'kl'])
    const sharp = (await import('sharp')).default
    expect(await sharp(r.reconstructionPng).metadata()).toMatchObject({ width: 3 * (8 * 30 + 2), height: 3 * (2 * 30 + 2) })
    expect(await sharp(r.samplePng).metadata()).toMatchObject({ width: 3 * (8 * 30 + 2), height: 3 * (8 * 30 + 2) })
  })

  for (const cell of ['lstm', 'gru']) {
    it(`${cell}-fashion.ts: ${cell.toUpperCase()}(128) → Linear(10) on 28 steps of 28 pixels beats chance and reports per-epoch figures`, () => {
      const fashion = existsSync('/usr/share/datasets/fashion-mnist')
      const r = run(`${cell}-fashion.ts`, ...small, '--limit', '2000', '--out', out)
      expect(r.config.dataset).toBe(fashion ? 'Fashion-MNIST' : 'mnist package digits')
      expect(r.config.trainSamples).toBe(2000)
      expect(r.config.testSamples).toBe(400)
      expect(r.config.threads).toBe(1)
      expect(r.config.parameters).toBe((cell === 'lstm' ? 4 : 3) * 128 * (28 + 128 + 2) + 128 * 10 + 10)
      expect(r.testAccuracy).toHaveLength(1)
      expect(r.epochSeconds).toHaveLength(1)
      expect(r.testAccuracy[0]).toBeGreaterThan(0.3) // chance: 0.1
      expect(existsSync(r.saved)).toBe(true)
    })
  }

  it.skipIf(!existsSync('/usr/share/games/fortunes'))('gpt-fortunes.ts: the validation loss falls from ln(vocab), text is generated, the model file loads back', async () => {
    const r = run('gpt-fortunes.ts', '--steps', '40', '--eval-every', '20', '--eval-batches', '2', '--threads', '1', '--seed', '1', '--out', out)
    expect(r.params).toBe(816128) // the same count as bench/torch/gpt_fortunes.py's model
    expect(r.evals.map((e: Json) => e.step)).toEqual([20, 40])
    // Untrained: ln 114 ≈ 4.74 nats; 40 steps reach ≈ 3.0.
    expect(r.valLoss).toBeLessThan(3.6)
    expect(r.sample.length).toBe(201)
    expect(r.tokensPerSecond).toBeGreaterThan(0)
    const net = await Net.load(r.model)
    expect(net.inputShape).toEqual([64])
    expect(JSON.parse(net.metadata.tokenizer!)).toHaveLength(r.vocab)
  })

  it('serve.ts: the server answers the image and the JSON row as the model does', async () => {
    // A fresh folder: the script trains its fallback model there first.
    const dir = join(out, 'serve')
    const r = run('serve.ts', ...small, '--out', dir)
    expect(r.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(r.image.status).toBe(200)
    expect(r.image.response.predictions[0].class).toBe(7) // examples/images/digit-7.png
    expect(r.image.response.predictions[0].top).toHaveLength(3)
    expect(r.row.status).toBe(200)
    const net = await Net.load(join(dir, 'mnist-mlp.safetensors'))
    const [, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
    expect(r.row.label).toBe(test.labels![0])
    expect(r.row.response.predictions[0].class).toBe(net.predictClasses(test.subset(0, 1))[0])
    expect(r.health.status).toBe('ok')
  })
})
