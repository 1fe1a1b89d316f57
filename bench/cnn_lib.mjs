// The convolutional networks of the `cnn` benchmark section, in one framework-neutral
// description shared by bench/ferronet_cnn.mjs, bench/tfjs_cnn.mjs and bench/run.mjs
// (bench/pytorch_cnn.py builds the same layers and counts its MACs independently, from
// the shapes its modules see; run.mjs checks that both counts agree).
//
// Layers: { type: 'conv', filters, kernel, padding } (stride 1, square kernel, zero
// padding on every side), { type: 'relu' }, { type: 'maxpool', size } (stride = size),
// { type: 'dropout', rate }, { type: 'flatten' }, { type: 'dense', units }.
// Shapes are channels-first [C, H, W] as in PyTorch and ferronet.

export const CNN_INPUT = Object.freeze([1, 28, 28])
export const CNN_TRAINING = Object.freeze({ batchSize: 64, lr: 1e-3, classes: 10 })

export const CNN_NETS = Object.freeze({
  lenet: Object.freeze({
    name: 'lenet',
    title: 'LeNet-5',
    layers: Object.freeze([
      { type: 'conv', filters: 6, kernel: 5, padding: 2 },
      { type: 'relu' },
      { type: 'maxpool', size: 2 },
      { type: 'conv', filters: 16, kernel: 5, padding: 0 },
      { type: 'relu' },
      { type: 'maxpool', size: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 120 },
      { type: 'relu' },
      { type: 'dense', units: 84 },
      { type: 'relu' },
      { type: 'dense', units: 10 },
    ]),
  }),
  cnn: Object.freeze({
    name: 'cnn',
    title: 'cnn (2 conv + 2 dense, dropout)',
    layers: Object.freeze([
      { type: 'conv', filters: 32, kernel: 3, padding: 0 },
      { type: 'relu' },
      { type: 'conv', filters: 64, kernel: 3, padding: 0 },
      { type: 'relu' },
      { type: 'maxpool', size: 2 },
      { type: 'dropout', rate: 0.25 },
      { type: 'flatten' },
      { type: 'dense', units: 128 },
      { type: 'relu' },
      { type: 'dropout', rate: 0.5 },
      { type: 'dense', units: 10 },
    ]),
  }),
})

export const CNN_NET_NAMES = Object.freeze(Object.keys(CNN_NETS))

export function cnnNet(name) {
  const net = CNN_NETS[name]
  if (!net) throw new Error(`unknown network ${JSON.stringify(name)} (expected ${CNN_NET_NAMES.join(' or ')})`)
  return net
}

/**
 * Forward multiply-accumulates per sample, per conv/dense layer, found by propagating
 * the shape: a conv layer costs out_C·out_H·out_W·(in_C·k·k) MACs, a dense layer in·out.
 * Also the parameter count (weights + biases) and the output shape of every layer.
 */
export function cnnCost(name) {
  const net = cnnNet(name)
  let shape = [...CNN_INPUT]
  const layers = []
  let macs = 0
  let params = 0
  for (const l of net.layers) {
    const input = shape
    let m = 0
    let p = 0
    if (l.type === 'conv') {
      const [c, h, w] = shape
      const oh = h + 2 * l.padding - l.kernel + 1
      const ow = w + 2 * l.padding - l.kernel + 1
      shape = [l.filters, oh, ow]
      m = l.filters * oh * ow * c * l.kernel * l.kernel
      p = l.filters * c * l.kernel * l.kernel + l.filters
    } else if (l.type === 'maxpool') {
      const [c, h, w] = shape
      shape = [c, Math.floor(h / l.size), Math.floor(w / l.size)]
    } else if (l.type === 'flatten') {
      shape = [shape.reduce((a, b) => a * b, 1)]
    } else if (l.type === 'dense') {
      if (shape.length !== 1) throw new Error(`${name}: dense layer after a non-flat shape [${shape}]`)
      m = shape[0] * l.units
      p = shape[0] * l.units + l.units
      shape = [l.units]
    }
    macs += m
    params += p
    layers.push({ type: l.type, input, output: shape, macs: m, params: p })
  }
  // The usual approximation of a training step: backward = 2 × forward (one product
  // for the input gradient, one for the weight gradient), so 3 × 2 FLOPs per MAC.
  const trainFlopsPerSample = 3 * 2 * macs
  // What is actually needed: the first layer's input gradient is never computed.
  const first = layers.find((l) => l.macs > 0)
  const trainFlopsPerSampleExact = trainFlopsPerSample - 2 * first.macs
  return { name, forwardMacsPerSample: macs, trainFlopsPerSample, trainFlopsPerSampleExact, params, layers, output: shape }
}

/** ferronet's layer list for `name`, written with its public API (Net.conv2d, ...). */
export function ferronetLayers(Net, name) {
  return cnnNet(name).layers.map((l) => {
    switch (l.type) {
      case 'conv': return l.padding ? Net.conv2d(l.filters, l.kernel, { padding: l.padding }) : Net.conv2d(l.filters, l.kernel)
      case 'relu': return Net.relu()
      case 'maxpool': return Net.maxPool2d(l.size)
      case 'dropout': return Net.dropout(l.rate)
      case 'flatten': return Net.flatten()
      case 'dense': return Net.dense(l.units)
      default: throw new Error(`unknown layer ${l.type}`)
    }
  })
}

/** The ferronet API calls the CNN section needs (to skip with a clear reason when absent). */
export const FERRONET_CNN_API = Object.freeze(['conv2d', 'relu', 'maxPool2d', 'dropout', 'flatten', 'dense', 'sequential'])
