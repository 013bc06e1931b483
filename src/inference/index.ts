// The inference core's public surface: the only module the API layer imports.
export {
  InferenceService,
  INPUT_NAME,
  OUTPUT_LOGITS,
  OUTPUT_PROBABILITIES,
  type ClassifyResult,
  type InferResult,
  type InferenceServiceOptions,
  type ModelDescription,
  type ModelMetadata,
  type ModelState,
  type ModelVersionStatus,
  type RequestOptions,
  type TensorSpec,
} from './inference-service.ts';
export type { ExecutorName } from '../densenet/index.ts';
export type { RepositoryEntry } from './repository/model-repository.ts';
export type { BatchObserver, ItemOutcome, ItemStage } from './batching/index.ts';
export { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ModelInputSpec, type TensorLayout } from './preprocess/index.ts';
export { softmax, topK, type Prediction } from './top-k.ts';
