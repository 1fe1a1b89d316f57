// Helpers shared by the benchmark children (bench/*.mjs) and the orchestrator (bench/run.mjs).
// Children talk to the orchestrator through stdout only: one JSON object per line, each
// with a `kind` field ('meta', 'train', 'infer', 'gemm', 'peak', 'baseline', 'skip', 'error').
// Everything human-readable goes to stderr.

import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { join } from 'node:path'

export const FASHION_DIR = '/usr/share/datasets/fashion-mnist'

/** The seed network and its training setup, shared by every framework child. */
export const SEED = Object.freeze({ input: 784, hidden: 500, classes: 10, batchSize: 64, lr: 1e-3 })

/** Writes one result line for the orchestrator. */
export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** Progress for humans (the orchestrator shows it with --verbose and on failure). */
export function log(...parts) {
  process.stderr.write(parts.join(' ') + '\n')
}

export function median(xs) {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Peak resident set size of this process so far, in KiB (getrusage ru_maxrss). */
export function maxRssKiB() {
  return process.resourceUsage().maxRSS
}

/** Current resident set size, in KiB. */
export function rssKiB() {
  return Math.round(process.memoryUsage().rss / 1024)
}

/** Runs `main`, turning a throw into an `error` line and a non-zero exit. */
export async function runChild(name, main) {
  try {
    await main()
  } catch (error) {
    emit({ kind: 'error', child: name, message: String(error?.stack ?? error) })
    process.exitCode = 1
  }
}

/** Parses `--key value` / `--flag` arguments into an object (numbers where they look like numbers). */
export function parseArgv(argv = process.argv.slice(2)) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`)
    const eq = a.indexOf('=')
    let key, value
    if (eq > 0) {
      key = a.slice(2, eq)
      value = a.slice(eq + 1)
    } else {
      key = a.slice(2)
      const next = argv[i + 1]
      if (next === undefined || next.startsWith('--')) value = true
      else value = argv[++i]
    }
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) value = Number(value)
    out[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value
  }
  return out
}

/**
 * Minimal IDX reader for the non-ferronet children (so the tfjs child does not load
 * ferronet's addon and its RSS is tfjs's own). Returns `{ images: Uint8Array, labels: Uint8Array, count }`.
 */
export function readFashion(dir, split) {
  const prefix = split === 'train' ? 'train' : 't10k'
  const read = (name) => {
    for (const file of [name, `${name}.gz`]) {
      let buf
      try {
        buf = readFileSync(join(dir, file))
      } catch {
        continue
      }
      return file.endsWith('.gz') ? gunzipSync(buf) : buf
    }
    throw new Error(`no ${name}[.gz] in ${dir}`)
  }
  const img = read(`${prefix}-images-idx3-ubyte`)
  const lab = read(`${prefix}-labels-idx1-ubyte`)
  const count = img.readUInt32BE(4)
  const rows = img.readUInt32BE(8)
  const cols = img.readUInt32BE(12)
  if (img.readUInt32BE(0) !== 0x803 || lab.readUInt32BE(0) !== 0x801 || lab.readUInt32BE(4) !== count || rows * cols !== 784) {
    throw new Error(`${dir}: unexpected IDX headers`)
  }
  // Copy out of the decompressed buffers so they can be freed.
  const images = new Uint8Array(img.subarray(16, 16 + count * 784))
  const labels = new Uint8Array(lab.subarray(8, 8 + count))
  return { images, labels, count }
}

/**
 * FLOPs of one training epoch of 784→H→10 on `samples` samples, counting the
 * matrix products only: forward 2·B·784·H + 2·B·H·10, backward dW1 2·B·784·H,
 * dW2 2·B·H·10, dX2 2·B·H·10 (no dX1: the input needs no gradient). Bias, ReLU,
 * softmax/loss and the optimizer update are not counted.
 */
export function epochFlops(samples, { input = 784, hidden = 500, classes = 10 } = {}) {
  const perSample = 2 * input * hidden + 2 * hidden * classes + 2 * input * hidden + 2 * hidden * classes + 2 * hidden * classes
  return { perSample, total: perSample * samples }
}

/** Parameter count of 784→H→10 with biases. */
export function paramCount({ input = 784, hidden = 500, classes = 10 } = {}) {
  return input * hidden + hidden + hidden * classes + classes
}

/**
 * GEMM shapes benchmarked (m×k×n: C[m,n] = A[m,k]·B[k,n], 2·m·k·n FLOPs). The seed
 * network's products carry the transposes they have in ferronet's training step:
 * weights are stored [in, out] and activations [64, ·], so the forward products read
 * both operands as stored, the weight-gradient products read A transposed and the
 * hidden-layer gradient reads B transposed. OpenBLAS gets the same operand layouts.
 * Same list as SEED_NETWORK_SHAPES in src/bench.ts (ferronet bench).
 */
export const GEMM_SEED_SHAPES = Object.freeze([
  // As ferronet's training step runs them: weights are stored transposed, W1t [784, 500].
  { m: 64, k: 784, n: 500, transA: false, transB: false, role: 'fwd L1: X·W1t' },
  { m: 784, k: 64, n: 500, transA: true, transB: false, role: 'bwd L1: dW1t = Xᵀ·dH' },
  { m: 64, k: 500, n: 10, transA: false, transB: false, role: 'fwd L2: H·W2t' },
  { m: 500, k: 64, n: 10, transA: true, transB: false, role: 'bwd L2: dW2t = Hᵀ·dZ' },
  { m: 64, k: 10, n: 500, transA: false, transB: true, role: 'bwd L2: dH = dZ·W2tᵀ' },
])
export const GEMM_SQUARES = Object.freeze([256, 512, 1024, 2048])

export function gemmShapes({ quick = false } = {}) {
  const squares = (quick ? [256] : GEMM_SQUARES).map((s) => ({ m: s, k: s, n: s, transA: false, transB: false, role: `square ${s}` }))
  return [...GEMM_SEED_SHAPES, ...squares]
}

export const shapeKey = (s) => `${s.m}x${s.k}x${s.n}${s.transA ? ' Aᵀ' : ''}${s.transB ? ' Bᵀ' : ''}`
