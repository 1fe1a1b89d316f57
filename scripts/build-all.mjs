#!/usr/bin/env node
/**
 * Builds the release addon for every `napi.targets` entry on this one machine and
 * leaves each in its platform package folder, `npm/<platform-arch-abi>/<binaryName>.<platform-arch-abi>.node`
 * (git-ignored), then runs scripts/check-binaries.mjs on them.
 *
 *   Linux gnu   cargo zigbuild --target <triple>.2.17  (Zig links against glibc 2.17 stubs: the glibc floor)
 *   Linux musl  cargo zigbuild --target <triple>       (with -C target-feature=-crt-static: a cdylib must
 *                                                        link musl dynamically, like Node on Alpine does)
 *   macOS       cargo build on a macOS host, otherwise cargo zigbuild (Zig ships the libSystem stubs);
 *               MACOSX_DEPLOYMENT_TARGET 10.15 (x64) / 11.0 (arm64) unless set
 *   Windows     cargo build on a Windows host, otherwise cargo xwin build (needs the MSVC CRT and the
 *               Windows SDK, which cargo-xwin downloads from Microsoft). Without them: cargo zigbuild
 *               for the GNU twin of the triple (x86_64-pc-windows-gnu, aarch64-pc-windows-gnullvm),
 *               with napi's dyn-symbols (crates/ferronet-node/Cargo.toml), so the DLL links nothing
 *               of Node and finds the N-API functions in the host node.exe at load time, as the MSVC
 *               build does; it runs on the official (MSVC-built) Node. The release workflow still
 *               builds the MSVC DLLs on Windows runners.
 *
 * A target that cannot be built is reported with the reason and skipped; the others are still built.
 * The reasons go to target/build-all/status.json, which check-binaries.mjs prints.
 *
 * Usage: node scripts/build-all.mjs [--target <triple>]... [--no-check]
 *   --target     build only these triples (default: all of napi.targets)
 *   --no-check   do not run check-binaries.mjs at the end
 *
 * Needs: rustup (missing target standard libraries are added with `rustup target add`), and for
 * cross builds cargo-zigbuild + Zig (`pip install ziglang cargo-zigbuild`), cargo-xwin for
 * Windows (`pip install cargo-xwin`). The host's own `npm run build:native` is not affected
 * (it builds into target/release/ and native/; this script uses target/<triple>/release/).
 */

import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readNapiConfig } from '@napi-rs/cli'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values: args } = parseArgs({
  options: {
    target: { type: 'string', multiple: true },
    'no-check': { type: 'boolean', default: false },
  },
})

const napi = await readNapiConfig(join(repo, 'package.json'))
const crate = 'ferronet-node'
const libBase = crate.replace(/-/g, '_')
const log = (message) => console.error(`build-all: ${message}`)

const hostTriple = (() => {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' })
  return out.match(/^host: (.+)$/m)[1]
})()

/** True if `cmd args` runs and exits 0 (quietly). */
const works = (cmd, cmdArgs) => {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'ignore', shell: process.platform === 'win32' })
  return r.status === 0
}

const has = {
  zigbuild: works('cargo', ['zigbuild', '--help']),
  xwin: works('cargo', ['xwin', '--version']),
}

function installedTargets() {
  try {
    return execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)
  } catch {
    return null // no rustup: assume the toolchain knows what it knows
  }
}

let xwinProbe = null
/** The GNU target built in place of an MSVC one when the MSVC SDK cannot be had. */
const WINDOWS_GNU = { x64: 'x86_64-pc-windows-gnu', arm64: 'aarch64-pc-windows-gnullvm' }

/**
 * napi-build's windows-gnu setup insists on linking a libnode (MSYS2's Node); with
 * dyn-symbols nothing of it is used, so an empty import library stands in.
 */
function libnodeStub() {
  const dir = join(repo, 'target', 'build-all', 'libnode-stub')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'libnode.dll'), '')
  writeFileSync(join(dir, 'libnode.a'), '!<arch>\n') // an empty ar archive
  return dir
}
/** Oldest macOS the addon loads on (the same floors check-binaries.mjs checks). */
const MACOS_FLOOR = { x64: '10.15', arm64: '11.0' }

/** Returns { cmd, args, env } to build `t`, or { reason } when it cannot be built here. */
function plan(t) {
  const cargoArgs = ['--release', '-p', crate]
  const envName = `CARGO_TARGET_${t.triple.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`
  if (t.platform === 'linux') {
    if (!has.zigbuild) return { reason: 'cargo-zigbuild is not installed (pip install ziglang cargo-zigbuild); it is needed for the glibc 2.17 floor / musl' }
    if (t.abi === 'gnu') return { cmd: 'cargo', args: ['zigbuild', ...cargoArgs, '--target', `${t.triple}.2.17`] }
    if (t.abi === 'musl') {
      return { cmd: 'cargo', args: ['zigbuild', ...cargoArgs, '--target', t.triple], env: { [envName]: '-C target-feature=-crt-static' } }
    }
  }
  if (t.platform === 'darwin') {
    // Without it, Zig (no macOS SDK here) stamps its own newest macOS as the minimum (LC_BUILD_VERSION
    // minos 15.0), and older Macs refuse to load the addon. Node 20 itself runs on 10.15 / 11.0.
    const env = { MACOSX_DEPLOYMENT_TARGET: process.env.MACOSX_DEPLOYMENT_TARGET ?? MACOS_FLOOR[t.arch] }
    if (process.platform === 'darwin') return { cmd: 'cargo', args: ['build', ...cargoArgs, '--target', t.triple], env }
    if (!has.zigbuild) return { reason: 'not on macOS and cargo-zigbuild is not installed' }
    return { cmd: 'cargo', args: ['zigbuild', ...cargoArgs, '--target', t.triple], env }
  }
  if (t.platform === 'win32') {
    if (process.platform === 'win32') return { cmd: 'cargo', args: ['build', ...cargoArgs, '--target', t.triple] }
    if (t.abi !== 'msvc') return { reason: `no cross build set up for ${t.triple}` }
    let noXwin = 'cargo-xwin is not installed (pip install cargo-xwin)'
    if (has.xwin) {
      // cargo-xwin needs the MSVC CRT + Windows SDK; it downloads them (from aka.ms / Microsoft's CDN) into
      // its cache unless they are there already. Probe that first, so an offline machine gets one clear reason.
      xwinProbe ??= spawnSync('cargo', ['xwin', 'cache', 'xwin'], { encoding: 'utf8' })
      const probe = xwinProbe
      if (probe.status === 0) return { cmd: 'cargo', args: ['xwin', 'build', ...cargoArgs, '--target', t.triple] }
      const why = (probe.stderr || '').split('\n').find((l) => /^Error|failed|Caused/.test(l)) || 'cargo xwin cache xwin failed'
      const cause = (probe.stderr || '').split('\n').find((l) => /io:|lookup|resolve|connect/i.test(l))
      noXwin = `cargo-xwin cannot get the MSVC CRT / Windows SDK: ${why.trim()}${cause ? ` (${cause.trim()})` : ''}`
    }
    if (!has.zigbuild) return { reason: `${noXwin}, and cargo-zigbuild is not installed for the GNU build; build it on a Windows runner (release.yml)` }
    const gnu = WINDOWS_GNU[t.arch]
    if (installed && !installed.includes(gnu)) {
      log(`rustup target add ${gnu}`)
      if (spawnSync('rustup', ['target', 'add', gnu], { stdio: 'inherit' }).status !== 0) return { reason: `${noXwin}, and rustup target add ${gnu} failed` }
      installed = installedTargets()
    }
    log(`${t.triple}: ${noXwin}; building the GNU twin ${gnu} with Zig (N-API resolved at load time)`)
    return {
      cmd: 'cargo',
      args: ['zigbuild', ...cargoArgs, '--target', gnu],
      env: { LIBNODE_PATH: libnodeStub() },
      buildTriple: gnu,
      note: `built as ${gnu} (Zig, MinGW/UCRT; N-API from the host node.exe): ${noXwin}`,
    }
  }
  return { reason: `no build recipe for ${t.triple}` }
}

/** Where cargo leaves the cdylib of `t` (built for `triple`). */
function artifact(t, triple = t.triple) {
  const dir = join(repo, 'target', triple, 'release')
  if (t.platform === 'win32') return join(dir, `${libBase}.dll`)
  if (t.platform === 'darwin') return join(dir, `lib${libBase}.dylib`)
  return join(dir, `lib${libBase}.so`)
}

const wanted = args.target ?? napi.targets.map((t) => t.triple)
const unknown = wanted.filter((w) => !napi.targets.some((t) => t.triple === w))
if (unknown.length > 0) {
  log(`not in package.json napi.targets: ${unknown.join(', ')}`)
  process.exit(2)
}
const targets = napi.targets.filter((t) => wanted.includes(t.triple))

const statusDir = join(repo, 'target', 'build-all')
mkdirSync(statusDir, { recursive: true })
// Keep what an earlier run found out about the targets this run leaves alone (--target).
let previous = {}
try {
  previous = JSON.parse(readFileSync(join(statusDir, 'status.json'), 'utf8')).targets ?? {}
} catch {}
const status = { host: hostTriple, startedAt: new Date().toISOString(), targets: { ...previous } }
const saveStatus = () => writeFileSync(join(statusDir, 'status.json'), `${JSON.stringify(status, null, 2)}\n`)

const started = Date.now()
let installed = installedTargets()
for (const t of targets) {
  const abi = t.platformArchABI
  const dest = join(repo, 'npm', abi, `${napi.binaryName}.${abi}.node`)
  // A stale binary from an earlier run must not pass for this run's.
  rmSync(dest, { force: true })
  const entry = { platformArchABI: abi, built: false }
  status.targets[t.triple] = entry

  if (!existsSync(join(repo, 'npm', abi, 'package.json'))) {
    entry.reason = `npm/${abi}/package.json is missing (npx napi create-npm-dirs)`
  } else if (installed && !installed.includes(t.triple)) {
    log(`rustup target add ${t.triple}`)
    const r = spawnSync('rustup', ['target', 'add', t.triple], { stdio: 'inherit' })
    if (r.status !== 0) entry.reason = `rustup target add ${t.triple} failed (no network?)`
    installed = installedTargets()
  }
  const p = entry.reason ? null : plan(t)
  if (p?.reason) entry.reason = p.reason
  if (entry.reason) {
    log(`${t.triple}: NOT BUILT: ${entry.reason}`)
    saveStatus()
    continue
  }

  const line = `${p.cmd} ${p.args.join(' ')}`
  log(`${t.triple}: ${Object.entries(p.env ?? {}).map(([k, v]) => `${k}='${v}' `).join('')}${line}`)
  const t0 = Date.now()
  const r = spawnSync(p.cmd, p.args, { cwd: repo, stdio: 'inherit', env: { ...process.env, ...p.env }, shell: process.platform === 'win32' })
  entry.seconds = Math.round((Date.now() - t0) / 1000)
  entry.command = line
  if (r.status !== 0) {
    entry.reason = `\`${line}\` failed (exit ${r.status ?? r.signal}); see its output above`
  } else if (!existsSync(artifact(t, p.buildTriple))) {
    entry.reason = `built, but ${relative(repo, artifact(t, p.buildTriple))} is not there`
  } else {
    copyFileSync(artifact(t, p.buildTriple), dest)
    entry.built = true
    entry.file = relative(repo, dest)
    if (p.note) entry.note = p.note
  }
  log(`${t.triple}: ${entry.built ? `built in ${entry.seconds} s -> ${entry.file}` : `NOT BUILT: ${entry.reason}`}`)
  saveStatus()
}
status.seconds = Math.round((Date.now() - started) / 1000)
saveStatus()

const builtCount = targets.filter((t) => status.targets[t.triple].built).length
log(`${builtCount}/${targets.length} targets built in ${status.seconds} s`)

if (!args['no-check']) {
  const r = spawnSync(process.execPath, [join(repo, 'scripts', 'check-binaries.mjs'), ...targets.flatMap((t) => ['--target', t.triple])], {
    cwd: repo,
    stdio: 'inherit',
  })
  process.exit(r.status ?? 1)
}
