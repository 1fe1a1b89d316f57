/**
 * Generation for language models: {@link Net.generate}.
 * @module
 */

import { OptionError } from './errors.js'
import { awaitNative, callNative } from './native.js'
import type { Net } from './net.js'
import { describe, integerInRange } from './validate.js'

/** Options of {@link Net.generate}. */
export interface GenerateOptions {
  /** New tokens to sample, an integer >= 0 (required). */
  maxNewTokens: number
  /** Softmax temperature, >= 0, default `1`; `0` takes the argmax (greedy decoding). */
  temperature?: number
  /** Sample only among the `topK` largest logits; `0` (default) = all. */
  topK?: number
  /** Seed of the sampling stream, a safe integer >= 0 (default `0`): the same seed gives the same ids. */
  seed?: number
  /** Worker threads for the forward passes; `0` (default) uses every core. */
  threads?: number
}

/** What {@link Net.generate} resolves with. */
export interface Generation {
  /** The prompt followed by the new ids. */
  readonly ids: Uint32Array
  /** The new ids alone (a view into `ids`). */
  readonly newIds: Uint32Array
  /** Seconds the native call took. */
  readonly seconds: number
  /** New tokens per second. */
  readonly tokensPerSecond: number
}

/**
 * Samples `maxNewTokens` ids after `promptIds` from `net`, a language model whose
 * input is `[T]` token ids (as f32, what an `Embedding` layer reads; `[T, 1]` is
 * taken too) and whose output is `[T, V]` logits. Each step feeds the last `T` ids;
 * a shorter context is right-padded with id 0 and the logits at its last position are
 * used, which is exact only for a CAUSAL model (position n−1 never sees the padding
 * after it: causal attention, RNNs, position-wise layers). The next id is drawn from
 * softmax(logits / temperature) restricted to the `topK` largest, from a stream
 * seeded by `seed`: deterministic per seed, for any thread count. Runs in eval mode,
 * in one native call off the JS thread (the net is busy meanwhile: `ERR_BUSY`).
 * @throws {@link OptionError} for a net that is not `[T] → [T, V]`, an empty prompt,
 *   an id past the vocabulary, a bad option.
 */
export async function generate(net: Net, promptIds: ArrayLike<number>, options: GenerateOptions): Promise<Generation> {
  if (typeof options !== 'object' || options === null) throw new OptionError('options', `must be { maxNewTokens, temperature?, topK?, seed? }, got ${describe(options)}`)
  for (const k of Object.keys(options)) {
    if (!['maxNewTokens', 'temperature', 'topK', 'seed', 'threads'].includes(k)) throw new OptionError(`generate.${k}`, 'is not an option of generate (maxNewTokens, temperature, topK, seed, threads)')
  }
  if (promptIds === null || typeof promptIds !== 'object' || typeof promptIds.length !== 'number') throw new OptionError('promptIds', `must be an array of token ids, got ${describe(promptIds)}`)
  const prompt = new Uint32Array(promptIds.length)
  for (let i = 0; i < prompt.length; i++) {
    const v = promptIds[i]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) throw new OptionError(`promptIds[${i}]`, `must be an integer token id >= 0, got ${describe(v)}`)
    prompt[i] = v
  }
  const maxNew = integerInRange('maxNewTokens', options.maxNewTokens, 0, 2 ** 31 - 1)
  const temperature = options.temperature ?? 1
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new OptionError('temperature', `must be a finite number >= 0, got ${describe(temperature)}`)
  const topK = integerInRange('topK', options.topK ?? 0, 0, 2 ** 31 - 1)
  const seed = integerInRange('seed', options.seed ?? 0, 0)
  const threads = integerInRange('threads', options.threads ?? 0, 0, 1024)
  const r = await awaitNative(callNative(() => net.native.generate(prompt, maxNew, temperature, topK, seed, threads)))
  return Object.freeze({ ids: r.ids, newIds: r.ids.subarray(prompt.length), seconds: r.seconds, tokensPerSecond: maxNew / Math.max(r.seconds, 1e-9) })
}
