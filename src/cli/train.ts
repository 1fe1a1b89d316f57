/**
 * `ferronet train`: train a preset or a saved spec on MNIST-format data; validate, stop
 * early, log the metrics, save, checkpoint, resume. On a terminal a live bar per epoch,
 * else (CI, pipes) one line per epoch; `--json`: one JSON line per epoch, the summary last.
 */

import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { Dataset } from '../dataset.js'
import { checkpoint as checkpointCallback, earlyStopping as earlyStoppingCallback, type Callback, type EarlyStopping } from '../callbacks.js'
import { AbortError, FerronetError, OptionError } from '../errors.js'
import * as mnist from '../mnist/index.js'
import * as models from '../models.js'
import { saliency } from '../explain.js'
import { Net } from '../net.js'
import { writeReport } from '../report.js'
import { Trainer, type EpochResult, type OptimizerOptions, type ScheduleOptions } from '../trainer.js'
import { DIGIT_CLASSES, FASHION_CLASSES, META, choiceFlag, numberFlag, version } from './common.js'
import { liveView } from './progress.js'

export const OPTIMIZERS = ['adam', 'adamw', 'sgd', 'rmsprop'] as const
export const SCHEDULES = ['none', 'cosine', 'step', 'exponential', 'one_cycle'] as const

/** The flags as commander hands them over (strings). */
export interface TrainFlags {
  data?: string
  model?: string
  optimizer?: string
  schedule?: string
  weightDecay?: string
  epochs?: string
  batchSize?: string
  lr?: string
  hidden?: string
  seed?: string
  threads?: string
  save?: string
  checkpoint?: string
  resume?: string
  preprocess?: string
  validationSplit?: string
  earlyStopping?: string
  log?: string
  logEvery?: string
  report?: string
  checkpointEvery?: string
  json: boolean
}

interface TrainArgs {
  data: string | undefined
  model: string
  optimizer: (typeof OPTIMIZERS)[number]
  schedule: (typeof SCHEDULES)[number]
  weightDecay: number | undefined
  epochs: number
  batchSize: number
  lr: number
  hidden: number
  seed: number
  threads: number
  save: string | undefined
  checkpoint: string | undefined
  resume: string | undefined
  preprocess: 'mnist' | 'resize' | undefined
  /** Fraction of the training data held out; with --early-stopping 0.1 unless given. */
  validationSplit: number | undefined
  earlyStopping: number | undefined
  log: string | undefined
  logEvery: number
  report: string | undefined
  checkpointEvery: number
  json: boolean
}

/** With --early-stopping and no --validation-split, this fraction is held out. */
export const EARLY_STOPPING_SPLIT = 0.1

export function parseTrainFlags(values: TrainFlags): TrainArgs {
  const model = values.model ?? 'mlp'
  if (!(model in models.PRESETS) && !model.endsWith('.json')) {
    throw new OptionError('--model', `must be ${Object.keys(models.PRESETS).join(', ')} or a spec file FILE.json, got ${JSON.stringify(model)}`)
  }
  if (values.hidden !== undefined && model !== 'mlp') throw new OptionError('--hidden', `applies to --model mlp only, not ${model}`)
  const optimizer = choiceFlag('--optimizer', values.optimizer, OPTIMIZERS)
  const weightDecay = values.weightDecay === undefined ? undefined : numberFlag('--weight-decay', values.weightDecay, 0, false)
  if (weightDecay !== undefined && weightDecay < 0) throw new OptionError('--weight-decay', `must be >= 0, got ${weightDecay}`)
  if (values.resume !== undefined) {
    for (const [flag, v] of [['--model', values.model], ['--optimizer', values.optimizer], ['--lr', values.lr], ['--schedule', values.schedule], ['--hidden', values.hidden], ['--weight-decay', values.weightDecay], ['--batch-size', values.batchSize], ['--seed', values.seed]] as const) {
      if (v !== undefined) throw new OptionError(flag, 'cannot be combined with --resume: the checkpoint holds the model and the trainer settings')
    }
  }
  const epochs = numberFlag('--epochs', values.epochs, 10, true)
  if (epochs < 1) throw new OptionError('--epochs', `must be >= 1, got ${epochs}`)
  let validationSplit = values.validationSplit === undefined ? undefined : numberFlag('--validation-split', values.validationSplit, 0, false)
  if (validationSplit !== undefined && !(validationSplit > 0 && validationSplit < 1)) throw new OptionError('--validation-split', `must be a fraction in (0, 1), e.g. 0.1, got ${validationSplit}`)
  const earlyStopping = values.earlyStopping === undefined ? undefined : numberFlag('--early-stopping', values.earlyStopping, 0, true, 0)
  validationSplit ??= earlyStopping !== undefined ? EARLY_STOPPING_SPLIT : undefined
  const logEvery = numberFlag('--log-every', values.logEvery, 0, true, 1)
  if (values.logEvery !== undefined && values.log === undefined) throw new OptionError('--log-every', 'needs --log FILE (the metrics log to write batch lines to)')
  const checkpointEvery = numberFlag('--checkpoint-every', values.checkpointEvery, 1, true, 1)
  if (values.checkpointEvery !== undefined && values.checkpoint === undefined) throw new OptionError('--checkpoint-every', 'needs --checkpoint FILE (where to write the checkpoints)')
  if (values.log !== undefined && values.log === '') throw new OptionError('--log', 'needs a file name')
  return {
    data: values.data,
    model,
    optimizer,
    schedule: choiceFlag('--schedule', values.schedule, SCHEDULES),
    weightDecay,
    epochs,
    batchSize: numberFlag('--batch-size', values.batchSize, 64, true),
    lr: numberFlag('--lr', values.lr, optimizer === 'sgd' || optimizer === 'rmsprop' ? 1e-2 : 1e-3, false),
    hidden: numberFlag('--hidden', values.hidden, 500, true),
    seed: numberFlag('--seed', values.seed, 0, true),
    threads: numberFlag('--threads', values.threads, 0, true, 0, 1024),
    save: values.save,
    checkpoint: values.checkpoint,
    resume: values.resume,
    preprocess: values.preprocess === undefined ? undefined : choiceFlag('--preprocess', values.preprocess, ['mnist', 'resize'] as const),
    validationSplit,
    earlyStopping,
    log: values.log,
    logEvery,
    report: values.report === '' ? (() => { throw new OptionError('--report', 'needs a file name') })() : values.report,
    checkpointEvery,
    json: values.json ?? false,
  }
}

/** What a saved model says about its data: class names and how images become inputs. */
function describeData(dir: string | undefined, preprocess: TrainArgs['preprocess']): Record<string, string> {
  const fashion = dir !== undefined && /fashion/i.test(basename(dir.replace(/\/+$/, '')))
  return {
    [META.classNames]: JSON.stringify(fashion ? FASHION_CLASSES : DIGIT_CLASSES),
    // MNIST digits are cropped and centred by mass; other 28×28 images are resized as they are.
    [META.preprocess]: preprocess ?? (fashion ? 'resize' : 'mnist'),
    [META.dataset]: dir ?? 'mnist package digits',
  }
}

async function loadData(dir: string | undefined): Promise<{ name: string; train: Dataset; test: Dataset }> {
  if (dir !== undefined) {
    const [train, test] = await Promise.all([mnist.load(dir, 'train'), mnist.load(dir, 'test')])
    return { name: dir, train, test }
  }
  const digits = await mnist.loadDigits()
  const [train, test] = digits.split(8000, { seed: 0 })
  return { name: 'mnist package digits (8000/2000 split, seed 0)', train, test }
}

export async function trainCommand(flags: TrainFlags): Promise<void> {
  const args = parseTrainFlags(flags)
  const write = (line: string) => process.stdout.write(line + '\n')
  const log = args.json ? () => {} : write
  const { name, train, test } = await loadData(args.data)
  if (args.batchSize < 1) throw new OptionError('batchSize', `must be >= 1, got ${args.batchSize}`)
  const trainSize = args.validationSplit === undefined ? train.size : train.size - Math.round(args.validationSplit * train.size)
  const stepsPerEpoch = Math.ceil(trainSize / args.batchSize)
  const schedule = scheduleFor(args.schedule, args.lr, args.epochs * stepsPerEpoch)
  const optimizer = { type: args.optimizer, lr: args.lr, ...(args.weightDecay !== undefined ? { weightDecay: args.weightDecay } : {}) } as OptimizerOptions
  // --resume: the checkpoint's net and trainer (its settings), continued for --epochs more epochs.
  const trainer = args.resume !== undefined
    ? await Trainer.resume(args.resume)
    : new Trainer(buildModel(args, train.inputDim), { optimizer, ...(schedule ? { schedule } : {}), batchSize: args.batchSize, threads: args.threads, seed: args.seed })
  const net = trainer.net
  if (args.resume !== undefined) log(`resumed ${args.resume}`)
  const metadata = describeData(args.data, args.preprocess)
  // --report without --log: the report's curves come from a log in a temporary file.
  const reportLog = args.report !== undefined && args.log === undefined ? join(tmpdir(), `ferronet-train-${process.pid}-${Date.now()}.jsonl`) : undefined
  if (reportLog !== undefined) {
    args.log = reportLog
    if (args.logEvery === 0) args.logEvery = Math.max(1, Math.floor(stepsPerEpoch / 20))
  }
  const describeNet = args.model === 'mlp' ? `${train.inputDim}→${args.hidden}→10` : `${args.model} [${net.inputShape.join(', ')}]→[${net.outputShape.join(', ')}]`

  // Ctrl-C stops within one batch and still reports what was trained.
  const controller = new AbortController()
  const onSigint = () => controller.abort()
  process.once('SIGINT', onSigint)

  // A live bar on a terminal; plain lines in CI and pipes; JSON lines with --json.
  const view = !args.json && process.stdout.isTTY === true ? liveView(process.stdout) : undefined
  const epochSeconds: number[] = []
  const testAccuracyPerEpoch: number[] = []
  let last: EpochResult | undefined
  let validationSamples = 0
  const callbacks: Callback[] = []
  const early: EarlyStopping | undefined = args.earlyStopping === undefined ? undefined : earlyStoppingCallback({ monitor: 'valLoss', patience: args.earlyStopping, restoreBestWeights: true })
  if (early) callbacks.push(early)
  // Complete or absent, never half: written atomically every --checkpoint-every epochs.
  if (args.checkpoint !== undefined) callbacks.push(checkpointCallback({ path: args.checkpoint, every: args.checkpointEvery }))
  callbacks.push({
    onTrainBegin(info) {
      validationSamples = info.validationSamples
      const samples = `${info.trainSamples} train / ${info.validationSamples ? `${info.validationSamples} validation / ` : ''}${test.size} test samples`
      log(`ferronet ${version()}: ${name}: ${samples}, ` +
        `net ${describeNet} (${net.parameterCount} parameters), ${args.optimizer} lr ${args.lr}${schedule ? ` ${args.schedule} schedule` : ''}, batch ${args.batchSize}, ${trainer.threads} threads`)
    },
    async onEpochEnd({ epoch, lastEpoch, metrics: m }) {
      last = m
      epochSeconds.push(m.seconds)
      const evaluation = await trainer.evaluate(test)
      testAccuracyPerEpoch.push(evaluation.accuracy ?? NaN)
      view?.clear()
      if (args.json) {
        write(JSON.stringify({ kind: 'epoch', ...m, epochs: lastEpoch, testLoss: evaluation.loss, testAccuracy: evaluation.accuracy }))
        return
      }
      const validation = m.valLoss === undefined ? '' : `val loss ${m.valLoss.toFixed(4)}  val acc ${(m.valAccuracy ?? NaN).toFixed(4)}  `
      log(`epoch ${String(epoch).padStart(String(lastEpoch).length)}/${lastEpoch}  ` +
        `loss ${m.loss.toFixed(4)}  train acc ${(m.accuracy ?? NaN).toFixed(4)}  ${validation}` +
        `test loss ${evaluation.loss.toFixed(4)}  test acc ${(evaluation.accuracy ?? NaN).toFixed(4)}  ` +
        `${m.seconds.toFixed(2)} s  ${Math.round(m.samplesPerSecond)} samples/s`)
    },
  })

  let aborted = false
  let stopReason: string | undefined
  let logError: string | undefined
  try {
    const batches = Math.ceil(trainSize / args.batchSize)
    const result = await trainer.fit(train, {
      epochs: args.epochs,
      signal: controller.signal,
      callbacks,
      ...(args.validationSplit !== undefined ? { validationSplit: args.validationSplit } : {}),
      ...(args.log !== undefined ? { log: { path: args.log, model: args.resume ?? args.model }, logEvery: args.logEvery } : {}),
      ...(view ? { onProgress: (p) => view.update(p), progressEvery: Math.max(1, Math.floor(batches / 100)) } : {}),
    })
    stopReason = result.stopReason
    logError = result.logError
  } catch (error) {
    view?.clear()
    if (!(error instanceof AbortError)) throw error
    aborted = true
    log('interrupted: stopping after the last finished batch')
  } finally {
    process.removeListener('SIGINT', onSigint)
  }
  if (stopReason !== undefined) log(early?.restored ? `${stopReason}; restored the weights of epoch ${early.bestEpoch}` : stopReason)

  const final = await trainer.evaluate(test)
  if (args.save !== undefined) {
    await net.save(args.save, { metadata })
    log(`saved ${args.save}`)
  }
  if (args.report !== undefined) {
    const classNames = JSON.parse(metadata[META.classNames]!) as string[]
    try {
      await writeReport(args.report, {
        net, history: args.log!, test, classNames,
        saliency: (n, input, classIndex) => saliency(n, input, { classIndex }).map,
      })
    } finally {
      if (reportLog !== undefined) await rm(reportLog, { force: true })
    }
    log(`wrote the report ${args.report}`)
  }
  const totalSeconds = epochSeconds.reduce((a, b) => a + b, 0)
  const samplesPerSecond = totalSeconds > 0 ? (trainSize * epochSeconds.length) / totalSeconds : 0
  const summary = {
    kind: 'summary',
    data: name,
    trainSamples: trainSize,
    ...(validationSamples ? { validationSamples, validationSplit: args.validationSplit } : {}),
    testSamples: test.size,
    epochs: epochSeconds.length,
    aborted,
    stopped: stopReason !== undefined,
    ...(stopReason !== undefined ? { stopReason } : {}),
    ...(early ? { earlyStopping: { patience: args.earlyStopping, bestEpoch: early.bestEpoch, best: early.best, restored: early.restored } } : {}),
    model: args.resume !== undefined ? `resumed ${args.resume}` : args.model,
    ...(args.model === 'mlp' ? { hidden: args.hidden } : {}),
    parameters: net.parameterCount,
    optimizer: args.optimizer,
    schedule: args.schedule,
    weightDecay: args.weightDecay ?? (args.optimizer === 'adamw' ? 0.01 : 0),
    batchSize: args.batchSize,
    lr: args.lr,
    seed: args.seed,
    threads: trainer.threads,
    trainLoss: last?.loss ?? NaN,
    trainAccuracy: last?.accuracy ?? NaN,
    ...(last?.valLoss !== undefined ? { valLoss: last.valLoss, valAccuracy: last.valAccuracy } : {}),
    testLoss: final.loss,
    testAccuracy: final.accuracy,
    testAccuracyPerEpoch,
    epochSeconds,
    samplesPerSecond,
    ...(args.save !== undefined ? { saved: args.save } : {}),
    ...(args.checkpoint !== undefined ? { checkpoint: args.checkpoint } : {}),
    ...(args.log !== undefined && reportLog === undefined ? { log: args.log } : {}),
    ...(args.report !== undefined ? { report: args.report } : {}),
    ...(logError !== undefined ? { logError } : {}),
  }
  if (args.json) write(JSON.stringify(summary))
  else log(`test accuracy ${(final.accuracy ?? NaN).toFixed(4)} after ${summary.epochs} epochs, ${samplesPerSecond.toFixed(0)} samples/s`)
}

function buildModel(args: TrainArgs, inputDim: number): Net {
  if (args.model === 'mlp') return models.mlp({ inputs: inputDim, hidden: args.hidden, seed: args.seed })
  if (args.model === 'lenet' || args.model === 'cnn') return models.PRESETS[args.model]({ seed: args.seed })
  let text: string
  try {
    text = readFileSync(args.model, 'utf8')
  } catch (error) {
    throw new FerronetError('ERR_NOT_FOUND', `--model ${args.model}: cannot read the spec file (${(error as Error).message})`)
  }
  return Net.fromSpec(text, { seed: args.seed })
}

/** A schedule spanning the whole run of `total` optimizer steps. */
function scheduleFor(kind: TrainArgs['schedule'], lr: number, total: number): ScheduleOptions | undefined {
  switch (kind) {
    case 'none':
      return undefined
    case 'cosine':
      return { type: 'cosine', totalSteps: total }
    case 'step':
      return { type: 'step', stepSize: Math.max(1, Math.ceil(total / 3)), gamma: 0.1 }
    case 'exponential':
      return { type: 'exponential', gamma: Math.min(1, 0.01 ** (1 / total)) }
    case 'one_cycle':
      return { type: 'one_cycle', maxLr: lr, totalSteps: total }
  }
}

