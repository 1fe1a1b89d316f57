/**
 * The public entry to the prediction server. `fastify` and `prom-client` are
 * optional dependencies, so `./serve.js` (which imports them) is loaded on the first
 * `createServer`, with an install hint if they are missing; importing ferronet never
 * needs them.
 */

import { FerronetError, OptionError } from './errors.js'
import { describe } from './validate.js'
import type { PredictionServer, ServeOptions, SighupOptions } from './serve.js'

type ServeModule = typeof import('./serve.js')
let loaded: ServeModule | undefined

async function load(): Promise<ServeModule> {
  if (loaded) return loaded
  try {
    loaded = await import('./serve.js')
  } catch (error) {
    throw new FerronetError(
      'ERR_MISSING_DEPENDENCY',
      'the prediction server needs the npm packages `fastify` and `prom-client`, optional dependencies of ferronet that are not installed here: run `npm install fastify prom-client`',
      { cause: error },
    )
  }
  return loaded
}

/**
 * An HTTP prediction server for a network: `POST /predict` (JSON rows or an image
 * body), `GET /health`, `GET /model`, `GET /metrics` (Prometheus), with requests
 * batched into one native call, limits, and reloads that drop no request. See
 * docs/serve.md.
 *
 * ```ts
 * import { Net, createServer, imageInput } from 'ferronet'
 * const server = await createServer({ load: () => Net.load('digits.safetensors'), port: 8080, decodeImage: imageInput })
 * console.log(server.url) // http://127.0.0.1:8080
 * ```
 */
export async function createServer(options: ServeOptions): Promise<PredictionServer> {
  return (await load()).createServer(options)
}

/** Reloads `server`'s model on SIGHUP; returns a function that removes the handler. */
export function reloadOnSighup(server: PredictionServer, options?: SighupOptions): () => void {
  if (typeof server !== 'object' || server === null || typeof (server as { reload?: unknown }).reload !== 'function') {
    throw new OptionError('server', `must be a server made by createServer, got ${describe(server)}`)
  }
  if (!loaded) throw new FerronetError('ERR_INVALID_STATE', 'reloadOnSighup needs a server made by createServer')
  return loaded.reloadOnSighup(server, options)
}
