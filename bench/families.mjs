#!/usr/bin/env node
// The model-family benchmark: each example of examples/ (LSTM, GRU, GPT, VAE, GAN)
// against the same model in PyTorch (bench/torch/*.py), both PyTorch installs (the
// venv's 2.x with MKL/oneDNN and Debian's 1.13 with OpenBLAS), at each thread count,
// one child at a time. Prints one JSON line per run ({ kind: 'family', ... }) for
// bench/run.mjs (the `families` section of `npm run bench`), or, run alone, a table.
//
//   node bench/families.mjs [--families lstm,gru,gpt,vae,gan] [--threads 1,2] [--quick]
//                           [--frameworks ferronet,pytorch-venv,pytorch-debian] [--json]
//                           [--gpt-steps N] [--epochs N]

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { familyTable, median } from './families_table.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(BENCH)
const VENV = '/work/venv-torch/bin/python'
const DEBIAN = '/usr/bin/python3'

const { values: flags } = parseArgs({
  options: {
    families: { type: 'string', default: 'lstm,gru,gpt,vae,gan' },
    threads: { type: 'string', default: '1,2' },
    frameworks: { type: 'string', default: 'ferronet,pytorch-venv,pytorch-debian' },
    'venv-python': { type: 'string', default: VENV },
    python: { type: 'string', default: DEBIAN },
    quick: { type: 'boolean', default: false },
    'gpt-steps': { type: 'string' },
    epochs: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    seed: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const quick = flags.quick
// Overrides of the figures below: --gpt-steps N (GPT), --epochs N (the others).
const gptSteps = flags['gpt-steps'] ?? (quick ? '20' : '2000')
const ep = (full) => flags.epochs ?? (quick ? '1' : full)

/**
 * Per family: what each side runs (the same model, data and optimizer) and how its
 * last JSON line reads. `cost` is the figure compared (seconds per epoch, or ms per
 * step); `quality` the figure of merit (higher or lower is better, `better`).
 */
const FAMILIES = {
  lstm: {
    what: 'LSTM(128) on sequential Fashion-MNIST, epoch',
    ferronet: ['examples/lstm-fashion.ts', '--epochs', ep('2'), ...(quick ? ['--limit', '2000'] : [])],
    torch: ['bench/torch/lstm_fashion.py', '--epochs', ep('2'), ...(quick ? ['--limit', '2000'] : [])],
    cost: (r) => ({ value: median(r.epochSeconds), unit: 's/epoch' }),
    quality: (r) => ({ value: last(r.testAccuracy), name: 'test accuracy', better: 'higher' }),
  },
  gru: {
    what: 'GRU(128) on sequential Fashion-MNIST, epoch',
    ferronet: ['examples/gru-fashion.ts', '--epochs', ep('2'), ...(quick ? ['--limit', '2000'] : [])],
    torch: ['bench/torch/lstm_fashion.py', '--rnn', 'gru', '--epochs', ep('2'), ...(quick ? ['--limit', '2000'] : [])],
    cost: (r) => ({ value: median(r.epochSeconds), unit: 's/epoch' }),
    quality: (r) => ({ value: last(r.testAccuracy), name: 'test accuracy', better: 'higher' }),
  },
  gpt: {
    what: 'char GPT (4×4 heads, 128 wide, context 64, batch 12) on fortunes, training step',
    ferronet: ['examples/gpt-fortunes.ts', '--steps', gptSteps, '--eval-every', quick ? '10' : '250', ...(quick ? ['--eval-batches', '2'] : [])],
    torch: ['bench/torch/gpt_fortunes.py', '--steps', gptSteps, '--eval-every', quick ? '10' : '250', ...(quick ? ['--eval-batches', '2', '--gen-tokens', '20'] : [])],
    cost: (r) => ({ value: r.msPerStep, unit: 'ms/step' }),
    quality: (r) => ({ value: r.valLoss, name: 'validation loss', better: 'lower' }),
    extra: (r) => ({ tokensPerSecond: r.tokensPerSecond, sample: r.sample }),
  },
  vae: {
    what: 'VAE 784-400-20 on Fashion-MNIST, epoch',
    ferronet: ['examples/vae-fashion.ts', '--epochs', ep('10'), ...(quick ? ['--limit', '2000'] : [])],
    torch: ['bench/torch/vae_fashion.py', '--epochs', ep('10'), ...(quick ? ['--limit', '2000'] : [])],
    cost: (r) => ({ value: median(r.epochSeconds), unit: 's/epoch' }),
    quality: (r) => ({ value: last(r.testLoss), name: 'test loss per sample', better: 'lower' }),
  },
  gan: {
    what: 'MLP GAN on the mnist package digits, epoch',
    ferronet: ['examples/gan-digits.ts', '--epochs', ep('5')],
    torch: ['bench/torch/gan_digits.py', '--epochs', ep('5')],
    cost: (r) => ({ value: median(r.epochSeconds), unit: 's/epoch' }),
    quality: (r) => ({ value: last(r.gLoss), name: 'generator loss', better: 'none' }),
  },
}

function torchVersion(j) {
  const v = j.torch ?? j.config?.torch ?? j.framework
  return typeof v === 'string' ? v.replace(/^pytorch\s*/, '') : null
}

function last(xs) {
  if (typeof xs === 'number') return xs
  return Array.isArray(xs) && xs.length ? Number(xs.at(-1)) : null
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (err += c))
    child.on('close', (code) => {
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'))
      let json = null
      try {
        json = line ? JSON.parse(line) : null
      } catch {}
      resolve({ code, json, stderr: err.slice(-2000), seconds: (Date.now() - started) / 1000 })
    })
    child.on('error', (e) => resolve({ code: null, json: null, stderr: String(e.message), seconds: 0 }))
  })
}

const threadList = flags.threads.split(',').map(Number)
const frameworks = flags.frameworks.split(',')
const rows = []
// Rounds alternate the frameworks again (this VM's speed drifts from minute to minute):
// the table takes each configuration's median over rounds.
const rounds = Number(flags.rounds)
for (let round = 1; round <= rounds; round++)
for (const name of flags.families.split(',')) {
  const fam = FAMILIES[name]
  if (!fam) throw new Error(`--families: unknown family ${name} (${Object.keys(FAMILIES).join(', ')})`)
  for (const threads of threadList) {
    for (const framework of frameworks) {
      const env = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) }
      delete env.RAYON_NUM_THREADS
      let cmd
      let args
      if (framework === 'ferronet') {
        cmd = process.execPath
        args = ['--import', 'tsx', ...fam.ferronet, '--threads', String(threads), ...(flags.seed ? ['--seed', flags.seed] : []), '--json']
      } else {
        cmd = framework === 'pytorch-venv' ? flags['venv-python'] : flags.python
        if (!existsSync(cmd)) {
          emit({ kind: 'family', family: name, framework, threads, status: 'skipped', reason: `${cmd} does not exist` })
          continue
        }
        args = [...fam.torch, '--threads', String(threads), ...(flags.seed ? ['--seed', flags.seed] : [])]
      }
      if (!existsSync(join(ROOT, (framework === 'ferronet' ? fam.ferronet : fam.torch)[0]))) {
        emit({ kind: 'family', family: name, framework, threads, status: 'skipped', reason: 'script missing' })
        continue
      }
      const r = await run(cmd, args, env)
      if (r.code !== 0 || !r.json) {
        emit({ kind: 'family', family: name, framework, threads, status: 'failed', reason: `exit ${r.code}: ${r.stderr.split('\n').filter(Boolean).slice(-3).join(' / ')}` })
        continue
      }
      emit({
        kind: 'family', family: name, what: fam.what, framework, version: framework === 'ferronet' ? null : torchVersion(r.json), threads, status: 'ok',
        round, seed: flags.seed ?? null, cost: fam.cost(r.json), quality: fam.quality(r.json), ...(fam.extra ? fam.extra(r.json) : {}), wallSeconds: r.seconds,
        raw: { ...r.json, sample: undefined },
        command: [framework === 'ferronet' ? 'node' : cmd, ...args].join(' '),
      })
    }
  }
}

function emit(row) {
  rows.push(row)
  if (flags.json) console.log(JSON.stringify(row))
  else console.error(`${row.family} ${row.framework} ${row.threads}t: ${row.status === 'ok' ? `${row.cost.value?.toFixed?.(2)} ${row.cost.unit}, ${row.quality.name} ${row.quality.value?.toFixed?.(4)}` : `${row.status} (${row.reason})`}`)
}

if (!flags.json) console.log(familyTable(rows))
