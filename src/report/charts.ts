/**
 * The report's charts: Vega-Lite specs compiled to Vega and rendered to static SVG in
 * Node (`renderer: 'none'`, no browser, no canvas), so the page needs no script.
 * `vega` and `vega-lite` are optional dependencies, loaded on first use.
 */

import { createRequire } from 'node:module'
import { FerronetError } from '../errors.js'

type VegaModule = typeof import('vega')
type VegaLiteModule = typeof import('vega-lite')

let loaded: { vega: VegaModule; vl: VegaLiteModule } | undefined

function load(): { vega: VegaModule; vl: VegaLiteModule } {
  if (loaded) return loaded
  const require = createRequire(import.meta.url)
  const get = <T>(name: string): T => {
    try {
      return require(name) as T
    } catch (error) {
      throw new FerronetError(
        'ERR_MISSING_DEPENDENCY',
        `the training report draws its charts with the npm packages \`vega\` and \`vega-lite\`, optional dependencies of ferronet; \`${name}\` is not installed here: run \`npm install vega vega-lite\``,
        { cause: error },
      )
    }
  }
  loaded = { vega: get<VegaModule>('vega'), vl: get<VegaLiteModule>('vega-lite') }
  return loaded
}

/** The system font stack of the page, used in the charts too. */
export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

/** Series colours: training blue, validation orange, test green. */
export const COLORS = { train: '#2563eb', validation: '#ea580c', test: '#16a34a', accent: '#7c3aed', muted: '#94a3b8' } as const

const CONFIG = {
  font: FONT,
  background: '#ffffff',
  padding: 4,
  view: { stroke: null },
  axis: {
    labelFontSize: 11, titleFontSize: 12, titleFontWeight: 600, titleColor: '#334155', labelColor: '#475569',
    gridColor: '#e2e8f0', domainColor: '#94a3b8', tickColor: '#94a3b8', titlePadding: 8,
  },
  legend: { labelFontSize: 12, titleFontSize: 12, orient: 'top', direction: 'horizontal', symbolStrokeWidth: 2, labelColor: '#334155' },
  title: { fontSize: 13, fontWeight: 600, anchor: 'start', color: '#0f172a', offset: 10 },
  line: { strokeWidth: 2 },
  point: { size: 36, filled: true },
} as const

type Spec = Record<string, unknown>

/** A Vega-Lite spec as static SVG markup (an `<svg>` element). */
export async function renderSvg(spec: Spec): Promise<string> {
  const { vega, vl } = load()
  const compiled = vl.compile({ config: CONFIG, ...spec } as never).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  try {
    let svg = await view.toSVG()
    // The xlink namespace is declared whether or not it is used; drop it when unused.
    if (!/\bxlink:(?!xmlns)/.test(svg.replace(/xmlns:xlink="[^"]*"/, ''))) svg = svg.replace(/\s+xmlns:xlink="[^"]*"/, '')
    return svg
  } finally {
    view.finalize()
  }
}

/** A point of a per-epoch series. */
export interface SeriesPoint {
  x: number
  y: number
  series: string
}

interface LineOptions {
  title: string
  xTitle: string
  yTitle: string
  /** d3 format of the y axis, e.g. `.1~%` or `~s`. */
  yFormat?: string
  /** Log scale (only when every value is > 0). */
  log?: boolean
  /** The x axis counts whole epochs: a tick per epoch (up to 20), labelled as integers. */
  integerX?: boolean
  width?: number
  height?: number
  /**
   * Series names and colours, in legend order, and how each is drawn: a line
   * (default), a line with points, or points only.
   */
  series: readonly { name: string; color: string; mark?: 'line' | 'line+points' | 'points' }[]
  /** Draw a faint raw line and a bold moving average over `smooth` points on each side. */
  smooth?: number
}

/** Lines of one or more series over x (epochs, or fractional epochs for batch records). */
export function lineChart(points: readonly SeriesPoint[], o: LineOptions): Promise<string> {
  const xs = points.map((p) => p.x)
  const lo = Math.min(...xs)
  const hi = Math.max(...xs)
  const whole = o.integerX && Number.isInteger(lo) && Number.isInteger(hi)
  const ticks = whole && hi - lo <= 20 ? Array.from({ length: hi - lo + 1 }, (_, i) => lo + i) : undefined
  const x = {
    field: 'x', type: 'quantitative', title: o.xTitle,
    scale: { domain: hi > lo ? [lo, hi] : [lo - 0.5, lo + 0.5], nice: false },
    axis: ticks ? { values: ticks, format: 'd', grid: true } : o.integerX ? { tickMinStep: 1, format: 'd' } : { format: '~g', tickCount: 8 },
  }
  const y = {
    field: 'y', type: 'quantitative', title: o.yTitle,
    scale: o.log ? { type: 'log' } : { zero: false },
    axis: { format: o.yFormat ?? '~g', tickCount: 6 },
  }
  const color = {
    field: 'series', type: 'nominal', title: null,
    scale: { domain: o.series.map((s) => s.name), range: o.series.map((s) => s.color) },
    legend: o.series.length > 1 ? {} : null,
  }
  const layers: Spec[] = []
  for (const s of o.series) {
    const only = { filter: { field: 'series', equal: s.name } }
    const mark = s.mark ?? 'line'
    if (o.smooth && mark === 'line') {
      layers.push({ transform: [only], mark: { type: 'line', strokeWidth: 1, opacity: 0.3 }, encoding: { x, y, color } })
      layers.push({
        transform: [only, { window: [{ op: 'mean', field: 'y', as: 'smooth' }], frame: [-o.smooth, o.smooth], sort: [{ field: 'x' }] }],
        mark: { type: 'line', strokeWidth: 2 },
        encoding: { x, y: { ...y, field: 'smooth' }, color },
      })
    } else if (mark === 'points') {
      layers.push({ transform: [only], mark: { type: 'point', size: 44, filled: true, stroke: '#ffffff', strokeWidth: 1 }, encoding: { x, y, color } })
    } else {
      layers.push({ transform: [only], mark: { type: 'line', point: mark === 'line+points' ? { size: 40, filled: true } : false }, encoding: { x, y, color } })
    }
  }
  return renderSvg({
    title: o.title,
    width: o.width ?? 380,
    height: o.height ?? 200,
    data: { values: points },
    layer: layers,
  })
}

/** A confusion matrix as a heat map with counts: rows the true class, columns the predicted one, colour the row's fraction. */
export function confusionChart(matrix: readonly (readonly number[])[], names: readonly string[]): Promise<string> {
  const k = names.length
  const cell = Math.max(12, Math.min(40, Math.floor(340 / k)))
  const values: Spec[] = []
  matrix.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0)
    row.forEach((count, p) => values.push({ truth: names[t], predicted: names[p], count, fraction: total ? count / total : 0, diagonal: t === p }))
  })
  const axisLabels = { labelAngle: names.some((n) => n.length > 3) ? -40 : 0, labelLimit: 110, ticks: false, domain: false }
  const layers: Spec[] = [{
    mark: { type: 'rect', stroke: '#ffffff', strokeWidth: 1 },
    encoding: {
      color: {
        field: 'fraction', type: 'quantitative', title: 'row share',
        // sqrt: a few per cent of errors still shows against the white of none.
        scale: { type: 'sqrt', domain: [0, 1], range: ['#f8fafc', '#dbeafe', '#93c5fd', '#3b82f6', '#1d4ed8', '#1e3a8a'] },
        legend: { orient: 'right', direction: 'vertical', format: '.0%', values: [0, 0.05, 0.25, 0.5, 1], gradientLength: Math.min(200, cell * k) },
      },
    },
  }]
  if (k <= 20) {
    layers.push({
      mark: { type: 'text', fontSize: cell >= 30 ? 11 : 9 },
      transform: [{ filter: 'datum.count > 0' }],
      encoding: {
        text: { field: 'count', type: 'quantitative' },
        color: { condition: { test: 'datum.fraction > 0.3', value: '#ffffff' }, value: '#1e293b' },
      },
    })
  }
  return renderSvg({
    title: 'Confusion matrix (test set)',
    width: cell * k,
    height: cell * k,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: names, title: 'predicted class', axis: { ...axisLabels, orient: 'bottom' } },
      y: { field: 'truth', type: 'nominal', sort: names, title: 'true class', axis: { ...axisLabels, labelAngle: 0 } },
    },
    layer: layers,
  })
}

/** Accuracy per class as horizontal bars, with the overall accuracy as a dashed rule. */
export function perClassChart(rows: readonly { name: string; accuracy: number; total: number }[], overall: number): Promise<string> {
  const bar = Math.max(10, Math.min(28, Math.floor(340 / rows.length)))
  const lowest = Math.min(...rows.map((r) => r.accuracy))
  const lo = Math.max(0, Math.floor((lowest - 0.05) * 10) / 10)
  const y = { field: 'name', type: 'nominal', sort: rows.map((r) => r.name), title: null, axis: { ticks: false, domain: false, labelLimit: 140 } }
  const x = { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [lo, 1], clamp: true }, axis: { format: '.0%', tickCount: 5 } }
  return renderSvg({
    title: 'Accuracy per class (test set)',
    width: 260,
    height: bar * rows.length,
    layer: [
      {
        data: { values: rows.map((r) => ({ ...r, label: `${(100 * r.accuracy).toFixed(1)}%  (n=${r.total})`, low: r.accuracy < overall })) },
        layer: [
          {
            mark: { type: 'bar', cornerRadiusEnd: 2, height: { band: 0.72 } },
            encoding: { y, x, color: { condition: { test: 'datum.low', value: COLORS.validation }, value: COLORS.train } },
          },
          ...(rows.length <= 40
            ? [{ mark: { type: 'text', align: 'left', dx: 8, fontSize: 11, color: '#334155' }, encoding: { y, x: { datum: 1, type: 'quantitative' }, text: { field: 'label' } } }]
            : []),
        ],
      },
      {
        data: { values: [{ overall }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#0f172a', strokeWidth: 1.5 },
        encoding: { x: { field: 'overall', type: 'quantitative' } },
      },
    ],
  })
}
