/**
 * Sequential Fashion-MNIST with an LSTM: 28 steps of 28 pixels → LSTM(128), its last
 * hidden state → Linear(10); Adam 1e-3, batch 64 (see examples/recurrent-fashion.ts).
 *
 *   npx tsx examples/lstm-fashion.ts [--epochs 2] [--limit N] [--threads 0] [--seed 0]
 *                                    [--out examples/out] [--json]
 */

import { main } from './recurrent-fashion.js'

await main('lstm')
