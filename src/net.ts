/**
 * `Net`: a feed-forward network whose weights live in the Rust core. Build it with
 * {@link Net.sequential}; train it with a {@link Trainer}; call {@link Net.predict}.
 */

import { Dataset } from './dataset.js'
import { OptionError, ShapeError } from './errors.js'
import { callNative, native, type NativeNet } from './native.js'
import { integerInRange } from './validate.js'

/** A fully connected layer with `units` outputs (PyTorch's `nn.Linear`, same init). */
export interface DenseSpec {
  readonly kind: 'dense'
  readonly units: number
}

/** Rectified linear activation, `max(x, 0)`. */
export interface ReluSpec {
  readonly kind: 'relu'
}

/** One layer of a sequential network. */
export type LayerSpec = DenseSpec | ReluSpec

/** Options of {@link Net.sequential}. */
export interface NetOptions {
  /**
   * Seed of the weight initialisation, a safe integer >= 0 (default `0`). With the
   * same seed, build and thread count, two nets are identical bit for bit. It is
   * also the default shuffle seed of a {@link Trainer} on this net.
   */
  seed?: number
}

/** A named parameter tensor, PyTorch layout: `"0.weight"` is `[out, in]`, `"0.bias"` is `[out]`. */
export interface Parameter {
  readonly name: string
  readonly shape: readonly number[]
  readonly data: Float32Array
}

/** Inputs to {@link Net.predict}: a dataset, f32 features or u8 pixels (scaled by 1/255, as in training). */
export type PredictInput = Dataset | Float32Array | Uint8Array

export class Net {
  /** @internal */
  readonly native: NativeNet

  private constructor(handle: NativeNet) {
    this.native = handle
  }

  /**
   * Builds a network of `layers` applied in order to inputs of width `inputDim`.
   *
   * ```ts
   * const net = Net.sequential(784, [Net.dense(500), Net.relu(), Net.dense(10)], { seed: 0 })
   * ```
   */
  static sequential(inputDim: number, layers: readonly LayerSpec[], options: NetOptions = {}): Net {
    integerInRange('inputDim', inputDim, 1, 2 ** 31 - 1)
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new OptionError('layers', 'must be a non-empty array of layers, e.g. [Net.dense(10)]')
    }
    layers.forEach((layer, i) => {
      if (layer?.kind === 'dense') integerInRange(`layers[${i}].units`, layer.units, 1, 2 ** 31 - 1)
      else if (layer?.kind !== 'relu') throw new OptionError(`layers[${i}].kind`, `must be "dense" or "relu", got ${JSON.stringify((layer as { kind?: unknown })?.kind)}`)
    })
    if (!layers.some((l) => l.kind === 'dense')) throw new OptionError('layers', 'needs at least one dense layer')
    const seed = integerInRange('seed', options.seed ?? 0, 0)
    const specs = layers.map((l) => (l.kind === 'dense' ? { kind: 'dense', units: l.units } : { kind: 'relu' }))
    return new Net(callNative(() => native.NativeNet.sequential(inputDim, specs, seed)))
  }

  /** A dense (fully connected) layer with `units` outputs. */
  static dense(units: number): DenseSpec {
    return { kind: 'dense', units }
  }

  /** A ReLU activation. */
  static relu(): ReluSpec {
    return { kind: 'relu' }
  }

  /** Width of one input sample. */
  get inputDim(): number {
    return callNative(() => this.native.inputDim)
  }

  /** Number of outputs (logits) per sample. */
  get outputDim(): number {
    return callNative(() => this.native.outputDim)
  }

  /** The layers, as given to {@link Net.sequential}. */
  get layers(): readonly LayerSpec[] {
    return callNative(() => this.native.layers).map((l) => (l.kind === 'dense' ? Net.dense(l.units ?? 0) : Net.relu()))
  }

  /** The initialisation seed. */
  get seed(): number {
    return callNative(() => this.native.seed)
  }

  /** Total number of scalar parameters. */
  get parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.data.length, 0)
  }

  /**
   * Logits for a batch, row-major `[rows, outputDim]`. Synchronous: meant for
   * batches up to a few thousand rows. Throws `ERR_BUSY` while a `fit` runs on this net.
   */
  predict(inputs: PredictInput): Float32Array {
    const { data, kind } = this.checkInputs(inputs)
    return callNative(() => (kind === 'pixels' ? this.native.predictPixels(data as Uint8Array) : this.native.predict(data as Float32Array)))
  }

  /** The most likely class of each row (argmax of the logits). */
  predictClasses(inputs: PredictInput): Uint32Array {
    const logits = this.predict(inputs)
    const classes = this.outputDim
    const out = new Uint32Array(logits.length / classes)
    for (let r = 0; r < out.length; r++) {
      let best = 0
      for (let c = 1; c < classes; c++) if (logits[r * classes + c]! > logits[r * classes + best]!) best = c
      out[r] = best
    }
    return out
  }

  /** Copies of the parameter tensors, in layer order (weight, then bias, per dense layer). */
  parameters(): Parameter[] {
    return callNative(() => this.native.parameters())
  }

  /** Gradients of the last training step, in {@link Net.parameters} order. */
  gradients(): Float32Array[] {
    return callNative(() => this.native.gradients())
  }

  /** Overwrites every parameter tensor, in {@link Net.parameters} order; lengths must match. */
  setParameters(values: readonly (Float32Array | Parameter)[]): void {
    const current = this.parameters()
    if (values.length !== current.length) {
      throw new ShapeError(`setParameters: expected ${current.length} tensors (${current.map((p) => p.name).join(', ')}), got ${values.length}`)
    }
    values.forEach((v, i) => {
      const data = v instanceof Float32Array ? v : v.data
      const expected = current[i]!
      if (!(data instanceof Float32Array) || data.length !== expected.data.length) {
        throw new ShapeError(`setParameters: ${expected.name} needs a Float32Array of ${expected.data.length} values [${expected.shape.join(', ')}], got ${data instanceof Float32Array ? data.length + ' values' : 'something else'}`)
      }
    })
    values.forEach((v, i) => callNative(() => this.native.setParameter(i, v instanceof Float32Array ? v : v.data)))
  }

  private checkInputs(inputs: PredictInput): { data: Float32Array | Uint8Array; kind: 'pixels' | 'features' } {
    const dim = this.inputDim
    let data: Float32Array | Uint8Array
    if (inputs instanceof Dataset) {
      if (inputs.inputDim !== dim) throw new ShapeError(`predict: dataset samples have ${inputs.inputDim} values (shape [${inputs.sampleShape.join(', ')}]) but the network takes ${dim}`)
      data = inputs.inputs
    } else if (inputs instanceof Float32Array || inputs instanceof Uint8Array) {
      data = inputs
    } else {
      throw new OptionError('inputs', 'must be a Dataset, a Float32Array of features or a Uint8Array of pixels')
    }
    if (data.length === 0 || data.length % dim !== 0) {
      throw new ShapeError(`predict: input has ${data.length} values, not a positive multiple of the network's input width ${dim}`)
    }
    return { data, kind: data instanceof Uint8Array ? 'pixels' : 'features' }
  }
}
