#!/usr/bin/env node
/**
 * Installs the packed tarballs (npm run pack:all -> pack/) into an empty project, the way a
 * user would get them from the registry, and trains a tiny net there (XOR, 2-8-2), checking
 * that the binding came from this platform's package and that training lowered the loss.
 * Uses only Node built-ins, so it runs in a bare node:20-slim / node:20-alpine container.
 *
 * Usage: node scripts/smoke-install.mjs [PACK_DIR]   (default: pack/)
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const packDir = resolve(process.argv[2] ?? 'pack')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const musl = process.platform === 'linux' && !process.report.getReport().header.glibcVersionRuntime
const abi = `${process.platform}-${process.arch}${process.platform === 'linux' ? (musl ? '-musl' : '-gnu') : process.platform === 'win32' ? '-msvc' : ''}`

const tarballs = readdirSync(packDir).filter((f) => f.endsWith('.tgz'))
const root = tarballs.find((f) => /^ferronet-\d/.test(f))
const platform = tarballs.find((f) => f.startsWith(`ferronet-${abi}-`))
if (!root || !platform) {
  console.error(`smoke-install: need ferronet-<v>.tgz and ferronet-${abi}-<v>.tgz in ${packDir}; found ${tarballs.join(', ') || 'nothing'}`)
  process.exit(1)
}

// The app depends on the root tarball only, as a user depends on `ferronet`; npm then picks the
// platform package from the root's optionalDependencies by os/cpu/libc, as it would from the
// registry. Before a release those are not on the registry yet, so `overrides` points every one
// at its tarball here (npm reads each tarball's manifest and skips the other platforms').
const overrides = {}
for (const file of tarballs) {
  const name = file.match(/^(ferronet-[a-z0-9]+-[a-z0-9]+(?:-[a-z]+)?)-\d/)?.[1]
  if (name) overrides[name] = `file:${join(packDir, file).replace(/\\/g, "/")}`
}
const app = mkdtempSync(join(tmpdir(), 'ferronet-smoke-'))
writeFileSync(
  join(app, 'package.json'),
  JSON.stringify(
    { name: 'smoke', version: '1.0.0', private: true, type: 'module', dependencies: { ferronet: `file:${join(packDir, root).replace(/\\/g, "/")}` }, overrides },
    null,
    2,
  ),
)
console.error(`smoke-install: ${abi}: installing ${root} (platform packages: ${Object.keys(overrides).join(', ')}) into ${app}`)
execFileSync(npm, ['install', '--no-audit', '--no-fund'], {
  cwd: app,
  stdio: 'inherit',
  shell: process.platform === 'win32',
})

writeFileSync(
  join(app, 'smoke.mjs'),
  `import { createRequire } from 'node:module'
import { Net, Trainer, Dataset } from 'ferronet'
const require = createRequire(import.meta.url)
const where = require.resolve('ferronet-${abi}')
const installed = ${JSON.stringify(Object.keys(overrides))}.filter((n) => { try { require.resolve(n + '/package.json'); return true } catch { return false } })
if (installed.join() !== 'ferronet-${abi}') { console.error('platform packages installed: ' + installed.join(', ') + '; expected only ferronet-${abi}'); process.exit(1) }
const xor = Dataset.fromArrays({ inputs: Float32Array.of(0, 0, 0, 1, 1, 0, 1, 1), sampleShape: [2], labels: [0, 1, 1, 0] })
const net = Net.sequential([2], [Net.dense(8), Net.relu(), Net.dense(2)], { seed: 0 })
const trainer = new Trainer(net, { optimizer: { type: 'adamw', lr: 0.05 }, batchSize: 4 })
const before = await trainer.evaluate(xor)
await trainer.fit(xor, { epochs: 300 })
const after = await trainer.evaluate(xor)
console.log(JSON.stringify({ binding: where, lossBefore: before.loss, lossAfter: after.loss, accuracy: after.accuracy }))
if (!(after.loss < before.loss)) { console.error('training did not lower the loss'); process.exit(1) }
`,
)
execFileSync(process.execPath, ['smoke.mjs'], { cwd: app, stdio: 'inherit' })
console.error(`smoke-install: ${abi}: ok`)
