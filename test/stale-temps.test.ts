/**
 * A process killed mid-save leaves its temporary file (`.<name>.<pid>-<n>.tmp`): the
 * next successful save of the same target removes those of processes that no longer
 * run, and leaves a live writer's and other targets' alone. Saves are byte-reproducible.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Net, writeFileAtomic } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'ferronet-stale-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
// Past Linux's pid_max (2^22): no process has this pid.
const DEAD = 4194304

describe.skipIf(!existsSync('/proc/self'))('stale temporaries', () => {
  it('Net.save and writeFileAtomic remove a killed writer\'s leftover of the same target only', async () => {
    for (const [target, save] of [
      ['m.safetensors', (p: string) => Net.sequential([4], [Net.dense(3)], { seed: 1 }).save(p)],
      ['m.onnx', (p: string) => writeFileAtomic(p, 'bytes')],
    ] as const) {
      const dead = join(dir, `.${target}.${DEAD}-0.tmp`)
      const live = join(dir, `.${target}.${process.pid}-77.tmp`)
      const other = join(dir, `.other.${DEAD}-0.tmp`)
      for (const f of [dead, live, other]) writeFileSync(f, 'half a file')
      await save(join(dir, target))
      expect(existsSync(dead), `${target}: the dead writer's temporary`).toBe(false)
      expect(existsSync(live), `${target}: a live writer's temporary`).toBe(true)
      expect(existsSync(other), `${target}: another target's temporary`).toBe(true)
    }
  })

  it('saving the same net twice writes the same bytes', async () => {
    const net = Net.sequential([4], [Net.dense(3)], { seed: 1 })
    const [a, b] = [join(dir, 'a.safetensors'), join(dir, 'b.safetensors')]
    await net.save(a, { metadata: { x: '1', y: '2', z: '3' } })
    await net.save(b, { metadata: { x: '1', y: '2', z: '3' } })
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true)
  })
})
