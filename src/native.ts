/**
 * The private bridge to the Rust addon: loads the napi-rs generated loader and
 * turns the addon's coded error messages (`CODE: text`) into typed errors.
 * Nothing outside `src/` should import this module.
 */

import { createRequire } from 'node:module'
import { isMainThread } from 'node:worker_threads'
import { AbortError, FerronetError, ModelFileError, NativeError, OptionError, ShapeError } from './errors.js'

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

// process.exit(), or an uncaught exception, during a fit: Node waits for the thread
// running it before the process ends. Stopping every run before its next batch makes
// the exit take a batch instead of the rest of the fit. (Main thread only: the flag is
// process-wide, and a worker's exit must not stop the main thread's training.)
if (isMainThread) process.once('exit', () => native.stopAllTraining())

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
    case 'ERR_MODEL_FILE':
      // The core's file errors start with the path: "<path>: <problem>".
      return new ModelFileError(message.split(': ')[0] ?? '', message, { cause: error })
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
