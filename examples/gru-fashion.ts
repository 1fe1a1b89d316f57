/**
 * Sequential Fashion-MNIST with a GRU: 28 steps of 28 pixels → GRU(128), its last
 * hidden state → Linear(10); Adam 1e-3, batch 64 (see examples/recurrent-fashion.ts).
 *
 *   npx tsx examples/gru-fashion.ts [--epochs 2] [--limit N] [--threads 0] [--seed 0]
 *                                   [--out examples/out] [--json]
 */

import { main } from './recurrent-fashion.js'

await main('gru')
