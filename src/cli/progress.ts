/**
 * The live view of `ferronet train` on a terminal: a progress bar per epoch drawn by
 * `cli-progress` (an optional dependency, loaded only here and only when needed) with
 * the epoch, batch/batches, samples/s, ETA and the running loss and metric. Without
 * `cli-progress` it falls back to one status line rewritten with carriage returns.
 */

import { createRequire } from 'node:module'
import type { Progress } from '../trainer.js'

/** The part of cli-progress this view uses. */
export interface BarModule {
  SingleBar: new (options: Record<string, unknown>) => {
    start(total: number, start: number, payload?: Record<string, unknown>): void
    update(value: number, payload?: Record<string, unknown>): void
    stop(): void
  }
}

/** cli-progress, or undefined when it is not installed (or fails to load). */
export function loadCliProgress(): BarModule | undefined {
  try {
    const mod = createRequire(import.meta.url)('cli-progress') as Partial<BarModule>
    return typeof mod.SingleBar === 'function' ? (mod as BarModule) : undefined
  } catch {
    return undefined
  }
}

/** What `ferronet train` draws between its epoch lines. */
export interface LiveView {
  /** Which kind of view this is. */
  readonly kind: 'bar' | 'line'
  /** A progress report: starts the epoch's bar on its first report, ends it on the epoch's last. */
  update(p: Progress): void
  /** Removes the bar or status line (before printing a line, or on abort). */
  clear(): void
}

type Stream = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean; columns?: number }

const metricOf = (p: Progress): string =>
  p.accuracy !== undefined ? `acc ${p.accuracy.toFixed(4)}` : p.mse !== undefined ? `mse ${p.mse.toFixed(4)}` : ''

/** A view on `stream` (a terminal), through `load()`'s cli-progress if it has one. */
export function liveView(stream: Stream, load: () => BarModule | undefined = loadCliProgress): LiveView {
  const bars = load()
  return bars ? barView(stream, bars) : lineView(stream)
}

function barView(stream: Stream, bars: BarModule): LiveView {
  let bar: InstanceType<BarModule['SingleBar']> | undefined
  let epoch: number | undefined
  const payload = (p: Progress) => ({
    epoch: String(p.epoch).padStart(String(p.lastEpoch).length),
    epochs: p.lastEpoch,
    speed: Math.round(p.samplesPerSecond),
    loss: p.loss.toFixed(4),
    metric: metricOf(p),
  })
  const clear = () => {
    bar?.stop()
    bar = undefined
    epoch = undefined
  }
  return {
    kind: 'bar',
    update(p) {
      if (epoch !== p.epoch) {
        clear()
        bar = new bars.SingleBar({
          stream,
          format: 'epoch {epoch}/{epochs} [{bar}] {value}/{total} | {speed} samples/s | ETA {eta_formatted} | loss {loss} {metric}',
          barsize: 24,
          clearOnComplete: true,
          hideCursor: false,
          etaBuffer: 20,
          fps: 10,
        })
        bar.start(p.batches, 0, payload(p))
        epoch = p.epoch
      }
      bar!.update(p.batch, payload(p))
      if (p.epochEnd) clear()
    },
    clear,
  }
}

function lineView(stream: Stream): LiveView {
  let shown = false
  return {
    kind: 'line',
    update(p) {
      if (p.epochEnd) return this.clear()
      stream.write(`\repoch ${p.epoch}/${p.lastEpoch}  ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}  ${metricOf(p)}  ${Math.round(p.samplesPerSecond)} samples/s\x1b[K`)
      shown = true
    },
    clear() {
      if (shown) stream.write('\r\x1b[K')
      shown = false
    },
  }
}
