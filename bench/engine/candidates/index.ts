// The engines the bench knows, by the name --candidates takes. `ours` comes first: every
// table row is read against it.
import type { ExecutorName } from '../../../src/densenet/index.ts';
import type { Candidate } from '../candidate.ts';
import { onnxruntime, onnxruntimePerCore } from './onnxruntime.ts';
import { ours } from './ours.ts';
import { pytorchEager } from './pytorch-eager.ts';
import { tfSavedModel } from './tf-savedmodel.ts';
import { tfjsLayers } from './tfjs-layers.ts';

export interface CandidateOptions {
  /** Executor of the `ours` row (the service's ENGINE_EXECUTOR). */
  oursExecutor: ExecutorName;
}

export const CANDIDATES: Readonly<Record<string, (options: CandidateOptions) => Candidate>> = {
  ours: (options) => ours(options.oursExecutor),
  'tfjs-layers': tfjsLayers,
  'tf-savedmodel': tfSavedModel,
  'onnxruntime-node': onnxruntime,
  'onnxruntime-node-Nx1': onnxruntimePerCore,
  'pytorch-eager': pytorchEager,
};

export const REFERENCE = 'tfjs-layers';
export const RATIO_BASES = ['onnxruntime-node', 'pytorch-eager'] as const;
