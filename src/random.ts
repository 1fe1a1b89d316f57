/**
 * A small seeded pseudo-random number generator for reproducible data handling
 * (shuffled splits). It is not cryptographic; it exists so that the same seed gives
 * the same split on every machine and Node version, which `Math.random` cannot.
 */

import { OptionError } from './errors.js'

/** A deterministic stream of pseudo-random numbers. Create one with {@link createRandom}. */
export interface Random {
  /** The next value as an unsigned 32-bit integer in `[0, 2^32)`. */
  nextUint32(): number
  /** The next value as a float in `[0, 1)` with 32 bits of randomness. */
  nextFloat(): number
  /**
   * The next value as an integer in `[0, bound)`.
   * @param bound - Exclusive upper limit; an integer in `1..2^32`.
   */
  nextInt(bound: number): number
}

const TWO_POW_32 = 0x1_0000_0000

/**
 * Creates a generator seeded with `seed`, using mulberry32 (Tommy Ettinger's 32-bit
 * generator: one 32-bit state word, period 2^32). It is tiny, fast and statistically
 * good enough for shuffling datasets.
 *
 * @param seed - Any safe integer. Only its low 32 bits are used (`seed >>> 0`), so
 *   seeds that differ by a multiple of 2^32 give the same stream.
 * @throws {@link OptionError} (`seed`) when `seed` is not a safe integer.
 */
export function createRandom(seed: number): Random {
  if (!Number.isSafeInteger(seed)) {
    throw new OptionError('seed', `expected an integer, got ${String(seed)}`)
  }
  let state = seed >>> 0
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) | 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  return {
    nextUint32,
    nextFloat: () => nextUint32() / TWO_POW_32,
    nextInt: (bound: number) => {
      if (!Number.isInteger(bound) || bound < 1 || bound > TWO_POW_32) {
        throw new OptionError('bound', `expected an integer in 1..2^32, got ${String(bound)}`)
      }
      // Scaling (rather than `%`) keeps the bias below bound / 2^32, negligible for dataset sizes.
      return Math.floor((nextUint32() / TWO_POW_32) * bound)
    },
  }
}

/**
 * Shuffles `array` in place with the Fisher–Yates algorithm, drawing from `random`.
 * Every permutation is (up to the generator's quality) equally likely.
 *
 * @param array - Any mutable array-like, e.g. a `number[]` or a `Uint32Array`.
 * @param random - The generator to draw from; it advances by `array.length - 1` draws.
 * @returns The same `array`, for chaining.
 */
export function shuffleInPlace<T extends { length: number; [index: number]: unknown }>(
  array: T,
  random: Random,
): T {
  for (let i = array.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1)
    const held = array[i]
    array[i] = array[j]
    array[j] = held
  }
  return array
}

/**
 * A random permutation of `0, 1, …, n - 1`.
 *
 * @param n - Length of the permutation; a non-negative integer below 2^32.
 * @param random - The generator to draw from.
 * @throws {@link OptionError} (`n`) when `n` is not such an integer.
 */
export function permutation(n: number, random: Random): Uint32Array {
  if (!Number.isInteger(n) || n < 0 || n >= TWO_POW_32) {
    throw new OptionError('n', `expected a non-negative integer below 2^32, got ${String(n)}`)
  }
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  return shuffleInPlace(order, random)
}

/**
 * `n` samples of the standard normal N(0, 1) as a `Float32Array`, seeded (Box–Muller on
 * {@link createRandom}'s stream): the same seed gives the same numbers everywhere. For
 * sampling a VAE's prior, `decoder.predict(randomNormal(64 * latent, { seed: 1 }))`.
 *
 * @param n - How many numbers; a non-negative integer.
 * @param options - `seed` (default `0`), or `random`: a generator to draw from instead.
 * @throws {@link OptionError} (`n`, `seed`) for a bad count or seed.
 */
export function randomNormal(n: number, options: { seed?: number; random?: Random } = {}): Float32Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new OptionError('n', `expected a non-negative integer, got ${String(n)}`)
  const random = options.random ?? createRandom(options.seed ?? 0)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    // u1 in (0, 1]: the log stays finite.
    const u1 = 1 - random.nextFloat()
    const u2 = random.nextFloat()
    const r = Math.sqrt(-2 * Math.log(u1))
    out[i] = r * Math.cos(2 * Math.PI * u2)
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2)
  }
  return out
}
