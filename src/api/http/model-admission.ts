// Which model (and version) an inference request is for, settled in onRequest — before the body
// is read — so an unknown model is a 404, a full queue a 429 and a draining server a 503, without
// buffering a 64 MB upload first (Node discards the unread body; the connection stays usable).
// Under overload most requests end here: reading, buffering and parsing their bodies would take
// the event loop from the requests that get in (docs/reliability.md, overload).
import type { FastifyRequest } from 'fastify';
import { ModelRefParams } from './schemas.ts';
import { parseInput } from './validation.ts';

export async function admitModel(request: FastifyRequest): Promise<void> {
  const params = request.params as { model?: string };
  const ref = params.model === undefined ? { model: undefined, version: undefined } : parseInput(ModelRefParams, request.params, 'params');
  request.edge.admit(ref.model, ref.version);
}
