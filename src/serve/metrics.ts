/**
 * Prometheus metrics of the prediction server, in a `prom-client` Registry of its own
 * (never the global one, so two servers in one process, or an application's own
 * metrics, do not collide).
 *
 * @module serve/metrics
 */

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Seconds buckets of the request latency histogram (0.5 ms … 10 s). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Powers of two from 1 up to the first one ≥ `max`. */
function sizeBuckets(max: number): number[] {
  const buckets = [1]
  while (buckets[buckets.length - 1]! < max) buckets.push(buckets[buckets.length - 1]! * 2)
  return buckets
}

/**
 * The server's metrics. Names (all prefixed `ferronet_`):
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `ferronet_http_requests_total` | counter | `method`, `route`, `status` |
 * | `ferronet_http_errors_total` | counter | `route`, `code` (the JSON error code) |
 * | `ferronet_http_request_duration_seconds` | histogram | `method`, `route` |
 * | `ferronet_batch_rows` | histogram: rows per native predict call | |
 * | `ferronet_batch_requests` | histogram: requests coalesced per call | |
 * | `ferronet_predict_duration_seconds` | histogram: native predict time per call | |
 * | `ferronet_predicted_class_total` | counter: rows by predicted class | `class` (name or index) |
 * | `ferronet_queue_rows` | gauge: rows waiting for a batch | |
 * | `ferronet_model_version` | gauge: the serving model's version (1, 2, … per load) | |
 * | `ferronet_model_loaded_timestamp_seconds` | gauge | |
 * | `ferronet_model_reloads_total` | counter | `result` (`ok` or `error`) |
 *
 * plus prom-client's default process metrics (`process_resident_memory_bytes`,
 * `nodejs_eventloop_lag_seconds`, …). The route label is the route pattern
 * (`/predict`), or `unmatched` for unknown paths, so it cannot grow without bound.
 */
export class ServeMetrics {
  /** The registry holding every metric of this server. */
  readonly registry = new Registry()
  readonly requests: Counter<'method' | 'route' | 'status'>
  readonly errors: Counter<'route' | 'code'>
  readonly latency: Histogram<'method' | 'route'>
  readonly batchRows: Histogram
  readonly batchRequests: Histogram
  readonly predictSeconds: Histogram
  readonly classes: Counter<'class'>
  readonly modelVersion: Gauge
  readonly modelLoaded: Gauge
  readonly reloads: Counter<'result'>

  constructor(options: { maxBatch: number; maxBatchRows: number; queueRows: () => number }) {
    const registers = [this.registry]
    this.requests = new Counter({ name: 'ferronet_http_requests_total', help: 'HTTP requests by method, route and status code', labelNames: ['method', 'route', 'status'], registers })
    this.errors = new Counter({ name: 'ferronet_http_errors_total', help: 'Error responses by route and error code', labelNames: ['route', 'code'], registers })
    this.latency = new Histogram({ name: 'ferronet_http_request_duration_seconds', help: 'Time from request start to response end', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers })
    const sizes = sizeBuckets(Math.max(options.maxBatch, options.maxBatchRows))
    this.batchRows = new Histogram({ name: 'ferronet_batch_rows', help: 'Rows per native predict call', buckets: sizes, registers })
    this.batchRequests = new Histogram({ name: 'ferronet_batch_requests', help: 'Requests coalesced into one native predict call', buckets: sizes, registers })
    this.predictSeconds = new Histogram({ name: 'ferronet_predict_duration_seconds', help: 'Wall time of one native predict call', buckets: LATENCY_BUCKETS, registers })
    this.classes = new Counter({ name: 'ferronet_predicted_class_total', help: 'Predicted rows by class (argmax), classification models only', labelNames: ['class'], registers })
    this.modelVersion = new Gauge({ name: 'ferronet_model_version', help: 'Version of the serving model: 1 at start, +1 per successful reload', registers })
    this.modelLoaded = new Gauge({ name: 'ferronet_model_loaded_timestamp_seconds', help: 'Unix time the serving model was loaded', registers })
    this.reloads = new Counter({ name: 'ferronet_model_reloads_total', help: 'Model reloads by result', labelNames: ['result'], registers })
    const queueRows = options.queueRows
    new Gauge({ name: 'ferronet_queue_rows', help: 'Rows waiting for a native predict call', registers, collect() { this.set(queueRows()) } })
    collectDefaultMetrics({ register: this.registry })
  }

  /** Text exposition of every metric, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
