// Every request and response shape of the REST API as zod schemas: the routes validate with
// them and /openapi.json is generated from them, so the document cannot drift from the code.
import { z } from 'zod';

// ---- shared ----------------------------------------------------------------------------------

export const ErrorBody = z.object({ error: z.string().describe('What went wrong, naming the field when a field is at fault') });

const modelName = z.string().min(1).max(128).describe("Model name (letters, digits, '_', '-', '.')");
const versionNumber = z.string().regex(/^[1-9][0-9]{0,8}$/, 'must be a positive version number').describe('Model version (a positive integer)');

export const ModelParams = z.object({ model: modelName });
export const ModelVersionParams = z.object({ model: modelName, version: versionNumber });
/** Either of the above: what routes registered under both paths parse. */
export const ModelRefParams = z.object({ model: modelName, version: versionNumber.optional() });

const ModelStateSchema = z.enum(['LOADING', 'READY', 'UNAVAILABLE', 'UNLOADING']);

// ---- friendly classification (v1) ------------------------------------------------------------

export const ClassifyQuery = z.object({
  top_k: z.coerce.number().int().min(1).max(1000).optional().describe('Classes per image (default DEFAULT_TOP_K)'),
  timeout_ms: z.coerce.number().int().min(1).max(3_600_000).optional().describe('Give up (504) if no answer within this many milliseconds'),
  priority: z.coerce.number().int().min(0).max(1_000_000).optional().describe('1 = highest; 0 or absent = the model default'),
});

export const ClassifyJsonBody = z.object({
  images: z.array(z.string().describe('Base64 (standard or URL-safe, data: URLs accepted) of an encoded image'))
    .min(1, 'at least one image is required'),
});

const Prediction = z.object({ label: z.string(), index: z.int(), score: z.number() });

export const ClassifyResponse = z.object({
  model: z.string(),
  version: z.string(),
  predictions: z.array(z.array(Prediction)).describe('One list per image, highest score first'),
  timings: z.object({ preprocessMs: z.number(), inferenceMs: z.number(), totalMs: z.number() }),
});

export const ModelListResponse = z.object({
  models: z.array(z.object({ name: z.string(), version: z.string(), state: ModelStateSchema, reason: z.string().optional() })),
});

// ---- Open Inference Protocol (KServe V2) -----------------------------------------------------

export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'BF16'] as const;
export type Datatype = (typeof DATATYPES)[number];

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

export const ServerMetadataResponse = z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });
export const LiveResponse = z.object({ live: z.boolean() });
export const ReadyResponse = z.object({ ready: z.boolean(), error: z.string().optional() });
export const ModelReadyResponse = z.object({ name: z.string(), ready: z.boolean(), error: z.string().optional() });

const TensorMetadata = z.object({ name: z.string(), datatype: z.enum(DATATYPES), shape: z.array(z.int()).describe('-1 = variable') });
export const ModelMetadataResponse = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(TensorMetadata),
  outputs: z.array(TensorMetadata),
});

const ConfigTensor = z.object({ name: z.string(), data_type: z.string(), dims: z.array(z.int()), format: z.string().optional() });
/** Triton's model configuration (what perf_analyzer and tritonclient's get_model_config read). */
export const ModelConfigResponse = z.object({
  name: z.string(),
  platform: z.string().describe('What runs the batches: onnxruntime_onnx, tfjs_fused or tfjs_layers'),
  backend: z.string(),
  max_batch_size: z.int(),
  input: z.array(ConfigTensor),
  output: z.array(ConfigTensor),
  dynamic_batching: z.object({
    preferred_batch_size: z.array(z.int()),
    max_queue_delay_microseconds: z.string().describe('uint64, as a decimal string (protobuf JSON)'),
  }),
  instance_group: z.array(z.object({ name: z.string(), kind: z.literal('KIND_CPU'), count: z.int().describe('Workers holding the model') })),
});

const InferInput = z.object({
  name: z.string().min(1).max(256),
  shape: z.array(z.int().min(0).max(2 ** 31 - 1)).max(8),
  datatype: z.enum(DATATYPES),
  parameters: z.object({
    binary_data_size: z.int().min(0).optional().describe('Binary data extension: the tensor is this many bytes after the JSON header'),
  }).catchall(Scalar).optional(),
  // Checked element by element while decoding (v2-inputs.ts): a zod pass over millions of
  // numbers would double the cost of parsing them.
  data: z.custom<unknown[]>((v) => Array.isArray(v), 'expected an array')
    .meta({ type: 'array', description: 'Row-major elements, flat or nested; absent when binary_data_size is set' })
    .optional(),
});

const RequestedOutput = z.object({
  name: z.string().min(1).max(256),
  parameters: z.object({
    binary_data: z.boolean().optional().describe('Binary data extension: return this output as raw bytes after the JSON header'),
    classification: z.int().min(0).max(1_000_000).optional().describe('Classification extension: return the top K classes as BYTES "score:index:label"'),
  }).catchall(Scalar).optional(),
});

export const InferRequest = z.object({
  id: z.string().max(256).optional(),
  parameters: z.object({
    timeout: z.int().min(0).optional().describe('Microseconds; the request fails with 504 if not answered in time (0 = none)'),
    priority: z.int().min(0).max(1_000_000).optional().describe('1 = highest; 0 = the model default'),
    binary_data_output: z.boolean().optional().describe('Binary data extension: return every output as raw bytes'),
  }).catchall(Scalar).optional(),
  inputs: z.array(InferInput).min(1).max(16),
  outputs: z.array(RequestedOutput).max(16).optional(),
});
export type InferRequest = z.output<typeof InferRequest>;

export const InferResponse = z.object({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().describe("The request's id, or the HTTP request id when it had none"),
  outputs: z.array(z.object({
    name: z.string(),
    shape: z.array(z.int()),
    datatype: z.enum(DATATYPES),
    parameters: z.object({ binary_data_size: z.int().optional() }).optional(),
    data: z.array(z.union([z.number(), z.string()])).optional(),
  })),
});

// ---- model repository (Triton's extension) ---------------------------------------------------

export const RepositoryIndexBody = z.object({ ready: z.boolean().optional().describe('Only models that are ready') }).optional();
export const RepositoryIndexResponse = z.array(z.object({
  name: z.string(),
  version: z.string().optional(),
  state: z.string().optional(),
  reason: z.string().optional(),
}));
export const LoadBody = z.object({
  parameters: z.record(z.string(), z.unknown()).optional().describe('Load parameters (config overrides) are not supported and must be empty'),
}).optional();
export const UnloadBody = z.object({
  parameters: z.object({ unload_dependents: z.boolean().optional() }).catchall(z.unknown()).optional(),
}).optional();
export const EmptyResponse = z.object({});
