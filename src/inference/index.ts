// The inference core's public surface: the only module the API layer imports.
export {
  InferenceService,
  type ClassifyResult,
  type InferResult,
  type InferenceServiceOptions,
  type RequestOptions,
} from './inference-service.ts';
export type { ModelDescription, ModelState, ModelVersionStatus } from './model-registry.ts';
export { ENGINE_DEFAULTS, oneDnnProbeNeeded, planEngine, type EnginePlan, type EngineSettings, type WorkerIsolation } from './engine-plan.ts';
export type { ExecutorName } from '../densenet/index.ts';
export type { RepositoryEntry } from './repository/model-repository.ts';
export type { BatchObserver, ItemOutcome, ItemStage } from './batching/index.ts';
export { DEFAULT_IMAGE_LIMITS, type ImageLimits, type ModelInputSpec, type TensorLayout } from './preprocess/index.ts';
export { softmax, topK, type Prediction } from './top-k.ts';
