/** `ferronet explain`: which pixels of an image a model's decision rests on, as a heat-map PNG. */

import { FerronetError, OptionError } from '../errors.js'
import { gradCam, heatmapPng, integratedGradients, saliency, smoothGrad, type Attribution, type GradCamResult, type IntegratedGradientsResult } from '../explain.js'
import { COLORMAPS, type Colormap } from '../explain/heatmap.js'
import { writeFileAtomic } from '../files.js'
import { imageInput } from '../image.js'
import { Net } from '../net.js'
import { choiceFlag, classNamesOf, numberFlag, preprocessOf, probabilitiesOf } from './common.js'

export const EXPLAIN_METHODS = ['saliency', 'smoothgrad', 'integrated-gradients', 'gradcam'] as const
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number]

export interface ExplainArgs {
  model: string
  output: string
  method?: string
  class?: string
  layer?: string
  steps?: string
  samples?: string
  seed?: string
  colormap?: string
  size?: string
  sideBySide: boolean
  preprocess?: string
  json: boolean
}

export async function explainCommand(file: string, args: ExplainArgs, out: (line: string) => void): Promise<void> {
  const method = choiceFlag('--method', args.method, EXPLAIN_METHODS)
  const colormap = choiceFlag('--colormap', args.colormap, COLORMAPS) as Colormap
  const size = numberFlag('--size', args.size, 280, true, 8, 4096)
  const net = await Net.load(args.model)
  const classIndex = args.class === undefined ? undefined : numberFlag('--class', args.class, 0, true, 0, net.outputDim - 1)
  if (method === 'gradcam' && args.layer === undefined && !net.spec.nodes.some((n) => n.op === 'Conv2d')) {
    throw new OptionError('--method', `gradcam needs a convolutional model, and ${args.model} has no Conv2d layer (${net.spec.nodes.map((n) => n.op).join(' → ')}); use saliency, smoothgrad or integrated-gradients`)
  }
  if (args.layer !== undefined && method !== 'gradcam') throw new OptionError('--layer', 'is an option of --method gradcam')
  if (args.steps !== undefined && method !== 'integrated-gradients') throw new OptionError('--steps', 'is an option of --method integrated-gradients')
  if ((args.samples !== undefined || args.seed !== undefined) && method !== 'smoothgrad') throw new OptionError(args.samples !== undefined ? '--samples' : '--seed', 'is an option of --method smoothgrad')
  const preprocess = preprocessOf(net, args.preprocess)
  const x = await imageInput(file, net.inputShape, preprocess ? { preprocess } : {})
  const cls = classIndex === undefined ? {} : { classIndex }
  let result: Attribution | GradCamResult
  let details: Record<string, unknown> = {}
  try {
    switch (method) {
      case 'saliency':
        result = saliency(net, x, cls)
        break
      case 'smoothgrad': {
        const samples = numberFlag('--samples', args.samples, 25, true, 1, 10_000)
        const seed = numberFlag('--seed', args.seed, 0, true, 0)
        result = smoothGrad(net, x, { ...cls, samples, seed })
        details = { samples, seed }
        break
      }
      case 'integrated-gradients': {
        const steps = numberFlag('--steps', args.steps, 50, true, 1, 10_000)
        const ig: IntegratedGradientsResult = integratedGradients(net, x, { ...cls, steps })
        result = ig
        details = { steps, rule: ig.method, attributionSum: ig.attributionSum, scoreMinusBaseline: ig.score - ig.baselineScore, completenessGap: ig.completenessGap }
        break
      }
      case 'gradcam': {
        const cam = gradCam(net, x, { ...cls, ...(args.layer === undefined ? {} : { layer: args.layer }) })
        result = cam
        details = { layer: cam.layer, layerShape: cam.layerShape }
        break
      }
    }
  } catch (error) {
    // The API names its options; on the command line they are flags.
    if (error instanceof OptionError && error.field === 'layer') throw new OptionError('--layer', error.message.replace(/^invalid option `layer`: /, ''))
    throw error
  }
  const png = await heatmapPng(x, result, { shape: net.inputShape, colormap, size, layout: args.sideBySide ? 'side-by-side' : 'overlay' })
  try {
    await writeFileAtomic(args.output, png)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code
    throw new FerronetError('ERR_WRITE', `${args.output}: cannot write the heat map (${code ?? (error as Error)?.message})`, { cause: error })
  }
  const names = classNamesOf(net)
  const label = (c: number) => names?.[c] ?? String(c)
  const probs = probabilitiesOf(net, result.outputs)
  const predicted = result.predictedClass
  if (args.json) {
    out(JSON.stringify({
      model: args.model, file, output: args.output, method,
      predicted: { class: predicted, ...(names ? { label: names[predicted] } : {}), probability: probs[predicted] },
      explained: { class: result.classIndex, ...(names ? { label: names[result.classIndex] } : {}), score: result.score, probability: probs[result.classIndex] },
      ...details,
    }))
    return
  }
  const what = result.classIndex === predicted ? 'it' : `class ${label(result.classIndex)}`
  out(`${file}: predicted ${label(predicted)} (${(100 * probs[predicted]!).toFixed(1)}%); ${method} of ${what} written to ${args.output}`)
  if (method === 'integrated-gradients') {
    const d = details as { attributionSum: number; scoreMinusBaseline: number; completenessGap: number }
    out(`  completeness: attributions sum to ${d.attributionSum.toFixed(4)}, f(x) − f(baseline) = ${d.scoreMinusBaseline.toFixed(4)} (gap ${d.completenessGap.toExponential(2)})`)
  }
  if (method === 'gradcam') out(`  layer ${(details as { layer: string }).layer} [${(result as GradCamResult).layerShape.join(', ')}]`)
}
