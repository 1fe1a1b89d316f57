/**
 * Typed errors thrown by ferronet. Every error names the problem and the place
 * (file, field or shape) so a caller can act on it without reading a stack trace.
 */

/** Base class of every error ferronet throws on purpose. `code` is stable; match on it. */
export class FerronetError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** An option passed to a ferronet function is missing, of the wrong type or out of range. */
export class OptionError extends FerronetError {
  /** Dotted path of the offending option, e.g. `optimizer.lr`. */
  readonly field: string
  constructor(field: string, message: string) {
    super('ERR_INVALID_OPTION', `invalid option \`${field}\`: ${message}`)
    this.field = field
  }
}

/** Arrays or datasets whose shapes do not fit together (e.g. input width vs the network). */
export class ShapeError extends FerronetError {
  /** The graph node at fault, when the error is about one (e.g. `"conv2"`, `"3"`). */
  readonly node?: string
  constructor(message: string, node?: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'ERR_SHAPE', message, options)
    if (node !== undefined) this.node = node
  }
}

/** Why an IDX file was rejected. */
export type IdxErrorReason =
  | 'NOT_FOUND'
  | 'BAD_MAGIC'
  | 'TRUNCATED'
  | 'TRAILING_BYTES'
  | 'COUNT_MISMATCH'
  | 'LABEL_OUT_OF_RANGE'
  | 'CORRUPT_GZIP'
  | 'BAD_DIMENSIONS'

/** An IDX (MNIST-format) file that cannot be read as images or labels. */
export class IdxFormatError extends FerronetError {
  /** Path of the offending file (or a caller-supplied name for in-memory buffers). */
  readonly file: string
  readonly reason: IdxErrorReason
  constructor(file: string, reason: IdxErrorReason, message: string, options?: { cause?: unknown }) {
    super(`ERR_IDX_${reason}`, `${file}: ${message}`, options)
    this.file = file
    this.reason = reason
  }
}

/**
 * A model file or checkpoint that cannot be read or written: missing, truncated,
 * hostile (a header claiming more than the file holds, overlapping offsets,
 * duplicate names), or not matching the net (a missing tensor, a wrong shape or
 * dtype). The message names the file and the problem; a failed save leaves the
 * previous file as it was.
 */
export class ModelFileError extends FerronetError {
  /** The file at fault. */
  readonly path: string
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_MODEL_FILE', message, options)
    this.path = path
  }
}

/** Training was stopped through an `AbortSignal`. The network keeps the weights of the last finished batch. */
export class AbortError extends FerronetError {
  /** Optimizer steps this `fit` completed before it stopped, when known. */
  stepsDone?: number
  /** Steps it had completed when the stop was requested; at most one more follows. */
  stepsAtRequest?: number
  constructor(message = 'training was aborted', stepsDone?: number) {
    super('ABORT_ERR', message)
    if (stepsDone !== undefined) this.stepsDone = stepsDone
  }
}

/**
 * An error raised inside the native (Rust) core that has no more specific class:
 * a diverged loss (`ERR_NON_FINITE_LOSS`), a busy network (`ERR_BUSY`), an internal
 * panic (`ERR_PANIC`, which never takes the process down). `code` says which.
 */
export class NativeError extends FerronetError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
