// Builds a DenseNet as a tfjs LayersModel from its plan. Layers carry torchvision's module
// names, so a checkpoint maps onto them name for name.
//
// Padding: torchvision pads symmetrically. TF 'same' padding is symmetric only for odd kernels
// at stride 1 (3×3/1 here), so those use 'same'; the strided stem conv and max pool get an
// explicit ZeroPadding2D with 'valid' windows, as Keras' reference DenseNet does. Zero padding
// before the max pool equals torch's −∞ padding because its input is post-ReLU (≥ 0).
import { tf, type LayersModel, type SymbolicTensor } from './tf-runtime.ts';
import type { DenseNetConfig } from './config.ts';
import { planDenseNet, type ConvUnit, type DenseNetPlan, type NormUnit } from './architecture.ts';

export interface DenseNetModel {
  readonly config: DenseNetConfig;
  readonly plan: DenseNetPlan;
  /** The network; its output is logits [batch, numClasses] (no softmax). */
  readonly layersModel: LayersModel;
}

export function buildDenseNet(config: DenseNetConfig): DenseNetModel {
  const plan = planDenseNet(config);
  const input = tf.input({ shape: [config.inputHeight, config.inputWidth, config.inputChannels], name: 'input' });

  const bnRelu = (x: SymbolicTensor, unit: NormUnit, reluName: string): SymbolicTensor => {
    const normed = tf.layers
      .batchNormalization({ name: unit.name, axis: -1, epsilon: config.bnEpsilon, momentum: 0.9 })
      .apply(x) as SymbolicTensor;
    return tf.layers.activation({ name: reluName, activation: 'relu' }).apply(normed) as SymbolicTensor;
  };
  const convolve = (x: SymbolicTensor, unit: ConvUnit): SymbolicTensor => {
    const sameIsSymmetric = unit.stride === 1 && unit.kernel % 2 === 1;
    if (!sameIsSymmetric && unit.padding > 0) {
      x = tf.layers.zeroPadding2d({ name: `${unit.name}.pad`, padding: unit.padding }).apply(x) as SymbolicTensor;
    }
    return tf.layers
      .conv2d({
        name: unit.name,
        filters: unit.outChannels,
        kernelSize: unit.kernel,
        strides: unit.stride,
        padding: sameIsSymmetric ? 'same' : 'valid',
        useBias: false,
        kernelInitializer: 'heNormal',
      })
      .apply(x) as SymbolicTensor;
  };

  let x = convolve(input, plan.stem.conv);
  if (plan.stem.norm) x = bnRelu(x, plan.stem.norm, 'features.relu0');
  if (plan.stem.maxPool) {
    x = tf.layers.zeroPadding2d({ name: 'features.pool0.pad', padding: 1 }).apply(x) as SymbolicTensor;
    x = tf.layers.maxPooling2d({ name: 'features.pool0', poolSize: 3, strides: 2, padding: 'valid' }).apply(x) as SymbolicTensor;
  }

  for (const block of plan.blocks) {
    for (const layer of block.layers) {
      let y = convolve(bnRelu(x, layer.norm1, `${layer.name}.relu1`), layer.conv1);
      if (layer.norm2 && layer.conv2) y = convolve(bnRelu(y, layer.norm2, `${layer.name}.relu2`), layer.conv2);
      if (config.dropRate > 0) {
        y = tf.layers.dropout({ name: `${layer.name}.dropout`, rate: config.dropRate }).apply(y) as SymbolicTensor;
      }
      x = tf.layers.concatenate({ name: `${layer.name}.concat`, axis: -1 }).apply([x, y]) as SymbolicTensor;
    }
    if (block.transition) {
      const t = block.transition;
      x = convolve(bnRelu(x, t.norm, `${t.name}.relu`), t.conv);
      x = tf.layers.averagePooling2d({ name: `${t.name}.pool`, poolSize: 2, strides: 2, padding: 'valid' }).apply(x) as SymbolicTensor;
    }
  }

  x = bnRelu(x, plan.finalNorm, 'features.relu5');
  x = tf.layers.globalAveragePooling2d({ name: 'global_pool' }).apply(x) as SymbolicTensor;
  const logits = tf.layers
    .dense({ name: plan.classifier.name, units: plan.classifier.outFeatures })
    .apply(x) as SymbolicTensor;

  return { config, plan, layersModel: tf.model({ inputs: input, outputs: logits, name: 'densenet' }) };
}
