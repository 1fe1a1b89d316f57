// Benchmark child: Node's baseline peak RSS, the floor the RSS target is measured from.
//
//   node bench/node_baseline.mjs --import ferronet   # starts node and imports ferronet (loads the addon)
//   node bench/node_baseline.mjs --import none       # bare node, for reference

import { emit, maxRssKiB, parseArgv, rssKiB, runChild } from './lib.mjs'

await runChild('node-baseline', async () => {
  const what = String(parseArgv().import ?? 'ferronet')
  if (what === 'ferronet') await import('../dist/index.js')
  else if (what !== 'none') throw new Error(`--import must be ferronet or none, got ${what}`)
  emit({ kind: 'baseline', what: what === 'ferronet' ? 'node + import ferronet' : 'node (bare)', framework: what === 'ferronet' ? 'ferronet' : 'node', maxRssKiB: maxRssKiB(), rssKiB: rssKiB() })
})
