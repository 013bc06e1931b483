// The Open Inference Protocol model shared by both transports. HTTP (api/http) and gRPC
// (api/grpc) only translate their wire formats to these shapes and back; the meaning — which
// tensors a model takes, layouts, outputs, the classification extension, metadata — is here.
export { infer, type InferResponse, type OutputTensor, type RequestScope } from './infer.ts';
export {
  integerParameter,
  type InferInputTensor,
  type InferLimits,
  type InferRequest,
  type ParameterValue,
  type Parameters,
  type RequestedOutput,
} from './infer-request.ts';
export {
  EXTENSIONS,
  INPUT_NAME,
  OUTPUT_NAMES,
  SERVER_INFO,
  modelConfig,
  modelMetadata,
  serverMetadata,
  type ModelConfig,
  type ModelMetadata,
  type TensorMetadata,
} from './model-metadata.ts';
export {
  float32ToLE,
  joinBytesElements,
  splitBytesElements,
  float32FromLE,
  type TensorData,
} from './tensor-data.ts';
export { decodeBase64 } from './base64.ts';
export { loadModel, repositoryIndex, unloadModel, type RepositoryIndexEntry } from './repository.ts';
