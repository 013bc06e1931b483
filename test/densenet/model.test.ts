import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDenseNet, exportTorchvisionWeights, loadLayersModel, loadTorchvisionWeights, parseSafetensors,
  presetConfig, saveLayersModel, serializeSafetensors, countParameters, type DenseNetModel,
} from '../../src/densenet/index.ts';
import type { LayersModel, Tensor } from '../../src/densenet/tf-runtime.ts';
import type { SafetensorsDtype, TensorData } from '../../src/densenet/safetensors.ts';
import { ServeError } from '../../src/errors.ts';
import { useNativeEngine } from '../helpers/engine.ts';

const tf = await useNativeEngine();

type Entry = [string, { dtype: SafetensorsDtype; shape: number[]; data: TensorData }];

/** Largest |difference| between two models' logits on the same seeded input batch. */
function maxLogitDiff(a: LayersModel, b: LayersModel, batch: number, seed: number): number {
  return tf.tidy(() => {
    const x = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', seed);
    return (a.predict(x) as Tensor).sub(b.predict(x) as Tensor).abs().max().dataSync()[0] as number;
  });
}

// Random BN statistics, so import/export bugs in running_mean/var cannot hide behind 0/1.
function randomiseBatchNorm(model: DenseNetModel, seed: number): void {
  let s = seed;
  for (const layer of model.layersModel.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const weights = layer.getWeights();
    layer.setWeights(weights.map((w, i) => tf.tidy(() => {
      const r = tf.randomUniform(w.shape, 0, 1, 'float32', s++);
      return i === 3 ? r.add(0.5) : i === 0 ? r.add(0.5) : r.sub(0.5);
    })));
  }
}

describe('DenseNet tfjs model', () => {
  const config = presetConfig('densenet-bc-100-k12');
  let model: DenseNetModel;
  let dir: string;

  beforeAll(async () => {
    model = buildDenseNet(config);
    randomiseBatchNorm(model, 7);
    dir = await mkdtemp(path.join(tmpdir(), 'densenet-model-'));
  });
  afterAll(async () => {
    model.layersModel.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('is the planned network: tfjs counts the same parameters', () => {
    const counts = countParameters(model.plan);
    expect(model.layersModel.countParams()).toBe(counts.trainable + counts.nonTrainable);
    expect(model.layersModel.outputs[0]?.shape).toEqual([null, 10]);
  });

  it('builds DenseNet-121 with a 7×7 head feature map and 1000 logits', () => {
    const big = buildDenseNet(presetConfig('densenet121'));
    try {
      expect(big.layersModel.getLayer('features.norm5').outputShape).toEqual([null, 7, 7, 1024]);
      expect(big.layersModel.outputs[0]?.shape).toEqual([null, 1000]);
      expect(big.layersModel.countParams()).toBe(8_062_504);
    } finally {
      big.layersModel.dispose();
    }
  });

  it('round-trips through torchvision safetensors losslessly', () => {
    const bytes = exportTorchvisionWeights(model);
    const file = parseSafetensors(bytes);
    expect(file.tensors.get('features.conv0.weight')?.shape).toEqual([24, 3, 3, 3]);
    expect(file.tensors.get('classifier.weight')?.shape).toEqual([10, 342]);
    expect(file.tensors.get('features.norm5.num_batches_tracked')?.dtype).toBe('I64');

    const copy = buildDenseNet(config);
    try {
      loadTorchvisionWeights(copy, file);
      expect(maxLogitDiff(model.layersModel, copy.layersModel, 2, 3)).toBe(0);
      expect(Buffer.from(exportTorchvisionWeights(copy)).equals(Buffer.from(bytes))).toBe(true);
    } finally {
      copy.layersModel.dispose();
    }
  });

  it('reads legacy `norm.1` keys and DataParallel `module.` prefixes', () => {
    const file = parseSafetensors(exportTorchvisionWeights(model));
    const renamed = [...file.tensors].map(([name, t]): Entry => {
      const legacy = name.replace(/(denselayer\d+)\.(norm|conv)([12])\./, '$1.$2.$3.');
      return [`module.${legacy}`, { dtype: t.dtype, shape: t.shape, data: t.bytes }];
    });
    expect(renamed.some(([n]) => n.includes('denselayer1.norm.1.weight'))).toBe(true);
    const copy = buildDenseNet(config);
    try {
      loadTorchvisionWeights(copy, serializeSafetensors(renamed));
      expect(maxLogitDiff(model.layersModel, copy.layersModel, 1, 4)).toBe(0);
    } finally {
      copy.layersModel.dispose();
    }
  });

  it('names missing and unexpected tensors, and shape mismatches', () => {
    const file = parseSafetensors(exportTorchvisionWeights(model));
    const entries = [...file.tensors].map(([n, t]): Entry => [n, { dtype: t.dtype, shape: t.shape, data: t.bytes }]);
    const attempt = (list: Entry[]) => {
      try {
        loadTorchvisionWeights(buildDenseNet(config), serializeSafetensors(list));
      } catch (err) {
        return err as ServeError;
      }
      throw new Error('expected the import to fail');
    };
    const missing = attempt(entries.filter(([n]) => n !== 'features.transition2.conv.weight'));
    expect(missing.code).toBe('INVALID_MODEL_FILE');
    expect(missing.message).toContain('missing tensors: features.transition2.conv.weight');

    const extra = attempt([...entries, ['features.extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]]);
    expect(extra.message).toContain('unexpected tensors: features.extra.weight');

    const reshaped = attempt(entries.map(([n, t]): Entry => (n === 'classifier.bias' ? [n, { ...t, shape: [2, 5] }] : [n, t])));
    expect(reshaped.message).toContain("tensor 'classifier.bias' has shape [2, 5], the architecture needs [10]");
  });

  it('saves and loads the tfjs LayersModel format with identical outputs', async () => {
    await saveLayersModel(model, dir);
    const loaded = await loadLayersModel(dir);
    try {
      expect(loaded.densenet?.config).toEqual(config);
      expect(maxLogitDiff(model.layersModel, loaded.layersModel, 2, 5)).toBe(0);
    } finally {
      loaded.layersModel.dispose();
    }
  });

  it('does not leak tensors across predict, export and import', () => {
    const before = tf.memory().numTensors;
    const copy = buildDenseNet(config);
    loadTorchvisionWeights(copy, exportTorchvisionWeights(model));
    tf.dispose(tf.tidy(() => copy.layersModel.predict(tf.zeros([1, 32, 32, 3]))));
    copy.layersModel.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
