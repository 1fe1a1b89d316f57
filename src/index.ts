/**
 * ferronet: train neural networks fast on the CPU from TypeScript.
 *
 * ```ts
 * import { Net, Trainer, mnist } from 'ferronet'
 * const train = await mnist.load('data/', 'train')
 * const net = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 0 })
 * const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 1e-3 }, batchSize: 64 })
 * await trainer.fit(train, { epochs: 10 })
 * ```
 * @packageDocumentation
 */

export { Net } from './net.js'
export type { DenseSpec, LayerSpec, NetOptions, Parameter, PredictInput, ReluSpec } from './net.js'
export { Trainer } from './trainer.js'
export type { AdamOptions, EpochResult, EvaluateResult, FitOptions, FitResult, OptimizerOptions, Progress, SgdOptions, TrainerOptions } from './trainer.js'
export { Dataset } from './dataset.js'
export type { DatasetArrays, InputArray, InputDType, Sample, SplitOptions } from './dataset.js'
export * as mnist from './mnist/index.js'
export * as bench from './bench.js'
export { AbortError, FerronetError, IdxFormatError, NativeError, OptionError, ShapeError } from './errors.js'
export type { IdxErrorReason } from './errors.js'
