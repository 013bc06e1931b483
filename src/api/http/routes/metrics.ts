// GET /metrics: Prometheus text format; behind the bearer token when METRICS_REQUIRE_TOKEN.
import type { FastifyInstance } from 'fastify';
import { bearerGuard } from '../auth.ts';
import type { ApiDeps } from '../../deps.ts';
import { errorDocs } from '../openapi.ts';

export async function metricsRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { registry } = deps.metrics;
  const guard = deps.config.METRICS_REQUIRE_TOKEN ? bearerGuard(deps.config.AUTH_TOKEN) : undefined;
  app.get('/metrics', {
    ...(guard ? { onRequest: guard } : {}),
    config: {
      quiet: true,
      doc: {
        tag: 'observability',
        summary: 'Prometheus metrics (requests by outcome, queue and compute time, batch sizes, queue depth)',
        auth: guard !== undefined,
        responses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' }, ...(guard ? errorDocs({ 401: 'No bearer token', 403: 'Wrong bearer token' }) : {}) },
      },
    },
  }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
