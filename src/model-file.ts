/**
 * Model-file plumbing shared by `Net` and `Trainer`: the addon's file errors with
 * the path the caller gave, and the metadata keys ferronet owns.
 */

import { FerronetError, ModelFileError } from './errors.js'
import { awaitNative } from './native.js'

export { isReservedKey } from './validate.js'

/** Awaits a file operation of the addon; its errors name `path` as the caller spelled it. */
export async function onFile<T>(path: string, run: () => Promise<T>): Promise<T> {
  try {
    return await awaitNative(run())
  } catch (error) {
    if (error instanceof ModelFileError && error.path !== path) {
      throw new ModelFileError(path, error.message, { cause: error.cause })
    }
    throw error
  }
}

/** Rethrows a problem found after the file was read (its spec, its options) as a file error. */
export function asFileError(path: string, what: string, error: unknown): ModelFileError {
  const message = error instanceof Error ? error.message : String(error)
  return new ModelFileError(path, `${path}: ${what}: ${message}`, { cause: error instanceof FerronetError ? error : undefined })
}
