/**
 * The text helpers of language models: the character tokenizer (round trip, errors
 * naming the character and position), the fortunes corpus, window batches.
 */
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { OptionError, text } from '../src/index.js'

describe('text', () => {
  it('CharTokenizer encodes, decodes and round-trips through JSON', () => {
    const tok = text.CharTokenizer.fromText('hello, world\n')
    expect(tok.chars.join('')).toBe('\n ,dehlorw')
    const ids = tok.encode('hold\n')
    expect(tok.decode(ids)).toBe('hold\n')
    expect(text.CharTokenizer.fromJSON(tok.toJSON()).encode('world')).toEqual(tok.encode('world'))
    expect(() => tok.encode('hex')).toThrow(OptionError)
    expect(() => tok.encode('hex')).toThrow(/text\[2\].*"x"/)
    expect(() => tok.decode([0, 99])).toThrow(/ids\[1\].*99/)
    expect(() => text.CharTokenizer.fromJSON('["a","a"]')).toThrow(/twice/)
  })

  it.skipIf(!existsSync(text.FORTUNES_DIR))('loads the fortunes corpus and draws windows whose labels are the next ids', () => {
    const corpus = text.loadFortunes()
    expect(corpus.length).toBeGreaterThan(2_000_000)
    const tok = text.CharTokenizer.fromText(corpus)
    const ids = tok.encode(corpus)
    const { train, val } = text.splitIds(ids)
    expect(train.length + val.length).toBe(ids.length)
    expect(val.length / ids.length).toBeCloseTo(0.1, 3)
    const next = text.windowSampler(train, 4, 16, 3)
    const { inputs, labels } = next()
    for (let b = 0; b < 4; b++) {
      for (let t = 0; t < 15; t++) expect(labels[b * 16 + t]).toBe(inputs[b * 16 + t + 1])
    }
    // Seeded: the same seed draws the same windows.
    const again = text.windowSampler(train, 4, 16, 3)()
    expect(again.inputs).toEqual(inputs)
    expect(() => text.loadFortunes('/nonexistent')).toThrow(/apt-get install fortunes/)
    // Evenly spread validation windows: the first starts at 0, the last ends at the end.
    const even = text.evenWindows(val, 6, 3, 16)
    expect(even).toHaveLength(2)
    expect(even[0]!.inputs[0]).toBe(val[0])
    expect(even[1]!.labels[2 * 16 + 15]).toBe(val[val.length - 1])
    expect(() => text.evenWindows(val, 6, 4, 16)).toThrow(/divides count/)
  })
})
