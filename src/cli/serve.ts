/** `ferronet serve`: an HTTP prediction server for a model file, reloaded on SIGHUP. */

import { imageInput } from '../image.js'
import { Net } from '../net.js'
import { createServer, reloadOnSighup } from '../serving.js'
import { classNamesOf, numberFlag, preprocessOf } from './common.js'

export interface ServeArgs {
  model: string
  port?: string
  host?: string
  maxBatch?: string
  batchWindowMs?: string
  maxBodyBytes?: string
  preprocess?: string
  quiet?: boolean
}

/** Resolves when the server has closed (SIGINT/SIGTERM). */
export async function serveCommand(args: ServeArgs, log: (line: string) => void): Promise<void> {
  // Flags first: a bad value is reported before the model file is read.
  const port = numberFlag('--port', args.port, 8080, true, 0, 65535)
  const maxBatch = numberFlag('--max-batch', args.maxBatch, 256, true, 1)
  const batchWindowMs = numberFlag('--batch-window-ms', args.batchWindowMs, 0, false, 0, 1000)
  const maxBodyBytes = numberFlag('--max-body-bytes', args.maxBodyBytes, 4 << 20, true, 1024)
  const load = async () => {
    const net = await Net.load(args.model)
    const classNames = classNamesOf(net)
    return classNames ? { net, classNames } : { net }
  }
  const first = await load()
  let preprocess = preprocessOf(first.net, args.preprocess)
  let served: Awaited<ReturnType<typeof load>> | undefined = first
  const server = await createServer({
    // The first load was done above (its errors exit before the port opens); reloads read the file again.
    load: async () => {
      const m = served ?? (await load())
      served = undefined
      preprocess = preprocessOf(m.net, args.preprocess)
      return m
    },
    port,
    host: args.host ?? '127.0.0.1',
    maxBatch,
    batchWindowMs,
    maxBodyBytes,
    decodeImage: (bytes, shape) => imageInput(bytes, shape, preprocess ? { preprocess, name: 'request body' } : { name: 'request body' }),
    logger: args.quiet ? false : { level: 'info' },
  })
  const off = reloadOnSighup(server, {
    onReload: (m) => log(`reloaded ${args.model}: model version ${m.version}`),
    onError: (e) => log(`reload of ${args.model} failed, still serving the previous model: ${(e as Error).message}`),
  })
  log(`serving ${args.model} at ${server.url} (POST /predict, GET /health, /model, /metrics; SIGHUP reloads the file)`)
  await new Promise<void>((resolve) => {
    const stop = () => {
      off()
      process.removeListener('SIGINT', stop)
      process.removeListener('SIGTERM', stop)
      server.close().then(resolve, resolve)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}
