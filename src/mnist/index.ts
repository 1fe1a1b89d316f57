/**
 * MNIST-style datasets: loaders for IDX files (MNIST, Fashion-MNIST and others that
 * use the same format) and the bundled demo digits. Exported from the package as the
 * `mnist` namespace, e.g. `mnist.load(dir, 'train')`.
 *
 * @module mnist
 */

export { load, loadDigits, loadDigitsFromPackage, loadFiles } from './load.js'
export type { MnistSplit } from './load.js'
export {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  parseIdx,
  parseImages,
  parseLabels,
  readIdxFile,
} from './idx.js'
export type { IdxArray, IdxImages, IdxLabels } from './idx.js'
