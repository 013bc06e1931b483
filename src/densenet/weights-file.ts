// One entry point for checkpoint files of every format a DenseNet arrives in: torchvision/timm
// safetensors, PyTorch torch.save files (.pth) and Keras files (.keras, .h5). The worker loads
// a model's weights through it, and the import command validates and converts with it, so a
// file that imports is a file that serves.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ServeError } from '../errors.ts';
import type { DenseNetPlan } from './architecture.ts';
import { checkKerasConfig, kerasToTorchvision, looksLikeHdf5, readKerasFile, type KerasModelSummary } from './keras-checkpoint.ts';
import type { DenseNetModel } from './model.ts';
import { looksLikeLegacyPytorch, readPytorchCheckpoint } from './pytorch-checkpoint.ts';
import { parseSafetensors, type SafetensorsFile } from './safetensors.ts';
import { loadTorchvisionWeights, readTorchvisionState } from './torchvision-weights.ts';
import { looksLikeZip, ZipArchive } from './zip-archive.ts';

export type WeightsFormat = 'safetensors' | 'pytorch' | 'keras';
export const WEIGHTS_FORMATS: readonly WeightsFormat[] = ['safetensors', 'pytorch', 'keras'];

/** Largest checkpoint read into memory (Node buffers stop at 2 GiB; DenseNet-264 F32 is 133 MB). */
export const MAX_WEIGHTS_FILE_BYTES = 2 * 1024 * 1024 * 1024 - 1;

export interface ReadCheckpoint {
  /** Tensors under the names the file uses (torchvision's for Keras files, mapped here). */
  file: SafetensorsFile;
  /** What was read, for logs and the import's metadata: "pytorch zip", "keras archive (Keras 3.15.1)", … */
  source: string;
  /** A Keras model config's summary, when the file has one. */
  keras?: KerasModelSummary;
}

async function readLimited(file: string): Promise<Buffer> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new ServeError('INVALID_MODEL_FILE', `${path.basename(file)} is missing`);
  if (info.size > MAX_WEIGHTS_FILE_BYTES) {
    throw new ServeError('INVALID_MODEL_FILE', `${path.basename(file)} is ${info.size} bytes, over the limit of ${MAX_WEIGHTS_FILE_BYTES}`);
  }
  return readFile(file);
}

/** Reads a checkpoint of the given format; Keras files are mapped onto the plan's torchvision names. */
export async function readCheckpointFile(format: WeightsFormat, file: string, plan: DenseNetPlan): Promise<ReadCheckpoint> {
  switch (format) {
    case 'safetensors':
      return { file: parseSafetensors(await readLimited(file)), source: 'safetensors' };
    case 'pytorch': {
      const checkpoint = await readPytorchCheckpoint(await readLimited(file));
      const where = checkpoint.stateDictKey ? ` (the state_dict under '${checkpoint.stateDictKey}')` : '';
      return { file: checkpoint, source: `pytorch ${checkpoint.format} format${where}` };
    }
    case 'keras': {
      const read = await readKerasFile(file);
      const keras = read.config === undefined ? undefined : checkKerasConfig(read.config, plan.config);
      const version = read.kerasVersion ? `, Keras ${read.kerasVersion}` : '';
      const what = read.container === 'keras-archive' ? 'keras archive' : `keras HDF5 (${read.layout === 'keras2' ? 'Keras 2 layout' : 'Keras 3 weights'})`;
      return { file: kerasToTorchvision(read, plan), source: `${what}${version}`, keras };
    }
  }
}

/** Validates every tensor of the file against the model and loads it. */
export async function loadWeightsFile(model: DenseNetModel, format: WeightsFormat, file: string): Promise<ReadCheckpoint> {
  const read = await readCheckpointFile(format, file, model.plan);
  loadTorchvisionWeights(model, read.file);
  return read;
}

/** Validates without a network (the import command): returns float32 tensors by torchvision name. */
export async function validateCheckpointFile(format: WeightsFormat, file: string, plan: DenseNetPlan): Promise<ReadCheckpoint & { state: Map<string, Float32Array> }> {
  const read = await readCheckpointFile(format, file, plan);
  return { ...read, state: readTorchvisionState({ plan }, read.file) };
}

/** The format of a checkpoint, from its first bytes (and, for zips, its entry names). */
export async function detectWeightsFormat(file: string): Promise<WeightsFormat> {
  const bytes = await readLimited(file);
  if (looksLikeHdf5(bytes)) return 'keras';
  if (looksLikeLegacyPytorch(bytes)) return 'pytorch';
  if (looksLikeZip(bytes)) {
    const zip = await ZipArchive.open(bytes, path.basename(file));
    try {
      const names = zip.names();
      if (names.some((n) => /^[^/]+\/data\.pkl$/.test(n))) return 'pytorch';
      if (names.includes('config.json') && names.some((n) => n.startsWith('model.weights'))) return 'keras';
      throw new ServeError('INVALID_MODEL_FILE', `${path.basename(file)} is a zip archive, but neither a torch.save file nor a Keras .keras file (entries: ${names.slice(0, 6).join(', ')})`);
    } finally {
      zip.close();
    }
  }
  if (bytes.length >= 9) {
    const headerLength = bytes.readBigUInt64LE(0);
    if (headerLength > 1n && headerLength < BigInt(bytes.length) && bytes[8] === 0x7b /* { */) return 'safetensors';
  }
  throw new ServeError('INVALID_MODEL_FILE',
    `${path.basename(file)} is not a checkpoint this server reads (safetensors, a torch.save .pth, or a Keras .keras/.h5 file)`);
}
