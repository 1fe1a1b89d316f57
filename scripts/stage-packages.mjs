#!/usr/bin/env node
/**
 * Stages and packs the publishable npm packages of ferronet:
 *
 *   - one platform package per `napi.targets` entry (`npm/<platform-arch-abi>/` plus
 *     the built `<binaryName>.<platform-arch-abi>.node`, taken from `npm/<platform-arch-abi>/`
 *     where `npm run build:all` / the release workflow put it, else from `native/`), and
 *   - the root package, whose staged package.json gains exact-version
 *     `optionalDependencies` on every platform package (what `napi pre-publish`
 *     would write into the real package.json; here the repo's package.json is never
 *     touched, so `npm install` / `npm ci` in the repo never looks for platform
 *     packages that are not on the registry).
 *
 * Usage: node scripts/stage-packages.mjs [--out-dir DIR] [--json]
 *
 *   --out-dir DIR  where the tarballs go (default: pack/); DIR/staging/ holds the
 *                  staged package folders and is recreated on every run.
 *   --json         print one JSON object { root, platforms, stagingDir } on stdout
 *                  instead of the plain list of tarball paths.
 *   --only ABI[,ABI]  stage only these targets (e.g. linux-x64-gnu); implies --allow-missing
 *                  for the others. For local install tests, never for a release.
 *   --allow-missing  skip targets whose .node is missing (with a warning) instead of failing;
 *                  the root package then lists only the staged ones. For local smoke tests of
 *                  a partial build only, never for a release.
 *
 * It does not build anything: run `npm run build` (or at least `npm run build:ts`
 * with the .node already in native/) first; `npm run pack:all` does build:ts first.
 * It fails, rather than warns, when a target's .node is missing, so a partial
 * release cannot be staged. Publish the tarballs, platform packages first:
 *   npm publish pack/ferronet-<platform>-<v>.tgz (each) && npm publish pack/ferronet-<v>.tgz
 * (publishing a tarball runs no lifecycle scripts).
 */

import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readNapiConfig } from '@napi-rs/cli'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const npmCli = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const { values: args } = parseArgs({
  options: {
    'out-dir': { type: 'string', default: join(repo, 'pack') },
    json: { type: 'boolean', default: false },
    'allow-missing': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
})
const only = args.only?.split(',').map((abi) => abi.trim()).filter(Boolean)
const outDir = resolve(args['out-dir'])
const stagingDir = join(outDir, 'staging')

function fail(message) {
  console.error(`stage-packages: ${message}`)
  process.exit(1)
}

const log = (message) => console.error(`stage-packages: ${message}`)
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'))
const writeJson = (file, value) => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`)

/** Runs npm with `args` in `cwd` and parses its `--json` output. */
function npmJson(cwd, npmArgs) {
  const stdout = execFileSync(npmCli, [...npmArgs, '--json'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  return JSON.parse(stdout)
}

const rootPkg = readJson(join(repo, 'package.json'))
const napi = await readNapiConfig(join(repo, 'package.json'))
if (napi.targets.length === 0) fail('package.json has no napi.targets')

rmSync(stagingDir, { recursive: true, force: true })
mkdirSync(stagingDir, { recursive: true })

// 1. Platform packages: npm/<platform-arch-abi>/ plus the built .node.
const platforms = []
const missing = []
for (const target of napi.targets) {
  const abi = target.platformArchABI
  if (only && !only.includes(abi)) continue
  const srcDir = join(repo, 'npm', abi)
  const pkgFile = join(srcDir, 'package.json')
  if (!existsSync(pkgFile)) fail(`${relative(repo, pkgFile)} is missing; run \`npx napi create-npm-dirs\``)
  const pkg = readJson(pkgFile)
  const expectedName = `${napi.packageName}-${abi}`
  const nodeFile = `${napi.binaryName}.${abi}.node`
  if (pkg.name !== expectedName) fail(`${relative(repo, pkgFile)}: name is ${pkg.name}, expected ${expectedName}`)
  if (pkg.main !== nodeFile) fail(`${relative(repo, pkgFile)}: main is ${pkg.main}, expected ${nodeFile}`)
  // npm run build:all (and the release workflow) leave it in npm/<abi>/; npm run build:native in native/.
  const candidates = [join(srcDir, nodeFile), join(repo, 'native', nodeFile)]
  const built = candidates.find((file) => existsSync(file))
  if (!built) {
    missing.push(candidates.map((file) => relative(repo, file)).join(' or '))
    continue
  }
  log(`${abi}: ${relative(repo, built)}`)
  if (pkg.version !== rootPkg.version) {
    log(`note: ${relative(repo, pkgFile)} has version ${pkg.version}; staging it as ${rootPkg.version} (root version)`)
  }
  const dir = join(stagingDir, abi)
  cpSync(srcDir, dir, { recursive: true, filter: (src) => !src.endsWith('.node') })
  copyFileSync(built, join(dir, nodeFile))
  writeJson(join(dir, 'package.json'), { ...pkg, version: rootPkg.version })
  platforms.push({ name: pkg.name, dir })
}
if (only) {
  const unknown = only.filter((abi) => !napi.targets.some((t) => t.platformArchABI === abi))
  if (unknown.length > 0) fail(`--only: not in napi.targets: ${unknown.join(', ')}`)
  if (missing.length > 0) fail(`built addon(s) missing: ${missing.join(', ')}`)
  log(`--only: staged ${platforms.map((p) => p.name).join(', ')}; do not publish these tarballs`)
} else if (missing.length > 0 && args['allow-missing']) {
  log(`WARNING: --allow-missing: not staged (no built addon): ${missing.join(', ')}; do not publish these tarballs`)
} else if (missing.length > 0) {
  fail(`built addon(s) missing: ${missing.join(', ')}. Run \`npm run build:native\` (or put the CI artifacts in native/) first.`)
}

// 2. Root package: exactly the files `npm pack` would take from the repo (the
//    `files` field, package.json, README/LICENSE), with optionalDependencies added.
const [listing] = npmJson(repo, ['pack', '--dry-run', '--ignore-scripts'])
const rootFiles = listing.files.map((f) => f.path)
const leaked = rootFiles.filter((f) => f.endsWith('.node'))
if (leaked.length > 0) fail(`the root package would contain ${leaked.join(', ')}; a .node must only ship in its platform package`)
for (const required of [rootPkg.main, 'native/binding.cjs', 'native/binding.d.cts']) {
  const path = required.replace(/^\.\//, '')
  if (!rootFiles.includes(path)) fail(`the root package lacks ${path}; run \`npm run build\` first`)
}
const rootDir = join(stagingDir, 'root')
for (const file of rootFiles) {
  mkdirSync(dirname(join(rootDir, file)), { recursive: true })
  copyFileSync(join(repo, file), join(rootDir, file))
}
const optionalDependencies = { ...rootPkg.optionalDependencies }
for (const { name } of platforms) optionalDependencies[name] = rootPkg.version
writeJson(join(rootDir, 'package.json'), { ...rootPkg, optionalDependencies })

// 3. Pack (no lifecycle scripts: the staged copies hold built output only).
const pack = (dir) => {
  const [result] = npmJson(dir, ['pack', '--ignore-scripts', '--pack-destination', outDir])
  return join(outDir, result.filename)
}
const result = {
  root: pack(rootDir),
  platforms: platforms.map(({ dir }) => pack(dir)),
  stagingDir,
}

if (args.json) {
  console.log(JSON.stringify(result))
} else {
  for (const file of [...result.platforms, result.root]) console.log(file)
}
