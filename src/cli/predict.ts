/** `ferronet predict`: classes of image files, or the accuracy on an IDX directory. */

import { ImageError } from '../errors.js'
import { imageInput } from '../image.js'
import * as mnist from '../mnist/index.js'
import { Net } from '../net.js'
import { topIndices } from '../serve/protocol.js'
import { classNamesOf, numberFlag, preprocessOf, probabilitiesOf } from './common.js'

export interface PredictArgs {
  model: string
  data?: string
  top?: string
  preprocess?: string
  json: boolean
}

/** Returns the exit code: 1 when a file could not be read (the others are still predicted). */
export async function predictCommand(files: string[], args: PredictArgs, out: (line: string) => void): Promise<number> {
  const net = await Net.load(args.model)
  const names = classNamesOf(net)
  const label = (c: number) => names?.[c] ?? String(c)
  if (args.data !== undefined) {
    if (files.length > 0) throw new ImageError(files[0]!, 'BAD_SHAPE', 'give either image files or --data DIR, not both')
    const test = await mnist.load(args.data, 'test')
    const predicted = net.predictClasses(test)
    let right = 0
    predicted.forEach((c, i) => (right += c === test.labels![i] ? 1 : 0))
    const accuracy = right / test.size
    if (args.json) out(JSON.stringify({ model: args.model, data: args.data, samples: test.size, accuracy, classes: Array.from(predicted) }))
    else out(`${args.data}: accuracy ${accuracy.toFixed(4)} on ${test.size} test samples`)
    return 0
  }
  if (files.length === 0) throw new ImageError('(none)', 'NOT_FOUND', 'no image files given: ferronet predict --model M FILE... (or --data DIR)')
  const top = numberFlag('--top', args.top, Math.min(3, net.outputDim), true, 1, net.outputDim)
  const preprocess = preprocessOf(net, args.preprocess)
  const results: Record<string, unknown>[] = []
  let code = 0
  for (const file of files) {
    let input: Float32Array
    try {
      input = await imageInput(file, net.inputShape, preprocess ? { preprocess } : {})
    } catch (error) {
      if (!(error instanceof ImageError)) throw error
      code = 1
      results.push({ file, error: { code: error.code, message: error.message } })
      if (!args.json) out(`${file}: error: ${error.message}`)
      continue
    }
    const row = net.predict(input)
    const probs = probabilitiesOf(net, row)
    const order = topIndices(row, top)
    const best = order[0]!
    const topList = order.map((c) => ({ class: c, ...(names ? { label: names[c] } : {}), probability: probs[c]! }))
    results.push({ file, class: best, ...(names ? { label: names[best] } : {}), probability: probs[best], top: topList })
    if (!args.json) out(`${file}: ${label(best)} (${(100 * probs[best]!).toFixed(1)}%)   top ${top}: ${order.map((c) => `${label(c)} ${(100 * probs[c]!).toFixed(1)}%`).join(', ')}`)
  }
  if (args.json) out(JSON.stringify({ model: args.model, predictions: results }))
  return code
}
