/**
 * The per-batch step API for custom training loops (a GAN's, a VAE's, anything
 * `fit` does not cover), with PyTorch's semantics: {@link Net.forward},
 * {@link Net.backward} (from a loss or a given output gradient; parameter gradients
 * ADD UP across calls until {@link Net.zeroGrad}), {@link Net.inputGrad}, and
 * {@link Optimizer} from {@link Net.optimizer}, stepping one parameter group.
 *
 * ```ts
 * const optG = G.optimizer({ type: 'adam', lr: 2e-4, betas: [0.5, 0.999] })
 * const fake = G.forward(z, { mode: 'train' })
 * D.zeroGrad()
 * D.forward(fake, { mode: 'train' })
 * const gLoss = D.backward({ loss: 'bceWithLogits', targets: ones, inputGrad: true })
 * G.zeroGrad()
 * G.backward({ outputGrad: D.inputGrad() })
 * optG.step()
 * ```
 *
 * Each call is one synchronous native call that allocates nothing in steady state:
 * results are written into arrays the net keeps (or that you pass as `out`).
 * @module
 */

import { OptionError, ShapeError } from './errors.js'
import type { LossOptions, LossType, OptimizerOptions } from './trainer.js'
import { nativeOptimizer } from './trainer.js'
import { awaitNative, callNative, native, type NativeNet, type NativeStepOptimizer } from './native.js'
import { describe } from './validate.js'

/** A loss by name: the {@link LossType} names or their camelCase spellings (`'bceWithLogits'`, `'crossEntropy'`, `'smoothL1'`). */
export type StepLossName = LossType | 'bceWithLogits' | 'crossEntropy' | 'smoothL1'

/** Options of {@link Net.forward}. */
export interface ForwardOptions {
  /** `'train'` (dropout on, BatchNorm on batch statistics, its running statistics updated) or `'eval'`; default `'eval'`. */
  mode?: 'train' | 'eval'
  /**
   * Where to write the output (`rows × outputDim` values). Default: an array the net
   * keeps and reuses, which the next `forward` with the same row count overwrites.
   */
  out?: Float32Array
}

/** Options of {@link Net.backward}: exactly one of `loss` (with `targets`) or `outputGrad`. */
export interface BackwardOptions {
  /** The loss on the last forward's output: a name (allocates nothing) or a {@link LossOptions} object. */
  loss?: StepLossName | LossOptions
  /** Class ids (one per row) for `crossEntropy`; float targets (`rows × outputDim`) for the others. */
  targets?: Float32Array | Uint32Array | Uint8Array | readonly number[]
  /** ∂L/∂output of the last forward, `rows × outputDim` values, PyTorch's order. */
  outputGrad?: Float32Array
  /**
   * Also compute ∂L/∂input (read it with {@link Net.inputGrad}). Once asked, the net
   * keeps computing it in every later backward (one more product per backward; the
   * plan is not rebuilt on every call).
   */
  inputGrad?: boolean
}

/** Options of {@link Net.inputGrad}. */
export interface InputGradOptions {
  /** Which graph input (default `0`). */
  input?: number
  /** Where to write it; default an array the net keeps (overwritten by the next `inputGrad` of that input and row count). */
  out?: Float32Array
}

/** Options of {@link Net.optimizer}: an {@link OptimizerOptions} plus the parameter group it owns. */
export type StepOptimizerOptions = OptimizerOptions & {
  /** Only the tensors of this parameter group (`apply(x, { group })`); default every trainable tensor. */
  group?: string
}

const BACKWARD_KEYS: readonly string[] = ['loss', 'targets', 'outputGrad', 'inputGrad']

const LOSS_CODES: Record<string, number> = {
  cross_entropy: 0, crossEntropy: 0, mse: 1, l1: 2, smooth_l1: 3, smoothL1: 3, huber: 4, bce_with_logits: 5, bceWithLogits: 5,
}

/** @internal The per-net state of the step API: its reused output arrays. */
export class StepState {
  rows = 0
  out: Float32Array | undefined
  grads: (Float32Array | undefined)[] = []
}

function rowsOf(length: number, dim: number, what: string, shape: readonly number[]): number {
  if (length === 0 || length % dim !== 0) throw new ShapeError(`${what}: ${length} values, not a positive multiple of ${dim} (input shape [${shape.join(', ')}])`)
  return length / dim
}

/** @internal {@link Net.forward}. */
export function stepForward(
  handle: NativeNet, state: StepState, inputs: Float32Array | readonly Float32Array[], options: ForwardOptions | undefined,
  dims: { input: number; inputShape: readonly number[]; output: number }, async: true,
): Promise<Float32Array>
export function stepForward(
  handle: NativeNet, state: StepState, inputs: Float32Array | readonly Float32Array[], options: ForwardOptions | undefined,
  dims: { input: number; inputShape: readonly number[]; output: number }, async?: false,
): Float32Array
export function stepForward(
  handle: NativeNet, state: StepState, inputs: Float32Array | readonly Float32Array[], options: ForwardOptions | undefined,
  dims: { input: number; inputShape: readonly number[]; output: number }, async = false,
): Float32Array | Promise<Float32Array> {
  const o = options ?? {}
  if (typeof o !== 'object' || o === null) throw new OptionError('options', `must be an options object, got ${describe(o)}`)
  // for-in, not Object.keys: no array per call.
  for (const k in o) if (k !== 'mode' && k !== 'out') throw new OptionError(`forward.${k}`, `is not an option of forward (mode, out)`)
  const mode = o.mode ?? 'eval'
  if (mode !== 'train' && mode !== 'eval') throw new OptionError('forward.mode', `must be 'train' or 'eval', got ${describe(mode)}`)
  const list = inputs instanceof Float32Array ? undefined : inputs
  const first = list ? list[0] : inputs
  if (list && (!Array.isArray(list) || list.length === 0)) throw new OptionError('inputs', 'must be a Float32Array or a non-empty array of them (one per graph input)')
  if (!(first instanceof Float32Array)) throw new OptionError('inputs', `must be a Float32Array (or an array of them, one per graph input), got ${describe(first)}`)
  list?.forEach((x, i) => {
    if (!(x instanceof Float32Array)) throw new OptionError(`inputs[${i}]`, `must be a Float32Array, got ${describe(x)}`)
  })
  const rows = rowsOf(first.length, dims.input, 'forward input', dims.inputShape)
  let out = o.out
  if (out !== undefined) {
    if (!(out instanceof Float32Array)) throw new OptionError('forward.out', `must be a Float32Array, got ${describe(out)}`)
    if (out.length !== rows * dims.output) throw new ShapeError(`forward out: ${rows} rows need ${rows * dims.output} values (${dims.output} per row), got ${out.length}`)
  } else {
    if (state.out?.length !== rows * dims.output) state.out = new Float32Array(rows * dims.output)
    out = state.out
  }
  const rest = list && list.length > 1 ? (list.slice(1) as Float32Array[]) : undefined
  if (async) {
    const done = callNative(() => handle.stepForwardAsync(first, mode === 'train', out, rest))
    state.rows = rows
    return awaitNative(done).then(() => out)
  }
  callNative(() => handle.stepForward(first, mode === 'train', out, rest))
  state.rows = rows
  return out
}

/** @internal {@link Net.backward}. */
export function stepBackward(handle: NativeNet, options: BackwardOptions, outputDim: number, async: true): Promise<number | undefined>
export function stepBackward(handle: NativeNet, options: BackwardOptions, outputDim: number, async?: false): number | undefined
export function stepBackward(handle: NativeNet, options: BackwardOptions, outputDim: number, async = false): number | undefined | Promise<number | undefined> {
  if (typeof options !== 'object' || options === null) throw new OptionError('options', `backward needs { loss, targets } or { outputGrad }, got ${describe(options)}`)
  for (const k in options) {
    if (!BACKWARD_KEYS.includes(k)) throw new OptionError(`backward.${k}`, 'is not an option of backward (loss, targets, outputGrad, inputGrad)')
  }
  const inputGrad = options.inputGrad ?? false
  if (typeof inputGrad !== 'boolean') throw new OptionError('backward.inputGrad', `must be a boolean, got ${describe(inputGrad)}`)
  if ((options.loss === undefined) === (options.outputGrad === undefined)) {
    throw new OptionError('backward', 'needs exactly one of { loss, targets } or { outputGrad }')
  }
  if (options.outputGrad !== undefined) {
    if (!(options.outputGrad instanceof Float32Array)) throw new OptionError('backward.outputGrad', `must be a Float32Array, got ${describe(options.outputGrad)}`)
    if (async) return awaitNative(callNative(() => handle.stepBackwardGradAsync(options.outputGrad!, inputGrad))).then(() => undefined)
    callNative(() => handle.stepBackwardGrad(options.outputGrad!, inputGrad))
    return undefined
  }
  const loss = options.loss!
  const type = typeof loss === 'string' ? loss : (loss as { type?: unknown })?.type
  const code = typeof type === 'string' && Object.hasOwn(LOSS_CODES, type) ? LOSS_CODES[type] : undefined
  if (code === undefined) throw new OptionError('backward.loss', `must be one of ${Object.keys(LOSS_CODES).join(', ')} (or a loss options object), got ${describe(type ?? loss)}`)
  let param: number | undefined
  let weights: Float32Array | undefined
  if (typeof loss === 'object') {
    const l = loss as Record<string, unknown>
    param = (l.labelSmoothing ?? l.beta ?? l.delta) as number | undefined
    const w = (l.classWeights ?? l.posWeight) as number | readonly number[] | undefined
    if (w !== undefined) weights = typeof w === 'number' ? new Float32Array(outputDim).fill(w) : Float32Array.from(w)
  }
  const t = options.targets
  if (t === undefined) throw new OptionError('backward.targets', 'is required with loss')
  if (code === 0) {
    const labels = t instanceof Uint32Array ? t : t instanceof Float32Array ? undefined : Uint32Array.from(t as ArrayLike<number>)
    if (!labels) throw new OptionError('backward.targets', 'crossEntropy needs integer class ids (Uint32Array, Uint8Array or number[]), got a Float32Array')
    if (async) return awaitNative(callNative(() => handle.stepBackwardLossAsync(code, param, weights, labels, undefined, inputGrad)))
    return callNative(() => handle.stepBackwardLoss(code, param, weights, labels, undefined, inputGrad))
  }
  if (!(t instanceof Float32Array)) throw new OptionError('backward.targets', `${String(type)} needs float targets (a Float32Array), got ${describe(t)}`)
  if (async) return awaitNative(callNative(() => handle.stepBackwardLossAsync(code, param, weights, undefined, t, inputGrad)))
  return callNative(() => handle.stepBackwardLoss(code, param, weights, undefined, t, inputGrad))
}

/** @internal {@link Net.inputGrad}. */
export function stepInputGrad(handle: NativeNet, state: StepState, options: InputGradOptions | undefined, size: (input: number) => number): Float32Array {
  const o = options ?? {}
  const rows = state.rows
  const input = o.input ?? 0
  if (!Number.isInteger(input) || input < 0) throw new OptionError('inputGrad.input', `must be an input index >= 0, got ${describe(input)}`)
  const n = rows * size(input)
  let out = o.out
  if (out !== undefined) {
    if (!(out instanceof Float32Array)) throw new OptionError('inputGrad.out', `must be a Float32Array, got ${describe(out)}`)
  } else {
    if (state.grads[input]?.length !== n) state.grads[input] = new Float32Array(n)
    out = state.grads[input]!
  }
  callNative(() => handle.stepInputGrad(input, out))
  return out
}

/**
 * An optimizer over one parameter group of one {@link Net} (from {@link Net.optimizer}),
 * for custom loops: {@link Optimizer.step} applies the pending gradients
 * (from {@link Net.backward}); PyTorch's update rules, as a {@link Trainer}'s.
 */
export class Optimizer {
  /** @internal */
  readonly native: NativeStepOptimizer
  /** The options as given. */
  readonly options: Readonly<StepOptimizerOptions>

  /** @internal */
  constructor(net: NativeNet, options: StepOptimizerOptions) {
    if (typeof options !== 'object' || options === null) throw new OptionError('optimizer', `must be an object like { type: 'adam', lr: 2e-4 }, got ${describe(options)}`)
    const { group, ...rest } = options
    if (group !== undefined && (typeof group !== 'string' || group === '')) throw new OptionError('group', `must be a parameter group name, got ${describe(group)}`)
    const o = nativeOptimizer(rest as OptimizerOptions)
    this.options = Object.freeze({ ...options })
    this.native = callNative(() => new native.NativeStepOptimizer(net, o as never, group))
  }

  /**
   * One update of the group's trainable, unfrozen tensors from their gradients
   * (which it does not zero: call {@link Net.zeroGrad}, as in PyTorch).
   * @throws {@link NativeError} `ERR_BUSY` while a fit, evaluate or generate runs on the net.
   */
  step(): void {
    callNative(() => this.native.step())
  }

  /** The learning rate of the following steps (settable). */
  get lr(): number {
    return this.native.lr
  }
  /** Sets the learning rate of the following steps (state kept), a number > 0. */
  set lr(value: number) {
    callNative(() => {
      this.native.lr = value
    })
  }

  /** Steps taken (Adam and AdamW count them; 0 for SGD and RMSprop). */
  get steps(): number {
    return this.native.steps
  }

  /** Bytes of native memory the optimizer's buffers hold. */
  get nativeBytes(): number {
    return this.native.nativeBytes
  }

  /**
   * The optimizer's state as bytes: a safetensors image with one tensor per buffer,
   * `optimizer.<param>.<slot>` (PyTorch's slot names `exp_avg`, `exp_avg_sq`,
   * `momentum_buffer`, …, the parameter's shape), plus the kind, step count and lr
   * in its metadata. Write it anywhere; {@link Optimizer.loadStateBytes} restores it.
   */
  get stateBytes(): Uint8Array {
    return callNative(() => this.native.stateBytes())
  }

  /**
   * Restores a state from {@link Optimizer.stateBytes} of an optimizer of the same
   * type on a net with the same tensors: the next step continues exactly.
   * @throws {@link ModelFileError} for bytes that do not fit.
   */
  loadStateBytes(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) throw new OptionError('bytes', `must be a Uint8Array from optimizer.stateBytes, got ${describe(bytes)}`)
    callNative(() => this.native.loadStateBytes(bytes))
  }
}
