/**
 * A character-level GPT trained on real English text: the quotations of Debian's
 * `fortunes` package (about 2.6 MB under /usr/share/games/fortunes; the last 10% held
 * out for validation). nanoGPT's configuration for a CPU: 4 blocks, 4 heads, width
 * 128, context 64, batch 12, AdamW lr 1e-3 (betas 0.9/0.99) with weight decay 0.1,
 * gradients clipped at norm 1, no dropout, the token embedding tied to the output
 * projection, init normal(0, 0.02). Prints the validation loss (mean over 20 batches
 * of 12 windows spread evenly over the held-out text) every `--eval-every` steps, then
 * text it generates.
 *
 *   npx tsx examples/gpt-fortunes.ts [--steps 2000] [--threads 0] [--seed 1]
 *                                   [--out examples/out] [--json]
 *
 *   --steps N        optimizer steps (default 2000)
 *   --eval-every N   validation every N steps (default 250)
 *   --eval-batches N validation batches (default 20)
 *   --data DIR       the fortunes text files (default /usr/share/games/fortunes)
 *   --threads N      worker threads, 0 = every core (default 0)
 *   --seed N         initialisation, batch and sampling seed (default 1)
 *   --out DIR        where gpt-fortunes.safetensors goes (default examples/out)
 *   --json           print one JSON object of the results as the last line
 */

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Dataset, Net, Trainer, createRandom, randomNormal, text, type SymbolicTensor } from '../src/index.js'

const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string', default: '2000' },
    'eval-every': { type: 'string', default: '250' },
    'eval-batches': { type: 'string', default: '20' },
    data: { type: 'string', default: text.FORTUNES_DIR },
    threads: { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: fileURLToPath(new URL('./out/', import.meta.url)) },
    json: { type: 'boolean', default: false },
  },
})
const int = (name: string, value: string | undefined, min: number): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${value}`)
  return n
}
const steps = int('steps', flags.steps, 1)
const evalEvery = int('eval-every', flags['eval-every'], 1)
const evalBatches = int('eval-batches', flags['eval-batches'], 1)
const threads = int('threads', flags.threads, 0)
const seed = int('seed', flags.seed, 0)
const log = flags.json ? () => {} : (line: string) => console.log(line)

// 1. Data: characters to ids; train on the first 90%, validate on the rest.
const corpus = text.loadFortunes(flags.data)
const tokenizer = text.CharTokenizer.fromText(corpus)
const { train, val } = text.splitIds(tokenizer.encode(corpus))
const [B, T, C, L, H] = [12, 64, 128, 4, 4]
const V = tokenizer.vocabSize
log(`${corpus.length} characters, vocabulary ${V}; ${train.length} train / ${val.length} validation`)

// 2. The model: pre-LayerNorm transformer blocks with residual adds.
const ids = Net.input([T], { name: 'ids' })
let x: SymbolicTensor = Net.embedding(V, C).apply(ids, { name: 'wte' })
x = Net.positionEmbedding().apply(x, { name: 'wpe' })
for (let l = 0; l < L; l++) {
  const a = Net.multiHeadAttention(H, { causal: true }).apply(Net.layerNorm().apply(x, { name: `h${l}_ln1` }), { name: `h${l}_attn` })
  x = Net.add().apply([x, a], { name: `h${l}_res1` })
  let m = Net.dense(4 * C).apply(Net.layerNorm().apply(x, { name: `h${l}_ln2` }), { name: `h${l}_fc` })
  m = Net.dense(C).apply(Net.gelu().apply(m, { name: `h${l}_gelu` }), { name: `h${l}_proj` })
  x = Net.add().apply([x, m], { name: `h${l}_res2` })
}
const logits = Net.dense(V, { bias: false, tiedTo: 'wte' }).apply(Net.layerNorm().apply(x, { name: 'ln_f' }), { name: 'head' })
const net = Net.graph({ inputs: ids, outputs: logits }, { seed })

// nanoGPT's init: normal(0, 0.02), residual projections 0.02/√(2L), biases 0, LayerNorm 1.
const initRandom = createRandom(seed + 7)
for (const p of net.parameters()) {
  if (p.tiedTo !== undefined) continue // head.weight is the embedding's own tensor
  const v = new Float32Array(p.data.length)
  if (p.name.endsWith('bias')) v.fill(0)
  else if (p.name.includes('_ln') || p.name.startsWith('ln_f')) v.fill(1)
  else {
    const std = /attn\.out_proj\.weight|_proj\.weight/.test(p.name) ? 0.02 / Math.sqrt(2 * L) : 0.02
    v.set(randomNormal(v.length, { random: initRandom }).map((z) => std * z))
  }
  net.setParameter(p.name, v)
}
const params = net.parameters().filter((p) => p.tiedTo === undefined && p.trainable).reduce((n, p) => n + p.data.length, 0)
log(`GPT: ${L} blocks × ${H} heads, width ${C}, context ${T}: ${params} parameters`)

// 3. Training: one native call per step on a batch of random windows.
const trainer = new Trainer(net, {
  optimizer: { type: 'adamw', lr: 1e-3, betas: [0.9, 0.99], weightDecay: 0.1 },
  clipNorm: 1,
  threads,
  seed,
})
const nextTrain = text.windowSampler(train, B, T, seed)
// The same validation windows every time (and in bench/torch/gpt_fortunes.py): spread
// evenly over the held-out text, so runs and frameworks compare without sampling noise.
// As a Dataset with one label per position: `evaluate` gives the mean cross-entropy.
const [valWindows] = text.evenWindows(val, evalBatches * B, evalBatches * B, T)
const valSet = Dataset.fromArrays({ inputs: valWindows!.inputs, labels: valWindows!.labels, labelsPerSample: T, sampleShape: [T], numClasses: V })
const validationLoss = async (): Promise<number> => (await trainer.evaluate(valSet, { batchSize: B })).loss
const evals: { step: number; trainLoss: number; valLoss: number }[] = []
const stepMs: number[] = []
for (let step = 1; step <= steps; step++) {
  const { inputs, labels } = nextTrain()
  const t0 = performance.now()
  const loss = trainer.trainBatch(inputs, labels)
  stepMs.push(performance.now() - t0)
  if (step % evalEvery === 0 || step === steps) {
    evals.push({ step, trainLoss: loss, valLoss: await validationLoss() })
    log(`step ${step}: train loss ${loss.toFixed(3)}, validation loss ${evals.at(-1)!.valLoss.toFixed(3)}, ${median(stepMs.slice(-evalEvery)).toFixed(1)} ms/step`)
  }
}

// 4. Generation: 200 characters after a newline, temperature 0.8, top-k 20.
const generated = await net.generate(tokenizer.encode('\n'), { maxNewTokens: 200, temperature: 0.8, topK: 20, seed })
const sample = tokenizer.decode(generated.ids)
log(`\n${sample}\n`)

await mkdir(flags.out, { recursive: true })
const path = join(flags.out, 'gpt-fortunes.safetensors')
await net.save(path, { metadata: { tokenizer: tokenizer.toJSON() } })
log(`saved ${path}`)
trainer.dispose()

if (flags.json) {
  console.log(JSON.stringify({
    steps, batch: B, context: T, width: C, layers: L, heads: H, vocab: V, params,
    evals, valLoss: evals.at(-1)!.valLoss,
    msPerStep: median(stepMs.slice(Math.min(10, stepMs.length - 1))),
    tokensPerSecond: generated.tokensPerSecond, sample, model: path,
  }))
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}
