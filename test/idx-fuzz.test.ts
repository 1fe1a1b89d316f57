// The quick part of the IDX fuzzer (docs/fuzzing.md; the long run is scripts/fuzz-idx.mts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { fuzzIdx } from './helpers/idx-fuzz.js'
import { makeTempDir, removeTempDir } from './helpers/idx.js'

describe('IDX fuzzing (quick)', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir()
  })
  afterAll(async () => {
    await removeTempDir(dir)
  })

  it('parses 10⁴ mutated files to consistent arrays or IdxFormatError', async () => {
    const r = await fuzzIdx({ target: 'parse', iterations: 10_000, seed: 7 })
    expect(r.failures).toEqual([])
    expect(r.parsed).toBeGreaterThan(0)
    expect(r.rejected).toBeGreaterThan(0)
  })

  it('reads 2·10³ mutated (often gzipped) files to their bytes or IdxFormatError', async () => {
    const r = await fuzzIdx({ target: 'readIdxFile', iterations: 2_000, seed: 7, dir })
    expect(r.failures).toEqual([])
    expect(r.parsed).toBeGreaterThan(0)
    expect(r.rejected).toBeGreaterThan(0)
  })
})
