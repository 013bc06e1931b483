// Which model (and version) a request is for. A request that names no model (POST /v1/classify,
// a gRPC Classify with an empty model name) goes to DEFAULT_MODEL if set, else the only loaded
// model, else the first by name. (The inference core checks names and versions when it is asked.)
import { ServeError } from '../../errors.ts';
import type { InferenceService } from '../../inference/index.ts';

export interface ModelRef {
  model: string;
  version?: string;
}

export function defaultModelName(service: InferenceService, configured: string | undefined): string {
  if (configured) return configured;
  const names = [...new Set(service.listModels().map((m) => m.name))].sort();
  const first = names[0];
  if (first === undefined) throw new ServeError('MODEL_NOT_FOUND', 'no model is loaded, so there is no default model');
  return first;
}

/** '' and undefined both mean "not named" (protobuf has no absent strings). */
export function resolveModelRef(service: InferenceService, configuredDefault: string | undefined, model: string | undefined, version: string | undefined): ModelRef {
  const name = model === undefined || model === '' ? defaultModelName(service, configuredDefault) : model;
  return version === undefined || version === '' ? { model: name } : { model: name, version };
}
