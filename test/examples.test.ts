/**
 * The examples in examples/ run as a user runs them (node, against dist/) and beat the
 * trivial predictor on held-out real digits.
 */

import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

function run(script: string, ...args: string[]): Record<string, number> {
  const out = execFileSync(process.execPath, [`examples/${script}`, ...args, '--json'], { encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').at(-1)!)
}

describe('examples', () => {
  it('regression.mjs: held-out MSE well below predicting the mean', () => {
    const r = run('regression.mjs', '--epochs', '3')
    expect(r.testMse).toBeLessThan(r.baselineMse! * 0.5)
    expect(r.testMae).toBeGreaterThan(0)
  })

  it('multilabel.mjs: per-label accuracy well above the majority answers', () => {
    const r = run('multilabel.mjs', '--epochs', '2')
    expect(r.testLabelAccuracy).toBeGreaterThan(Math.max(0.9, r.baselineLabelAccuracy! + 0.2))
  })
})
