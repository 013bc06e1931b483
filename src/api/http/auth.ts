// The management token on HTTP: an onRequest hook for the routes behind it (model management,
// and /metrics when METRICS_REQUIRE_TOKEN). The check itself is shared with gRPC (../auth.ts);
// a refusal is an UNAUTHENTICATED (401, with WWW-Authenticate) or FORBIDDEN (403) error.
import type { FastifyRequest } from 'fastify';
import { bearerCheck } from '../auth.ts';

export type Guard = (request: FastifyRequest) => Promise<void>;

/** An onRequest hook enforcing `token`, or undefined when no token is configured. */
export function bearerGuard(token: string | undefined): Guard | undefined {
  const check = bearerCheck(token);
  if (!check) return undefined;
  return async (request) => check(request.headers.authorization);
}
