// Load test of ferronet's prediction server (src/serve.ts) on loopback with autocannon,
// and, in the same Node process, of an equivalent fastify endpoint running
// onnxruntime-node's InferenceSession on an .onnx export of the same model.
//
//   npm run build:ts && node bench/serve_load.mjs [options]
//
// Model (ferronet side; the ONNX file should be an export of the same model):
//   --model FILE.safetensors   a saved model (net.save), loaded with Net.load
//   --preset mlp|lenet|cnn     a ready-made model, freshly initialised (default mlp, 784→500→10)
//   --spec FILE.json           a saved model spec (docs/graph-spec.md) ...
//   --params FILE.json         ... with its tensors: {"0.weight": [...], ...} (default: seeded init)
//   --loader FILE.mjs          a module whose default (or `load`) export returns a Net (e.g. Net.load('m.safetensors'))
//   --onnx FILE.onnx           also load-test onnxruntime-node on FILE (skipped without it)
// Load:
//   --seconds N (10)  --connections C (16)  --pipelining P (1)  --rows R (1 row per request)
//   --warmup S (2 s at the same load, not measured)
// Server:
//   --max-batch N (256)  --window-ms X (0)  --ort-threads N (onnxruntime's intra-op threads; default: its own)
//
// Prints one JSON line on stdout, `{"kind": "serve", ...}` (bench/run.mjs's serve section
// reads it; a short summary goes to stderr): per side requests/s, p50/p90/p99 latency
// (ms, from every 2xx response time; autocannon's own summary, in whole ms, is kept as
// latencyMsAutocannon), errors (socket errors + timeouts + non-2xx), and the RSS of
// this process (MiB) at the side's start (before its server or session exists), its
// peak sampled every 250 ms (--rss-interval-ms) from then to the end of the measured
// run, at the start of the measured run and at its end (server still up), and after
// the server closed.
// ferronet's rows per native predict call are counted over the measured run only.
// If the ONNX side fails, `onnx` is `{ "failed": message }` and the ferronet side is
// still reported. autocannon runs in a child process so its own memory and event
// loop are not the server's (it still takes CPU: on a small machine both compete).
// Both servers answer the same body with the same JSON (parsing and formatting use the
// same code, dist/serve/protocol.js); ferronet batches concurrent requests into one
// native predict call, the ONNX endpoint calls session.run once per request (what a
// plain onnxruntime endpoint does). The ferronet side runs first; the ONNX side's RSS
// starts from what the ferronet side left. Do not run it while anything else computes.

import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { emit, log, parseArgv, runChild } from './lib.mjs'

const MiB = 1024 * 1024
const self = fileURLToPath(import.meta.url)

if (process.argv[2] === '--autocannon-child') {
  // The load generator: one autocannon run per message from the parent.
  const require = createRequire(import.meta.url)
  const autocannon = require('autocannon')
  process.on('message', async (opts) => {
    try {
      // autocannon's own percentiles are whole milliseconds (its histogram's resolution);
      // every 2xx response time (ms, from hrtime) is kept here too, for exact percentiles.
      const times = []
      const instance = autocannon(opts)
      instance.on('response', (client, statusCode, bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) times.push(responseTime)
      })
      const r = await instance
      r.exactLatency = percentiles(times)
      process.send({ ok: true, result: r })
    } catch (error) {
      process.send({ ok: false, error: String(error?.stack ?? error) })
    }
  })
} else {
  await runChild('serve-load', main)
}

/** Nearest-rank percentiles (and mean, max) of response times in ms, rounded to µs. */
function percentiles(times) {
  if (times.length === 0) return { count: 0, p50: null, p90: null, p99: null, mean: null, max: null }
  const sorted = Float64Array.from(times).sort()
  const at = (p) => +sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)].toFixed(3)
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length
  return { count: sorted.length, p50: at(50), p90: at(90), p99: at(99), mean: +mean.toFixed(3), max: +sorted.at(-1).toFixed(3) }
}

function usage(message) {
  process.stderr.write(`serve_load: ${message}\n(see the header of bench/serve_load.mjs for the options)\n`)
  process.exit(2)
}

function rssMiB() {
  return +(process.memoryUsage.rss() / MiB).toFixed(1)
}

/**
 * Samples this process's RSS every `intervalMs` from now until `stop()`; the timer is
 * unref'd and shares the event loop with the server, so under load a sample may come late.
 */
function rssSampler(intervalMs) {
  const start = rssMiB()
  let peak = start
  let samples = 1
  const sample = () => {
    const v = rssMiB()
    samples++
    if (v > peak) peak = v
    return v
  }
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return {
    start,
    /** RSS now, also counted as a sample. */
    mark: sample,
    stop() {
      clearInterval(timer)
      const end = sample()
      return { start, peak, end, samples, intervalMs }
    },
  }
}

/** Deterministic rows in [0, 1). */
function makeRows(n, dim) {
  let s = 12345
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => +next().toFixed(4)))
}

async function loadFerronetModel(args, ferronet) {
  const { Net, models } = ferronet
  if (args.model) {
    const file = resolve(String(args.model))
    return { source: `file ${args.model}`, file, load: () => Net.load(file) }
  }
  if (args.loader) {
    const mod = await import(pathToFileURL(resolve(String(args.loader))).href)
    const load = mod.load ?? mod.default
    if (typeof load !== 'function') usage(`--loader ${args.loader} exports no load function (default or named \`load\`)`)
    return { source: `loader ${args.loader}`, load }
  }
  if (args.spec) {
    const spec = readFileSync(String(args.spec), 'utf8')
    const params = args.params ? JSON.parse(readFileSync(String(args.params), 'utf8')) : undefined
    const build = () => {
      const net = Net.fromSpec(spec, { seed: Number(args.seed ?? 0) })
      if (params) for (const [name, values] of Object.entries(params)) net.setParameter(name, Float32Array.from(values))
      return net
    }
    return { source: `spec ${args.spec}${args.params ? ` + params ${args.params}` : ' (seeded init)'}`, load: build }
  }
  const preset = String(args.preset ?? 'mlp')
  if (!models.PRESETS[preset]) usage(`--preset must be one of ${Object.keys(models.PRESETS).join(', ')}, got ${preset}`)
  return { source: `preset ${preset} (seeded init)`, load: () => models.PRESETS[preset]({ seed: 0 }) }
}

function runAutocannon(child, opts) {
  return new Promise((resolveRun, reject) => {
    child.once('message', (m) => (m.ok ? resolveRun(m.result) : reject(new Error(m.error))))
    child.send(opts)
  })
}

/**
 * Warm-up, then a measured autocannon run against `url`; the summary of the measured run.
 * `hooks.beforeRun` / `hooks.afterRun` are awaited right before and after the measured run.
 */
async function load(child, url, body, args, hooks = {}) {
  const opts = {
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: Number(args.connections ?? 16),
    pipelining: Number(args.pipelining ?? 1),
  }
  const warmup = Number(args.warmup ?? 2)
  if (warmup > 0) await runAutocannon(child, { ...opts, duration: warmup })
  await hooks.beforeRun?.()
  const r = await runAutocannon(child, { ...opts, duration: Number(args.seconds ?? 10) })
  await hooks.afterRun?.()
  const seconds = r.duration
  return {
    requests: r.requests.total,
    seconds,
    requestsPerSec: +(r.requests.total / seconds).toFixed(1),
    // Exact, from every 2xx response time; latencyMsAutocannon = autocannon's summary (whole ms).
    latencyMs: r.exactLatency,
    latencyMsAutocannon: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, mean: r.latency.average, max: r.latency.max },
    errors: r.errors + r.timeouts + r.non2xx,
    errorDetail: { socketErrors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx },
    throughputMiBPerSec: +(r.throughput.average / MiB).toFixed(2),
  }
}

/** The same answer from both servers for the probe body? */
function compare(a, b) {
  let maxAbsDiff = 0
  let sameClass = true
  a.predictions.forEach((p, r) => {
    const q = b.predictions[r]
    if (p.class !== q.class) sameClass = false
    p.outputs.forEach((v, j) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - q.outputs[j]))))
  })
  return { maxAbsDiff, sameClass }
}

async function probe(url, rows) {
  const res = await fetch(`${url}/predict?outputs=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: rows }) })
  const body = await res.json()
  if (res.status !== 200) throw new Error(`${url}/predict answered ${res.status}: ${JSON.stringify(body)}`)
  return body
}

async function main() {
  const args = parseArgv()
  const rssAtStart = rssMiB()
  const intervalMs = Number(args.rssIntervalMs ?? 250)
  const ferronet = await import('../dist/index.js')
  const { createServer } = await import('../dist/serve.js')
  const protocol = await import('../dist/serve/protocol.js')
  const model = await loadFerronetModel(args, ferronet)
  const rowsPerRequest = Number(args.rows ?? 1)
  const child = fork(self, ['--autocannon-child'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const out = { kind: 'serve', config: {}, ferronet: null, onnx: null }
  try {
    // --- ferronet
    const rss = rssSampler(intervalMs)
    const server = await createServer({
      load: model.load,
      port: 0,
      maxBatch: Number(args.maxBatch ?? 256),
      batchWindowMs: Number(args.windowMs ?? 0),
      maxBatchRows: Math.max(1024, rowsPerRequest),
      maxBodyBytes: 64 * MiB,
    })
    let info
    let ferronetProbe
    let result
    let runStart
    let runEnd
    let rows
    let body
    const metrics = { before: null, after: null }
    try {
      info = server.model
      rows = makeRows(rowsPerRequest, info.inputDim)
      body = JSON.stringify({ inputs: rows })
      out.config = {
        model: {
          source: model.source, ...(model.file ? { file: model.file } : {}),
          inputShape: info.inputShape, outputShape: info.outputShape, parameterCount: info.parameterCount, task: info.task,
        },
        seconds: Number(args.seconds ?? 10), warmupSeconds: Number(args.warmup ?? 2), connections: Number(args.connections ?? 16),
        pipelining: Number(args.pipelining ?? 1), rowsPerRequest, bodyBytes: Buffer.byteLength(body),
        maxBatch: Number(args.maxBatch ?? 256), batchWindowMs: Number(args.windowMs ?? 0),
        node: process.version, rayonThreads: process.env.RAYON_NUM_THREADS ?? 'default', rssAtStartMiB: rssAtStart,
        rssSampleIntervalMs: intervalMs,
      }
      ferronetProbe = await probe(server.url, rows)
      result = await load(child, server.url, body, args, {
        beforeRun: async () => {
          runStart = rss.mark()
          metrics.before = await server.registry.getMetricsAsJSON()
        },
        afterRun: async () => {
          runEnd = rss.mark()
          metrics.after = await server.registry.getMetricsAsJSON()
        },
      })
    } finally {
      await server.close()
    }
    const rssRun = rss.stop()
    const hist = (snapshot, name) => {
      const values = snapshot?.find((m) => m.name === name)?.values ?? []
      const sum = values.find((v) => v.metricName === `${name}_sum`)?.value ?? 0
      const count = values.find((v) => v.metricName === `${name}_count`)?.value ?? 0
      return { sum, count }
    }
    const total = hist(metrics.after, 'ferronet_batch_rows')
    const before = hist(metrics.before, 'ferronet_batch_rows')
    const run = { sum: total.sum - before.sum, count: total.count - before.count }
    out.ferronet = {
      ...result,
      rowsPerSec: +((result.requests * rowsPerRequest) / result.seconds).toFixed(1),
      // start = before createServer (model load included); peak = sampled up to the end of the measured run;
      // runStart / end = right before / after the measured run (server up); after = once the server closed.
      rssMiB: { before: rssRun.start, start: rssRun.start, peak: Math.max(rssRun.peak, runEnd), runStart, end: runEnd, after: rssRun.end, samples: rssRun.samples },
      batches: {
        // Over the measured run only (warm-up and probe left out).
        nativeCalls: run.count, meanRowsPerCall: run.count ? +(run.sum / run.count).toFixed(2) : null,
        // Over probe + warm-up + run.
        nativeCallsTotal: total.count, meanRowsPerCallTotal: total.count ? +(total.sum / total.count).toFixed(2) : null,
      },
    }

    // --- onnxruntime-node
    if (!args.onnx) {
      out.onnx = { skipped: 'no --onnx FILE given' }
    } else {
      try {
        out.onnx = await onnxSide(args, { child, info, body, rows, rowsPerRequest, protocol, ferronetProbe, intervalMs })
      } catch (error) {
        out.onnx = { file: String(args.onnx), failed: String(error?.message ?? error).split('\n')[0] }
        log(`serve_load: the onnxruntime-node side failed: ${error?.stack ?? error}`)
      }
    }
    out.maxRssMiB = +(process.resourceUsage().maxRSS / 1024).toFixed(1)
  } finally {
    child.kill()
  }
  emit(out)
  const side = (name, r) => (r?.requestsPerSec != null
    ? `${name}: ${r.requestsPerSec} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.errors} errors, RSS ${r.rssMiB.start} → peak ${r.rssMiB.peak} → ${r.rssMiB.end} MiB`
    : `${name}: ${r?.skipped ? `skipped (${r.skipped})` : `FAILED (${r?.failed})`}`)
  log(side('ferronet', out.ferronet))
  log(side('onnxruntime-node', out.onnx))
}

/** The same endpoint on onnxruntime-node: fastify + InferenceSession.run once per request. */
async function onnxSide(args, { child, info, body, rows, rowsPerRequest, protocol, ferronetProbe, intervalMs }) {
  const rss = rssSampler(intervalMs)
  const ort = (await import('onnxruntime-node')).default ?? (await import('onnxruntime-node'))
  const { fastify } = await import('fastify')
  const sessionOptions = args.ortThreads ? { intraOpNumThreads: Number(args.ortThreads), interOpNumThreads: 1 } : {}
  const session = await ort.InferenceSession.create(String(args.onnx), sessionOptions)
  const inputName = session.inputNames[0]
  const outputName = session.outputNames[0]
  const served = {
    version: 1, inputShape: info.inputShape, inputDim: info.inputDim, outputDim: info.outputDim,
    task: info.task, outputKind: info.outputKind, classNames: undefined,
    predict() { throw new Error('not used') },
  }
  const app = fastify({ bodyLimit: 64 * MiB })
  app.post('/predict', async (request, reply) => {
    let parsed
    try {
      parsed = protocol.parseJsonBody(request.body, served, Math.max(1024, rowsPerRequest), protocol.parseQuery(request.query))
    } catch (error) {
      return reply.code(error.status ?? 400).send({ error: { code: error.code, message: error.message } })
    }
    const tensor = new ort.Tensor('float32', parsed.inputs, [parsed.rows, ...info.inputShape])
    const results = await session.run({ [inputName]: tensor })
    const data = results[outputName].data
    return protocol.formatPredictions(served, data instanceof Float32Array ? data : Float32Array.from(data), parsed)
  })
  let onnxProbe
  let onnxResult
  let runStart
  let runEnd
  try {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${app.server.address().port}`
    onnxProbe = await probe(url, rows)
    onnxResult = await load(child, url, body, args, {
      beforeRun: () => { runStart = rss.mark() },
      afterRun: () => { runEnd = rss.mark() },
    })
  } finally {
    await app.close()
    await session.release?.()
  }
  const r = rss.stop()
  return {
    file: String(args.onnx),
    inputName, outputName, sessionOptions,
    agreesWithFerronet: compare(ferronetProbe, onnxProbe),
    ...onnxResult,
    rowsPerSec: +((onnxResult.requests * rowsPerRequest) / onnxResult.seconds).toFixed(1),
    // As for ferronet; start is before onnxruntime-node is imported, i.e. what the ferronet side left.
    rssMiB: { before: r.start, start: r.start, peak: Math.max(r.peak, runEnd), runStart, end: runEnd, after: r.end, samples: r.samples },
  }
}
