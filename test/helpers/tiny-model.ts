// A small DenseNet-BC model folder written on the fly (seeded weights and BN statistics), so
// inference tests run real networks in milliseconds without shipping fixtures.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildDenseNet, exportTorchvisionWeights, parseDenseNetConfig, type DenseNetConfigInput, type DenseNetModel } from '../../src/densenet/index.ts';
import { tf } from '../../src/densenet/tf-runtime.ts';

export const TINY_ARCHITECTURE: DenseNetConfigInput = {
  growthRate: 4, blockLayers: [2, 2], bottleneck: true, compression: 0.5, stem: 'cifar',
  stemChannels: 8, inputHeight: 16, inputWidth: 16, inputChannels: 3, numClasses: 3,
};
export const TINY_LABELS = ['circle', 'square', 'triangle'];

/** Builds the tiny model with seeded weights (the caller disposes layersModel). */
export function tinyModel(seed: number, overrides: Partial<DenseNetConfigInput> = {}): DenseNetModel {
  const model = buildDenseNet(parseDenseNetConfig({ ...TINY_ARCHITECTURE, ...overrides }));
  let s = seed;
  for (const layer of model.layersModel.layers) {
    const weights = layer.getWeights();
    if (weights.length === 0) continue;
    const isNorm = layer.getClassName() === 'BatchNormalization';
    const values = weights.map((w, i) => tf.tidy(() => {
      const r = tf.randomUniform(w.shape, -1, 1, 'float32', s++);
      return isNorm && (i === 0 || i === 3) ? r.abs().add(0.5) : r; // gamma, variance > 0
    }));
    layer.setWeights(values); // copies into the layer's variables
    tf.dispose(values);
  }
  return model;
}

export interface TinyFolderOptions {
  seed?: number;
  versions?: number[];
  manifest?: Record<string, unknown>;
  architecture?: Partial<DenseNetConfigInput>;
}

/** Writes `<root>/<name>/` with manifest.json and weights (numbered version folders if asked). */
export async function writeTinyModelFolder(root: string, name: string, options: TinyFolderOptions = {}): Promise<void> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  const versions = options.versions ?? [];
  for (const [i, folder] of (versions.length ? versions.map(String) : ['']).entries()) {
    const model = tinyModel((options.seed ?? 1) + 100 * i, options.architecture);
    await mkdir(path.join(dir, folder), { recursive: true });
    await writeFile(path.join(dir, folder, 'weights.safetensors'), exportTorchvisionWeights(model));
    model.layersModel.dispose();
  }
  const manifest = {
    format: 'safetensors',
    architecture: { ...TINY_ARCHITECTURE, ...options.architecture },
    labels: TINY_LABELS,
    preprocessing: { resizeMode: 'stretch', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    batching: { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 32 },
    ...options.manifest,
  };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}
