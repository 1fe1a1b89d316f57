// The long IDX fuzz run (docs/fuzzing.md):
//   node_modules/.bin/tsx scripts/fuzz-idx.mts [iterations=1000000] [target=parse|readIdxFile|all] [seed=1] [start=0]
// Exits 1 on any failure (each is listed with its input index; replay one with
// iterations=1 start=<index>).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { fuzzIdx, type IdxFuzzTarget } from '../test/helpers/idx-fuzz.js'

const [iterations = '1000000', which = 'all', seed = '1', start = '0'] = process.argv.slice(2)
const targets: IdxFuzzTarget[] = which === 'all' ? ['parse', 'readIdxFile'] : [which as IdxFuzzTarget]
const dir = await mkdtemp(join(tmpdir(), 'ferronet-idx-fuzz-'))
let failed = 0
for (const target of targets) {
  const r = await fuzzIdx({ target, iterations: Number(iterations), seed: Number(seed), start: Number(start), dir, log: console.error })
  failed += r.failures.length
  console.log(
    `${target}: DONE ${r.inputs} inputs in ${(r.elapsedMs / 1000).toFixed(1)} s: parsed ${r.parsed}, rejected (IdxFormatError) ${r.rejected}, ` +
      `failures ${r.failures.length}, slowest ${r.slowestMs.toFixed(1)} ms, max arrayBuffers growth ${(r.maxArrayBufferGrowth / 2 ** 20).toFixed(1)} MiB`,
  )
}
await rm(dir, { recursive: true, force: true })
process.exit(failed === 0 ? 0 : 1)
