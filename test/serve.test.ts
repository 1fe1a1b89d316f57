/**
 * The prediction server over real HTTP on loopback (port 0, `fetch`): answers equal
 * `net.predict`, concurrent requests are coalesced into batches, every bad input is a
 * 400/413/415 naming the problem, `/metrics` parses and counts what happened, reloads
 * under load drop nothing and a failed reload keeps the old model. No timing asserts:
 * where batching must be observed, the batch window is long and batches are cut by
 * `maxBatch` alone.
 */

import { afterEach, describe, expect, it } from 'vitest'
import { register as globalRegistry } from 'prom-client'
import { setTimeout as sleep } from 'node:timers/promises'
import { FerronetError, Net, OptionError } from '../src/index.js'
import { createServer, reloadOnSighup, type PredictionServer, type ServeOptions } from '../src/serve.js'
import { Batcher } from '../src/serve/batcher.js'

/**
 * 4 → 3 Linear with known weights: outputs (x0 + b0, x1 + b1, x2 + x3 + b2), so the
 * class of a row is easy to steer. Two nets with different `bias` answer differently.
 */
function linearNet(bias: readonly number[] = [0, 0, 0]): Net {
  const net = Net.sequential(4, [Net.dense(3)])
  net.setParameter('0.weight', Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1))
  net.setParameter('0.bias', Float32Array.from(bias))
  return net
}

/** Deterministic pseudo-random rows in [-2, 2). */
function rows(n: number, dim = 4, seed = 1): number[][] {
  let s = seed >>> 0
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 4 - 2
  return Array.from({ length: n }, () => Array.from({ length: dim }, next))
}

const servers: PredictionServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function start(options: Partial<ServeOptions> & Pick<ServeOptions, 'load'>): Promise<PredictionServer> {
  const server = await createServer({ port: 0, ...options })
  servers.push(server)
  return server
}

interface Answer {
  status: number
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function post(server: PredictionServer, body: unknown, options: { query?: string; type?: string; raw?: boolean } = {}): Promise<Answer> {
  const payload = options.raw || body instanceof Uint8Array ? (body as string | Uint8Array) : JSON.stringify(body)
  const res = await fetch(`${server.url}/predict${options.query ?? ''}`, {
    method: 'POST',
    headers: options.type === '' ? {} : { 'content-type': options.type ?? 'application/json' },
    body: payload,
  })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error(`status ${res.status}, not JSON: ${text}`)
  }
  return { status: res.status, body: parsed }
}

/** Each row's outputs from the net itself. */
function expected(net: Net, data: number[][]): number[][] {
  const out = net.predict(Float32Array.from(data.flat()))
  return data.map((_, r) => Array.from(out.subarray(r * net.outputDim, (r + 1) * net.outputDim)))
}

/**
 * Parses the Prometheus text format strictly (every sample line must be
 * `name{label="v",...} value` under a `# TYPE`d family) into `name{labels}` → value,
 * labels sorted by name.
 */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  const typed = new Set<string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type) {
      typed.add(type[1]!)
      continue
    }
    if (line.startsWith('# HELP ')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{((?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`)
    const [, name, labels, value] = m as unknown as [string, string, string | undefined, string]
    const family = name.replace(/_(bucket|sum|count|total)$/, '')
    if (!typed.has(name) && !typed.has(family) && !typed.has(`${family}_total`)) throw new Error(`sample ${name} has no # TYPE line`)
    const pairs = labels ? [...labels.matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((p) => `${p[1]}="${p[2]}"`).sort() : []
    const v = Number(value)
    if (Number.isNaN(v) && value.toLowerCase() !== 'nan') throw new Error(`bad value in ${line}`)
    samples.set(pairs.length ? `${name}{${pairs.join(',')}}` : name, v)
  }
  return samples
}

async function metrics(server: PredictionServer): Promise<Map<string, number>> {
  const res = await fetch(`${server.url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseMetrics(await res.text())
}

describe('POST /predict', () => {
  it('answers what net.predict answers, with softmax probabilities, top-k, labels and raw outputs', async () => {
    const net = linearNet([0.5, -0.25, 0])
    const server = await start({ load: () => net, classNames: ['left', 'middle', 'right'] })
    const data = rows(37)
    const want = expected(net, data)
    const { status, body } = await post(server, { inputs: data, outputs: true }, { query: '?top=2' })
    expect(status).toBe(200)
    expect(body.modelVersion).toBe(1)
    expect(body.predictions).toHaveLength(37)
    const classes = net.predictClasses(Float32Array.from(data.flat()))
    body.predictions.forEach((p: any, r: number) => {
      // JSON carries the float32 outputs exactly.
      expect(Float32Array.from(p.outputs)).toEqual(Float32Array.from(want[r]!))
      expect(p.class).toBe(classes[r])
      expect(p.label).toBe(['left', 'middle', 'right'][classes[r]!])
      const max = Math.max(...want[r]!)
      const exps = want[r]!.map((v) => Math.exp(v - max))
      const sum = exps.reduce((a, b) => a + b, 0)
      expect(p.probability).toBeCloseTo(exps[classes[r]!]! / sum, 12)
      expect(p.top).toHaveLength(2)
      expect(p.top[0]).toEqual({ class: p.class, label: p.label, probability: p.probability })
      expect(p.top[1].probability).toBeLessThanOrEqual(p.top[0].probability)
      expect(p.top[1].class).not.toBe(p.class)
    })
  })

  it('takes one flat row, clamps top to the class count, lets the body override the query, omits outputs unless asked', async () => {
    const net = linearNet()
    const server = await start({ load: () => net })
    const { status, body } = await post(server, { inputs: [3, 1, 0.5, 0.25], top: 10 }, { query: '?top=1&outputs=true' })
    expect(status).toBe(200)
    expect(body.predictions).toHaveLength(1)
    const p = body.predictions[0]
    expect(p.class).toBe(0)
    expect(p.label).toBeUndefined()
    expect(p.top.map((t: any) => t.class)).toEqual([0, 1, 2])
    expect(p.top.reduce((a: number, t: any) => a + t.probability, 0)).toBeCloseTo(1, 12)
    expect(Float32Array.from(p.outputs)).toEqual(net.predict(Float32Array.of(3, 1, 0.5, 0.25)))
    const plain = await post(server, { inputs: [[3, 1, 0.5, 0.25]] })
    expect(plain.body.predictions[0].outputs).toBeUndefined()
    expect(plain.body.predictions[0].top).toHaveLength(3) // default 5, clamped
  })

  it('regression-style nets get only their outputs; a final Softmax is not softmaxed twice', async () => {
    const reg = Net.sequential(4, [Net.dense(1)])
    const server = await start({ load: () => reg })
    const data = rows(5)
    const { status, body } = await post(server, { inputs: data, top: 2 })
    expect(status).toBe(200)
    expect(body.predictions.map((p: any) => Object.keys(p))).toEqual(Array(5).fill(['outputs']))
    expect(body.predictions.map((p: any) => p.outputs)).toEqual(expected(reg, data))
    expect((await (await fetch(`${server.url}/model`)).json()).task).toBe('regression')

    const three = linearNet()
    const forced = await start({ load: () => three, task: 'regression' })
    expect((await post(forced, { inputs: data })).body.predictions[0]).toEqual({ outputs: expected(three, data)[0] })

    const soft = Net.sequential(4, [Net.dense(3), Net.softmax()])
    const s = await start({ load: () => soft })
    const out = expected(soft, data)
    const answer = await post(s, { inputs: data })
    answer.body.predictions.forEach((p: any, r: number) => expect(p.probability).toBe(Math.max(...out[r]!)))
    expect((await (await fetch(`${s.url}/model`)).json()).outputKind).toBe('probabilities')
  })

  it('decodes image bodies with decodeImage and predicts the decoded row', async () => {
    const net = linearNet()
    const seen: { bytes: number[]; shape: readonly number[] }[] = []
    const decodeImage = async (source: Uint8Array, inputShape: readonly number[]) => {
      seen.push({ bytes: Array.from(source), shape: inputShape })
      if (source[0] === 0) throw new Error('not a PNG: bad signature')
      return Float32Array.from(source.subarray(0, 4), (v) => v / 255)
    }
    const server = await start({ load: () => net, decodeImage })
    const image = Uint8Array.of(200, 10, 30, 40, 99, 99)
    const { status, body } = await post(server, image, { type: 'image/png', query: '?outputs=true' })
    expect(status).toBe(200)
    expect(seen).toEqual([{ bytes: Array.from(image), shape: [4] }])
    expect(Float32Array.from(body.predictions[0].outputs)).toEqual(net.predict(Float32Array.from([200, 10, 30, 40], (v) => v / 255)))
    expect(body.predictions[0].class).toBe(0)

    const bad = await post(server, Uint8Array.of(0, 1, 2), { type: 'image/jpeg' })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toEqual({ code: 'ERR_BAD_IMAGE', message: 'the image could not be decoded: not a PNG: bad signature' })
  })

  it('answers 500 ERR_PREDICT (not a crash) when the model itself fails, and keeps serving', async () => {
    const net = linearNet()
    let fail = false
    const flaky = new Proxy(net, {
      get(target, key) {
        if (key === 'predict') return (x: Float32Array) => {
          if (fail) throw new FerronetError('ERR_BUSY', 'the net is training')
          return target.predict(x)
        }
        const v = Reflect.get(target, key, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    const server = await start({ load: () => flaky })
    fail = true
    const { status, body } = await post(server, { inputs: [[1, 2, 3, 4]] })
    expect(status).toBe(500)
    expect(body.error.code).toBe('ERR_PREDICT')
    expect(body.error.message).toMatch(/the net is training/)
    fail = false
    expect((await post(server, { inputs: [[1, 2, 3, 4]] })).status).toBe(200)
  })
})

describe('bad input', () => {
  it('answers 400/413/415 with a JSON error naming the problem, never a 500, and counts each code', async () => {
    const net = linearNet()
    const server = await start({ load: () => net, maxBatchRows: 8, maxBodyBytes: 2048 })
    const cases: [body: unknown, opts: Parameters<typeof post>[2], status: number, code: string, message: RegExp][] = [
      ['{"inputs": [[1, 2', { raw: true }, 400, 'ERR_BAD_JSON', /not valid JSON/],
      ['', { raw: true }, 400, 'ERR_BAD_JSON', /body is empty/],
      ['{"__proto__": {"x": 1}, "inputs": [1, 2, 3, 4]}', { raw: true }, 400, 'ERR_BAD_JSON', /prototype/],
      [[1, 2, 3, 4], {}, 400, 'ERR_BAD_BODY', /must be a JSON object/],
      [{ input: [1, 2, 3, 4] }, {}, 400, 'ERR_BAD_BODY', /unknown field `input` \(fields: inputs, top, outputs\)/],
      [{}, {}, 400, 'ERR_MISSING_INPUTS', /no `inputs`/],
      [{ inputs: 'abc' }, {}, 400, 'ERR_INPUT_TYPE', /`inputs` must be an array .* got "abc"/],
      [{ inputs: [] }, {}, 400, 'ERR_EMPTY_INPUTS', /empty/],
      [{ inputs: [[1, 2, 3, 4], [1, 2, 3]] }, {}, 400, 'ERR_ROW_LENGTH', /^inputs\[1\] has 3 values but the model takes 4 per row \(input shape \[4\]\)$/],
      [{ inputs: [1, 2, 3] }, {}, 400, 'ERR_ROW_LENGTH', /^`inputs` has 3 values but the model takes 4 per row/],
      [{ inputs: [1, 2, 3, 4, 5, 6, 7, 8] }, {}, 400, 'ERR_ROW_LENGTH', /has 8 values .*; send 2 rows as an array of arrays/],
      [{ inputs: [[[1, 2], [3, 4]]] }, {}, 400, 'ERR_INPUT_TYPE', /^inputs\[0\]\[0\] is an array: each row must be a flat array of 4 numbers/],
      [{ inputs: [[1, 2, 3, 4], 5] }, {}, 400, 'ERR_INPUT_TYPE', /^inputs\[1\] is 5, not a row/],
      [{ inputs: [1, [2], 3, 4] }, {}, 400, 'ERR_INPUT_TYPE', /^inputs\[1\] is an array, not a number/],
      ['{"inputs": [[1, 2, 1e999, 4]]}', { raw: true }, 400, 'ERR_NON_FINITE', /^inputs\[0\]\[2\] is Infinity: inputs must be finite numbers$/],
      ['{"inputs": [1, -1e999, 3, 4]}', { raw: true }, 400, 'ERR_NON_FINITE', /^inputs\[1\] is -Infinity/],
      [{ inputs: [[1, 2, 3, 4], [1, 2, 3, 1e39]] }, {}, 400, 'ERR_NON_FINITE', /^inputs\[1\]\[3\] is 1e\+39, outside the float32 range/],
      [{ inputs: [[1, '2', 3, 4]] }, {}, 400, 'ERR_INPUT_TYPE', /^inputs\[0\]\[1\] is string "2", not a number$/],
      [{ inputs: [[1, 2, null, 4]] }, {}, 400, 'ERR_INPUT_TYPE', /^inputs\[0\]\[2\] is null, not a number$/],
      [{ inputs: [[1, 2, 3, true]] }, {}, 400, 'ERR_INPUT_TYPE', /^inputs\[0\]\[3\] is boolean true/],
      [{ inputs: rows(9) }, {}, 400, 'ERR_TOO_MANY_ROWS', /`inputs` has 9 rows, over this server's limit of 8 per request \(maxBatchRows\)/],
      [{ inputs: rows(4).map((r) => r.map((v) => v + 1e-7)), pad: 'x'.repeat(3000) }, {}, 413, 'ERR_BODY_TOO_LARGE', /over this server's limit of 2048 bytes \(maxBodyBytes\)/],
      [new Uint8Array(4096), { type: 'image/png' }, 413, 'ERR_BODY_TOO_LARGE', /2048 bytes/],
      [{ inputs: [1, 2, 3, 4], top: 0 }, {}, 400, 'ERR_BAD_PARAMETER', /`top` must be an integer >= 1, got 0/],
      [{ inputs: [1, 2, 3, 4], top: '2' }, {}, 400, 'ERR_BAD_PARAMETER', /`top` must be an integer >= 1, got "2"/],
      [{ inputs: [1, 2, 3, 4], top: 1.5 }, {}, 400, 'ERR_BAD_PARAMETER', /got 1\.5/],
      [{ inputs: [1, 2, 3, 4], outputs: 'yes' }, {}, 400, 'ERR_BAD_PARAMETER', /`outputs` must be true or false, got "yes"/],
      [{ inputs: [1, 2, 3, 4] }, { query: '?top=abc' }, 400, 'ERR_BAD_PARAMETER', /query parameter `top` must be an integer >= 1, got "abc"/],
      [{ inputs: [1, 2, 3, 4] }, { query: '?top=1&top=2' }, 400, 'ERR_BAD_PARAMETER', /`top` is given more than once/],
      [{ inputs: [1, 2, 3, 4] }, { query: '?outputs=maybe' }, 400, 'ERR_BAD_PARAMETER', /`outputs` must be true or false/],
      [{ inputs: [1, 2, 3, 4] }, { query: '?k=3' }, 400, 'ERR_BAD_PARAMETER', /unknown query parameter `k`/],
      ['1,2,3,4', { raw: true, type: 'text/plain' }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', /text\/plain/],
      ['1,2,3,4', { raw: true, type: 'application/x-www-form-urlencoded' }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', /application\/json/],
      [Uint8Array.of(137, 80, 78, 71), { type: 'image/png' }, 415, 'ERR_NO_IMAGE_DECODER', /started without decodeImage/],
    ]
    const codes = new Map<string, number>()
    for (const [body, opts, status, code, message] of cases) {
      const answer = await post(server, body, opts)
      const where = `${JSON.stringify(body).slice(0, 60)} ${JSON.stringify(opts)}`
      expect({ where, status: answer.status, code: answer.body?.error?.code }).toEqual({ where, status, code })
      expect(answer.body.error.message, where).toMatch(message)
      expect(Object.keys(answer.body)).toEqual(['error'])
      codes.set(code, (codes.get(code) ?? 0) + 1)
    }
    const wrongMethod = await fetch(`${server.url}/predict`)
    expect(wrongMethod.status).toBe(404)
    expect((await wrongMethod.json()).error).toEqual({ code: 'ERR_NOT_FOUND', message: expect.stringMatching(/^no route GET \/predict \(routes: POST \/predict/) })

    // Still serving, nothing counted as a 500, every error code counted.
    expect((await post(server, { inputs: [1, 2, 3, 4] })).status).toBe(200)
    const m = await metrics(server)
    for (const [code, n] of codes) expect(m.get(`ferronet_http_errors_total{code="${code}",route="/predict"}`), code).toBe(n)
    expect(m.get('ferronet_http_errors_total{code="ERR_NOT_FOUND",route="/predict"}')).toBeUndefined()
    expect(m.get('ferronet_http_errors_total{code="ERR_NOT_FOUND",route="unmatched"}')).toBe(1)
    const byStatus = (s: number) => m.get(`ferronet_http_requests_total{method="POST",route="/predict",status="${s}"}`) ?? 0
    expect(byStatus(500)).toBe(0)
    expect(byStatus(400) + byStatus(413) + byStatus(415)).toBe(cases.length)
    expect(byStatus(200)).toBe(1)
    // Only the one good request reached the model.
    expect(m.get('ferronet_batch_rows_count')).toBe(1)
  })
})

describe('batching', () => {
  it('coalesces concurrent requests into one net.predict per batch and splits the answers back', async () => {
    const net = linearNet([0.1, 0.2, 0.3])
    const calls: number[] = []
    const counting = new Proxy(net, {
      get(target, key) {
        if (key === 'predict') return (x: Float32Array) => (calls.push(x.length / 4), target.predict(x))
        const v = Reflect.get(target, key, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    // The window is long: batches are cut only when 10 rows wait, so 40 one-row
    // requests must make exactly 4 calls of 10 rows, however the requests arrive.
    const server = await start({ load: () => counting, maxBatch: 10, batchWindowMs: 60_000 })
    calls.length = 0 // the load probe
    const data = rows(40, 4, 7)
    const want = expected(net, data)
    const answers = await Promise.all(data.map((row) => post(server, { inputs: [row], outputs: true })))
    answers.forEach((a, r) => {
      expect(a.status).toBe(200)
      expect(Float32Array.from(a.body.predictions[0].outputs)).toEqual(Float32Array.from(want[r]!))
    })
    expect(calls).toEqual([10, 10, 10, 10])
    const m = await metrics(server)
    expect(m.get('ferronet_batch_rows_count')).toBe(4)
    expect(m.get('ferronet_batch_rows_sum')).toBe(40)
    expect(m.get('ferronet_batch_rows_bucket{le="8"}')).toBe(0)
    expect(m.get('ferronet_batch_rows_bucket{le="16"}')).toBe(4)
    expect(m.get('ferronet_batch_requests_sum')).toBe(40)
  })

  it('with a short window, many concurrent multi-row requests all get their own rows back', async () => {
    const net = linearNet([1, -1, 0.5])
    const server = await start({ load: () => net, maxBatch: 64, batchWindowMs: 5 })
    const requests = Array.from({ length: 120 }, (_, i) => rows(1 + (i % 5), 4, 100 + i))
    const answers = await Promise.all(requests.map((data) => post(server, { inputs: data, outputs: true })))
    answers.forEach((a, i) => {
      expect(a.status).toBe(200)
      expect(a.body.predictions.map((p: any) => Array.from(Float32Array.from(p.outputs)))).toEqual(expected(net, requests[i]!).map((r) => Array.from(Float32Array.from(r))))
    })
    const m = await metrics(server)
    const total = requests.reduce((a, r) => a + r.length, 0)
    expect(m.get('ferronet_batch_rows_sum')).toBe(total)
    expect(m.get('ferronet_batch_requests_sum')).toBe(120)
    expect(m.get('ferronet_batch_rows_count')).toBeLessThanOrEqual(120)
    expect(m.get('ferronet_batch_rows_bucket{le="+Inf"}')).toBe(m.get('ferronet_batch_rows_count'))
    // No call is over maxBatch, as no single request is.
    expect(m.get('ferronet_batch_rows_bucket{le="64"}')).toBe(m.get('ferronet_batch_rows_count'))
  })

  it('Batcher: never mixes models in one call, runs an oversized job alone, rejects a failed batch', async () => {
    const a = linearNet([0, 0, 0])
    const b = linearNet([5, 0, 0])
    const calls: [string, number][] = []
    const model = (name: string, net: Net, fail = false) => ({
      inputDim: 4,
      outputDim: 3,
      predict: (x: Float32Array) => {
        calls.push([name, x.length / 4])
        if (fail) throw new Error(`${name} failed`)
        return net.predict(x)
      },
    })
    const ma = model('a', a)
    const mb = model('b', b)
    const batcher = new Batcher({ maxBatch: 4, batchWindowMs: 60_000 })
    const x = (n: number) => Float32Array.from(rows(n).flat())
    const jobs = [batcher.predict(ma, x(1)), batcher.predict(ma, x(1)), batcher.predict(mb, x(1)), batcher.predict(mb, x(1)), batcher.predict(mb, x(6)), batcher.predict(mb, x(1))]
    // 10 rows queued ≥ maxBatch: flushes run without waiting for the window.
    const [r0, r1, r2, , r4] = await Promise.all(jobs.slice(0, 5))
    expect(r0).toEqual(a.predict(x(1)))
    expect(r1).toEqual(a.predict(x(1)))
    expect(r2).toEqual(b.predict(x(1)))
    expect(r4).toEqual(b.predict(x(6)))
    expect(batcher.pendingRows).toBe(1)
    batcher.close()
    await expect(jobs[5]).rejects.toThrow(/closing/)
    expect(calls).toEqual([['a', 2], ['b', 2], ['b', 6]])

    // drain(): queued jobs run now, not after the (here: day-long) window.
    const slow = new Batcher({ maxBatch: 8, batchWindowMs: 1e8 })
    const waiting = [slow.predict(ma, x(1)), slow.predict(mb, x(2))]
    await sleep(20)
    expect(slow.pendingRows).toBe(3)
    slow.drain()
    expect(await Promise.all(waiting)).toEqual([a.predict(x(1)), b.predict(x(2))])
    expect(await slow.predict(ma, x(3))).toEqual(a.predict(x(3)))
    slow.close()

    const failing = new Batcher({ maxBatch: 8, batchWindowMs: 0 })
    const bad = model('bad', a, true)
    const results = await Promise.allSettled([failing.predict(bad, x(2)), failing.predict(bad, x(3))])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(calls.slice(-1)).toEqual([['bad', 5]])
  })
})

describe('GET /health, /model, /metrics', () => {
  it('describe the model and count requests, latencies, rows and predicted classes in their own registry', async () => {
    const net = linearNet()
    const server = await start({ load: () => net, classNames: ['a', 'b', 'c'] })
    const health = await (await fetch(`${server.url}/health`)).json()
    expect(health).toMatchObject({ status: 'ok', modelVersion: 1 })
    const info = await (await fetch(`${server.url}/model`)).json()
    expect(info).toMatchObject({
      version: 1, task: 'classification', outputKind: 'logits', inputShape: [4], outputShape: [3], inputDim: 4, outputDim: 3,
      parameterCount: 15, classNames: ['a', 'b', 'c'], spec: JSON.parse(JSON.stringify(net.spec)),
    })
    expect(Date.parse(info.loadedAt)).not.toBeNaN()
    expect(server.model.version).toBe(1)
    expect(server.net).toBe(net)

    // Fresh server: every class is at 0 before anything is predicted.
    let m = await metrics(server)
    expect(['a', 'b', 'c'].map((c) => m.get(`ferronet_predicted_class_total{class="${c}"}`))).toEqual([0, 0, 0])
    expect(m.get('ferronet_model_version')).toBe(1)

    const batches = [rows(3, 4, 1), rows(5, 4, 2), rows(1, 4, 3)]
    for (const data of batches) expect((await post(server, { inputs: data })).status).toBe(200)
    const all = batches.flat()
    const classes = Array.from(net.predictClasses(Float32Array.from(all.flat())))
    m = await metrics(server)
    expect(['a', 'b', 'c'].map((c, i) => m.get(`ferronet_predicted_class_total{class="${c}"}`))).toEqual([0, 1, 2].map((i) => classes.filter((c) => c === i).length))
    expect(m.get('ferronet_http_requests_total{method="POST",route="/predict",status="200"}')).toBe(3)
    expect(m.get('ferronet_http_requests_total{method="GET",route="/health",status="200"}')).toBe(1)
    expect(m.get('ferronet_http_requests_total{method="GET",route="/model",status="200"}')).toBe(1)
    expect(m.get('ferronet_http_request_duration_seconds_count{method="POST",route="/predict"}')).toBe(3)
    expect(m.get('ferronet_http_request_duration_seconds_sum{method="POST",route="/predict"}')).toBeGreaterThan(0)
    expect(m.get('ferronet_batch_rows_sum')).toBe(9)
    expect(m.get('ferronet_batch_rows_count')).toBe(3)
    expect(m.get('ferronet_predict_duration_seconds_count')).toBe(3)
    expect(m.get('ferronet_queue_rows')).toBe(0)
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0)
    // The previous scrape is counted; this one is counted once its response has gone out.
    expect(m.get('ferronet_http_requests_total{method="GET",route="/metrics",status="200"}')).toBe(1)

    // Unnamed classes are counted by index; nothing lands in prom-client's global registry.
    const other = await start({ load: () => net })
    await post(other, { inputs: [[0, 5, 0, 0]] })
    expect((await metrics(other)).get('ferronet_predicted_class_total{class="1"}')).toBe(1)
    expect(await globalRegistry.metrics()).not.toMatch(/ferronet_/)
    expect(await server.registry.metrics()).toMatch(/ferronet_batch_rows_count 3/)
  })
})

describe('reload', () => {
  it('swaps the model while 200 requests are in flight: none fails, each answer matches its model version, later ones see the new model', async () => {
    const oldNet = linearNet([0, 0, 0])
    const newNet = linearNet([10, 0, 0])
    let loads = 0
    const server = await start({
      load: async () => {
        loads++
        if (loads === 1) return oldNet
        await sleep(10) // a slow load: requests keep flowing meanwhile
        return newNet
      },
      maxBatch: 16,
      batchWindowMs: 1,
    })
    const data = rows(200, 4, 42)
    const answers: (Answer & { row: number })[] = []
    const failures: unknown[] = []
    let next = 0
    let inFlight = 0
    let inFlightAtReload = -1
    let reloading: Promise<void> | undefined
    const worker = async () => {
      while (next < data.length) {
        const row = next++
        inFlight++
        try {
          const a = await post(server, { inputs: [data[row]], outputs: true })
          answers.push({ ...a, row })
          if (a.status !== 200) failures.push(a.body)
        } catch (error) {
          failures.push(error)
        } finally {
          inFlight--
        }
        if (answers.length === 50 && !reloading) {
          inFlightAtReload = inFlight
          reloading = server.reload()
        }
      }
    }
    await Promise.all(Array.from({ length: 20 }, worker))
    await reloading
    expect(failures).toEqual([])
    expect(answers).toHaveLength(200)
    expect(inFlightAtReload).toBeGreaterThan(0)
    const want = { 1: expected(oldNet, data), 2: expected(newNet, data) } as Record<number, number[][]>
    for (const a of answers) {
      const v = a.body.modelVersion as number
      expect([1, 2]).toContain(v)
      expect(Float32Array.from(a.body.predictions[0].outputs)).toEqual(Float32Array.from(want[v]![a.row]!))
    }
    // After the reload: the new model, everywhere.
    const after = await post(server, { inputs: data.slice(0, 3), outputs: true })
    expect(after.body.modelVersion).toBe(2)
    expect(after.body.predictions.map((p: any) => p.outputs)).toEqual(expected(newNet, data.slice(0, 3)))
    expect(after.body.predictions.map((p: any) => p.class)).toEqual([0, 0, 0])
    expect(server.model.version).toBe(2)
    expect(server.net).toBe(newNet)
    expect((await (await fetch(`${server.url}/model`)).json()).version).toBe(2)
    const m = await metrics(server)
    expect(m.get('ferronet_model_version')).toBe(2)
    expect(m.get('ferronet_model_reloads_total{result="ok"}')).toBe(1)
    expect(m.get('ferronet_http_requests_total{method="POST",route="/predict",status="200"}')).toBe(201)
  })

  it('a failing reload rejects with the loader\'s error and the old model keeps serving', async () => {
    const net = linearNet([0, 0, 0])
    let mode: 'ok' | 'throw' | 'junk' | 'names' | 'broken' = 'ok'
    const broken = new Proxy(linearNet([1, 1, 1]), {
      get(target, key) {
        if (key === 'predict') return () => new Float32Array(2) // wrong length
        const v = Reflect.get(target, key, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    const server = await start({
      load: async () => {
        switch (mode) {
          case 'throw': throw new Error('ENOENT: model.safetensors')
          case 'junk': return { weights: [] } as never
          case 'names': return { net: linearNet([2, 2, 2]), classNames: ['only', 'two'] }
          case 'broken': return broken
          default: return net
        }
      },
    })
    const check = async () => {
      const a = await post(server, { inputs: [[1, 2, 3, 4]], outputs: true })
      expect(a.status).toBe(200)
      expect(a.body.modelVersion).toBe(1)
      expect(a.body.predictions[0].outputs).toEqual(expected(net, [[1, 2, 3, 4]])[0])
    }
    await check()
    mode = 'throw'
    await expect(server.reload()).rejects.toThrow('ENOENT: model.safetensors')
    await check()
    mode = 'junk'
    await expect(server.reload()).rejects.toMatchObject({ code: 'ERR_LOAD', message: expect.stringMatching(/not a Net/) })
    mode = 'names'
    await expect(server.reload()).rejects.toThrow(/classNames.*has 2 names but the model has 3 outputs/)
    mode = 'broken'
    await expect(server.reload()).rejects.toThrow(/returned 2 outputs for one row/)
    await check()
    expect(server.model.version).toBe(1)
    const m = await metrics(server)
    expect(m.get('ferronet_model_reloads_total{result="error"}')).toBe(4)
    expect(m.get('ferronet_model_version')).toBe(1)
    // A good reload still works afterwards, and takes the loader's class names.
    mode = 'ok'
    await server.reload()
    expect(server.model.version).toBe(2)
  })

  it('reloadOnSighup reloads on SIGHUP and its remover uninstalls it', async () => {
    let bias = 0
    const server = await start({ load: () => linearNet([bias, 0, 0]) })
    const before = process.listenerCount('SIGHUP')
    const reloaded: number[] = []
    const errors: unknown[] = []
    let done: () => void = () => undefined
    const stop = reloadOnSighup(server, { onReload: (m) => (reloaded.push(m.version), done()), onError: (e) => (errors.push(e), done()) })
    expect(process.listenerCount('SIGHUP')).toBe(before + 1)
    bias = 7
    await new Promise<void>((resolve) => {
      done = resolve
      process.emit('SIGHUP', 'SIGHUP')
    })
    expect(reloaded).toEqual([2])
    expect(errors).toEqual([])
    expect((await post(server, { inputs: [0, 0, 0, 0], outputs: true })).body.predictions[0].outputs).toEqual([7, 0, 0])
    stop()
    expect(process.listenerCount('SIGHUP')).toBe(before)
  })
})

describe('createServer options and lifecycle', () => {
  it('rejects bad options naming the key, before loading anything', async () => {
    let loads = 0
    const load = () => (loads++, linearNet())
    const cases: [unknown, string][] = [
      [{ load, prot: 80 }, 'options.prot'],
      [{}, 'load'],
      [{ load: linearNet() }, 'load'],
      [{ load, port: -1 }, 'port'],
      [{ load, port: 70000 }, 'port'],
      [{ load, host: '' }, 'host'],
      [{ load, maxBodyBytes: 0 }, 'maxBodyBytes'],
      [{ load, maxBatchRows: 1.5 }, 'maxBatchRows'],
      [{ load, maxBatch: 0 }, 'maxBatch'],
      [{ load, batchWindowMs: -1 }, 'batchWindowMs'],
      [{ load, decodeImage: 'sharp' }, 'decodeImage'],
      [{ load, classNames: [] }, 'classNames'],
      [{ load, classNames: ['a', 'a', 'b'] }, 'classNames[1]'],
      [{ load, classNames: ['a', 3, 'b'] }, 'classNames[1]'],
      [{ load, task: 'ranking' }, 'task'],
      [{ load, logger: 'info' }, 'logger'],
      [null, 'options'],
    ]
    for (const [options, field] of cases) {
      const error = await createServer(options as ServeOptions).then(() => undefined, (e: unknown) => e)
      expect(error, field).toBeInstanceOf(OptionError)
      expect((error as OptionError).field).toBe(field)
    }
    expect(loads).toBe(0)
    // Options checked against the loaded model reject too, and nothing listens.
    await expect(createServer({ load, port: 0, classNames: ['a', 'b'] })).rejects.toThrow(/classNames.*has 2 names but the model has 3 outputs \(output shape \[3\]\)/)
    await expect(createServer({ load: () => Net.sequential(4, [Net.dense(1)]), port: 0, task: 'classification' })).rejects.toThrow(/a classifier needs one output per class/)
    await expect(createServer({ load: () => Promise.reject(new Error('no such file')), port: 0 })).rejects.toThrow('no such file')
  })

  it('close() answers the requests already admitted without waiting out the batch window', { timeout: 30_000 }, async () => {
    const net = linearNet([0, 1, 2])
    const server = await start({ load: () => net, maxBatch: 100, batchWindowMs: 60_000 })
    const data = rows(3)
    const answers = data.map((row) => post(server, { inputs: [row], outputs: true }))
    while ((await server.registry.getSingleMetric('ferronet_queue_rows')!.get()).values[0]!.value < 3) await sleep(5)
    await server.close()
    const got = await Promise.all(answers)
    expect(got.map((a) => a.status)).toEqual([200, 200, 200])
    expect(got.map((a) => a.body.predictions[0].outputs)).toEqual(expected(net, data))
  })

  it('reports a busy port, closes idempotently, refuses reloads after close', async () => {
    const net = linearNet()
    const server = await start({ load: () => net })
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const port = Number(new URL(server.url).port)
    await expect(createServer({ load: () => net, port })).rejects.toMatchObject({ code: 'EADDRINUSE' })
    await Promise.all([server.close(), server.close()])
    await expect(server.reload()).rejects.toMatchObject({ code: 'ERR_CLOSED' })
    await expect(fetch(`${server.url}/health`)).rejects.toThrow()
  })
})
