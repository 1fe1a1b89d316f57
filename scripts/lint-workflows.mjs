#!/usr/bin/env node
/**
 * Lints .github/workflows/*.yml with actionlint if it is installed (on PATH, in $GOBIN,
 * ~/go/bin or /tmp/gobin); otherwise says how to get it and exits 0.
 *   GOBIN=/tmp/gobin go install github.com/rhysd/actionlint/cmd/actionlint@latest
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const exe = process.platform === 'win32' ? 'actionlint.exe' : 'actionlint'
const candidates = [process.env.GOBIN, join(homedir(), 'go', 'bin'), '/tmp/gobin']
  .filter(Boolean)
  .map((dir) => join(dir, exe))
  .filter((file) => existsSync(file))
for (const cmd of ['actionlint', ...candidates]) {
  const r = spawnSync(cmd, process.argv.slice(2), { cwd: repo, stdio: 'inherit' })
  if (r.error?.code === 'ENOENT') continue
  if (r.status === 0) console.error(`lint-workflows: ${cmd}: no problems`)
  process.exit(r.status ?? 1)
}
console.error('lint-workflows: actionlint is not installed; skipped. Install: GOBIN=/tmp/gobin go install github.com/rhysd/actionlint/cmd/actionlint@latest')
