/** Option checks shared by the API: each throws an OptionError naming the field. */

import { OptionError } from './errors.js'

export function integerInRange(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`
    throw new OptionError(field, `must be an integer ${range}, got ${describe(value)}`)
  }
  return value
}

export function positiveNumber(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new OptionError(field, `must be a finite number > 0, got ${describe(value)}`)
  }
  return value
}

export function nonNegativeNumber(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new OptionError(field, `must be a finite number >= 0, got ${describe(value)}`)
  }
  return value
}

export function unitInterval(field: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new OptionError(field, `must be a number in [0, 1), got ${describe(value)}`)
  }
  return value
}

export function boolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new OptionError(field, `must be true or false, got ${describe(value)}`)
  return value
}

export function oneOf<T extends string>(field: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new OptionError(field, `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${describe(value)}`)
  }
  return value as T
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  if (Array.isArray(value)) return `an array of length ${value.length}`
  return `a ${(value as object).constructor?.name ?? typeof value}`
}

/** A file path: a non-empty string without NUL bytes. */
export function filePath(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw new OptionError(field, `must be a file path (a non-empty string), got ${describe(value)}`)
  }
  return value
}

/** Header keys ferronet writes itself; the rest of a file's `__metadata__` is the user's. */
export function isReservedKey(key: string): boolean {
  return key === 'format' || key.startsWith('ferronet.') || key.startsWith('trainer.')
}

/** String metadata for a file's header: an object of string values. */
export function stringRecord(field: string, value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OptionError(field, `must be an object of strings, got ${describe(value)}`)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new OptionError(`${field}.${k}`, `must be a string, got ${describe(v)}`)
    if (isReservedKey(k)) throw new OptionError(`${field}.${k}`, 'is reserved (ferronet writes `format`, `ferronet.*` and `trainer.*`)')
    out[k] = v
  }
  return out
}

/** Edit distance (insertions, deletions, substitutions), case-insensitive. */
function distance(a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]!
}

/** The valid name closest to `name`, if one is close enough to be what was meant. */
export function closest(name: string, valid: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const v of valid) {
    const d = v.toLowerCase().startsWith(name.toLowerCase()) || name.toLowerCase().startsWith(v.toLowerCase()) ? 1 : distance(name, v)
    if (d < bestDistance) [best, bestDistance] = [v, d]
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

/**
 * The error for an option name that is not one of `valid`: it names the option and
 * the closest valid one (`{ epoch: 5 }` → "did you mean `epochs`?"), then lists them all.
 */
export function unknownOption(field: string, name: string, valid: readonly string[]): OptionError {
  const guess = closest(name, valid)
  const list = valid.length ? ` (options: ${valid.join(', ')})` : ''
  return new OptionError(field, `is not an option here${guess ? `; did you mean \`${guess}\`?` : ''}${list}`)
}
