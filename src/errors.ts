/**
 * Typed errors thrown by ferronet. Every error names the problem and the place
 * (file, field or shape) so a caller can act on it without reading a stack trace.
 */

/**
 * Base class of every error ferronet throws on purpose. `code` is stable; match on it
 * (or on the subclass) rather than on the message.
 *
 * ```ts
 * try {
 *   await Net.load('model.safetensors')
 * } catch (error) {
 *   if (error instanceof ModelFileError) console.error(`bad model file ${error.path}: ${error.message}`)
 *   else throw error
 * }
 * ```
 */
export class FerronetError extends Error {
  /**
   * A stable machine-readable code: `ERR_INVALID_OPTION` ({@link OptionError}),
   * `ERR_SHAPE` ({@link ShapeError}), `ERR_IDX_<reason>` ({@link IdxFormatError}),
   * `ERR_IMAGE` ({@link ImageError}), `ERR_MODEL_FILE` ({@link ModelFileError}),
   * `ABORT_ERR` ({@link AbortError}), `ERR_ONNX_UNSUPPORTED` ({@link OnnxExportError}),
   * native codes such as `ERR_BUSY` ({@link NativeError}), and a few of this class
   * itself (`ERR_NATIVE_LOAD`, `ERR_MISSING_DEPENDENCY`, `ERR_DEMO_DATA_MISSING`, …).
   */
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

/** Why an IDX file was rejected; see {@link IdxFormatError}. */
export type IdxErrorReason =
  /** The file (or the directory of `mnist.load`) does not exist. */
  | 'NOT_FOUND'
  /** Not an IDX file of the expected kind: the magic number is not that of images (`0x00000803`) or labels (`0x00000801`), or the element type is not unsigned byte. */
  | 'BAD_MAGIC'
  /** The file is shorter than its header (or its data) says. */
  | 'TRUNCATED'
  /** The file is longer than its header says. */
  | 'TRAILING_BYTES'
  /** The images and labels files hold different numbers of samples. */
  | 'COUNT_MISMATCH'
  /** A label above 9. */
  | 'LABEL_OUT_OF_RANGE'
  /** A `.gz` file that does not decompress. */
  | 'CORRUPT_GZIP'
  /** The header declares no dimensions, an empty inner dimension, or more data than can be read (over 4 GiB). */
  | 'BAD_DIMENSIONS'

/** An IDX (MNIST-format) file that cannot be read as images or labels. */
export class IdxFormatError extends FerronetError {
  /** Path of the offending file (or a caller-supplied name for in-memory buffers). */
  readonly file: string
  /** What is wrong with the file; the `code` is `ERR_IDX_` followed by it (`ERR_IDX_TRUNCATED`). */
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

/**
 * An input value a layer cannot take: an {@link EmbeddingSpec | Embedding}'s id that is
 * not an integer in `0..numEmbeddings` (or NaN). Thrown before anything is trained on
 * the batch, by `trainBatch`, `fit`, `evaluate`, `predict` and the {@link Dataset}
 * checks; `code` is `ERR_INVALID_INPUT`.
 */
export class InvalidInputError extends FerronetError {
  /** The node that reads the value (`"wte"`, `"0"`). */
  readonly node: string
  /** The sample's index in the data given. */
  readonly sample: number
  /** The value's position within the sample (its flat index). */
  readonly position: number
  /** The value. */
  readonly value: number
  constructor(node: string, sample: number, position: number, value: number, message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_INPUT', message, options)
    this.node = node
    this.sample = sample
    this.position = position
    this.value = value
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
 * a diverged loss (`ERR_NON_FINITE_LOSS`), a NaN or infinite gradient (`ERR_NON_FINITE_GRADIENT`), a busy network (`ERR_BUSY`), an internal
 * panic (`ERR_PANIC`, which never takes the process down). `code` says which.
 */
export class NativeError extends FerronetError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/** Why an image (or a folder of images) was rejected; see {@link ImageError}. */
export type ImageErrorReason =
  /** The file or folder does not exist. */
  | 'NOT_FOUND'
  /** An image path that is a folder. */
  | 'NOT_A_FILE'
  /** An image-folder path that is a file. */
  | 'NOT_A_DIRECTORY'
  /** The file exists but could not be read (permissions, I/O error). */
  | 'UNREADABLE'
  /** Zero bytes. */
  | 'EMPTY_FILE'
  /** Not an image, or a format sharp does not decode (BMP, HEIC, …). */
  | 'UNSUPPORTED_FORMAT'
  /** A PNG, JPEG, GIF or WebP that ends early. */
  | 'TRUNCATED'
  /** A recognised format whose data does not decode. */
  | 'CORRUPT'
  /** More pixels than the `maxPixels` limit. */
  | 'TOO_LARGE'
  /** No ink: the image is (nearly) one flat colour, so there is nothing to crop to. */
  | 'EMPTY_IMAGE'
  /** The model's input shape is not one an image can fill (`[H*W]`, `[H, W]`, `[1|3, H, W]`). */
  | 'BAD_SHAPE'
  /** An image folder without class sub-folders. */
  | 'NO_CLASSES'
  /** An image folder whose class sub-folders hold no readable image. */
  | 'NO_IMAGES'

/**
 * An image that cannot be turned into model input, or an image folder that cannot
 * be loaded. `code` is always `ERR_IMAGE`; `reason` says what went wrong and `file`
 * is the path (or `"image bytes"`, or the caller's name for an in-memory image).
 * The message starts with `file`.
 */
export class ImageError extends FerronetError {
  /** The path of the image or folder, or a name for in-memory bytes (`"image bytes"` by default). */
  readonly file: string
  /** What went wrong; see {@link ImageErrorReason}. */
  readonly reason: ImageErrorReason
  constructor(file: string, reason: ImageErrorReason, message: string, options?: { cause?: unknown }) {
    super('ERR_IMAGE', `${file}: ${message}`, options)
    this.file = file
    this.reason = reason
  }
}
