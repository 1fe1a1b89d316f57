/** What the CLI commands share: flag parsing that names the flag, and what a model file says about its inputs. */

import { readFileSync } from 'node:fs'
import { OptionError } from '../errors.js'
import type { ImagePreprocess } from '../image.js'
import type { Net } from '../net.js'
import { outputKindOf, probabilities } from '../probabilities.js'

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** A number flag: `fallback` when absent, else a finite number (an integer if asked) in [min, max]. */
export function numberFlag(flag: string, text: string | undefined, fallback: number, integer: boolean, min = -Infinity, max = Infinity): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new OptionError(flag, `expected ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(text)}`)
  }
  if (value < min || value > max) {
    throw new OptionError(flag, `must be ${max === Infinity ? `>= ${min}` : `in ${min}..${max}`}, got ${value}`)
  }
  return value
}

export function choiceFlag<T extends string>(flag: string, text: string | undefined, choices: readonly T[]): T {
  const value = text ?? choices[0]!
  if (!(choices as readonly string[]).includes(value)) throw new OptionError(flag, `must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`)
  return value as T
}

/** Metadata keys `ferronet train --save` writes, read back by predict and serve. */
export const META = { classNames: 'classNames', preprocess: 'input.preprocess', dataset: 'dataset' } as const

/** Class names stored in a model file's metadata, if any. */
export function classNamesOf(net: Net): string[] | undefined {
  const text = net.metadata[META.classNames]
  if (text === undefined) return undefined
  try {
    const names = JSON.parse(text) as unknown
    if (Array.isArray(names) && names.length === net.outputDim && names.every((n) => typeof n === 'string')) return names as string[]
  } catch {
    // A malformed entry only costs the labels.
  }
  return undefined
}

/** How images should become inputs for this net: the file's choice, else the default for its input shape. */
export function preprocessOf(net: Net, flag: string | undefined): ImagePreprocess | undefined {
  if (flag !== undefined) return choiceFlag('--preprocess', flag, ['mnist', 'resize'] as const)
  const saved = net.metadata[META.preprocess]
  return saved === 'mnist' || saved === 'resize' ? saved : undefined
}

/** Class probabilities of one row of the net's outputs (see `src/probabilities.ts`). */
export function probabilitiesOf(net: Net, row: Float32Array): Float64Array {
  return probabilities(row, outputKindOf(net.spec))
}

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
export const DIGIT_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
