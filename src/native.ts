/**
 * The private bridge to the Rust addon: loads the napi-rs generated loader and
 * turns the addon's coded error messages (`CODE: text`) into typed errors.
 * Nothing outside `src/` should import this module.
 */

import { createRequire } from 'node:module'
import { AbortError, FerronetError, NativeError, OptionError, ShapeError } from './errors.js'

export type * from '../native/binding.cjs'
import type * as Binding from '../native/binding.cjs'

const require = createRequire(import.meta.url)

function loadBinding(): typeof Binding {
  try {
    return require('../native/binding.cjs') as typeof Binding
  } catch (error) {
    throw new FerronetError(
      'ERR_NATIVE_LOAD',
      `could not load ferronet's native addon for ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}). Reinstall without --omit=optional / --no-optional so that ` +
        `the platform package (e.g. ferronet-${process.platform}-${process.arch}-gnu) is installed, ` +
        `or set NAPI_RS_NATIVE_LIBRARY_PATH to a ferronet .node file. Cause: ${(error as Error).message}`,
      { cause: error },
    )
  }
}

/** The addon's exports. */
export const native: typeof Binding = loadBinding()

const CODED = /^([A-Z][A-Z_]+): ([\s\S]*)$/

/** Maps an error thrown by the addon to ferronet's typed errors; other errors pass through. */
export function fromNative(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof FerronetError) return error
  const match = CODED.exec(error.message)
  if (!match) return error
  const [, code, message] = match as unknown as [string, string, string]
  switch (code) {
    case 'ERR_INVALID_OPTION': {
      const field = /`([^`]+)`/.exec(message)?.[1] ?? 'options'
      const err = new OptionError(field, message.replace(/^invalid option `[^`]+`: /, ''))
      return Object.assign(err, { cause: error })
    }
    case 'ERR_SHAPE':
      return new ShapeError(message, undefined, { cause: error })
    case 'ERR_GRAPH':
      // The core's graph errors start with the node's name: "conv2 (Conv2d) ...".
      return new ShapeError(message, /^(\S+) \(/.exec(message)?.[1], { cause: error, code: 'ERR_GRAPH' })
    case 'ABORT_ERR': {
      const steps = /after (\d+) steps/.exec(message)?.[1]
      return new AbortError(message, steps === undefined ? undefined : Number(steps))
    }
    default:
      return new NativeError(code, message, { cause: error })
  }
}

/** Calls `fn`, rethrowing addon errors as typed errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn()
  } catch (error) {
    throw fromNative(error)
  }
}

/** Awaits an addon promise, rejecting with typed errors. */
export async function awaitNative<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (error) {
    throw fromNative(error)
  }
}

/** A spec of one Linear node on `[1]` inputs: the cheapest model to probe the addon with. */
const PROBE_SPEC = (op = 'Linear', config: unknown = { outFeatures: 1 }) =>
  JSON.stringify({ format: 'ferronet-graph', version: 1, inputs: [{ name: 'input', shape: [1] }], nodes: [{ name: 'probe', op, inputs: ['input'], config }], outputs: ['probe'] })

let knownOps: readonly string[] | undefined

/** The ops the loaded addon compiles, read from its unknown-op error (cached). */
export function nativeOps(): readonly string[] {
  if (knownOps) return knownOps
  try {
    native.NativeNet.fromSpec(PROBE_SPEC('__probe__', null), 0)
    knownOps = []
  } catch (error) {
    const list = /known ops: ([^\n]*)$/.exec((error as Error).message)?.[1]
    knownOps = Object.freeze(list ? list.split(',').map((s) => s.trim()).filter(Boolean) : [])
  }
  return knownOps
}

const support = new Map<string, boolean>()

/** Builds a trainer on a one-weight net with extra options; false when the addon rejects them. */
function probeTrainer(key: string, options: Record<string, unknown>, rejects: (message: string) => boolean): boolean {
  const cached = support.get(key)
  if (cached !== undefined) return cached
  let ok = true
  try {
    const net = native.NativeNet.fromSpec(PROBE_SPEC(), 0)
    new native.NativeTrainer(net, { optimizer: { kind: 'sgd' }, seed: 0, threads: 1, ...options } as Binding.NativeTrainerOptions)
  } catch (error) {
    ok = !rejects((error as Error).message)
  }
  support.set(key, ok)
  return ok
}

/**
 * Whether the loaded addon knows a feature that arrives with newer bindings:
 * `optimizer:<kind>`, `loss:<kind>`, or a trainer option (`schedule`, `clipNorm`).
 * A trainer option is probed with a value of the wrong type: an addon that has the
 * field refuses it, one that does not would silently ignore the option.
 */
export function nativeSupports(feature: string): boolean {
  const [what, kind] = feature.split(':') as [string, string | undefined]
  if (what === 'optimizer' && kind) return probeTrainer(feature, { optimizer: { kind } }, (m) => /unknown optimizer/.test(m))
  if (what === 'loss' && kind) return probeTrainer(feature, { loss: { kind } }, (m) => /unknown loss/.test(m))
  return !probeTrainer(feature, { [what]: '__probe__' }, () => true)
}
