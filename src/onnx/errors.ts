/** The error of the ONNX exporter. */

import { FerronetError } from '../errors.js'

/**
 * A network that cannot be written as ONNX: an op without a converter, or a node
 * whose configuration has no ONNX equivalent (an `AdaptiveAvgPool2d` whose output
 * size does not divide its input). `code` is `ERR_ONNX_UNSUPPORTED`; `node` and
 * `op` name the spec node at fault.
 */
export class OnnxExportError extends FerronetError {
  /** The spec node at fault (e.g. `"3"`, `"block1.pool"`), when the error is about one. */
  readonly node?: string
  /** Its op (`"AdaptiveAvgPool2d"`). */
  readonly op?: string
  constructor(message: string, where: { node?: string; op?: string } = {}) {
    super('ERR_ONNX_UNSUPPORTED', message)
    if (where.node !== undefined) this.node = where.node
    if (where.op !== undefined) this.op = where.op
  }
}
