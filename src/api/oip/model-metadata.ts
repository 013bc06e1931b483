// What the Open Inference Protocol says about the server and its models, the same on both
// transports: server metadata with the one list of extensions, model metadata (tensor names,
// datatypes, shapes) and Triton's model configuration (what tritonclient's get_model_config and
// perf_analyzer read: max_batch_size, formats, the dynamic batcher, instances). Platform and
// backend name what really runs the model's batches.
import { createRequire } from 'node:module';
import type { ExecutorName, ModelDescription } from '../../inference/index.ts';

const pkg = createRequire(import.meta.url)('../../../package.json') as { name: string; version: string; description?: string };

export const SERVER_INFO = Object.freeze({ name: pkg.name, version: pkg.version, description: pkg.description ?? '' });

/** Open Inference Protocol extensions this server speaks, on HTTP and gRPC alike. */
export const EXTENSIONS: readonly string[] = Object.freeze([
  'binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'schedule_policy', 'parameters',
]);

/** Every model's one input and two outputs. */
export const INPUT_NAME = 'input';
export const OUTPUT_LOGITS = 'logits';
export const OUTPUT_PROBABILITIES = 'probabilities';
export const OUTPUT_NAMES = [OUTPUT_LOGITS, OUTPUT_PROBABILITIES] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];

export interface TensorMetadata {
  name: string;
  datatype: 'FP32' | 'UINT8' | 'BYTES';
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** Triton's platform and backend names for what runs the batches (Triton has none for tfjs). */
const RUNTIMES: Record<ExecutorName, { platform: string; backend: string }> = {
  onnxruntime: { platform: 'onnxruntime_onnx', backend: 'onnxruntime' },
  fused: { platform: 'tfjs_fused', backend: 'tfjs' },
  layers: { platform: 'tfjs_layers', backend: 'tfjs' },
};

export function runtimeOf(model: ModelDescription): { platform: string; backend: string } {
  return model.executor ? RUNTIMES[model.executor] : { platform: 'unknown', backend: 'unknown' };
}

export function serverMetadata(): { name: string; version: string; extensions: string[] } {
  return { name: SERVER_INFO.name, version: SERVER_INFO.version, extensions: [...EXTENSIONS] };
}

export function modelMetadata(model: ModelDescription): ModelMetadata {
  const { height, width, channels } = model.input;
  const classes = model.labels.length;
  return {
    name: model.name,
    versions: [...model.versions],
    platform: runtimeOf(model).platform,
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, height, width, channels] }],
    outputs: OUTPUT_NAMES.map((name) => ({ name, datatype: 'FP32' as const, shape: [-1, classes] })),
  };
}

/** Triton's DataType names (BYTES is TYPE_STRING there). */
const CONFIG_TYPES = { FP32: 'TYPE_FP32', UINT8: 'TYPE_UINT8', BYTES: 'TYPE_STRING' } as const;

interface ConfigTensor {
  name: string;
  data_type: (typeof CONFIG_TYPES)[keyof typeof CONFIG_TYPES];
  dims: number[];
  format?: 'FORMAT_NHWC' | 'FORMAT_NCHW';
}

/**
 * Triton's ModelConfig: in JSON on HTTP, and on gRPC the same object, which the protobuf
 * encoder takes as it is (proto field names, enums by name). Dims exclude the batch dimension.
 */
export interface ModelConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: ConfigTensor[];
  output: ConfigTensor[];
  dynamic_batching: { preferred_batch_size: number[]; max_queue_delay_microseconds: string };
  instance_group: { name: string; kind: 'KIND_CPU'; count: number }[];
}

export function modelConfig(model: ModelDescription): ModelConfig {
  const meta = modelMetadata(model);
  const { platform, backend } = runtimeOf(model);
  return {
    name: model.name,
    platform,
    backend,
    max_batch_size: model.maxBatchSize,
    input: meta.inputs.map((t) => ({ name: t.name, data_type: CONFIG_TYPES[t.datatype], format: 'FORMAT_NHWC', dims: t.shape.slice(1) })),
    output: meta.outputs.map((t) => ({ name: t.name, data_type: CONFIG_TYPES[t.datatype], dims: t.shape.slice(1) })),
    dynamic_batching: {
      preferred_batch_size: [...model.preferredBatchSizes],
      // uint64 in the protobuf: a decimal string, as 64-bit integers travel here.
      max_queue_delay_microseconds: String(Math.round(model.maxQueueDelayMs * 1000)),
    },
    instance_group: [{ name: model.name, kind: 'KIND_CPU', count: model.instances }],
  };
}
