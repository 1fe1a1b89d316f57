import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import sharp from 'sharp'
import { beforeAll, describe, expect, it } from 'vitest'

import { Dataset } from '../src/dataset.js'
import { OptionError, ShapeError } from '../src/errors.js'
import * as mnist from '../src/mnist/index.js'
import { Net } from '../src/net.js'
import { MetricsLogError, parseMetricsLog, readMetricsLog, renderReport, writeReport, type MetricsRecord } from '../src/report.js'
import { confidentMistakes, evaluateClasses } from '../src/report/analysis.js'
import { Trainer } from '../src/trainer.js'
import { blobs } from './helpers/blobs.js'
import { CHROMIUM, dumpDom, hasChromium, inspectPage, screenshot } from './helpers/chromium.js'
import { encodeIdx, writeIdx } from './helpers/idx.js'

const SECTIONS = ['model', 'curves', 'learning-rate', 'confusion', 'misclassified', 'weights', 'saliency'] as const
const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']

/** Trains `net` for `epochs` epochs, logging records in the metrics-log format (run, batch every 10 steps, epoch with validation). */
async function trainLogged(net: Net, model: string, train: Dataset, val: Dataset, epochs: number): Promise<MetricsRecord[]> {
  const options = { optimizer: { type: 'adam' as const, lr: 2e-3 }, batchSize: 64, threads: 2, seed: 0 }
  const trainer = new Trainer(net, { ...options, schedule: { type: 'cosine', totalSteps: epochs * Math.ceil(train.size / 64) } })
  const records: MetricsRecord[] = [{
    kind: 'run', started: new Date().toISOString(), model, spec: net.spec,
    options: { ...options, schedule: 'cosine', epochs }, trainSamples: train.size, validationSamples: val.size,
  }]
  for (let e = 0; e < epochs; e++) {
    const { epochs: [r] } = await trainer.fit(train, {
      progressEvery: 10,
      onProgress: (p) => {
        if (!p.epochEnd) records.push({ kind: 'batch', epoch: p.epoch, batch: p.batch, batches: p.batches, loss: p.loss, accuracy: p.accuracy!, lr: p.lr, samplesPerSecond: p.samplesPerSecond, ...(p.gradNorm !== undefined ? { gradNorm: p.gradNorm } : {}) })
      },
    })
    const v = await trainer.evaluate(val)
    records.push({ kind: 'epoch', epoch: r!.epoch, loss: r!.loss, accuracy: r!.accuracy!, valLoss: v.loss, valAccuracy: v.accuracy!, lr: r!.lr, samplesPerSecond: r!.samplesPerSecond, seconds: r!.seconds, ...(r!.gradNorm !== undefined ? { gradNorm: r!.gradNorm } : {}) })
  }
  return records
}

const jsonl = (records: readonly object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n'

/** A stand-in saliency: finite differences of the class score, one batched predict of inputDim perturbed rows. */
function finiteDifferences(net: Net, input: Float32Array, classIndex: number): Float32Array {
  const n = input.length
  const k = net.outputDim
  const eps = 0.05
  const rows = new Float32Array(n * n)
  for (let i = 0; i < n; i++) {
    rows.set(input, i * n)
    rows[i * n + i]! += eps
  }
  const base = net.predict(input)[classIndex]!
  const out = net.predict(rows)
  const map = new Float32Array(n)
  for (let i = 0; i < n; i++) map[i] = (out[i * k + classIndex]! - base) / eps
  return map
}

/** The HTML of `<section id="id">`. */
function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}">`)
  expect(start, `section #${id}`).toBeGreaterThanOrEqual(0)
  return html.slice(start, html.indexOf('</section>', start))
}

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length
const PNG = /<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/g

/** Fails if `html` refers to anything outside itself. */
function expectSelfContained(html: string): void {
  // The SVG namespace is a name, not a fetch; anything else with a scheme would be.
  const rest = html.replaceAll('xmlns="http://www.w3.org/2000/svg"', '')
  expect(rest.match(/https?:\/\/[^\s"'<>)]*/g) ?? []).toEqual([])
  expect(rest).not.toMatch(/<script/i)
  expect(rest).not.toMatch(/<link\b/i)
  expect(rest).not.toMatch(/<iframe|<object|<embed/i)
  // url(#clip1): in-page references of the SVG clip paths only.
  expect(rest).not.toMatch(/@import|url\((?!#)/i)
  expect(rest).not.toMatch(/\/\/fonts\.|@font-face/i)
  // Every src and href is a data URI or an in-page anchor.
  for (const [, value] of rest.matchAll(/\b(?:src|href)="([^"]*)"/g)) expect(value).toMatch(/^(data:image\/png;base64,|#)/)
  expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">`)
}

let dir: string
let test: Dataset
let mlp: Net
let cnn: Net
let mlpLog: string
let cnnRecords: MetricsRecord[]
let mlpHtml: string
let cnnHtml: string
let mlpFile: string
let cnnFile: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferronet-report-'))
  const digits = await mnist.loadDigits()
  const [trainAll, held] = digits.split(8000, { seed: 0 })
  test = held
  const [train, val] = trainAll.split(7000, { seed: 1 })
  mlp = Net.sequential(784, [Net.dense(32), Net.relu(), Net.dense(10)], { seed: 0 })
  mlpLog = join(dir, 'mlp.jsonl')
  await writeFile(mlpLog, jsonl(await trainLogged(mlp, 'mlp 784→32→10', train, val, 2)))
  cnn = Net.sequential([1, 28, 28], [
    Net.conv2d(8, 3, { padding: 1 }), Net.relu(), Net.maxPool2d(2),
    Net.conv2d(16, 3, { padding: 1 }), Net.relu(), Net.maxPool2d(2),
    Net.flatten(), Net.dense(10),
  ], { seed: 0 })
  cnnRecords = await trainLogged(cnn, 'small cnn', train, val, 2)
  mlpFile = join(dir, 'mlp.html')
  cnnFile = join(dir, 'cnn.html')
  await writeReport(mlpFile, { net: mlp, history: mlpLog, test, classNames: DIGITS, saliency: finiteDifferences })
  await writeReport(cnnFile, { net: cnn, history: cnnRecords, test, title: 'A small CNN', saliency: async (net, input, c) => finiteDifferences(net, input, c), samples: [0, 1, 2, 3] })
  mlpHtml = await readFile(mlpFile, 'utf8')
  cnnHtml = await readFile(cnnFile, 'utf8')
})

describe('readMetricsLog', () => {
  it('reads run, batch and epoch records, skipping blank lines and unknown kinds', async () => {
    const file = join(dir, 'log.jsonl')
    await writeFile(file, [
      '{"kind":"run","started":"2026-12-01T10:00:00.000Z","model":"mlp","spec":{"format":"ferronet-graph"},"options":{"epochs":2},"trainSamples":8000,"validationSamples":2000}',
      '',
      '{"kind":"batch","epoch":1,"batch":100,"batches":938,"loss":0.41,"accuracy":0.86,"lr":0.001,"samplesPerSecond":51234,"gradNorm":1.7}',
      '{"kind":"epoch","epoch":1,"loss":0.41,"accuracy":0.86,"valLoss":0.38,"valAccuracy":0.87,"lr":0.001,"samplesPerSecond":51234,"gradNorm":1.7,"seconds":1.2}',
      '{"kind":"something-newer","x":1}',
      '{"kind":"epoch","epoch":2,"loss":null,"mse":0.2,"mae":0.3,"valMse":0.25,"valMae":null}',
    ].join('\n'))
    const records = await readMetricsLog(file)
    expect(records.map((r) => r.kind)).toEqual(['run', 'batch', 'epoch', 'epoch'])
    expect(records[0]).toEqual({ kind: 'run', started: '2026-12-01T10:00:00.000Z', model: 'mlp', spec: { format: 'ferronet-graph' }, options: { epochs: 2 }, trainSamples: 8000, validationSamples: 2000 })
    expect(records[1]).toEqual({ kind: 'batch', epoch: 1, batch: 100, batches: 938, loss: 0.41, accuracy: 0.86, lr: 0.001, samplesPerSecond: 51234, gradNorm: 1.7 })
    expect(records[2]).toMatchObject({ kind: 'epoch', epoch: 1, valLoss: 0.38, valAccuracy: 0.87, seconds: 1.2 })
    // null is JSON's NaN: NaN for the loss, absent for other metrics.
    expect(records[3]).toEqual({ kind: 'epoch', epoch: 2, loss: NaN, mse: 0.2, mae: 0.3, valMse: 0.25 })
  })

  it('rejects a bad line with an error naming the file and the line', async () => {
    const cases: [string, RegExp][] = [
      ['{"kind":"epoch","epoch":1,"loss":0.5}\n{"kind":"epoch","epoch":2,"loss":0.4', /:2: not valid JSON/],
      ['{"kind":"run"}\n\n["not", "an", "object"]', /:3: expected a JSON object, got an array/],
      ['{"epoch":1,"loss":0.5}', /:1: the record has no "kind"/],
      ['{"kind":"epoch","loss":0.5}', /:1: "epoch" records need "epoch"/],
      ['{"kind":"batch","epoch":1,"batch":3}', /:1: "batch" records need "loss"/],
      ['{"kind":"epoch","epoch":0,"loss":0.5}', /:1: "epoch" must be an integer >= 1, got 0/],
      ['{"kind":"epoch","epoch":1,"loss":"0.5"}', /:1: "loss" must be a number, got "0.5"/],
      ['{"kind":"epoch","epoch":1,"loss":0.5,"valAccuracy":true}', /:1: "valAccuracy" must be a number/],
      ['{"kind":"run","options":[1]}', /:1: "options" must be an object/],
    ]
    for (const [text, message] of cases) {
      const file = join(dir, 'bad.jsonl')
      await writeFile(file, text)
      const error = await readMetricsLog(file).then(() => undefined, (e: unknown) => e)
      expect(error, text).toBeInstanceOf(MetricsLogError)
      expect((error as MetricsLogError).code).toBe('ERR_METRICS_LOG')
      expect((error as MetricsLogError).file).toBe(file)
      expect((error as Error).message, text).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${message.source}`))
    }
    expect(() => parseMetricsLog('{"kind":"epoch"}', 'inline')).toThrow(/^inline:1: /)
  })

  it('names a missing file', async () => {
    const missing = join(dir, 'missing.jsonl')
    await expect(readMetricsLog(missing)).rejects.toThrow(`${missing}: no such file`)
    await expect(readMetricsLog(dir)).rejects.toThrow(`${dir}: is a directory`)
  })
})

describe('training report', () => {
  it('is one self-contained file: no script, no external reference, a CSP that forbids loading', () => {
    expectSelfContained(mlpHtml)
    expectSelfContained(cnnHtml)
    expect(mlpHtml.startsWith('<!doctype html>')).toBe(true)
  })

  it('has a table of contents and every section, filled (MLP)', () => {
    for (const id of SECTIONS) expect(mlpHtml).toContain(`<li><a href="#${id}">`)
    expect(mlpHtml).not.toContain('class="empty')
    expect(mlpHtml).toContain('<title>Training report: mlp 784→32→10</title>')
    const model = section(mlpHtml, 'model')
    expect(model).toContain('784 → 32')
    expect(model).toContain('25,450')
    expect(model).toContain('optimizer.type')
    const curves = section(mlpHtml, 'curves')
    for (const id of ['chart-loss', 'chart-accuracy', 'chart-batch-loss']) expect(curves).toMatch(new RegExp(`<figure id="${id}"><svg `))
    expect(curves).toContain('validation')
    const lr = section(mlpHtml, 'learning-rate')
    expect(lr).toMatch(/<figure id="chart-lr"><svg /)
    expect(lr).toMatch(/<figure id="chart-throughput"><svg /)
    const confusion = section(mlpHtml, 'confusion')
    expect(confusion).toMatch(/<figure id="chart-confusion"><svg /)
    expect(confusion).toMatch(/<figure id="chart-per-class"><svg /)
    for (const name of DIGITS) expect(confusion).toContain(`>${name}</text>`)
    expect(count(section(mlpHtml, 'misclassified'), PNG)).toBe(24)
    // The first Linear has 32 units: all of them, one 28×28 tile each, and the colour scale.
    expect(count(section(mlpHtml, 'weights'), PNG)).toBe(32 + 1)
    expect(section(mlpHtml, 'weights')).toContain('Linear 784 → 32')
    // 6 samples × (input + heat map), and the colour scale.
    expect(count(section(mlpHtml, 'saliency'), PNG)).toBe(6 * 2 + 1)
  })

  it('shows the CNN\'s filters and the chosen saliency samples', () => {
    expect(cnnHtml).toContain('<title>A small CNN</title>')
    expect(cnnHtml).not.toContain('class="empty')
    const weights = section(cnnHtml, 'weights')
    expect(weights).toContain('Conv2d with 8 filters of 3×3')
    expect(count(weights, PNG)).toBe(8 + 1)
    const saliency = section(cnnHtml, 'saliency')
    expect(count(saliency, PNG)).toBe(4 * 2 + 1)
    for (const i of [0, 1, 2, 3]) expect(saliency).toContain(`sample ${i}: true`)
    // Without class names, the classes are the indices.
    expect(section(cnnHtml, 'confusion')).toContain('>9</text>')
  })

  it('encodes images as real PNGs, upscaled with crisp pixels', async () => {
    const uris = [...section(mlpHtml, 'misclassified').matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]!)
    const image = sharp(Buffer.from(uris[0]!, 'base64'))
    expect(await image.metadata()).toMatchObject({ format: 'png', width: 84, height: 84 })
    const weights = [...section(cnnHtml, 'weights').matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]!)
    expect(await sharp(Buffer.from(weights[0]!, 'base64')).metadata()).toMatchObject({ format: 'png', width: 63, height: 63 })
  })

  it('counts the confusion matrix from the network\'s predictions', () => {
    const e = evaluateClasses(mlp, test, DIGITS)
    const predicted = mlp.predictClasses(test)
    expect(Array.from(e.predicted)).toEqual(Array.from(predicted))
    expect(e.confusion.flat().reduce((a, b) => a + b, 0)).toBe(test.size)
    let right = 0
    predicted.forEach((p, i) => (right += p === test.labels![i] ? 1 : 0))
    expect(e.accuracy).toBe(right / test.size)
    expect(e.accuracy).toBeGreaterThan(0.8)
    for (let c = 0; c < 10; c++) expect(e.perClass[c]!.total).toBe(test.labels!.filter((l) => l === c).length)
    const confusion = section(mlpHtml, 'confusion')
    for (let c = 0; c < 10; c++) expect(confusion).toContain(`>${e.confusion[c]![c]}</text>`)
    expect(mlpHtml).toContain(`${(100 * e.accuracy).toFixed(2)}%`)
    const wrong = confidentMistakes(e, 24)
    expect(wrong).toHaveLength(24)
    for (const i of wrong) expect(e.predicted[i]).not.toBe(test.labels![i])
    for (let k = 1; k < wrong.length; k++) expect(e.confidence[wrong[k - 1]!]!).toBeGreaterThanOrEqual(e.confidence[wrong[k]!]!)
  })

  it('says why a section is empty when its data is missing', async () => {
    // Epoch records only, no validation, no batches, no test set, no saliency.
    const html = await renderReport({ net: mlp, history: [{ kind: 'epoch', epoch: 1, loss: 0.9, accuracy: 0.7, lr: 1e-3 }, { kind: 'epoch', epoch: 2, loss: 0.5, accuracy: 0.85, lr: 1e-3 }] })
    expectSelfContained(html)
    for (const id of SECTIONS) section(html, id)
    expect(section(html, 'curves')).toContain('No validation metrics in the log')
    expect(section(html, 'curves')).toContain('No batch records in the log')
    expect(section(html, 'learning-rate')).toContain('Constant: 0.001 throughout.')
    for (const id of ['confusion', 'misclassified', 'saliency']) expect(section(html, id)).toContain('No test set was given')
    expect(count(section(html, 'weights'), PNG)).toBe(33)
    expect(html).toContain('Model <b>a network built in code</b>')

    const noRecords = await renderReport({ net: mlp, history: [], test })
    expect(section(noRecords, 'curves')).toContain('The log holds no epoch records')
    expect(section(noRecords, 'learning-rate')).toContain('The log has no learning rates')
    expect(section(noRecords, 'saliency')).toContain('No saliency function was given')
    expect(section(noRecords, 'model')).toContain('The log has no run record with options.')
  })

  it('handles inputs that are not images and regression runs', async () => {
    const data = blobs(300, 6, 3)
    const net = Net.sequential(6, [Net.dense(8), Net.relu(), Net.dense(3)], { seed: 1 })
    const html = await renderReport({ net, history: [{ kind: 'epoch', epoch: 1, loss: 0.3, accuracy: 0.9 }], test: data, saliency: finiteDifferences })
    expect(section(html, 'confusion')).toMatch(/<figure id="chart-confusion"><svg /)
    expect(section(html, 'misclassified')).toContain('are not images')
    expect(section(html, 'weights')).toContain('does not read an image')
    expect(section(html, 'saliency')).toContain('are not images')

    const targets = new Float32Array(300).map((_, i) => data.inputs[i * 6]!)
    const regression = Dataset.fromArrays({ inputs: data.inputs, targets, sampleShape: [6] })
    const reg = Net.sequential(6, [Net.dense(1)], { seed: 1 })
    const history: MetricsRecord[] = [1, 2, 3].map((epoch) => ({ kind: 'epoch', epoch, loss: 1 / epoch, mse: 1 / epoch, mae: 0.8 / epoch, valMse: 1.1 / epoch, valMae: 0.9 / epoch }))
    const regHtml = await renderReport({ net: reg, history, test: regression })
    for (const id of ['chart-loss', 'chart-mse', 'chart-mae']) expect(section(regHtml, 'curves')).toMatch(new RegExp(`<figure id="${id}"><svg `))
    expect(section(regHtml, 'curves')).not.toContain('chart-accuracy')
    expect(section(regHtml, 'confusion')).toContain('float targets')
  })

  it('shows a saliency function that fails instead of hiding it', async () => {
    const wrongLength = await renderReport({ net: mlp, history: [], test, saliency: () => new Float32Array(3), samples: 2 })
    expect(section(wrongLength, 'saliency')).toContain('class="empty warn"')
    expect(section(wrongLength, 'saliency')).toContain('returned 3 values, expected a Float32Array of 784 values')
    const throws = await renderReport({ net: mlp, history: [], test, saliency: async () => { throw new Error('no gradients here') }, samples: [5] })
    expect(section(throws, 'saliency')).toContain('The saliency function failed on test sample 5: no gradients here')
  })

  it('rejects bad options, naming them', async () => {
    await expect(renderReport({ net: mlp, history: [], colour: 'red' } as never)).rejects.toThrow(OptionError)
    await expect(renderReport({ net: {} as Net, history: [] })).rejects.toThrow(/`net`: must be a Net/)
    await expect(renderReport({ net: mlp, history: [], classNames: ['a', 'b'] })).rejects.toThrow(/`classNames`: must be 10 distinct strings/)
    await expect(renderReport({ net: mlp, history: [], test, samples: [test.size] })).rejects.toThrow(/`samples\[0\]`/)
    await expect(renderReport({ net: mlp, history: [], test: blobs(20, 6, 3) })).rejects.toThrow(ShapeError)
    await expect(renderReport({ net: mlp, history: join(dir, 'nope.jsonl') })).rejects.toThrow(MetricsLogError)
    await expect(writeReport(join(dir, 'no-such-dir', 'r.html'), { net: mlp, history: [] })).rejects.toThrow(/ENOENT/)
  })
})

describe(hasChromium ? 'the report in headless Chromium' : `the report in headless Chromium (skipped: ${CHROMIUM} is not installed)`, () => {
  it.skipIf(!hasChromium)('the console check catches errors on a page that has them', async () => {
    const bad = join(dir, 'bad.html')
    await writeFile(bad, '<!doctype html><p>x</p><img src="missing.png"><script>console.error("boom"); console.log("an ordinary log line"); notDefined()</script>')
    const report = await inspectPage(bad)
    expect(report.errors.some((e) => e === 'console.error: boom')).toBe(true)
    expect(report.errors.some((e) => e.includes('notDefined is not defined'))).toBe(true)
    expect(report.errors.some((e) => e.includes('ERR_FILE_NOT_FOUND') && e.includes('missing.png'))).toBe(true)
    expect(report.errors.some((e) => e.includes('ordinary log'))).toBe(false)
    // The report's Content-Security-Policy turns an external reference into an error too.
    const csp = join(dir, 'csp.html')
    await writeFile(csp, mlpHtml.replace('</main>', '<img src="https://example.com/tracker.png"></main>'))
    const blocked = await inspectPage(csp)
    expect(blocked.errors.some((e) => e.includes('Content Security Policy') && e.includes('https://example.com/tracker.png'))).toBe(true)
    const clean = join(dir, 'clean.html')
    await writeFile(clean, '<!doctype html><p>nothing wrong</p>')
    expect(await inspectPage(clean)).toEqual({ errors: [], externalRequests: [], result: null })
  })

  it.skipIf(!hasChromium)('renders without console errors or requests, every chart and image in place', async () => {
    for (const [file, html] of [[mlpFile, mlpHtml], [cnnFile, cnnHtml]] as const) {
      const page = await inspectPage(file, `(() => {
        const imgs = [...document.images]
        return {
          svgs: document.querySelectorAll('section svg').length,
          sections: [...document.querySelectorAll('section')].map((s) => s.id),
          images: imgs.length,
          broken: imgs.filter((i) => !i.complete || i.naturalWidth === 0).length,
          smallCharts: [...document.querySelectorAll('figure > svg')].filter((s) => s.getBoundingClientRect().width < 200).length,
          overflowing: document.documentElement.scrollWidth > window.innerWidth,
        }
      })()`)
      expect(page.errors).toEqual([])
      expect(page.externalRequests).toEqual([])
      expect(page.result).toEqual({
        svgs: count(html, /<svg /g),
        sections: [...SECTIONS],
        images: count(html, /<img /g),
        broken: 0,
        smallCharts: 0,
        overflowing: false,
      })
    }
  })

  it.skipIf(!hasChromium)('--dump-dom holds the SVG charts', async () => {
    const dom = await dumpDom(mlpFile)
    expect(count(dom, /<svg /g)).toBe(count(mlpHtml, /<svg /g))
    expect(count(dom, /<svg /g)).toBeGreaterThanOrEqual(7)
    for (const id of SECTIONS) expect(dom).toContain(`<section id="${id}">`)
    expect(dom).toMatch(/<figure id="chart-confusion"><svg [^>]*class="marks"/)
  })

  it.skipIf(!hasChromium)('--screenshot draws the page', async () => {
    for (const [file, name] of [[mlpFile, 'mlp'], [cnnFile, 'cnn']] as const) {
      const png = join(dir, `${name}-screenshot.png`)
      await screenshot(file, png, 1280, 3000)
      const image = sharp(png)
      expect(await image.metadata()).toMatchObject({ format: 'png', width: 1280, height: 3000 })
      // Not a blank page: the channels vary.
      const { channels } = await image.stats()
      expect(Math.max(...channels.map((c) => c.stdev))).toBeGreaterThan(20)
      console.log(`screenshot of the ${name} report: ${png}`)
    }
  })
})

describe('ferronet report', () => {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
  const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { maxBuffer: 1 << 26 })
      return { code: 0, stdout, stderr }
    } catch (e) {
      const error = e as { code: number; stdout: string; stderr: string }
      return { code: error.code, stdout: error.stdout, stderr: error.stderr }
    }
  }

  it('is built (run `npx tsc -p tsconfig.build.json` first)', () => {
    expect(existsSync(cli), `${cli} is missing`).toBe(true)
  })

  it('writes the report of a saved model and its log, with the class names of the file', async () => {
    const model = join(dir, 'digits.safetensors')
    await mlp.save(model, { metadata: { classNames: JSON.stringify(DIGITS) } })
    const output = join(dir, 'cli.html')
    const { code, stdout, stderr } = await run('report', '--model', model, '--log', mlpLog, '-o', output, '--title', 'Digits <MLP>')
    expect(code, stderr).toBe(0)
    expect(stdout).toContain(`wrote ${output}: 2 epochs from ${mlpLog}, evaluated on 2000 test samples (mnist package digits)`)
    const html = await readFile(output, 'utf8')
    expectSelfContained(html)
    expect(html).toContain('<title>Digits &lt;MLP&gt;</title>')
    expect(section(html, 'confusion')).toContain('>seven</text>')
    // The CLI computes the saliency maps with src/explain.ts: image pairs, no warning.
    expect(section(html, 'saliency')).not.toContain('No saliency function was given')
    expect((section(html, 'saliency').match(/<img /g) ?? []).length).toBeGreaterThanOrEqual(12)
    // The same test split as the library's report on it.
    const accuracy = evaluateClasses(mlp, test, DIGITS).accuracy
    expect(html).toContain(`Accuracy ${(100 * accuracy).toFixed(2)}% on 2,000 test samples`)
  })

  it('evaluates the test split of an IDX directory with --data', async () => {
    const idx = join(dir, 'idx')
    const few = test.subset(0, 50)
    await writeIdx(idx, 't10k-images-idx3-ubyte', encodeIdx([50, 28, 28], few.inputs))
    await writeIdx(idx, 't10k-labels-idx1-ubyte', encodeIdx([50], few.labels!))
    const model = join(dir, 'digits.safetensors')
    const { code, stdout, stderr } = await run('report', '--model', model, '--log', mlpLog, '--data', idx, '-o', join(dir, 'idx.html'))
    expect(code, stderr).toBe(0)
    expect(stdout).toContain(`evaluated on 50 test samples of ${idx}`)
    expect(await readFile(join(dir, 'idx.html'), 'utf8')).toContain('on 50 test samples')
  })

  it('names a bad file and exits 1', async () => {
    const model = join(dir, 'digits.safetensors')
    const badLog = join(dir, 'cli-bad.jsonl')
    await writeFile(badLog, '{"kind":"run"}\n{"kind":"epoch","epoch":"one","loss":1}\n')
    const bad = await run('report', '--model', model, '--log', badLog, '-o', join(dir, 'x.html'))
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain(`ferronet: ${badLog}:2: "epoch" must be an integer >= 1, got "one"`)
    const missingLog = await run('report', '--model', model, '--log', join(dir, 'absent.jsonl'))
    expect(missingLog.code).toBe(1)
    expect(missingLog.stderr).toContain(`${join(dir, 'absent.jsonl')}: no such file`)
    const notModel = await run('report', '--model', mlpLog, '--log', mlpLog)
    expect(notModel.code).toBe(1)
    expect(notModel.stderr).toContain(mlpLog)
    const unwritable = await run('report', '--model', model, '--log', mlpLog, '-o', join(dir, 'no-dir', 'r.html'))
    expect(unwritable.code).toBe(1)
    expect(unwritable.stderr).toContain(`${join(dir, 'no-dir', 'r.html')}: cannot write the report (ENOENT)`)
    expect(existsSync(join(dir, 'x.html'))).toBe(false)
  })

  it('has --help with examples and requires --model and --log', async () => {
    const help = await run('report', '--help')
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('ferronet report --model digits.safetensors --log metrics.jsonl')
    expect(help.stdout).toContain('--data <dir>')
    const missing = await run('report', '--log', mlpLog)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--model')
    expect((await run('--help')).stdout).toContain('ferronet report')
  })
})
