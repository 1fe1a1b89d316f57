/** A small learnable dataset: `classes` Gaussian-ish clusters in `dim` dimensions, deterministic. */

import { Dataset } from '../../src/dataset.js'
import { createRandom } from '../../src/random.js'

export function blobs(size: number, dim: number, classes: number, seed = 1): Dataset {
  const random = createRandom(seed)
  const centers = Array.from({ length: classes }, () => Array.from({ length: dim }, () => random.nextFloat() * 4 - 2))
  const inputs = new Float32Array(size * dim)
  const labels = new Uint8Array(size)
  for (let i = 0; i < size; i++) {
    const c = i % classes
    labels[i] = c
    for (let d = 0; d < dim; d++) {
      // Sum of 3 uniforms: bell-shaped noise around the class centre.
      const noise = random.nextFloat() + random.nextFloat() + random.nextFloat() - 1.5
      inputs[i * dim + d] = centers[c]![d]! + 0.6 * noise
    }
  }
  return Dataset.fromArrays({ inputs, labels, sampleShape: [dim], numClasses: classes })
}
