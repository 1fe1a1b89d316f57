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
export type { NetOptions, Parameter, PredictInput, SaveOptions } from './net.js'
export { exportOnnx, toOnnx, OnnxExportError } from './onnx.js'
export type { OnnxOptions } from './onnx.js'
export { writeFileAtomic } from './files.js'
export { SymbolicTensor } from './graph.js'
export type { Applicable, ApplyOptions, InputSpec, Layer, ModelSpec, NodeSpec } from './graph.js'
export type {
  AdaptiveAvgPool2dSpec, AddSpec, AvgPool2dSpec, BatchNorm1dSpec, BatchNorm2dSpec, ConcatSpec, Conv2dSpec, DropoutSpec, EmbeddingSpec, LayerNormSpec, PositionEmbeddingSpec,
  FlattenSpec, GeluSpec, LayerSpec, LeakyReluSpec, LinearSpec, LogSoftmaxSpec, MaxPool2dSpec, MultiHeadAttentionSpec, OpName, ReluSpec,
  SigmoidSpec, SiluSpec, Size2, SoftmaxSpec, TanhSpec, LstmSpec, GruSpec, RecurrentReturns,
  KLDivergenceSpec, ReparameterizeSpec,
} from './layers.js'
export { Trainer } from './trainer.js'
export { Optimizer } from './step.js'
export type { BackwardOptions, ForwardOptions, InputGradOptions, StepLossName, StepOptimizerOptions } from './step.js'
export { GanTrainer } from './gan.js'
export type { GanFitOptions, GanProgress, GanTrainerOptions } from './gan.js'
export { generate } from './generate.js'
export type { GenerateOptions, Generation } from './generate.js'
export type {
  AdamOptions, AdamWOptions, EpochResult, EvaluateResult, FitOptions, FitResult, LossOptions, LossTerm, LossType, Metrics,
  OptimizerOptions, Progress, RmspropOptions, ScheduleOptions, SgdOptions, TrainerOptions,
} from './trainer.js'
export { Dataset } from './dataset.js'
export { createRandom, randomNormal } from './random.js'
export type { Random } from './random.js'
export type { DatasetArrays, InputArray, InputDType, LabelArray, Sample, SplitOptions } from './dataset.js'
export * as models from './models.js'
export * as mnist from './mnist/index.js'
export * as bench from './bench.js'
export { AbortError, FerronetError, IdxFormatError, ImageError, InvalidInputError, ModelFileError, NativeError, OptionError, ShapeError } from './errors.js'
export type { IdxErrorReason, ImageErrorReason } from './errors.js'
export { imageInput, imageInputs, mnistImage } from './image.js'
export type { ImageFit, ImageInputOptions, ImageInputsOptions, ImagePreprocess, ImageReadOptions, ImageSource, MnistImageOptions } from './image.js'
export type { ImageFolder, ImageFolderOptions, SkippedImage } from './image-folder.js'
export { createServer, reloadOnSighup } from './serving.js'
export type { ClassScore, ImageDecoder, LoadedModel, ModelInfo, PredictionServer, PredictResponse, RowPrediction, ServeOptions, ServeTask, SighupOptions } from './serve.js'
export { defaultCamLayer, gradCam, heatmapPng, integratedGradients, saliency, smoothGrad, COLORMAPS, INTEGRATION_METHODS } from './explain.js'
export type {
  Attribution, Colormap, ExplainedDecision, ExplainInput, GradCamOptions, GradCamResult, HeatmapLayout, HeatmapOptions,
  IntegratedGradientsOptions, IntegratedGradientsResult, IntegrationMethod, SaliencyOptions, SmoothGradOptions,
} from './explain.js'
export { MetricsLogError, parseMetricsLog, readMetricsLog, renderReport, writeReport } from './report.js'
export type { BatchRecord, EpochRecord, MetricsRecord, ReportOptions, RunRecord, SaliencyFunction, TrainingMetrics } from './report.js'
export * as callbacks from './callbacks.js'
export type {
  BatchEndInfo, Callback, Checkpoint, CheckpointOptions, EarlyStopping, EarlyStoppingOptions, EpochEndInfo, MetricName,
  ReduceLrOnPlateau, ReduceLrOnPlateauOptions, TrainBeginInfo, TrainEndInfo,
} from './callbacks.js'
export type { ValidationMetrics } from './trainer.js'
export * as text from './text.js'
