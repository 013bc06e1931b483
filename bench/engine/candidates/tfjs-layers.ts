// Plain tfjs-layers: model.predict on the LayersModel src/densenet builds, native TensorFlow
// underneath. Also the reference every other candidate's logits are compared with.
import { tf, type LayersModel, type Tensor } from '../../../src/densenet/tf-runtime.ts';
import type { Candidate } from '../candidate.ts';
import { loadDenseNet } from '../tfjs-model.ts';

export function tfjsLayers(): Candidate {
  let model: LayersModel | undefined;
  let shape: [number, number, number] = [0, 0, 0];
  let threads = 0;
  return {
    name: 'tfjs-layers',
    describe: () => `LayersModel.predict + dataSync, native TF (tfjs-node), ${threads} intra-op threads, inter-op 1`,
    async setup(config, weightsPath, env) {
      model = (await loadDenseNet(config, weightsPath)).layersModel;
      shape = [config.inputHeight, config.inputWidth, config.inputChannels];
      threads = env.threads;
    },
    async run(batch, n) {
      const m = model as LayersModel;
      return tf.tidy(() => (m.predict(tf.tensor4d(batch, [n, ...shape])) as Tensor).dataSync() as Float32Array);
    },
    async dispose() {
      model?.dispose();
    },
  };
}
