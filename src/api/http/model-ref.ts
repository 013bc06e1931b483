// Which model (and version) an inference request is for, settled in onRequest — before the body
// is read — so an unknown model is a 404, and a full queue a 429, without buffering a 64 MB
// upload first (Node discards the unread body; the connection stays usable).
import type { FastifyRequest } from 'fastify';
import { defaultModelName } from '../default-model.ts';
import type { HttpDeps } from './deps.ts';
import { ModelRefParams } from './schemas.ts';
import { parseInput } from './validation.ts';

export function resolveModel(deps: Pick<HttpDeps, 'service' | 'config'>) {
  return async (request: FastifyRequest): Promise<void> => {
    const params = request.params as { model?: string };
    const ref = params.model === undefined
      ? { model: defaultModelName(deps.service, deps.config.DEFAULT_MODEL), version: undefined }
      : parseInput(ModelRefParams, request.params, 'params');
    request.edge.model = ref.model;
    request.edge.version = ref.version;
    // Throws MODEL_NOT_FOUND, MODEL_NOT_READY, QUEUE_FULL or SHUTTING_DOWN. Under overload most
    // requests end here: reading, buffering and parsing their bodies would take the event loop
    // from the requests that get in (docs/reliability.md, overload).
    deps.service.admit(ref.model, ref.version);
  };
}
