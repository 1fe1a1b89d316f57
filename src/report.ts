/**
 * The training report: one self-contained HTML file (no script, no network, no
 * external font) with the loss and metric curves of a run, the learning rate, the
 * confusion matrix and per-class accuracy on a test set, the most confident mistakes,
 * the first layer's weights as images and saliency maps. Charts are Vega-Lite specs
 * rendered to static SVG in Node; images are PNG data URIs encoded by sharp.
 *
 * ```ts
 * await writeReport('report.html', { net, history: 'metrics.jsonl', test })
 * ```
 */

import { readFileSync } from 'node:fs'
import { Dataset } from './dataset.js'
import { FerronetError, OptionError, ShapeError } from './errors.js'
import { writeFileAtomic } from './files.js'
import { Net } from './net.js'
import { confidentMistakes, evaluateClasses, firstLayerTiles, layerTable, shapeText, type ClassEvaluation } from './report/analysis.js'
import { COLORS, confusionChart, lineChart, perClassChart, type SeriesPoint } from './report/charts.js'
import { cards, empty, esc, figure, lead, page, table, type Section } from './report/html.js'
import { colorBar, colorize, DIVERGING, HEAT, imageGeometry, networkInput, pngDataUri, saliencyPlane, sampleRaster, upscale, type ImageGeometry } from './report/images.js'
import { organize, readMetricsLog, type BatchRecord, type EpochRecord, type History, type MetricsRecord } from './report/log.js'
import { describe, filePath } from './validate.js'

export { MetricsLogError, parseMetricsLog, readMetricsLog } from './report/log.js'
export type { BatchRecord, EpochRecord, MetricsRecord, RunRecord, TrainingMetrics } from './report/log.js'

/**
 * A saliency map for one input: a value per input value (the same length as `input`,
 * CHW order), larger magnitude meaning more influence on the score of `classIndex`.
 * `input` is on the training scale (pixels / 255). The report shows |value|, the
 * largest over the channels, scaled per map.
 */
export type SaliencyFunction = (net: Net, input: Float32Array, classIndex: number) => Promise<Float32Array> | Float32Array

/** Options of {@link renderReport} and {@link writeReport}. */
export interface ReportOptions {
  /** The trained network. */
  net: Net
  /** The run's metrics: the records of a metrics log, or the path of one (`ferronet train --log FILE`). */
  history: readonly MetricsRecord[] | string
  /** A labelled test set: the confusion matrix, per-class accuracy, mistakes and saliency samples come from it. */
  test?: Dataset
  /** One name per class; default: the model file's `classNames` metadata, else the test set's, else `0`, `1`, …. */
  classNames?: readonly string[]
  /** The page's title; default `Training report: <model>`. */
  title?: string
  /** Computes saliency maps for {@link ReportOptions.samples}; without it the section says how to get them. */
  saliency?: SaliencyFunction
  /** Test samples for the saliency maps: how many (default 6, the first sample of each class in turn) or their indices. */
  samples?: number | readonly number[]
  /** How many of the most confidently misclassified test images to show (default 24). */
  misclassified?: number
}

const KEYS = ['net', 'history', 'test', 'classNames', 'title', 'saliency', 'samples', 'misclassified'] as const
/** Display size of input images, CSS pixels (a 28×28 digit is upscaled 3×). */
const IMAGE_PX = 84

let packageVersion: string | undefined
function version(): string {
  packageVersion ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  return packageVersion
}

/**
 * Writes the training report of {@link renderReport} to `path`, atomically (a
 * temporary file renamed over `path`).
 *
 * ```ts
 * await writeReport('report.html', { net, history: 'metrics.jsonl', test, saliency })
 * ```
 * @throws what {@link renderReport} throws, and the file system's error for `path`.
 */
export async function writeReport(path: string, options: ReportOptions): Promise<void> {
  const file = filePath('path', path)
  const html = await renderReport(options)
  await writeFileAtomic(file, html)
}

/**
 * The training report as one self-contained HTML page: every chart is inline SVG,
 * every image a PNG data URI, the style inline; no script, and a
 * Content-Security-Policy that forbids loading anything. Each section is filled when
 * its data exists (epoch records, batch records, a test set, image inputs, a
 * saliency function), else it says why it is empty.
 *
 * @throws {@link OptionError} for a bad option; {@link MetricsLogError} for a log that
 *   cannot be read; {@link ShapeError} when the test set does not fit the network;
 *   `ERR_MISSING_DEPENDENCY` when `vega`, `vega-lite` or `sharp` is not installed.
 */
export async function renderReport(options: ReportOptions): Promise<string> {
  const o = checkOptions(options)
  const records = typeof o.history === 'string' ? await readMetricsLog(o.history) : o.history
  const history = organize(records)
  const { net, test } = o
  const names = classNames(o, net)
  const geometry = inputGeometry(net, test)
  let evaluation: ClassEvaluation | undefined
  if (test?.labels) {
    if (test.numClasses > net.outputDim) {
      throw new ShapeError(`the test set has ${test.numClasses} classes but the network has ${net.outputDim} outputs; a classifier needs one output per class`)
    }
    evaluation = evaluateClasses(net, test, names)
  }
  const ctx: Context = { net, test, names, geometry, history, evaluation, options: o }
  const sections: Section[] = [
    modelSection(ctx),
    await curvesSection(ctx),
    await optimisationSection(ctx),
    await testSection(ctx),
    await mistakesSection(ctx),
    await weightsSection(ctx),
    await saliencySection(ctx),
  ]
  const modelName = history.run?.model ?? 'a network built in code'
  const title = o.title ?? `Training report: ${modelName}`
  const now = new Date()
  return page({
    title,
    header: header(ctx, title, modelName, now),
    sections,
    footer: `Generated by ferronet ${esc(version())} on ${esc(formatDate(now))}. Charts: Vega-Lite, rendered to SVG in Node. One self-contained file: no script, nothing loaded from the network.`,
  })
}

interface Context {
  net: Net
  test: Dataset | undefined
  names: readonly string[]
  geometry: ImageGeometry | undefined
  history: History
  evaluation: ClassEvaluation | undefined
  options: ReportOptions
}

function checkOptions(options: ReportOptions): ReportOptions {
  if (typeof options !== 'object' || options === null) throw new OptionError('options', `must be an options object { net, history, test?, … }, got ${describe(options)}`)
  for (const k of Object.keys(options)) if (!(KEYS as readonly string[]).includes(k)) throw new OptionError(k, `is not an option of the report (options: ${KEYS.join(', ')})`)
  if (!(options.net instanceof Net)) throw new OptionError('net', `must be a Net, got ${describe(options.net)}`)
  if (typeof options.history !== 'string' && !Array.isArray(options.history)) throw new OptionError('history', `must be the records of a metrics log or its path, got ${describe(options.history)}`)
  if (options.test !== undefined && !(options.test instanceof Dataset)) throw new OptionError('test', `must be a Dataset, got ${describe(options.test)}`)
  if (options.test !== undefined && options.test.inputDim !== options.net.inputDim) {
    throw new ShapeError(`the test samples have shape ${shapeText(options.test.sampleShape)} (${options.test.inputDim} values) but the network's input shape is ${shapeText(options.net.inputShape)} (${options.net.inputDim} values)`)
  }
  if (options.title !== undefined && typeof options.title !== 'string') throw new OptionError('title', `must be a string, got ${describe(options.title)}`)
  if (options.saliency !== undefined && typeof options.saliency !== 'function') throw new OptionError('saliency', `must be a function (net, input, classIndex) => map, got ${describe(options.saliency)}`)
  if (options.misclassified !== undefined && !(Number.isInteger(options.misclassified) && options.misclassified >= 0)) throw new OptionError('misclassified', `must be an integer >= 0, got ${describe(options.misclassified)}`)
  const s = options.samples
  if (s !== undefined) {
    if (typeof s === 'number') {
      if (!(Number.isInteger(s) && s >= 0)) throw new OptionError('samples', `must be a count (an integer >= 0) or test-set indices, got ${describe(s)}`)
    } else if (Array.isArray(s)) {
      s.forEach((i: unknown, k) => {
        if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || (options.test !== undefined && i >= options.test.size)) {
          throw new OptionError(`samples[${k}]`, `must be an index of the test set (0..${(options.test?.size ?? 1) - 1}), got ${describe(i)}`)
        }
      })
    } else throw new OptionError('samples', `must be a count or an array of test-set indices, got ${describe(s)}`)
  }
  if (options.classNames !== undefined) {
    const n = options.classNames
    if (!Array.isArray(n) || n.length !== options.net.outputDim || n.some((x) => typeof x !== 'string') || new Set(n).size !== n.length) {
      throw new OptionError('classNames', `must be ${options.net.outputDim} distinct strings, one per output of the network, got ${describe(n)}`)
    }
  }
  return options
}

/** Class names: the option, the model file's metadata, the test set's, or the indices. */
function classNames(o: ReportOptions, net: Net): readonly string[] {
  if (o.classNames) return o.classNames
  const k = net.outputDim
  const text = net.metadata.classNames
  if (text !== undefined) {
    try {
      const names = JSON.parse(text) as unknown
      if (Array.isArray(names) && names.length === k && names.every((x) => typeof x === 'string') && new Set(names).size === k) return names as string[]
    } catch {
      // A malformed entry only costs the names.
    }
  }
  const fromTest = o.test?.classNames
  if (fromTest && fromTest.length === k) return fromTest
  return Array.from({ length: k }, (_, i) => String(i))
}

/** The inputs as images: the test set's sample shape when it is an image shape (`[28, 28]`), else the net's. */
function inputGeometry(net: Net, test: Dataset | undefined): ImageGeometry | undefined {
  const shapes = [test?.sampleShape, net.inputShape].filter((s): s is readonly number[] => s !== undefined)
  const fits = (g: ImageGeometry | undefined) => g !== undefined && g.channels * g.height * g.width === net.inputDim
  for (const s of shapes) if (s.length > 1 && fits(imageGeometry(s))) return imageGeometry(s)
  for (const s of shapes) if (fits(imageGeometry(s))) return imageGeometry(s)
  return undefined
}

// ---------------------------------------------------------------------------
// Formatting.

function num(v: number | undefined, digits = 4): string {
  if (v === undefined) return '–'
  if (!Number.isFinite(v)) return String(v)
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(2)
  return Number(v.toPrecision(digits)).toString()
}

function pct(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(digits)}%`
}

function formatDate(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'an unknown date' : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

function duration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`
  if (seconds < 60) return `${seconds.toFixed(1)} s`
  const m = Math.floor(seconds / 60)
  return m < 60 ? `${m} min ${Math.round(seconds - 60 * m)} s` : `${Math.floor(m / 60)} h ${m % 60} min`
}

function integer(v: number): string {
  return v.toLocaleString('en-US')
}

/** Nested options as `key.sub: value` rows. */
function flatten(o: Record<string, unknown>, prefix = ''): [string, string][] {
  const rows: [string, string][] = []
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) rows.push(...flatten(v as Record<string, unknown>, key))
    else rows.push([key, typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)])
  }
  return rows
}

function definitions(rows: readonly [string, string][]): string {
  return `<dl class="kv">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`
}

// ---------------------------------------------------------------------------
// Header and model.

function header(ctx: Context, title: string, modelName: string, now: Date): string {
  const { history, evaluation, net } = ctx
  const last = history.epochs.at(-1)
  const items: { label: string; value: string; hint?: string }[] = []
  if (evaluation) items.push({ label: 'Test accuracy', value: pct(evaluation.accuracy), hint: `${integer(evaluation.predicted.length)} test samples` })
  if (last?.valAccuracy !== undefined) items.push({ label: 'Val. accuracy', value: pct(last.valAccuracy), hint: `epoch ${last.epoch}` })
  else if (last?.valLoss !== undefined) items.push({ label: 'Val. loss', value: num(last.valLoss), hint: `epoch ${last.epoch}` })
  if (last?.accuracy !== undefined) items.push({ label: 'Train accuracy', value: pct(last.accuracy), hint: `epoch ${last.epoch}` })
  if (last) items.push({ label: 'Train loss', value: num(last.loss), hint: `epoch ${last.epoch}` })
  if (last?.mse !== undefined) items.push({ label: 'Train MSE', value: num(last.mse) })
  if (last?.valMse !== undefined) items.push({ label: 'Val. MSE', value: num(last.valMse) })
  items.push({ label: 'Parameters', value: integer(net.parameterCount), hint: `input ${shapeText(net.inputShape)}` })
  const seconds = history.epochs.reduce((a, e) => a + (e.seconds ?? 0), 0)
  items.push({ label: 'Epochs', value: String(history.epochs.length), ...(seconds > 0 ? { hint: `${duration(seconds)} of training` } : {}) })
  const started = history.run?.started
  const when = started ? `trained ${esc(formatDate(new Date(started)))}` : 'training date not logged'
  return `<header class="hero" id="overview"><h1>${esc(title)}</h1><p class="subtitle">Model <b>${esc(modelName)}</b> · ${when} · report of ${esc(formatDate(now))}</p>${cards(items)}</header>`
}

function modelSection(ctx: Context): Section {
  const { net, history, test } = ctx
  const rows = layerTable(net)
  const layerRows = rows.map((r) => [r.name, r.op, r.details, shapeText(r.outputShape), r.parameters ? integer(r.parameters) : ''])
  const layers = table(['Node', 'Op', 'Details', 'Output', 'Parameters'], layerRows, [4], ['', 'Total', `input ${shapeText(net.inputShape)}`, shapeText(net.outputShape), integer(net.parameterCount)])
  const run = history.run
  const data: [string, string][] = []
  if (run?.trainSamples !== undefined) data.push(['training samples', integer(run.trainSamples)])
  if (run?.validationSamples !== undefined) data.push(['validation samples', integer(run.validationSamples)])
  if (test) data.push(['test samples', `${integer(test.size)} (${shapeText(test.sampleShape)}, ${test.dtype})`])
  data.push(['classes', ctx.names.length <= 12 ? ctx.names.join(', ') : `${ctx.names.length}`])
  const opts = run?.options ? flatten(run.options) : []
  const last = history.epochs.at(-1)
  const final: [string, string][] = []
  if (last) {
    for (const [k, label] of [['loss', 'train loss'], ['accuracy', 'train accuracy'], ['mse', 'train MSE'], ['mae', 'train MAE'], ['valLoss', 'validation loss'], ['valAccuracy', 'validation accuracy'], ['valMse', 'validation MSE'], ['valMae', 'validation MAE']] as const) {
      const v = last[k]
      if (v !== undefined) final.push([label, k.toLowerCase().includes('accuracy') ? pct(v) : num(v)])
    }
  }
  if (ctx.evaluation) final.push(['test accuracy', pct(ctx.evaluation.accuracy)])
  const side = [
    `<div><h3>Run options</h3>${opts.length ? definitions(opts) : empty('The log has no run record with options.')}</div>`,
    `<div><h3>Data</h3>${definitions(data)}</div>`,
    `<div><h3>Final metrics${last ? ` (epoch ${last.epoch})` : ''}</h3>${final.length ? definitions(final) : empty('No epoch finished and no test set was given.')}</div>`,
  ]
  return {
    id: 'model',
    title: 'Model and run',
    short: 'Model and run',
    html: `${lead(`${rows.length} nodes, ${integer(net.parameterCount)} trainable parameters, input ${esc(shapeText(net.inputShape))} → output ${esc(shapeText(net.outputShape))}.`)}<div class="columns"><div><h3>Layers</h3>${layers}</div>${side.join('')}</div>`,
  }
}

// ---------------------------------------------------------------------------
// Curves.

type EpochKey = keyof EpochRecord

function epochSeries(epochs: readonly EpochRecord[], series: readonly { name: string; key: EpochKey }[]): SeriesPoint[] {
  const points: SeriesPoint[] = []
  for (const { name, key } of series) {
    for (const e of epochs) {
      const v = e[key]
      if (typeof v === 'number' && Number.isFinite(v)) points.push({ x: e.epoch, y: v, series: name })
    }
  }
  return points
}

/** Batch records on a continuous epoch axis: epoch 2, batch 469 of 938 is 1.5. */
function batchX(batches: readonly BatchRecord[]): (b: BatchRecord) => number {
  const perEpoch = new Map<number, number>()
  for (const b of batches) perEpoch.set(b.epoch, Math.max(perEpoch.get(b.epoch) ?? 0, b.batch))
  return (b) => b.epoch - 1 + b.batch / (b.batches ?? perEpoch.get(b.epoch) ?? 1)
}

/** At most `max` records, evenly spaced. */
function thin<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items]
  const step = items.length / max
  return Array.from({ length: max }, (_, i) => items[Math.floor(i * step)]!)
}

const SERIES = [{ name: 'train', color: COLORS.train }, { name: 'validation', color: COLORS.validation }]
/** The per-epoch series, with points when there are few epochs. */
function epochSeriesStyle(epochs: number): { name: string; color: string; mark: 'line' | 'line+points' }[] {
  return SERIES.map((s) => ({ ...s, mark: epochs <= 40 ? 'line+points' : 'line' }))
}

async function curvesSection(ctx: Context): Promise<Section> {
  const { epochs, batches } = ctx.history
  const figures: string[] = []
  const notes: string[] = []
  if (epochs.length === 0) {
    notes.push(empty('The log holds no epoch records, so there are no per-epoch curves (did training stop before the first epoch ended?).'))
  } else {
    const hasVal = epochs.some((e) => e.valLoss !== undefined)
    const series = epochSeriesStyle(epochs.length)
    const loss = epochSeries(epochs, [{ name: 'train', key: 'loss' }, { name: 'validation', key: 'valLoss' }])
    figures.push(figure('chart-loss', await lineChart(loss, { title: 'Loss per epoch', xTitle: 'epoch', yTitle: 'loss', integerX: true, series })))
    const classification = epochs.some((e) => e.accuracy !== undefined || e.valAccuracy !== undefined)
    if (classification) {
      const acc = epochSeries(epochs, [{ name: 'train', key: 'accuracy' }, { name: 'validation', key: 'valAccuracy' }])
      figures.push(figure('chart-accuracy', await lineChart(acc, { title: 'Accuracy per epoch', xTitle: 'epoch', yTitle: 'accuracy', yFormat: '.1~%', integerX: true, series })))
    }
    for (const [key, valKey, label] of [['mse', 'valMse', 'Mean squared error'], ['mae', 'valMae', 'Mean absolute error']] as const) {
      if (!epochs.some((e) => e[key] !== undefined || e[valKey] !== undefined)) continue
      const pts = epochSeries(epochs, [{ name: 'train', key }, { name: 'validation', key: valKey }])
      figures.push(figure(`chart-${key}`, await lineChart(pts, { title: `${label} per epoch`, xTitle: 'epoch', yTitle: key.toUpperCase(), integerX: true, series })))
    }
    if (!classification && !epochs.some((e) => e.mse !== undefined || e.mae !== undefined)) notes.push('<p class="note">The log has no accuracy, MSE or MAE, only the loss.</p>')
    if (!hasVal) notes.push('<p class="note">No validation metrics in the log (the run had no validation set), so only the training curves are drawn.</p>')
    if (epochs.length === 1) notes.push('<p class="note">One epoch only: each curve is a single point.</p>')
  }
  if (batches.length > 0) {
    const x = batchX(batches)
    const pts = thin(batches.filter((b) => Number.isFinite(b.loss)), 2000).map((b) => ({ x: x(b), y: b.loss, series: 'train' }))
    const smooth = pts.length > 60 ? Math.max(2, Math.round(pts.length / 60)) : 0
    figures.push(figure('chart-batch-loss', await lineChart(pts, {
      title: 'Training loss per logged batch', xTitle: 'epoch', yTitle: 'loss', series: [{ ...SERIES[0]!, mark: pts.length <= 60 ? 'line+points' : 'line' }], ...(smooth ? { smooth } : {}),
    }), `${integer(batches.length)} batch records${pts.length < batches.length ? `, ${integer(pts.length)} drawn` : ''}; the loss as logged (the mean over the epoch so far)${smooth ? ', with a moving average' : ''}.`))
  } else if (epochs.length > 0) {
    notes.push('<p class="note">No batch records in the log, so there is no per-batch loss curve.</p>')
  }
  return { id: 'curves', title: 'Loss and metrics', short: 'Loss and metrics', html: `${lead('Training and validation curves per epoch, from the metrics log.')}<div class="figures">${figures.join('')}</div>${notes.join('')}` }
}

function lrCaption(first: number, last: number, lo: number, hi: number, log: boolean): string {
  if (lo === hi) return `Constant: ${num(lo)} throughout.`
  const range = (first === lo || first === hi) && (last === lo || last === hi) ? '' : `, between ${num(lo)} and ${num(hi)}`
  return `From ${num(first)} to ${num(last)}${range}${log ? ' (log scale)' : ''}.`
}

async function optimisationSection(ctx: Context): Promise<Section> {
  const { epochs, batches } = ctx.history
  const figures: string[] = []
  const notes: string[] = []
  const batchLr = batches.filter((b) => b.lr !== undefined && Number.isFinite(b.lr))
  const epochLr = epochs.filter((e) => e.lr !== undefined && Number.isFinite(e.lr))
  if (epochLr.length > 0 || batchLr.length > 0) {
    const x = batchX(batches)
    const pts: SeriesPoint[] = [
      ...thin(batchLr, 2000).map((b) => ({ x: x(b), y: b.lr!, series: 'per batch' })),
      ...epochLr.map((e) => ({ x: e.epoch, y: e.lr!, series: 'end of epoch' })),
    ]
    const values = pts.map((p) => p.y)
    const lo = Math.min(...values), hi = Math.max(...values)
    const sorted = [...values].sort((a, b) => a - b)
    // Log scale for decays that spend most of the run far below the peak (step, exponential), not for cosine.
    const log = lo > 0 && hi / lo >= 100 && sorted[Math.floor(sorted.length / 2)]! < 0.2 * hi
    const series = [
      ...(batchLr.length ? [{ name: 'per batch', color: COLORS.accent, mark: 'line' as const }] : []),
      ...(epochLr.length ? [{ name: 'end of epoch', color: '#0f172a', mark: batchLr.length ? 'points' as const : epochLr.length <= 40 ? 'line+points' as const : 'line' as const }] : []),
    ]
    figures.push(figure('chart-lr', await lineChart(pts, {
      title: 'Learning rate', xTitle: 'epoch', yTitle: 'learning rate', yFormat: log ? '.0e' : '~g', log, integerX: batchLr.length === 0, series,
    }), lrCaption(pts[0]!.y, epochLr.at(-1)?.lr ?? pts.at(-1)!.y, lo, hi, log)))
  } else {
    notes.push(empty('The log has no learning rates (lr) in its batch or epoch records.'))
  }
  const gradEpochs = epochSeries(epochs, [{ name: 'gradient norm', key: 'gradNorm' }])
  const gradBatches = batches.filter((b) => b.gradNorm !== undefined && Number.isFinite(b.gradNorm))
  if (gradBatches.length > 0 || gradEpochs.length > 0) {
    const x = batchX(batches)
    const pts = gradBatches.length ? thin(gradBatches, 2000).map((b) => ({ x: x(b), y: b.gradNorm!, series: 'gradient norm' })) : gradEpochs
    figures.push(figure('chart-grad-norm', await lineChart(pts, { title: 'Gradient norm (global L2, last step)', xTitle: 'epoch', yTitle: '‖g‖₂', integerX: gradBatches.length === 0, series: [{ name: 'gradient norm', color: COLORS.test, mark: pts.length <= 40 ? 'line+points' : 'line' }] })))
  }
  const speed = epochSeries(epochs, [{ name: 'samples/s', key: 'samplesPerSecond' }])
  if (speed.length > 0) {
    figures.push(figure('chart-throughput', await lineChart(speed, { title: 'Throughput per epoch', xTitle: 'epoch', yTitle: 'samples / s', yFormat: '~s', integerX: true, series: [{ name: 'samples/s', color: COLORS.muted, mark: 'line+points' }] })))
  }
  return { id: 'learning-rate', title: 'Learning rate and optimisation', short: 'Learning rate', html: `${lead('The learning rate the optimizer used (after the schedule), and the gradient norm and throughput when logged.')}<div class="figures">${figures.join('')}</div>${notes.join('')}` }
}

// ---------------------------------------------------------------------------
// Test set.

function noTest(ctx: Context, what: string): string | undefined {
  if (!ctx.test) return empty(`No test set was given (the \`test\` option, or \`--data\` of \`ferronet report\`), so there is no ${what}.`)
  if (!ctx.evaluation) return empty(`The test set has float targets (a regression), not class labels, so there is no ${what}.`)
  return undefined
}

async function testSection(ctx: Context): Promise<Section> {
  const section = { id: 'confusion', title: 'Confusion matrix and per-class accuracy', short: 'Confusion matrix' }
  const missing = noTest(ctx, 'confusion matrix or per-class accuracy')
  if (missing) return { ...section, html: missing }
  const e = ctx.evaluation!
  const worst = [...e.perClass].filter((r) => r.total > 0).sort((a, b) => a.accuracy - b.accuracy)[0]
  let topConfusion = { t: 0, p: 0, count: 0 }
  e.confusion.forEach((row, t) => row.forEach((count, p) => {
    if (t !== p && count > topConfusion.count) topConfusion = { t, p, count }
  }))
  const summary = `Accuracy ${pct(e.accuracy)} on ${integer(e.predicted.length)} test samples.` +
    (worst ? ` Hardest class: <b>${esc(worst.name)}</b> (${pct(worst.accuracy, 1)}).` : '') +
    (topConfusion.count ? ` Most frequent confusion: <b>${esc(e.names[topConfusion.t])}</b> taken for <b>${esc(e.names[topConfusion.p])}</b> (${topConfusion.count}×).` : '')
  const rows = e.perClass.filter((r) => r.total > 0)
  const perClass = rows.length ? figure('chart-per-class', await perClassChart(rows, e.accuracy), 'Orange: below the overall accuracy (the dashed line).') : empty('No class has test samples.')
  return {
    ...section,
    html: `${lead(summary)}<div class="figures">${figure('chart-confusion', await confusionChart(e.confusion, e.names), 'Rows: the true class; columns: the predicted one. The colour is the share of the row, the number the count.')}${perClass}</div>`,
  }
}

async function mistakesSection(ctx: Context): Promise<Section> {
  const section = { id: 'misclassified', title: 'Most confident mistakes', short: 'Mistakes' }
  const missing = noTest(ctx, 'list of misclassified images')
  if (missing) return { ...section, html: missing }
  if (!ctx.geometry) return { ...section, html: empty(`The inputs (shape ${shapeText(ctx.net.inputShape)}) are not images ([1, H, W], [3, H, W], [H, W] or a square [H*W]), so misclassified samples are not drawn.`) }
  const e = ctx.evaluation!
  const wrong = e.predicted.reduce((a, p, i) => a + (p !== e.labels[i] ? 1 : 0), 0)
  if (wrong === 0) return { ...section, html: empty(`Every one of the ${integer(e.predicted.length)} test samples is classified correctly.`) }
  const indices = confidentMistakes(e, ctx.options.misclassified ?? 24)
  if (indices.length === 0) return { ...section, html: empty('No misclassified samples are shown (misclassified: 0).') }
  const g = ctx.geometry
  const scale = upscale(Math.max(g.height, g.width), IMAGE_PX)
  const cellsHtml = await Promise.all(indices.map(async (i) => {
    const uri = await pngDataUri(sampleRaster(ctx.test!.sample(i).input, g), scale)
    const t = e.names[e.labels[i]!]!, p = e.names[e.predicted[i]!]!
    return `<div class="mistake"><img src="${uri}" alt="test sample ${i}: a ${esc(t)} predicted as ${esc(p)}" title="test sample ${i}"><div class="labels">true <b>${esc(t)}</b><br><span class="wrong">predicted ${esc(p)}</span></div><div class="conf" title="the network's probability for its prediction">${pct(e.confidence[i], 1)}</div><div class="conf" title="the probability it gave the true class">p(true) ${pct(e.trueProbability[i], 1)}</div></div>`
  }))
  return {
    ...section,
    html: `${lead(`${integer(wrong)} of ${integer(e.predicted.length)} test samples are misclassified; the ${indices.length} the network was surest about are shown, most confident first, each with the probability of its (wrong) prediction and, below, the probability it gave the true class.`)}<div class="mistakes">${cellsHtml.join('')}</div>`,
  }
}

async function weightsSection(ctx: Context): Promise<Section> {
  const section = { id: 'weights', title: 'First-layer weights', short: 'Weights' }
  const first = firstLayerTiles(ctx.net, ctx.geometry)
  if (!first.ok) return { ...section, html: empty(first.reason) }
  const target = first.op === 'Linear' ? IMAGE_PX : 64
  const scale = upscale(first.tileSide, target)
  const px = first.tiles[0]!.raster.width * scale
  const tiles = await Promise.all(first.tiles.map(async (t) => `<img src="${await pngDataUri(t.raster, scale)}" alt="${esc(t.label)}" title="${esc(t.label)}: colours span ±${num(t.max, 3)}">`))
  const maxes = first.tiles.map((t) => t.max)
  const legend = `<div class="legend"><span>−max |w|</span><img src="${await colorBar(DIVERGING)}" alt="colour scale: blue negative, white zero, red positive"><span>+max |w|</span><span>· blue negative, white 0, red positive; each tile scaled to its own max |w| (from ${num(Math.min(...maxes), 3)} to ${num(Math.max(...maxes), 3)})</span></div>`
  return {
    ...section,
    html: `${lead(esc(first.description))}<div class="tiles" style="--tile:${Math.min(px, 96)}px">${tiles.join('')}</div>${legend}`,
  }
}

/** The saliency samples: the given indices, or the first test sample of each class in turn. */
function saliencySamples(ctx: Context): number[] {
  const s = ctx.options.samples ?? 6
  if (typeof s !== 'number') return [...s]
  const labels = ctx.evaluation!.labels
  const byClass = ctx.names.map(() => [] as number[])
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]?.push(i)
  const out: number[] = []
  for (let round = 0; out.length < s && out.length < labels.length; round++) {
    for (const list of byClass) if (out.length < s && list[round] !== undefined) out.push(list[round]!)
  }
  return out
}

async function saliencySection(ctx: Context): Promise<Section> {
  const section = { id: 'saliency', title: 'Saliency maps', short: 'Saliency' }
  const missing = noTest(ctx, 'sample to explain with saliency maps')
  if (missing) return { ...section, html: missing }
  if (!ctx.geometry) return { ...section, html: empty(`The inputs (shape ${shapeText(ctx.net.inputShape)}) are not images, so there are no saliency maps to draw.`) }
  const saliency = ctx.options.saliency
  if (!saliency) return { ...section, html: empty('No saliency function was given (the `saliency` option of renderReport / writeReport), so there are no saliency maps.') }
  const e = ctx.evaluation!
  const g = ctx.geometry
  const scale = upscale(Math.max(g.height, g.width), IMAGE_PX)
  const cards: string[] = []
  let failure: string | undefined
  for (const i of saliencySamples(ctx)) {
    const input = ctx.test!.sample(i).input
    const cls = e.predicted[i]!
    let map: ArrayLike<number>
    try {
      map = await saliency(ctx.net, networkInput(input), cls)
      if (!(map instanceof Float32Array || Array.isArray(map)) || map.length !== ctx.net.inputDim) {
        throw new FerronetError('ERR_SALIENCY', `returned ${map instanceof Float32Array || Array.isArray(map) ? `${map.length} values` : describe(map)}, expected a Float32Array of ${ctx.net.inputDim} values (one per input value)`)
      }
    } catch (error) {
      failure = `The saliency function failed on test sample ${i}: ${(error as Error)?.message ?? String(error)}`
      break
    }
    const plane = saliencyPlane(map, g)
    let max = 0
    for (const v of plane) max = Math.max(max, v)
    const [image, heat] = await Promise.all([pngDataUri(sampleRaster(input, g), scale), pngDataUri(colorize(plane, g.width, g.height, HEAT, 0, max || 1), scale)])
    const t = e.names[e.labels[i]!]!, p = e.names[cls]!
    cards.push(`<div class="pair"><div class="images"><img src="${image}" alt="test sample ${i}"><img src="${heat}" alt="saliency map of test sample ${i} for class ${esc(p)}"></div><div class="kinds"><span>input</span><span>saliency</span></div><div class="labels">sample ${i}: true <b>${esc(t)}</b> · predicted <b${t === p ? '' : ' class="wrong"'}>${esc(p)}</b> (${pct(e.confidence[i], 1)})</div></div>`)
  }
  const legend = cards.length ? `<div class="legend"><span>0</span><img src="${await colorBar(HEAT)}" alt="colour scale: black low, yellow high"><span>max</span><span>· |saliency| for the predicted class, the largest over the channels, each map scaled to its own maximum</span></div>` : ''
  return {
    ...section,
    html: `${lead(`Which input pixels move the score of the predicted class, for ${cards.length} test samples.`)}${cards.length ? `<div class="saliency">${cards.join('')}</div>` : ''}${failure ? empty(failure, true) : ''}${legend}`,
  }
}
