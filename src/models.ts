/**
 * Ready-made models for 28×28 single-channel images (MNIST, Fashion-MNIST), exported
 * from the package as the `models` namespace and used by `ferronet train --model`.
 * Each takes {@link NetOptions} (the `seed`) and returns a fresh, untrained {@link Net}.
 *
 * ```ts
 * import { Trainer, mnist, models } from 'ferronet'
 * const net = models.lenet({ seed: 0 })                  // input [1, 28, 28], 10 outputs
 * await new Trainer(net).fit(await mnist.loadDigits(), { epochs: 1 })
 * ```
 *
 * @module models
 */

import { OptionError } from './errors.js'
import { Net, type NetOptions } from './net.js'
import { describe, integerInRange } from './validate.js'

/** Input shape of the presets: one channel of 28×28 pixels (a `[28, 28]` dataset fits by size). */
export const IMAGE_SHAPE: readonly number[] = Object.freeze([1, 28, 28])

/**
 * The seed network: `inputs` (784) → `hidden` (500) with ReLU → 10, Linear layers,
 * on flat inputs (a `[28, 28]` dataset fits by size). About 397,000 parameters.
 *
 * ```ts
 * const net = models.mlp({ hidden: 128, seed: 0 })
 * ```
 * @throws {@link OptionError} for a bad `hidden`, `inputs` or `seed`.
 */
export function mlp(options: NetOptions & { hidden?: number; inputs?: number } = {}): Net {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new OptionError('options', `must be an options object, got ${describe(options)}`)
  const { hidden = 500, inputs = 784, ...rest } = options
  integerInRange('hidden', hidden, 1, 2 ** 31 - 1)
  integerInRange('inputs', inputs, 1, 2 ** 31 - 1)
  return Net.sequential(inputs, [Net.dense(hidden), Net.relu(), Net.dense(10)], rest)
}

/**
 * LeNet-5 on `[1, 28, 28]`: conv 6@5×5 pad 2, ReLU, max-pool 2, conv 16@5×5, ReLU,
 * max-pool 2, flatten, 120, ReLU, 84, ReLU, 10 (ReLU and max-pooling in place of the
 * original's tanh and subsampling). About 61,700 parameters.
 * @throws {@link OptionError} for a bad `seed`.
 */
export function lenet(options: NetOptions = {}): Net {
  return Net.sequential(IMAGE_SHAPE, [
    Net.conv2d(6, 5, { padding: 2 }), Net.relu(), Net.maxPool2d(2),
    Net.conv2d(16, 5), Net.relu(), Net.maxPool2d(2),
    Net.flatten(),
    Net.dense(120), Net.relu(),
    Net.dense(84), Net.relu(),
    Net.dense(10),
  ], options)
}

/**
 * The Keras MNIST CNN on `[1, 28, 28]`: conv 32@3×3, ReLU, conv 64@3×3, ReLU, max-pool 2,
 * dropout 0.25, flatten, 128, ReLU, dropout 0.5, 10. About 1.2 million parameters;
 * the most accurate preset and the slowest to train.
 * @throws {@link OptionError} for a bad `seed`.
 */
export function cnn(options: NetOptions = {}): Net {
  return Net.sequential(IMAGE_SHAPE, [
    Net.conv2d(32, 3), Net.relu(),
    Net.conv2d(64, 3), Net.relu(),
    Net.maxPool2d(2), Net.dropout(0.25),
    Net.flatten(),
    Net.dense(128), Net.relu(), Net.dropout(0.5),
    Net.dense(10),
  ], options)
}

/** The presets by the names `ferronet train --model` takes. */
export const PRESETS: Readonly<{
  /** {@link mlp} */
  mlp: typeof mlp
  /** {@link lenet} */
  lenet: typeof lenet
  /** {@link cnn} */
  cnn: typeof cnn
}> = Object.freeze({ mlp, lenet, cnn })
