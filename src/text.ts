/**
 * Text for language models: a character-level tokenizer, the corpus of Debian's
 * `fortunes` package (about 2.6 MB of English quotations), and nanoGPT-style batches
 * of random windows (inputs are ids as f32, labels the ids one step later). Exported
 * from the package as the `text` namespace, e.g. `text.loadFortunes()`.
 *
 * @module text
 */

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { OptionError } from './errors.js'
import { createRandom, type Random } from './random.js'

/** Where Debian's `fortunes` package (`apt install fortunes`) puts its text files. */
export const FORTUNES_DIR = '/usr/share/games/fortunes'

/**
 * Characters to ids and back: the vocabulary is the sorted set of characters
 * (UTF-16 code units' code points) of the text it was built from.
 */
export class CharTokenizer {
  /** The vocabulary, in id order. */
  readonly chars: readonly string[]
  private readonly ids: Map<string, number>

  private constructor(chars: readonly string[]) {
    this.chars = Object.freeze([...chars])
    this.ids = new Map(chars.map((c, i) => [c, i]))
  }

  /** The tokenizer of every character that occurs in `text`. */
  static fromText(text: string): CharTokenizer {
    if (typeof text !== 'string' || text.length === 0) throw new OptionError('text', 'must be a non-empty string')
    return new CharTokenizer([...new Set(Array.from(text))].sort())
  }

  /** A tokenizer from its {@link CharTokenizer.toJSON} form (e.g. kept in a model file's metadata). */
  static fromJSON(json: string): CharTokenizer {
    let chars: unknown
    try {
      chars = JSON.parse(json)
    } catch (e) {
      throw new OptionError('json', `is not JSON: ${(e as Error).message}`)
    }
    if (!Array.isArray(chars) || chars.length === 0 || !chars.every((c) => typeof c === 'string')) {
      throw new OptionError('json', 'must be a JSON array of the vocabulary\'s characters')
    }
    if (new Set(chars).size !== chars.length) throw new OptionError('json', 'has a character twice')
    return new CharTokenizer(chars as string[])
  }

  /** Number of ids. */
  get vocabSize(): number {
    return this.chars.length
  }

  /**
   * The ids of `text`; a character outside the vocabulary is an OptionError naming it
   * and its position.
   */
  encode(text: string): Uint32Array {
    const chars = Array.from(text)
    const out = new Uint32Array(chars.length)
    chars.forEach((c, i) => {
      const id = this.ids.get(c)
      if (id === undefined) throw new OptionError(`text[${i}]`, `character ${JSON.stringify(c)} is not in the vocabulary of ${this.vocabSize}`)
      out[i] = id
    })
    return out
  }

  /** The text of `ids`; an id outside the vocabulary is an OptionError naming its index. */
  decode(ids: ArrayLike<number>): string {
    let s = ''
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]!]
      if (c === undefined) throw new OptionError(`ids[${i}]`, `${ids[i]} is not an id of this vocabulary (0..${this.vocabSize - 1})`)
      s += c
    }
    return s
  }

  /** The vocabulary as JSON (see {@link CharTokenizer.fromJSON}). */
  toJSON(): string {
    return JSON.stringify(this.chars)
  }
}

/**
 * The text of Debian's `fortunes` package: every plain-text file of `dir` (not the
 * `.dat` indexes, not the `.u8` links), in name order, concatenated.
 * @throws {@link OptionError} (`dir`) when the package is not installed, with the command that installs it.
 */
export function loadFortunes(dir: string = FORTUNES_DIR): string {
  let names: string[]
  try {
    names = readdirSync(dir).sort()
  } catch {
    throw new OptionError('dir', `${dir} cannot be read: install Debian's fortunes package (sudo apt-get install fortunes) or pass the folder of its text files`)
  }
  const parts: string[] = []
  for (const name of names) {
    if (name.includes('.')) continue
    const path = join(dir, name)
    if (!statSync(path).isFile()) continue
    parts.push(readFileSync(path, 'latin1'))
  }
  if (parts.length === 0) throw new OptionError('dir', `${dir} holds no text files`)
  return parts.join('')
}

/** Train and validation ids: the last `validation` fraction held out, as nanoGPT does. */
export function splitIds(ids: Uint32Array, validation = 0.1): TextSplit {
  if (!(validation > 0 && validation < 1)) throw new OptionError('validation', `must be in (0, 1), got ${validation}`)
  const n = Math.floor(ids.length * (1 - validation))
  return { train: ids.subarray(0, n), val: ids.subarray(n) }
}

/** The two parts of {@link splitIds}. */
export interface TextSplit {
  /** The first `1 − validation` of the ids (views, not copies). */
  readonly train: Uint32Array
  /** The last `validation` of the ids. */
  readonly val: Uint32Array
}

/** A batch of windows: inputs [batch, context] ids as f32, labels the next ids [batch × context]. */
export interface TextBatch {
  /** The windows' ids as f32 (what an Embedding reads), `batch × context`. */
  readonly inputs: Float32Array
  /** Each position's next id, `batch × context` (one label per position). */
  readonly labels: Uint32Array
}

/**
 * Draws batches of `batch` windows of `context` ids at seeded random offsets of `ids`
 * (nanoGPT's `get_batch`); the buffers are reused by every call.
 */
export function windowSampler(ids: Uint32Array, batch: number, context: number, seed: number): () => TextBatch {
  if (!Number.isInteger(batch) || batch < 1) throw new OptionError('batch', `must be an integer >= 1, got ${batch}`)
  if (!Number.isInteger(context) || context < 1) throw new OptionError('context', `must be an integer >= 1, got ${context}`)
  if (ids.length <= context) throw new OptionError('ids', `needs more than context (${context}) ids, got ${ids.length}`)
  const rng: Random = createRandom(seed)
  const inputs = new Float32Array(batch * context)
  const labels = new Uint32Array(batch * context)
  return () => {
    for (let b = 0; b < batch; b++) copyWindow(ids, rng.nextInt(ids.length - context), context, inputs, labels, b)
    return { inputs, labels }
  }
}

/**
 * `count` windows of `context` ids spread evenly over `ids` (window k starts at
 * ⌊k·(n − context − 1)/(count − 1)⌋), in batches of `batch`: a validation set that is
 * the same for every run and every framework (bench/torch/gpt_fortunes.py uses the
 * same formula), so validation losses compare without sampling noise.
 */
export function evenWindows(ids: Uint32Array, count: number, batch: number, context: number): TextBatch[] {
  if (!Number.isInteger(count) || count < 2) throw new OptionError('count', `must be an integer >= 2, got ${count}`)
  if (!Number.isInteger(batch) || batch < 1 || count % batch !== 0) throw new OptionError('batch', `must be an integer >= 1 that divides count (${count}), got ${batch}`)
  if (ids.length <= context + 1) throw new OptionError('ids', `needs more than context + 1 (${context + 1}) ids, got ${ids.length}`)
  const out: TextBatch[] = []
  for (let b = 0; b < count / batch; b++) {
    const inputs = new Float32Array(batch * context)
    const labels = new Uint32Array(batch * context)
    for (let w = 0; w < batch; w++) {
      const k = b * batch + w
      copyWindow(ids, Math.floor((k * (ids.length - context - 1)) / (count - 1)), context, inputs, labels, w)
    }
    out.push({ inputs, labels })
  }
  return out
}

/** Window `row` of a batch: `context` ids from `start` as inputs, each one's next id as its label. */
function copyWindow(ids: Uint32Array, start: number, context: number, inputs: Float32Array, labels: Uint32Array, row: number): void {
  for (let t = 0; t < context; t++) {
    inputs[row * context + t] = ids[start + t]!
    labels[row * context + t] = ids[start + t + 1]!
  }
}
