// Which model answers requests that name none (POST /v1/classify, the gRPC Classify call with
// an empty model name): DEFAULT_MODEL if set, else the only loaded model, else the first by name.
import { ServeError } from '../errors.ts';
import type { InferenceService } from '../inference/index.ts';

export function defaultModelName(service: InferenceService, configured: string | undefined): string {
  if (configured) return configured;
  const names = [...new Set(service.listModels().map((m) => m.name))].sort();
  const first = names[0];
  if (first === undefined) throw new ServeError('MODEL_NOT_FOUND', 'no model is loaded, so there is no default model');
  return first;
}
