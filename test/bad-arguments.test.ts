/**
 * Every public function's bad arguments, one table: each row calls one export of
 * `src/index.ts` with one bad argument and expects a typed ferronet error (sync throw
 * or rejection) whose `.field`, `.path`/`.file` or message names the argument.
 *
 * Shared memory: a `Float32Array` / `Uint8Array` over a `SharedArrayBuffer` is
 * ACCEPTED wherever a typed array is (the core reads it like any other typed array,
 * offset views included); the second table checks that it gives exactly the results
 * of an ordinary copy, and that a shared array of the wrong length fails like any other.
 * Like any input, it must not be written while a call that reads it runs.
 */

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  AbortError, Dataset, FerronetError, IdxFormatError, ImageError, MetricsLogError, ModelFileError, NativeError, Net, OptionError, ShapeError, Trainer,
  bench, callbacks, createServer, exportOnnx, gradCam, heatmapPng, imageInput, imageInputs, integratedGradients, mnist, mnistImage, models,
  parseMetricsLog, readMetricsLog, reloadOnSighup, renderReport, saliency, smoothGrad, toOnnx, writeFileAtomic, writeReport,
} from '../src/index.js'

type ErrorClass = abstract new (...args: never[]) => FerronetError
/** [what is called, the call, the error class expected, a regex the error's field or message must match (the argument's name)]. */
type Row = [string, () => unknown, ErrorClass, RegExp]

const dir = mkdtempSync(join(tmpdir(), 'ferronet-badargs-'))
const missing = join(dir, 'missing.safetensors')
const notAModel = join(dir, 'not-a-model.safetensors')
writeFileSync(notAModel, 'this is not a safetensors file')
const IMAGE = new URL('../examples/images/digit-7.png', import.meta.url).pathname
const shared = (n: number) => new Float32Array(new SharedArrayBuffer(n * 4))

// Fixtures, built in beforeAll; the rows only close over them.
let net: Net // 4 → 3
let conv: Net // [1, 4, 4] → conv → 2
let ds: Dataset // 2 samples of 4 features, 3 classes
let trainer: Trainer
let modelFile: string
const x4 = new Float32Array([0.1, 0.2, 0.3, 0.4])
const any = (v: unknown) => v as never

beforeAll(async () => {
  net = Net.sequential(4, [Net.dense(3)], { seed: 0 })
  conv = Net.sequential([1, 4, 4], [Net.conv2d(2, 3, { padding: 1 }), Net.relu(), Net.flatten(), Net.dense(2)], { seed: 0 })
  ds = Dataset.fromArrays({ inputs: new Float32Array(8).fill(0.5), labels: [0, 2], numClasses: 3 })
  trainer = new Trainer(net, { batchSize: 2 })
  modelFile = join(dir, 'net.safetensors')
  await net.save(modelFile)
})

const rows: Row[] = [
  // Net.sequential / input / graph / fromSpec / load
  ['Net.sequential input string', () => Net.sequential(any('784'), [Net.dense(2)]), OptionError, /input/],
  ['Net.sequential input negative', () => Net.sequential(-4, [Net.dense(2)]), OptionError, /inputDim/],
  ['Net.sequential input NaN', () => Net.sequential(NaN, [Net.dense(2)]), OptionError, /inputDim/],
  ['Net.sequential input 1e20', () => Net.sequential(1e20, [Net.dense(2)]), OptionError, /inputDim/],
  ['Net.sequential input 2.5', () => Net.sequential(2.5, [Net.dense(2)]), OptionError, /inputDim/],
  ['Net.sequential input shape [1, -28]', () => Net.sequential([1, -28], [Net.dense(2)]), OptionError, /input/],
  ['Net.sequential layers null', () => Net.sequential(4, any(null)), OptionError, /layers/],
  ['Net.sequential layers object', () => Net.sequential(4, any({ 0: Net.dense(2) })), OptionError, /layers/],
  ['Net.sequential layers [42]', () => Net.sequential(4, any([42])), OptionError, /layers|\b0\b/],
  ['Net.sequential options.seed -1', () => Net.sequential(4, [Net.dense(2)], { seed: -1 }), OptionError, /seed/],
  ['Net.sequential options.seed Infinity', () => Net.sequential(4, [Net.dense(2)], { seed: Infinity }), OptionError, /seed/],
  ['Net.sequential unknown option', () => Net.sequential(4, [Net.dense(2)], any({ sead: 1 })), OptionError, /sead/],
  ['Net.sequential options null', () => Net.sequential(4, [Net.dense(2)], any(null)), OptionError, /options/],
  ['Net.sequential shape mismatch (conv2d on 784)', () => Net.sequential(784, [Net.conv2d(2, 3)]), ShapeError, /conv2d|\b0\b|input/i],
  ['Net.input shape null', () => Net.input(any(null)), OptionError, /shape/],
  ['Net.input shape [0]', () => Net.input([0]), OptionError, /shape/],
  ['Net.input name 42', () => Net.input(4, any({ name: 42 })), OptionError, /name/],
  ['Net.input unknown option', () => Net.input(4, any({ nam: 'x' })), OptionError, /nam/],
  ['Net.graph null', () => Net.graph(any(null)), OptionError, /graph/],
  ['Net.graph inputs missing', () => Net.graph(any({ outputs: Net.input(4) })), OptionError, /inputs/],
  ['Net.graph inputs number', () => Net.graph(any({ inputs: 3, outputs: Net.input(4) })), OptionError, /inputs/],
  ['Net.graph unknown key', () => Net.graph(any({ inputs: Net.input(4), outputs: Net.input(4), output: 1 })), OptionError, /output/],
  ['Net.fromSpec null', () => Net.fromSpec(any(null)), OptionError, /spec/],
  ['Net.fromSpec bad JSON', () => Net.fromSpec('{oops'), OptionError, /spec/],
  ['Net.fromSpec array', () => Net.fromSpec(any([])), OptionError, /spec/],
  ['Net.fromSpec seed NaN', () => Net.fromSpec(net.spec, { seed: NaN }), OptionError, /seed/],
  ['Net.load path number', () => Net.load(any(42)), OptionError, /path/],
  ['Net.load path ""', () => Net.load(''), OptionError, /path/],
  ['Net.load path with NUL', () => Net.load('a\0b'), OptionError, /path/],
  ['Net.load missing file', () => Net.load(missing), ModelFileError, /missing\.safetensors/],
  ['Net.load not a model', () => Net.load(notAModel), ModelFileError, /not-a-model/],
  // layer builders
  ['Net.dense outFeatures string', () => Net.dense(any('10')), OptionError, /dense\.outFeatures/],
  ['Net.dense outFeatures 0', () => Net.dense(0), OptionError, /dense\.outFeatures/],
  ['Net.dense outFeatures NaN', () => Net.dense(NaN), OptionError, /dense\.outFeatures/],
  ['Net.dense outFeatures 1e20', () => Net.dense(1e20), OptionError, /dense\.outFeatures/],
  ['Net.dense outFeatures 2.5', () => Net.dense(2.5), OptionError, /dense\.outFeatures/],
  ['Net.dense unknown option', () => Net.dense(2, any({ bias: true, biass: 1 })), OptionError, /biass/],
  ['Net.dense options.bias "yes"', () => Net.dense(2, any({ bias: 'yes' })), OptionError, /bias/],
  ['Net.conv2d outChannels -1', () => Net.conv2d(-1, 3), OptionError, /conv2d\.outChannels/],
  ['Net.conv2d kernelSize [3]', () => Net.conv2d(2, any([3])), OptionError, /conv2d\.kernelSize/],
  ['Net.conv2d kernelSize object', () => Net.conv2d(2, any({ h: 3 })), OptionError, /conv2d\.kernelSize/],
  ['Net.conv2d stride 0', () => Net.conv2d(2, 3, { stride: 0 }), OptionError, /conv2d\.stride/],
  ['Net.conv2d padding -1', () => Net.conv2d(2, 3, { padding: -1 }), OptionError, /conv2d\.padding/],
  ['Net.conv2d unknown option', () => Net.conv2d(2, 3, any({ strides: 2 })), OptionError, /strides/],
  ['Net.maxPool2d kernelSize NaN', () => Net.maxPool2d(NaN), OptionError, /maxPool2d\.kernelSize/],
  ['Net.avgPool2d kernelSize "2"', () => Net.avgPool2d(any('2')), OptionError, /avgPool2d\.kernelSize/],
  ['Net.adaptiveAvgPool2d outputSize 0', () => Net.adaptiveAvgPool2d(0), OptionError, /adaptiveAvgPool2d\.outputSize/],
  ['Net.batchNorm1d unknown option', () => Net.batchNorm1d(any({ momentun: 0.1 })), OptionError, /momentun/],
  ['Net.batchNorm1d eps -1', () => Net.batchNorm1d({ eps: -1 }), OptionError, /batchNorm1d\.eps/],
  ['Net.batchNorm2d momentum 2', () => Net.batchNorm2d({ momentum: 2 }), OptionError, /batchNorm2d\.momentum/],
  ['Net.dropout p 1.5', () => Net.dropout(1.5), OptionError, /dropout\.p/],
  ['Net.dropout p NaN', () => Net.dropout(NaN), OptionError, /dropout\.p/],
  ['Net.dropout p "0.5"', () => Net.dropout(any('0.5')), OptionError, /dropout\.p/],
  ['Net.leakyRelu negativeSlope Infinity', () => Net.leakyRelu(Infinity), OptionError, /leakyRelu\.negativeSlope/],
  ['Net.gelu approximate "fast"', () => Net.gelu(any({ approximate: 'fast' })), OptionError, /gelu\.approximate/],
  ['Net.gelu unknown option', () => Net.gelu(any({ approx: 'tanh' })), OptionError, /approx/],
  ['Net.softmax dim 1.5', () => Net.softmax(1.5), OptionError, /softmax\.dim/],
  ['Net.logSoftmax dim "x"', () => Net.logSoftmax(any('x')), OptionError, /logSoftmax\.dim/],
  ['Net.concat dim NaN', () => Net.concat(NaN), OptionError, /concat\.dim/],
  ['layer.apply non-tensor', () => Net.dense(2).apply(any(42)), OptionError, /input|tensor/],
  ['layer.apply unknown option', () => Net.dense(2).apply(Net.input(4), any({ nmae: 'x' })), OptionError, /nmae/],
  ['Net.add().apply one tensor', () => Net.add().apply(Net.input(4)), ShapeError, /Add|input/],
  // net methods
  ['net.predict string', () => net.predict(any('1,2,3,4')), OptionError, /inputs/],
  ['net.predict plain array', () => net.predict(any([0.1, 0.2, 0.3, 0.4])), OptionError, /inputs/],
  ['net.predict Float64Array', () => net.predict(any(new Float64Array(4))), OptionError, /inputs/],
  ['net.predict null', () => net.predict(any(null)), OptionError, /inputs/],
  ['net.predict wrong length', () => net.predict(new Float32Array(5)), ShapeError, /input/],
  ['net.predict empty', () => net.predict(new Float32Array(0)), ShapeError, /input/],
  ['net.predict shared wrong length', () => net.predict(shared(5)), ShapeError, /input/],
  ['net.predict dataset of another shape', () => net.predict(Dataset.fromArrays({ inputs: new Float32Array(6), labels: [0, 1] })), ShapeError, /dataset|input/],
  ['net.predictClasses object', () => net.predictClasses(any({ length: 4 })), OptionError, /inputs/],
  ['net.setParameter name unknown', () => net.setParameter('9.weight', new Float32Array(3)), OptionError, /name/],
  ['net.setParameter name number', () => net.setParameter(any(0), new Float32Array(3)), OptionError, /name/],
  ['net.setParameter plain array', () => net.setParameter('0.bias', any([1, 2, 3])), ShapeError, /0\.bias/],
  ['net.setParameter wrong length', () => net.setParameter('0.bias', new Float32Array(4)), ShapeError, /0\.bias/],
  ['net.setParameter NaN value', () => net.setParameter('0.bias', new Float32Array([0, NaN, 0])), OptionError, /0\.bias\[1\]/],
  ['net.setParameter shared wrong length', () => net.setParameter('0.bias', shared(2)), ShapeError, /0\.bias/],
  ['net.setParameters null', () => net.setParameters(any(null)), OptionError, /values/],
  ['net.setParameters wrong count', () => net.setParameters([new Float32Array(12)]), ShapeError, /values|tensors/],
  ['net.setParameters [null, null]', () => net.setParameters(any([null, null])), ShapeError, /0\.weight/],
  ['net.freeze null', () => net.freeze(any(null)), OptionError, /prefix/],
  ['net.freeze unknown prefix', () => net.freeze('7'), OptionError, /prefix/],
  ['net.unfreeze number', () => net.unfreeze(any(0)), OptionError, /prefix/],
  ['net.save path null', () => net.save(any(null)), OptionError, /path/],
  ['net.save metadata value number', () => net.save(join(dir, 'm.safetensors'), any({ metadata: { a: 1 } })), OptionError, /metadata\.a/],
  ['net.save metadata reserved key', () => net.save(join(dir, 'm.safetensors'), { metadata: { format: 'x' } }), OptionError, /metadata\.format/],
  ['net.save unknown option', () => net.save(join(dir, 'm.safetensors'), any({ meta: {} })), OptionError, /meta/],
  ['net.save into a missing folder', () => net.save(join(dir, 'no/such/dir/m.safetensors')), ModelFileError, /no\/such\/dir/],
  ['net.loadWeights missing file', () => net.loadWeights(missing), ModelFileError, /missing\.safetensors/],
  ['net.loadWeights strict "no"', () => net.loadWeights(modelFile, any({ strict: 'no' })), OptionError, /strict/],
  ['net.loadWeights of another architecture', () => conv.loadWeights(modelFile), ModelFileError, /net\.safetensors/],
  ['net.exportOnnx path 42', () => net.exportOnnx(any(42)), OptionError, /path/],
  ['net.toOnnx opset 1e20', () => net.toOnnx({ opset: 1e20 }), OptionError, /opset/],
  ['net.toOnnx unknown option', () => net.toOnnx(any({ opsett: 17 })), OptionError, /opsett/],
  ['toOnnx net null', () => toOnnx(any(null)), OptionError, /net/],
  ['exportOnnx net string', () => exportOnnx(any('net'), join(dir, 'm.onnx')), OptionError, /net/],
  ['net.saliency null', () => net.saliency(any(null)), OptionError, /input/],
  ['net.saliency wrong length', () => net.saliency(new Float32Array(5)), ShapeError, /input/],
  ['net.saliency classIndex 7', () => net.saliency(x4, { classIndex: 7 }), OptionError, /classIndex/],
  ['net.saliency classIndex -1', () => net.saliency(x4, { classIndex: -1 }), OptionError, /classIndex/],
  ['net.saliency unknown option', () => net.saliency(x4, any({ clas: 1 })), OptionError, /clas/],
  ['saliency net null', () => saliency(any(null), x4), OptionError, /net/],
  ['net.smoothGrad samples 0', () => net.smoothGrad(x4, { samples: 0 }), OptionError, /samples/],
  ['net.smoothGrad noise NaN', () => net.smoothGrad(x4, { noise: NaN }), OptionError, /noise/],
  ['smoothGrad net undefined', () => smoothGrad(any(undefined), x4), OptionError, /net/],
  ['net.integratedGradients steps 1e20', () => net.integratedGradients(x4, { steps: 1e20 }), OptionError, /steps/],
  ['net.integratedGradients baseline wrong length', () => net.integratedGradients(x4, { baseline: new Float32Array(3) }), ShapeError, /baseline/],
  ['integratedGradients method "simpson"', () => integratedGradients(net, x4, any({ method: 'simpson' })), OptionError, /method/],
  ['net.gradCam on a net without conv', () => net.gradCam(x4), OptionError, /layer/],
  ['gradCam layer unknown', () => gradCam(conv, new Float32Array(16), { layer: 'nope' }), OptionError, /layer/],
  ['heatmapPng image plain array', () => heatmapPng(any([0, 1]), new Float32Array(2)), OptionError, /image/],
  ['heatmapPng map null', () => heatmapPng(new Float32Array(16), any(null)), OptionError, /map/],
  // Trainer
  ['new Trainer net null', () => new Trainer(any(null)), OptionError, /net/],
  ['new Trainer net string', () => new Trainer(any('net')), OptionError, /net/],
  ['new Trainer batchSize 0', () => new Trainer(net, { batchSize: 0 }), OptionError, /batchSize/],
  ['new Trainer batchSize "64"', () => new Trainer(net, any({ batchSize: '64' })), OptionError, /batchSize/],
  ['new Trainer batchSize 1e20', () => new Trainer(net, { batchSize: 1e20 }), OptionError, /batchSize/],
  ['new Trainer threads -1', () => new Trainer(net, { threads: -1 }), OptionError, /threads/],
  ['new Trainer seed 0.5', () => new Trainer(net, { seed: 0.5 }), OptionError, /seed/],
  ['new Trainer unknown option', () => new Trainer(net, any({ batchsize: 8 })), OptionError, /batchsize/],
  ['new Trainer optimizer.type', () => new Trainer(net, any({ optimizer: { type: 'adamx' } })), OptionError, /optimizer\.type/],
  ['new Trainer optimizer.lr NaN', () => new Trainer(net, { optimizer: { type: 'sgd', lr: NaN } }), OptionError, /optimizer\.lr/],
  ['new Trainer optimizer.lr -1', () => new Trainer(net, { optimizer: { type: 'adam', lr: -1 } }), OptionError, /optimizer\.lr/],
  ['new Trainer optimizer unknown key', () => new Trainer(net, any({ optimizer: { type: 'sgd', lr: 0.1, momentun: 0.9 } })), OptionError, /momentun/],
  ['new Trainer loss.type', () => new Trainer(net, any({ loss: { type: 'hinge' } })), OptionError, /loss\.type/],
  ['new Trainer schedule.type', () => new Trainer(net, any({ schedule: { type: 'wobble' } })), OptionError, /schedule/],
  ['new Trainer clipNorm 0', () => new Trainer(net, { clipNorm: 0 }), OptionError, /clipNorm/],
  ['new Trainer group unknown', () => new Trainer(net, { group: 'nope' }), OptionError, /group/],
  ['new Trainer options null', () => new Trainer(net, any(null)), OptionError, /options|trainer/i],
  ['trainer.fit data null', () => trainer.fit(any(null)), OptionError, /data/],
  ['trainer.fit data plain object', () => trainer.fit(any({ inputs: new Float32Array(4), labels: [0] })), OptionError, /data/],
  ['trainer.fit dataset of another shape', () => trainer.fit(Dataset.fromArrays({ inputs: new Float32Array(6), labels: [0, 1] })), ShapeError, /dataset|input/],
  ['trainer.fit epochs 0', () => trainer.fit(ds, { epochs: 0 }), OptionError, /epochs/],
  ['trainer.fit epochs "2"', () => trainer.fit(ds, any({ epochs: '2' })), OptionError, /epochs/],
  ['trainer.fit epochs Infinity', () => trainer.fit(ds, { epochs: Infinity }), OptionError, /epochs/],
  ['trainer.fit epochs 1.5', () => trainer.fit(ds, { epochs: 1.5 }), OptionError, /epochs/],
  ['trainer.fit unknown option', () => trainer.fit(ds, any({ epoch: 2 })), OptionError, /epoch/],
  ['trainer.fit shuffle "yes"', () => trainer.fit(ds, any({ shuffle: 'yes' })), OptionError, /shuffle/],
  ['trainer.fit signal object', () => trainer.fit(ds, any({ signal: { aborted: false } })), OptionError, /signal/],
  ['trainer.fit onProgress number', () => trainer.fit(ds, any({ onProgress: 1 })), OptionError, /onProgress/],
  ['trainer.fit callbacks object', () => trainer.fit(ds, any({ callbacks: { onEpochEnd() {} } })), OptionError, /callbacks/],
  ['trainer.fit validationSplit 1.5', () => trainer.fit(ds, { validationSplit: 1.5 }), OptionError, /validationSplit/],
  ['trainer.fit validationData array', () => trainer.fit(ds, any({ validationData: [] })), OptionError, /validationData/],
  ['trainer.fit logEvery without log', () => trainer.fit(ds, { logEvery: 1 }), OptionError, /logEvery/],
  ['trainer.fit log number', () => trainer.fit(ds, any({ log: 5 })), OptionError, /log/],
  ['trainer.fit aborted signal', () => trainer.fit(ds, { signal: AbortSignal.abort() }), AbortError, /abort/],
  ['trainer.evaluate data string', () => trainer.evaluate(any('test')), OptionError, /data/],
  ['trainer.evaluate batchSize -5', () => trainer.evaluate(ds, { batchSize: -5 }), OptionError, /batchSize/],
  ['trainer.evaluate unknown option', () => trainer.evaluate(ds, any({ batch: 5 })), OptionError, /batch/],
  ['trainer.trainBatch features plain array', () => trainer.trainBatch(any([0, 0, 0, 0]), [0]), OptionError, /features/],
  ['trainer.trainBatch features wrong length', () => trainer.trainBatch(new Float32Array(6), [0]), ShapeError, /features/],
  ['trainer.trainBatch labels count', () => trainer.trainBatch(new Float32Array(8), [0]), ShapeError, /labels/],
  ['trainer.trainBatch label -1', () => trainer.trainBatch(x4, [-1]), OptionError, /labels\[0\]/],
  ['trainer.trainBatch label 1.5', () => trainer.trainBatch(x4, [1.5]), OptionError, /labels\[0\]/],
  ['trainer.trainBatch label above outputs', () => trainer.trainBatch(x4, [7]), FerronetError, /label/],
  ['trainer.trainBatch labels string', () => trainer.trainBatch(x4, any('0')), OptionError, /labels/],
  ['trainer.trainBatch labels null', () => trainer.trainBatch(x4, any(null)), OptionError, /labels/],
  ['trainer.trainBatch Float32Array labels for cross-entropy', () => trainer.trainBatch(x4, new Float32Array(1)), OptionError, /labelsOrTargets/],
  ['trainer.trainBatch shared features wrong length', () => trainer.trainBatch(shared(3), [0]), ShapeError, /features/],
  ['trainer.setLearningRate NaN', () => trainer.setLearningRate(NaN), OptionError, /lr/],
  ['trainer.setLearningRate "0.1"', () => trainer.setLearningRate(any('0.1')), OptionError, /lr/],
  ['trainer.save path undefined', () => trainer.save(any(undefined)), OptionError, /path/],
  ['trainer.save into a missing folder', () => trainer.save(join(dir, 'no/such/c.safetensors')), ModelFileError, /no\/such/],
  ['Trainer.resume path 0', () => Trainer.resume(any(0)), OptionError, /path/],
  ['Trainer.resume missing file', () => Trainer.resume(missing), ModelFileError, /missing\.safetensors/],
  ['Trainer.resume a plain model (no trainer state)', () => Trainer.resume(modelFile), ModelFileError, /net\.safetensors/],
  ['Trainer.resume net not a Net', () => Trainer.resume(modelFile, any({})), OptionError, /net/],
  // Dataset
  ['Dataset.fromArrays null', () => Dataset.fromArrays(any(null)), OptionError, /arrays/],
  ['Dataset.fromArrays array', () => Dataset.fromArrays(any([])), OptionError, /arrays|inputs/],
  ['Dataset.fromArrays inputs plain array', () => Dataset.fromArrays(any({ inputs: [0, 1, 2, 3], labels: [0] })), OptionError, /inputs/],
  ['Dataset.fromArrays inputs Float64Array', () => Dataset.fromArrays(any({ inputs: new Float64Array(4), labels: [0] })), OptionError, /inputs/],
  ['Dataset.fromArrays inputs NaN', () => Dataset.fromArrays({ inputs: new Float32Array([0, NaN]), labels: [0] }), ShapeError, /inputs/],
  ['Dataset.fromArrays labels object', () => Dataset.fromArrays(any({ inputs: new Float32Array(4), labels: { 0: 1 } })), OptionError, /labels/],
  ['Dataset.fromArrays label -1', () => Dataset.fromArrays({ inputs: new Float32Array(4), labels: [-1] }), OptionError, /labels\[0\]/],
  ['Dataset.fromArrays label 1.5', () => Dataset.fromArrays({ inputs: new Float32Array(4), labels: [1.5] }), OptionError, /labels\[0\]/],
  ['Dataset.fromArrays label >= numClasses', () => Dataset.fromArrays({ inputs: new Float32Array(4), labels: [5], numClasses: 3 }), OptionError, /labels\[0\]|numClasses/],
  ['Dataset.fromArrays numClasses 0', () => Dataset.fromArrays({ inputs: new Float32Array(4), labels: [0], numClasses: 0 }), OptionError, /numClasses/],
  ['Dataset.fromArrays sampleShape [2, -2]', () => Dataset.fromArrays({ inputs: new Float32Array(4), labels: [0], sampleShape: [2, -2] }), OptionError, /sampleShape/],
  ['Dataset.fromArrays sampleShape wrong size', () => Dataset.fromArrays({ inputs: new Float32Array(4), labels: [0], sampleShape: [3] }), ShapeError, /inputs|sampleShape/],
  ['Dataset.fromArrays labels and inputs disagree', () => Dataset.fromArrays({ inputs: new Float32Array(6), labels: [0, 1, 0, 1], sampleShape: [2] }), ShapeError, /labels/],
  ['Dataset.fromArrays unknown key', () => Dataset.fromArrays(any({ inputs: new Float32Array(4), labels: [0], label: [0] })), OptionError, /label/],
  ['Dataset.fromArrays both labels and targets', () => Dataset.fromArrays(any({ inputs: new Float32Array(4), labels: [0], targets: new Float32Array(1) })), OptionError, /targets|labels/],
  ['Dataset.fromArrays targets plain array', () => Dataset.fromArrays(any({ inputs: new Float32Array(4), targets: [1] })), OptionError, /targets/],
  ['Dataset.fromArrays classNames numbers', () => Dataset.fromArrays(any({ inputs: new Float32Array(4), labels: [0], classNames: [1] })), OptionError, /classNames/],
  ['Dataset.fromArrays shared inputs wrong length', () => Dataset.fromArrays({ inputs: shared(5), labels: [0, 1] }), ShapeError, /inputs/],
  ['dataset.subset start "0"', () => ds.subset(any('0')), OptionError, /start/],
  ['dataset.subset start -1', () => ds.subset(-1), OptionError, /start/],
  ['dataset.subset end 1e20', () => ds.subset(0, 1e20), OptionError, /end/],
  ['dataset.subset end < start', () => ds.subset(2, 1), OptionError, /end/],
  ['dataset.subset start NaN', () => ds.subset(NaN), OptionError, /start/],
  ['dataset.select null', () => ds.select(any(null)), OptionError, /indices/],
  ['dataset.select number', () => ds.select(any(5)), OptionError, /indices/],
  ['dataset.select index out of range', () => ds.select([0, 2]), OptionError, /indices\[1\]/],
  ['dataset.select index 0.5', () => ds.select([0.5]), OptionError, /indices\[0\]/],
  ['dataset.split first NaN', () => ds.split(NaN), OptionError, /first/],
  ['dataset.split first 3 (> size)', () => ds.split(3), OptionError, /first/],
  ['dataset.split first -1', () => ds.split(-1), OptionError, /first/],
  ['dataset.split options null', () => ds.split(1, any(null)), OptionError, /options/],
  ['dataset.split unknown option', () => ds.split(1, any({ seeed: 1 })), OptionError, /seeed/],
  ['dataset.split seed -1', () => ds.split(1, { seed: -1 }), OptionError, /seed/],
  ['dataset.split seed "1"', () => ds.split(1, any({ seed: '1' })), OptionError, /seed/],
  ['dataset.split shuffle 1', () => ds.split(1, any({ shuffle: 1 })), OptionError, /shuffle/],
  ['dataset.sample index 2 (= size)', () => ds.sample(2), OptionError, /index/],
  ['dataset.sample index 1.5', () => ds.sample(1.5), OptionError, /index/],
  ['dataset.sample index undefined', () => ds.sample(any(undefined)), OptionError, /index/],
  ['Dataset.fromImageFolder dir number', () => Dataset.fromImageFolder(any(1), { size: 28 }), OptionError, /dir/],
  ['Dataset.fromImageFolder missing dir', () => Dataset.fromImageFolder(join(dir, 'nope'), { size: 28 }), ImageError, /nope/],
  ['Dataset.fromImageFolder a file', () => Dataset.fromImageFolder(IMAGE, { size: 28 }), ImageError, /digit-7/],
  ['Dataset.fromImageFolder size missing', () => Dataset.fromImageFolder(dir, any({})), OptionError, /size/],
  ['Dataset.fromImageFolder size 0', () => Dataset.fromImageFolder(dir, { size: 0 }), OptionError, /size/],
  ['Dataset.fromImageFolder options null', () => Dataset.fromImageFolder(dir, any(null)), OptionError, /options/],
  ['Dataset.fromImageFolder unknown option', () => Dataset.fromImageFolder(dir, any({ size: 28, grayscal: true })), OptionError, /grayscal/],
  ['Dataset.fromImageFolder concurrency 0', () => Dataset.fromImageFolder(dir, { size: 28, concurrency: 0 }), OptionError, /concurrency/],
  // mnist
  ['mnist.load dir number', () => mnist.load(any(5), 'train'), OptionError, /dir/],
  ['mnist.load split "validation"', () => mnist.load(dir, any('validation')), OptionError, /split/],
  ['mnist.load missing dir', () => mnist.load(join(dir, 'nope'), 'train'), IdxFormatError, /nope/],
  ['mnist.loadFiles imagesPath null', () => mnist.loadFiles(any(null), 'x'), OptionError, /imagesPath/],
  ['mnist.loadFiles labelsPath {}', () => mnist.loadFiles('x', any({})), OptionError, /labelsPath/],
  ['mnist.loadFiles missing file', () => mnist.loadFiles(join(dir, 'i.idx'), join(dir, 'l.idx')), IdxFormatError, /[il]\.idx/], // both missing: whichever read fails first is named
  ['mnist.parseIdx bytes string', () => mnist.parseIdx(any('abc'), 'f'), OptionError, /bytes/],
  ['mnist.parseIdx bytes plain array', () => mnist.parseIdx(any([0, 0, 8, 1]), 'f'), OptionError, /bytes/],
  ['mnist.parseIdx truncated', () => mnist.parseIdx(new Uint8Array([0, 0, 8]), 'tiny.idx'), IdxFormatError, /tiny\.idx/],
  ['mnist.parseImages labels file', () => mnist.parseImages(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 0]), 'labels.idx'), IdxFormatError, /labels\.idx/],
  ['mnist.parseLabels null', () => mnist.parseLabels(any(null), 'f'), OptionError, /bytes/],
  ['mnist.readIdxFile path 42', () => mnist.readIdxFile(any(42)), OptionError, /path/],
  ['mnist.readIdxFile missing', () => mnist.readIdxFile(join(dir, 'gone.idx')), IdxFormatError, /gone\.idx/],
  // images
  ['mnistImage source number', () => mnistImage(any(42)), OptionError, /source/],
  ['mnistImage source null', () => mnistImage(any(null)), OptionError, /source/],
  ['mnistImage missing file', () => mnistImage(join(dir, 'gone.png')), ImageError, /gone\.png/],
  ['mnistImage not an image', () => mnistImage(notAModel), ImageError, /not-a-model/],
  ['mnistImage empty bytes', () => mnistImage(new Uint8Array(0)), ImageError, /image bytes/],
  ['mnistImage unknown option', () => mnistImage(IMAGE, any({ invrt: true })), OptionError, /invrt/],
  ['mnistImage threshold NaN', () => mnistImage(IMAGE, { threshold: NaN }), OptionError, /threshold/],
  ['imageInput inputShape null', () => imageInput(IMAGE, any(null)), ImageError, /shape/],
  ['imageInput inputShape [5, 28, 28]', () => imageInput(IMAGE, [5, 28, 28]), ImageError, /shape/],
  ['imageInput fit "squash"', () => imageInput(IMAGE, [28, 28], any({ fit: 'squash' })), OptionError, /fit/],
  ['imageInputs sources not an array', () => imageInputs(any(IMAGE), [28, 28]), OptionError, /sources/],
  ['imageInputs concurrency -1', () => imageInputs([IMAGE], [28, 28], { concurrency: -1 }), OptionError, /concurrency/],
  // serving, reports, callbacks, files, models, bench
  ['createServer options null', () => createServer(any(null)), OptionError, /options/],
  ['createServer load missing', () => createServer(any({ port: 0 })), OptionError, /load/],
  ['createServer port -1', () => createServer({ load: () => net, port: -1 }), OptionError, /port/],
  ['createServer port 1e20', () => createServer({ load: () => net, port: 1e20 }), OptionError, /port/],
  ['createServer unknown option', () => createServer(any({ load: () => net, prot: 0 })), OptionError, /prot/],
  ['createServer maxBatchRows 0', () => createServer({ load: () => net, maxBatchRows: 0 }), OptionError, /maxBatchRows/],
  ['reloadOnSighup server null', () => reloadOnSighup(any(null)), OptionError, /server/],
  ['writeReport path null', () => writeReport(any(null), { net, history: [] }), OptionError, /path/],
  ['writeReport net missing', () => writeReport(join(dir, 'r.html'), any({ history: [] })), OptionError, /net/],
  ['renderReport history number', () => renderReport(any({ net, history: 5 })), OptionError, /history/],
  ['renderReport unknown option', () => renderReport(any({ net, history: [], titel: 'x' })), OptionError, /titel/],
  ['readMetricsLog path 0', () => readMetricsLog(any(0)), MetricsLogError, /path/],
  ['readMetricsLog missing', () => readMetricsLog(join(dir, 'gone.jsonl')), MetricsLogError, /gone\.jsonl/],
  ['parseMetricsLog text null', () => parseMetricsLog(any(null)), MetricsLogError, /text/],
  ['parseMetricsLog garbage line', () => parseMetricsLog('{oops', 'm.jsonl'), MetricsLogError, /m\.jsonl/],
  ['callbacks.checkpoint options missing', () => callbacks.checkpoint(any(undefined)), OptionError, /path|options/],
  ['callbacks.checkpoint path 5', () => callbacks.checkpoint(any({ path: 5 })), OptionError, /path/],
  ['callbacks.checkpoint every 0', () => callbacks.checkpoint({ path: join(dir, 'c'), every: 0 }), OptionError, /every/],
  ['callbacks.checkpoint monitor unknown', () => callbacks.checkpoint(any({ path: join(dir, 'c'), monitor: 'acc' })), OptionError, /monitor/],
  ['callbacks.checkpoint unknown option', () => callbacks.checkpoint(any({ path: join(dir, 'c'), evry: 2 })), OptionError, /evry/],
  ['callbacks.earlyStopping patience -1', () => callbacks.earlyStopping({ patience: -1 }), OptionError, /patience/],
  ['callbacks.earlyStopping minDelta NaN', () => callbacks.earlyStopping({ minDelta: NaN }), OptionError, /minDelta/],
  ['callbacks.earlyStopping mode "up"', () => callbacks.earlyStopping(any({ mode: 'up' })), OptionError, /mode/],
  ['callbacks.earlyStopping options "x"', () => callbacks.earlyStopping(any('x')), OptionError, /options|earlyStopping/],
  ['callbacks.reduceLrOnPlateau factor 1', () => callbacks.reduceLrOnPlateau({ factor: 1 }), OptionError, /factor/],
  ['callbacks.reduceLrOnPlateau minLr -1', () => callbacks.reduceLrOnPlateau({ minLr: -1 }), OptionError, /minLr/],
  ['callbacks.reduceLrOnPlateau unknown option', () => callbacks.reduceLrOnPlateau(any({ patiense: 2 })), OptionError, /patiense/],
  ['writeFileAtomic path ""', () => writeFileAtomic('', 'x'), OptionError, /path/],
  ['writeFileAtomic data number', () => writeFileAtomic(join(dir, 'a.txt'), any(5)), OptionError, /data/],
  ['models.mlp hidden 0', () => models.mlp({ hidden: 0 }), OptionError, /hidden/],
  ['models.mlp unknown option', () => models.mlp(any({ hiden: 5 })), OptionError, /hiden/],
  ['models.lenet seed -3', () => models.lenet({ seed: -3 }), OptionError, /seed/],
  ['models.cnn options "x"', () => models.cnn(any('x')), OptionError, /options/],
  ['bench.gemmBenchmark m 0', () => bench.gemmBenchmark({ m: 0, k: 1, n: 1, threads: 1 }), OptionError, /\bm\b/],
  ['bench.gemmBenchmark threads NaN', () => bench.gemmBenchmark({ m: 1, k: 1, n: 1, threads: NaN }), OptionError, /threads/],
  ['bench.syntheticMnist size -1', () => bench.syntheticMnist(-1), OptionError, /size/],
  ['bench.epochFlops widths string', () => bench.epochFlops(10, any('784')), OptionError, /widths/],
  ['bench.peakGflops threads 0', () => bench.peakGflops(0), OptionError, /threads/],
]

/** The error a call throws or rejects with (undefined if it returns). */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    const r = call()
    if (r && typeof (r as Promise<unknown>).then === 'function') await r
  } catch (error) {
    return error
  }
  return undefined
}

describe('bad arguments: every public function throws a typed error naming the argument', () => {
  it.each(rows)('%s', async (_name, call, errorClass, names) => {
    const error = await outcome(call)
    if (error === undefined) expect.fail('accepted the bad argument (no error)')
    if (!(error instanceof errorClass)) expect.fail(`expected ${errorClass.name}, got ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`)
    const e = error as FerronetError & { field?: string; path?: string; file?: string }
    expect(`${e.field ?? ''} ${e.path ?? ''} ${e.file ?? ''} ${e.message}`).toMatch(names)
  })

  it('the table is long enough to mean "every function"', () => {
    expect(rows.length).toBeGreaterThan(200)
  })
})

describe('shared memory (SharedArrayBuffer): accepted, read exactly like an ordinary copy', () => {
  /** A shared copy of `a`, as a view at a non-zero offset (to catch a reader that ignores byteOffset). */
  function sharedCopy<T extends Float32Array | Uint8Array>(a: T): T {
    const bytes = a.BYTES_PER_ELEMENT
    const sab = new SharedArrayBuffer((a.length + 4) * bytes)
    const view = new (a.constructor as new (b: ArrayBufferLike, o: number, l: number) => T)(sab, 2 * bytes, a.length)
    view.set(a)
    new (a.constructor as new (b: ArrayBufferLike) => T)(sab).fill(99 as never, 0, 2) // garbage before the view
    return view
  }
  const features = () => Float32Array.from({ length: 12 }, (_, i) => Math.sin(i))

  it('net.predict / predictClasses: Float32Array and Uint8Array', () => {
    const f = features()
    expect(net.predict(sharedCopy(f))).toEqual(net.predict(f))
    expect(net.predictClasses(sharedCopy(f))).toEqual(net.predictClasses(f))
    const px = Uint8Array.from({ length: 8 }, (_, i) => i * 30)
    expect(net.predict(sharedCopy(px))).toEqual(net.predict(px))
  })

  it('Dataset.fromArrays + evaluate, and trainBatch, give the same numbers as a copy', async () => {
    const f = features()
    const labels = new Uint32Array([0, 1, 2])
    const a = Dataset.fromArrays({ inputs: f, labels })
    const b = Dataset.fromArrays({ inputs: sharedCopy(f), labels: sharedCopy(new Uint8Array(labels)) })
    const t1 = new Trainer(Net.sequential(4, [Net.dense(3)], { seed: 1 }), { batchSize: 3 })
    const t2 = new Trainer(Net.sequential(4, [Net.dense(3)], { seed: 1 }), { batchSize: 3 })
    expect(await t2.evaluate(b)).toEqual(await t1.evaluate(a))
    expect(t2.trainBatch(sharedCopy(f), sharedCopy(labels as unknown as Uint8Array) as unknown as Uint32Array)).toBe(t1.trainBatch(f, labels))
    await t1.fit(a, { epochs: 2 })
    await t2.fit(b, { epochs: 2 })
    expect(t2.net.predict(f)).toEqual(t1.net.predict(f))
  })

  it('net.setParameter / saliency read a shared array exactly', () => {
    const a = Net.sequential(4, [Net.dense(3)], { seed: 2 })
    const b = Net.sequential(4, [Net.dense(3)], { seed: 2 })
    const bias = new Float32Array([0.5, -1, 2])
    a.setParameter('0.bias', bias)
    b.setParameter('0.bias', sharedCopy(bias))
    expect(b.predict(features())).toEqual(a.predict(features()))
    expect(b.saliency(sharedCopy(x4)).map).toEqual(a.saliency(x4).map)
  })
})

export { NativeError } // (the class a busy net throws; imported for completeness of the error list)
