/** `ferronet export`: a model file to ONNX. */

import { Net } from '../net.js'
import { numberFlag } from './common.js'

export interface ExportArgs {
  model: string
  output: string
  opset?: string
}

export async function exportCommand(args: ExportArgs, log: (line: string) => void): Promise<void> {
  const net = await Net.load(args.model)
  const opset = numberFlag('--opset', args.opset, 17, true, 17, 23)
  await net.exportOnnx(args.output, { opset })
  log(`wrote ${args.output}: ONNX opset ${opset}, input [batch, ${net.inputShape.join(', ')}] → output [batch, ${net.outputShape.join(', ')}]`)
}
