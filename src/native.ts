/**
 * The private bridge to the Rust addon: loads the napi-rs generated loader and
 * turns the addon's coded error messages (`CODE: text`) into typed errors.
 * Nothing outside `src/` should import this module.
 */

import { createRequire } from 'node:module'
import { isMainThread } from 'node:worker_threads'
import { AbortError, FerronetError, InvalidInputError, ModelFileError, NativeError, OptionError, ShapeError } from './errors.js'

export type * from '../native/binding.cjs'
import type * as Binding from '../native/binding.cjs'

const require = createRequire(import.meta.url)

/** glibc or musl on Linux (what decides which Linux package fits), else undefined. */
function linuxLibc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
  return header?.glibcVersionRuntime ? 'glibc' : 'musl'
}

/** The platform package this machine needs, as napi-rs names them. */
export function platformPackage(): string {
  const libc = linuxLibc()
  const abi = libc === 'glibc' ? '-gnu' : libc === 'musl' ? '-musl' : process.platform === 'win32' ? '-msvc' : ''
  return `ferronet-${process.platform}-${process.arch}${abi}`
}

function loadBinding(): typeof Binding {
  // FERRONET_NATIVE_PATH: a .node file to load instead of the platform package (a
  // build of your own, or one copied beside an app); napi-rs's loader takes it as
  // NAPI_RS_NATIVE_LIBRARY_PATH.
  const override = process.env.FERRONET_NATIVE_PATH
  if (override) process.env.NAPI_RS_NATIVE_LIBRARY_PATH = override
  try {
    return require('../native/binding.cjs') as typeof Binding
  } catch (error) {
    const libc = linuxLibc()
    const pkg = platformPackage()
    let version = ''
    try {
      version = (require('../package.json') as { version: string }).version
    } catch {
      // Only for the message.
    }
    const where = `${process.platform} ${process.arch}${libc ? ` (${libc})` : ''}, Node ${process.versions.node}`
    const fix = override
      ? `FERRONET_NATIVE_PATH is set to ${JSON.stringify(override)}: check that it is a ferronet .node file built for ${process.platform}-${process.arch}`
      : `ferronet needs its platform package ${pkg}, which is not installed (an install with --omit=optional or --no-optional, a lockfile made on another platform, or a platform without a prebuilt binary). Fix: npm install --include=optional ${pkg}${version ? `@${version}` : ''}  — or set FERRONET_NATIVE_PATH to a ferronet .node file`
    throw new FerronetError('ERR_NATIVE_LOAD', `could not load ferronet's native addon on ${where}. ${fix}. Cause: ${(error as Error).message.split('\n')[0]}`, { cause: error })
  }
}

/** The addon's exports. */
export const native: typeof Binding = loadBinding()

// process.exit(), or an uncaught exception, during a fit: stop every run before its
// next batch. (Fits run on threads of their own, which an exit does not wait for; a
// worker's teardown stops its own runs through a clean-up hook in the addon.) Main
// thread only: the flag is process-wide, and a worker's exit must not stop the main
// thread's training.
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
    case 'ERR_INVALID_INPUT': {
      // "<node> (<op>): input value <v> of sample <s>, position <p> <reason>"
      const m = /^(\S+) \([^)]*\): input value (\S+) of sample (\d+), position (\d+)/.exec(message)
      return new InvalidInputError(m?.[1] ?? '', Number(m?.[3] ?? -1), Number(m?.[4] ?? -1), Number(m?.[2] ?? NaN), message, { cause: error })
    }
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
