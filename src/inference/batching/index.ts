// Dynamic batching: pure scheduling logic, no workers or tensors. See docs/batching.md.
export { Dispatcher, type DispatcherOptions } from './dispatcher.ts';
export { ModelQueue, type ModelQueueHooks } from './model-queue.ts';
export { planBatch, type BatchPlan, type DispatchReason, type PlanInput, type PlanItem } from './batch-planner.ts';
export { LatencyModel, LATENCY_EWMA_ALPHA, type LinearFit } from './latency-model.ts';
export { BATCHING_DEFAULTS, BatchingOptionsSchema, resolveBatchingOptions, type ResolvedBatchingOptions } from './options.ts';
export { WorkerLostError, isRetryableError, type Executor } from './executor.ts';
export { realClock } from './clock.ts';
export type { BatchingOptions, BatchingStats, BatchObserver, Clock, ItemOptions, ItemOutcome, ItemStage } from './types.ts';
