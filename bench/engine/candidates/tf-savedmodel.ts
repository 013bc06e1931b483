// A TensorFlow SavedModel of the same network (bench/engine/python/make-saved-model.py),
// run by tfjs-node's loadSavedModel: the same libtensorflow and thread pools as our engine,
// executing a TF graph (one session run per batch) instead of tfjs op by op.
import { createRequire } from 'node:module';
import { tf, type Tensor } from '../../../src/densenet/tf-runtime.ts';
import type { Candidate } from '../candidate.ts';

/** The part of tfjs-node's TFSavedModel this bench uses. */
interface SavedModel {
  predict(input: Tensor): Tensor | Tensor[] | Record<string, Tensor>;
  dispose(): void;
}
interface TfjsNodeApi {
  loadSavedModel(path: string, tags: string[], signature: string): Promise<SavedModel>;
}

// src/densenet/tf-runtime.ts owns the engine import and exports no SavedModel loader, so the
// bench reaches tfjs-node's `node` namespace itself. initEngine has loaded tfjs-node by then:
// this is the same module instance, running on the engine environment (threads, oneDNN off)
// that tf-runtime applied.
function tfjsNode(): TfjsNodeApi {
  return (createRequire(import.meta.url)('@tensorflow/tfjs-node') as { node: TfjsNodeApi }).node;
}

export function tfSavedModel(): Candidate {
  let model: SavedModel | undefined;
  let shape: [number, number, number] = [0, 0, 0];
  let threads = 0;
  return {
    name: 'tf-savedmodel',
    describe: () => `TF SavedModel (raw TF ops, FusedBatchNormV3) via tf.node.loadSavedModel, same TF runtime, ${threads} intra-op threads`,
    async setup(config, _weightsPath, env) {
      if (tf.getBackend() !== 'tensorflow') throw new Error('needs the native TensorFlow backend');
      model = await tfjsNode().loadSavedModel(await env.artifacts.savedModel(), ['serve'], 'serving_default');
      shape = [config.inputHeight, config.inputWidth, config.inputChannels];
      threads = env.threads;
    },
    async run(batch, n) {
      const m = model as SavedModel;
      return tf.tidy(() => {
        const out = m.predict(tf.tensor4d(batch, [n, ...shape]));
        const logits = out instanceof tf.Tensor ? out : Array.isArray(out) ? out[0] : out.logits;
        if (!logits) throw new Error('the SavedModel returned no logits');
        return logits.dataSync() as Float32Array;
      });
    },
    async dispose() {
      model?.dispose();
    },
  };
}
