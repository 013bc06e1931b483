// The tfjs LayersModel format on disk (model.json + one weights.bin), read and written by our
// own small handler so it works on every backend and checks sizes before trusting a file.
import { readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { tf, type LayersModel } from './tf-runtime.ts';
import { ServeError } from '../errors.ts';
import { parseDenseNetConfig, type DenseNetConfig } from './config.ts';
import { planDenseNet } from './architecture.ts';
import type { DenseNetModel } from './model.ts';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
const METADATA_KEY = 'densenet';

export interface LayersFormatLimits {
  maxModelJsonBytes: number;
  maxWeightsBytes: number;
}

export const DEFAULT_LAYERS_FORMAT_LIMITS: LayersFormatLimits = {
  maxModelJsonBytes: 32 * 1024 * 1024,
  maxWeightsBytes: 2 * 1024 * 1024 * 1024 - 1,
};

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** Saves a model as model.json + weights.bin, with the DenseNet config in its metadata. */
export async function saveLayersModel(model: DenseNetModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  model.layersModel.setUserDefinedMetadata({ [METADATA_KEY]: { ...model.config } });
  await model.layersModel.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData;
      const weights = weightData instanceof ArrayBuffer ? new Uint8Array(weightData)
        : Buffer.concat((weightData ?? []).map((b) => new Uint8Array(b)));
      const modelJson = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: 'densenet-serve',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs }],
        userDefinedMetadata: artifacts.userDefinedMetadata,
      };
      await writeFile(path.join(dir, WEIGHTS_BIN), weights);
      await writeFile(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
}

export interface LoadedLayersModel {
  layersModel: LayersModel;
  /** Present when the file was written by us (or carries our metadata). */
  densenet?: DenseNetModel;
}

interface ModelJson {
  modelTopology?: unknown;
  weightsManifest?: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
  userDefinedMetadata?: Record<string, unknown>;
}

async function readLimited(file: string, limit: number, what: string): Promise<Buffer> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new ServeError('INVALID_MODEL_FILE', `${what} is missing`, { file: path.basename(file) });
  if (info.size > limit) {
    throw new ServeError('INVALID_MODEL_FILE', `${what} is ${info.size} bytes, over the ${limit}-byte limit`, { file: path.basename(file) });
  }
  return readFile(file);
}

/** Loads a tfjs LayersModel directory (one weights file or several shards). */
export async function loadLayersModel(dir: string, limits = DEFAULT_LAYERS_FORMAT_LIMITS): Promise<LoadedLayersModel> {
  const raw = await readLimited(path.join(dir, MODEL_JSON), limits.maxModelJsonBytes, MODEL_JSON);
  let json: ModelJson;
  try {
    json = JSON.parse(raw.toString('utf8')) as ModelJson;
  } catch (err) {
    throw new ServeError('INVALID_MODEL_FILE', `${MODEL_JSON} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ServeError('INVALID_MODEL_FILE', `${MODEL_JSON} lacks modelTopology or weightsManifest`);
  }
  const specs = json.weightsManifest.flatMap((group) => group.weights ?? []);
  let expectedBytes = 0;
  for (const spec of specs) {
    const size = DTYPE_BYTES[spec.dtype];
    if (!size || !Array.isArray(spec.shape) || spec.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new ServeError('INVALID_MODEL_FILE', `weight '${spec.name}' has an unsupported dtype or shape`, { tensor: spec.name });
    }
    expectedBytes += spec.shape.reduce((a, b) => a * b, 1) * size;
  }
  if (expectedBytes > limits.maxWeightsBytes) {
    throw new ServeError('INVALID_MODEL_FILE', `weights need ${expectedBytes} bytes, over the ${limits.maxWeightsBytes}-byte limit`);
  }
  const shards: Buffer[] = [];
  for (const shard of json.weightsManifest.flatMap((group) => group.paths ?? [])) {
    // Shard names come from the file: never let one point outside the model directory.
    if (path.basename(shard) !== shard) {
      throw new ServeError('INVALID_MODEL_FILE', `weight shard path '${shard}' must be a plain file name`);
    }
    shards.push(await readLimited(path.join(dir, shard), limits.maxWeightsBytes, `weight shard ${shard}`));
  }
  const weightData = Buffer.concat(shards);
  if (weightData.byteLength !== expectedBytes) {
    throw new ServeError('INVALID_MODEL_FILE',
      `weight files hold ${weightData.byteLength} bytes, the manifest describes ${expectedBytes}`);
  }
  let layersModel: LayersModel;
  try {
    layersModel = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology as object,
      weightSpecs: specs as never,
      weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
    }));
  } catch (err) {
    throw new ServeError('INVALID_MODEL_FILE', `tfjs could not build the model: ${(err as Error).message}`, {}, { cause: err });
  }
  const meta = json.userDefinedMetadata?.[METADATA_KEY];
  if (meta === undefined) return { layersModel };
  const config: DenseNetConfig = parseDenseNetConfig(meta);
  return { layersModel, densenet: { config, plan: planDenseNet(config), layersModel } };
}
