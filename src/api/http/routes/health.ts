// Liveness and readiness (Open Inference Protocol paths, what Kubernetes probes call).
// Live: the process answers. Ready: not draining, inference workers running, and at least one
// model able to serve; a draining server answers 503 so load balancers stop sending to it.
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../../deps.ts';
import { LiveResponse, ReadyResponse } from '../schemas.ts';

const TAG = 'health';

export async function healthRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { service, edge } = deps;

  app.get('/v2/health/live', {
    config: { quiet: true, doc: { tag: TAG, summary: 'Liveness (200 while the process serves HTTP, draining included)', responses: { 200: { description: 'Live', schema: LiveResponse } } } },
  }, async () => ({ live: true }));

  app.get('/v2/health/ready', {
    config: {
      quiet: true,
      doc: {
        tag: TAG,
        summary: 'Readiness: not draining, workers running, at least one model ready',
        responses: { 200: { description: 'Ready', schema: ReadyResponse }, 503: { description: 'Not ready, with the reason', schema: ReadyResponse } },
      },
    },
  }, async (_request, reply) => {
    const reason = edge.isDraining ? 'the server is draining'
      : !service.isReady() ? 'no inference worker is running'
        : !service.listModels().some((m) => m.state === 'READY') ? 'no model is ready'
          : undefined;
    if (reason === undefined) return { ready: true };
    return reply.code(503).send({ ready: false, error: reason });
  });
}
