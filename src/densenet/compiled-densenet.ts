// The serving path of a DenseNet: the network run as a straight sequence of tfjs-core ops on the
// native engine, instead of through the layers API's graph executor. Inference-only rewrites:
//
// - Every batch norm that directly follows a conv (the stem's norm0 after conv0, and each
//   bottleneck's norm2 after conv1) is folded into that conv: its weights are scaled per output
//   channel and the BN shift becomes a bias, so one conv + bias + ReLU replaces conv, BN, ReLU.
// - The other batch norms (norm1 of every layer, transitions, norm5) follow a concat, not a
//   conv, so they stay; each runs as one FusedBatchNorm op from its stored statistics, then ReLU.
// - Padding of the strided stem conv and the stem max pool uses TF's cheap `Pad` op instead
//   of tfjs' `PadV2` (a scalar-valued pad that measured several times slower here).
// - NHWC throughout, which is TF's native CPU layout.
//
// Numerically equal to the layers model within float32 rounding (a test compares them).
import { tf, type Tensor, type Tensor1D, type Tensor2D, type Tensor4D } from './tf-runtime.ts';
import type { DenseNetModel } from './model.ts';
import type { ConvUnit, NormUnit } from './architecture.ts';

export interface CompiledDenseNet {
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  /** Logits [batch, classes] for NHWC input. The caller owns (and disposes) the result. */
  predict(input: Tensor4D): Tensor2D;
  /** Frees the folded weights; the source model is left untouched. */
  dispose(): void;
}

interface FoldedConv {
  filter: Tensor4D;
  bias?: Tensor1D;
  unit: ConvUnit;
}

/** A batch norm that stays: TF's FusedBatchNorm applies it in one pass from the stored stats. */
interface NormStats {
  gamma: Tensor1D;
  beta: Tensor1D;
  mean: Tensor1D;
  variance: Tensor1D;
  epsilon: number;
}

/** Compiles a built (and weight-loaded) DenseNet into the fused inference path. */
export function compileDenseNet(model: DenseNetModel): CompiledDenseNet {
  const { plan, config, layersModel } = model;
  const owned: Tensor[] = [];
  const keep = <T extends Tensor>(t: T): T => {
    owned.push(tf.keep(t));
    return t;
  };
  const weightsOf = (name: string): Tensor[] => layersModel.getLayer(name).getWeights();

  // tfjs orders a BN layer's weights γ, β, moving mean, moving variance.
  const normOf = (unit: NormUnit): NormStats => {
    const [gamma, beta, mean, variance] = weightsOf(unit.name).map((t) => keep(tf.clone(t))) as Tensor1D[];
    return { gamma: gamma!, beta: beta!, mean: mean!, variance: variance!, epsilon: config.bnEpsilon };
  };
  // Folding BN into the conv before it: BN(conv(x, W)) = conv(x, W·s) + (β − μ·s), s = γ/√(σ²+ε).
  const convOf = (unit: ConvUnit, foldedNorm?: NormUnit): FoldedConv => {
    const [kernel] = weightsOf(unit.name) as Tensor4D[];
    if (!foldedNorm) return { filter: keep(tf.clone(kernel!)), unit };
    const folded = tf.tidy(() => {
      const [gamma, beta, mean, variance] = weightsOf(foldedNorm.name) as Tensor1D[];
      const scale = tf.div(gamma!, tf.sqrt(tf.add(variance!, config.bnEpsilon)));
      const filter = keep(tf.mul(kernel!, scale) as Tensor4D); // broadcasts over the output-channel axis
      const bias = keep(tf.sub(beta!, tf.mul(mean!, scale)) as Tensor1D);
      return { filter, bias };
    });
    return { ...folded, unit };
  };

  const stem = convOf(plan.stem.conv, plan.stem.norm);
  const layers = plan.blocks.map((block) => ({
    layers: block.layers.map((layer) => ({
      norm1: normOf(layer.norm1),
      conv1: convOf(layer.conv1, layer.norm2),
      conv2: layer.conv2 ? convOf(layer.conv2) : undefined,
    })),
    transition: block.transition
      ? { norm: normOf(block.transition.norm), conv: convOf(block.transition.conv) }
      : undefined,
  }));
  const finalNorm = normOf(plan.finalNorm);
  const [denseKernel, denseBias] = weightsOf(plan.classifier.name) as [Tensor2D, Tensor1D];
  const classifier = { kernel: keep(tf.clone(denseKernel)), bias: keep(tf.clone(denseBias)) };

  // Each step runs in its own tidy and the previous feature map is freed as soon as the next
  // exists: one tidy around the whole network would keep every intermediate of every layer alive
  // until the end (gigabytes for DenseNet-121 at batch 32; measured 6× slower than layers).
  const forward = (input: Tensor4D): Tensor2D => {
    let x = tf.tidy(() => {
      const stemOut = conv(input, stem, stem.bias ? 'relu' : 'linear');
      return plan.stem.maxPool ? tf.maxPool(zeroPad(stemOut, 1), 3, 2, 'valid') : stemOut;
    });
    const advance = (next: (current: Tensor4D) => Tensor4D): void => {
      const current = x;
      x = tf.tidy(() => next(current));
      current.dispose();
    };
    try {
      for (const block of layers) {
        for (const layer of block.layers) {
          advance((current) => {
            const y = conv(bnRelu(current, layer.norm1), layer.conv1, layer.conv2 ? 'relu' : 'linear');
            return tf.concat([current, layer.conv2 ? conv(y, layer.conv2, 'linear') : y], 3);
          });
        }
        const transition = block.transition;
        if (transition) advance((current) => tf.avgPool(conv(bnRelu(current, transition.norm), transition.conv, 'linear'), 2, 2, 'valid'));
      }
      const features = x;
      return tf.tidy(() => {
        const pooled = tf.mean(bnRelu(features, finalNorm), [1, 2]) as Tensor2D;
        return tf.add(tf.matMul(pooled, classifier.kernel), classifier.bias);
      });
    } finally {
      x.dispose();
    }
  };

  return {
    inputShape: [config.inputHeight, config.inputWidth, config.inputChannels],
    numClasses: config.numClasses,
    predict: forward,
    dispose: () => owned.forEach((t) => t.dispose()),
  };
}

function bnRelu(x: Tensor4D, norm: NormStats): Tensor4D {
  return tf.relu(tf.batchNorm(x, norm.mean, norm.variance, norm.beta, norm.gamma, norm.epsilon));
}

function conv(x: Tensor4D, { filter, bias, unit }: FoldedConv, activation: 'relu' | 'linear'): Tensor4D {
  // Odd kernels at stride 1 are symmetric under 'same'; the strided stem pads explicitly.
  const symmetricSame = unit.stride === 1 && unit.kernel % 2 === 1;
  const input = !symmetricSame && unit.padding > 0 ? zeroPad(x, unit.padding) : x;
  return tf.fused.conv2d({
    x: input,
    filter,
    strides: unit.stride,
    pad: symmetricSame ? 'same' : 'valid',
    bias,
    activation,
  });
}

/** Zero padding of H and W through TF's `Pad` op (tfjs' tf.pad issues the slower `PadV2`). */
function zeroPad(x: Tensor4D, p: number): Tensor4D {
  const backend = tf.backend() as unknown as NativeBackend;
  if (typeof backend.executeSingleOutput !== 'function') return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
  const paddings = tf.tensor2d([[0, 0], [p, p], [p, p], [0, 0]], [4, 2], 'int32');
  const { binding } = backend;
  return backend.executeSingleOutput('Pad', [
    { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
    { name: 'Tpaddings', type: binding.TF_ATTR_TYPE, value: binding.TF_INT32 },
  ], [x, paddings]) as Tensor4D;
}

interface NativeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number; TF_INT32: number };
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: unknown }[], inputs: Tensor[]): Tensor;
}
