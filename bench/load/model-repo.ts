// The model repository a load run serves: the embedded Fashion-MNIST model (models/), or a
// DenseNet preset with random weights generated once into bench/.cache/models/ (weights are
// cached; the manifest is rewritten each run with the batching asked for).
import { execFile } from 'node:child_process';
import { access, copyFile, link, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { isPresetName, presetConfig } from '../../src/densenet/index.ts';
import { REPO_ROOT } from './server-process.ts';

export const CACHE_DIR = path.join(REPO_ROOT, 'bench/.cache');
export const EMBEDDED_MODEL = 'fashion-mnist';

export interface RepositoryChoice {
  root: string;
  /** Model name inside the repository. */
  name: string;
  description: string;
}

export interface GeneratedModelOptions {
  maxBatchSize: number;
  maxQueueSize: number;
  /** Workers holding the model; default every worker. */
  instances?: number;
}

/** bench/.cache/ (ignored by git): generated models, the server log, smoke output. */
export async function ensureCacheDir(): Promise<void> {
  await mkdir(CACHE_DIR, { recursive: true });
}

export async function modelRepository(model: string, options: GeneratedModelOptions): Promise<RepositoryChoice> {
  if (model === EMBEDDED_MODEL) {
    return { root: path.join(REPO_ROOT, 'models'), name: 'fashion-mnist-densenet', description: 'embedded Fashion-MNIST DenseNet-BC-40 (28×28×1), models/' };
  }
  if (!isPresetName(model)) throw new Error(`--model: '${model}' is neither '${EMBEDDED_MODEL}' nor a DenseNet preset`);
  await ensureCacheDir();
  const suffix = options.instances ? `-i${options.instances}` : '';
  const root = path.join(CACHE_DIR, 'models', `${model}-b${options.maxBatchSize}-q${options.maxQueueSize}${suffix}`);
  const dir = path.join(root, model);
  await mkdir(dir, { recursive: true });
  const weights = path.join(dir, 'weights.safetensors');
  const shared = path.join(CACHE_DIR, 'models', 'weights', model);
  const sharedWeights = path.join(shared, 'weights.safetensors');
  if (!(await exists(sharedWeights))) {
    await mkdir(shared, { recursive: true });
    process.stderr.write(`generating ${model} weights into ${shared} …\n`);
    await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench/load/make-model.ts'), model, shared], { cwd: REPO_ROOT });
  }
  // A hard link (a copy across file systems): one weights file however many batching variants.
  if (!(await exists(weights))) await link(sharedWeights, weights).catch(() => copyFile(sharedWeights, weights));
  const config = presetConfig(model);
  const imagenet = config.stem === 'imagenet';
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({
    description: `${model} with random weights, for load tests (bench/load)`,
    format: 'safetensors',
    architecture: { preset: model },
    labels: Array.from({ length: config.numClasses }, (_, i) => `class ${i}`),
    preprocessing: imagenet
      ? { resizeMode: 'resize-crop', resizeShorterTo: 256, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }
      : { resizeMode: 'resize-crop', mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
    batching: { maxBatchSize: options.maxBatchSize, maxQueueDelayMs: 0, maxQueueSize: options.maxQueueSize },
    ...(options.instances ? { instances: options.instances } : {}),
  }, null, 2));
  return { root, name: model, description: `${model} (${config.inputHeight}×${config.inputWidth}×${config.inputChannels}, random weights), maxBatchSize ${options.maxBatchSize}` };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}
