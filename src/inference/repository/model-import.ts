// `npm run import`: turns a DenseNet checkpoint someone already has (torchvision .pth, a
// safetensors file, a Keras .keras/.h5) into a model folder of the repository: the format is
// detected from the file, every tensor is checked against the preset (missing, unexpected and
// wrong-shape tensors are listed), and the folder gets a manifest and torchvision-named
// safetensors weights carrying the source file's sha256. The folder is written beside the
// others under a hidden name and renamed into place, then read back as the server would.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  KERAS_BN_EPSILON, PRESETS, detectWeightsFormat, paramTensors, parseDenseNetConfig, planDenseNet, presetConfig, serializeSafetensors,
  validateCheckpointFile, type DenseNetConfig, type DenseNetConfigInput, type PresetName, type WeightsFormat,
} from '../../densenet/index.ts';
import { ServeError, invalidInput } from '../../errors.ts';
import { IMAGENET_LABELS, MANIFEST_FILE } from './manifest.ts';
import { assertModelName, ModelRepository } from './model-repository.ts';
import { standardPreprocessing } from './preset-defaults.ts';

export interface ImportOptions {
  /** The checkpoint to import. */
  source: string;
  /** A preset, or (for networks that are none) a full architecture: exactly one. */
  preset?: PresetName;
  architecture?: DenseNetConfigInput;
  /** The model's name (its folder in the repository). */
  name: string;
  repository: string;
  /** 'imagenet' (the shipped ImageNet classes) or a labels file, one per line; absent: index labels. */
  labels?: string;
  /** Overrides of the preset (a fine-tuned classifier, another input size). */
  numClasses?: number;
  inputSize?: number;
  /** Skips detection. */
  format?: WeightsFormat;
  /** Replaces an existing model folder of that name. */
  force?: boolean;
}

export interface ImportResult {
  folder: string;
  format: WeightsFormat;
  /** What the reader found ("pytorch legacy format", "keras archive, Keras 3.15.1", …). */
  source: string;
  sha256: string;
  tensors: number;
  parameters: number;
  manifest: Record<string, unknown>;
}

const WEIGHTS_FILE = 'weights.safetensors';
const LABELS_FILE = 'labels.txt';

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readLabelsFile(file: string, classes: number): Promise<string[]> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw invalidInput('labels', `labels file ${file} does not exist`);
  if (info.size > 16 * 1024 * 1024) throw invalidInput('labels', `labels file ${file} is over 16 MiB`);
  const labels = (await readFile(file, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (labels.length !== classes) throw invalidInput('labels', `${file} has ${labels.length} labels, the model ${classes} classes`);
  return labels;
}

export async function importModel(options: ImportOptions): Promise<ImportResult> {
  assertModelName(options.name, 'name');
  if ((options.preset === undefined) === (options.architecture === undefined)) throw invalidInput('preset', 'give a preset or an architecture (one of them)');
  if (options.preset !== undefined && !Object.hasOwn(PRESETS, options.preset)) {
    throw invalidInput('preset', `unknown preset '${options.preset}' (one of ${Object.keys(PRESETS).join(', ')})`);
  }
  const format = options.format ?? await detectWeightsFormat(options.source);
  const overrides: Record<string, number> = {};
  if (options.numClasses !== undefined) overrides.numClasses = options.numClasses;
  if (options.inputSize !== undefined) overrides.inputHeight = overrides.inputWidth = options.inputSize;
  // Keras's DenseNets normalise with epsilon 1.001e-5, torchvision's with 1e-5.
  if (format === 'keras') overrides.bnEpsilon = KERAS_BN_EPSILON;
  const config: DenseNetConfig = options.preset !== undefined
    ? presetConfig(options.preset, overrides)
    : parseDenseNetConfig({ ...options.architecture, ...overrides });
  const plan = planDenseNet(config);

  let read: Awaited<ReturnType<typeof validateCheckpointFile>>;
  try {
    read = await validateCheckpointFile(format, options.source, plan);
  } catch (err) {
    // The one mismatch people meet most: a classifier fine-tuned to another number of classes.
    const details = (err as { details?: { wrongShape?: string[] } }).details;
    if (err instanceof ServeError && details?.wrongShape?.some((w) => /'(classifier|predictions)/.test(w))) {
      throw new ServeError(err.code, `${err.message} (for a classifier of another size, pass --num-classes)`, details);
    }
    throw err;
  }
  const digest = await sha256(options.source);
  const labels = options.labels === undefined || options.labels === IMAGENET_LABELS ? undefined : await readLabelsFile(options.labels, config.numClasses);
  if (options.labels === IMAGENET_LABELS && config.numClasses !== 1000) {
    throw invalidInput('labels', `'imagenet' names 1000 classes, the model has ${config.numClasses}`);
  }

  const params = paramTensors(plan);
  const weights = serializeSafetensors(
    params.map((p): [string, { dtype: 'F32'; shape: number[]; data: Float32Array }] => [p.name, { dtype: 'F32', shape: p.shape, data: read.state.get(p.name) as Float32Array }]),
    {
      format: 'pt',
      source_file: path.basename(options.source),
      source_sha256: digest,
      source_format: read.source,
      imported_by: 'densenet-serve import',
      architecture: JSON.stringify(config),
    },
  );
  const preprocessing = standardPreprocessing(config);
  const fromKeras = format === 'keras'
    ? ' Preprocessing is keras.applications.densenet.preprocess_input (mode "torch": x/255, minus the ImageNet mean, over the std, RGB) after a resize and centre crop.'
    : '';
  const manifest: Record<string, unknown> = {
    description: `${options.preset ?? 'DenseNet'} imported from ${path.basename(options.source)} (${read.source}), sha256 ${digest}.${fromKeras}`,
    format: 'safetensors',
    architecture: options.preset !== undefined ? { preset: options.preset, ...overrides } : { ...config },
    ...(options.labels === IMAGENET_LABELS ? { labels: IMAGENET_LABELS } : labels ? { labels: LABELS_FILE } : {}),
    preprocessing,
  };

  const root = path.resolve(options.repository);
  await mkdir(root, { recursive: true });
  const folder = path.join(root, options.name);
  const exists = await stat(folder).then(() => true, () => false);
  if (exists && !options.force) {
    throw new ServeError('INVALID_INPUT', `${folder} already exists (pass --force to replace it)`, { field: 'name' });
  }
  // Written under a hidden name (the repository skips dot-folders) and renamed into place.
  const staging = path.join(root, `.import-${options.name}-${process.pid}-${Date.now()}`);
  await mkdir(staging);
  try {
    await writeFile(path.join(staging, WEIGHTS_FILE), weights);
    if (labels) await writeFile(path.join(staging, LABELS_FILE), `${labels.join('\n')}\n`);
    await writeFile(path.join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    if (exists) await rm(folder, { recursive: true, force: true });
    await rename(staging, folder);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  // Read back as the server will: the manifest, labels and weights file must describe a model.
  await new ModelRepository(root).describe(options.name);
  return {
    folder, format, source: read.source, sha256: digest, tensors: params.length,
    parameters: params.filter((p) => p.trainable).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
    manifest,
  };
}
