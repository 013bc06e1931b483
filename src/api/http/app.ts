// The HTTP app factory: Fastify with the REST API (friendly classification, the Open Inference
// Protocol, model management, metrics, docs). It never listens — src/main.ts does. Limits are
// the config's: body bytes (per route, before buffering), header bytes (the Node server's
// maxHeaderSize) and connections (the server's maxConnections).
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { HttpDeps } from './deps.ts';
import { toHttpError } from './error-status.ts';
import { collectRouteDocs } from './openapi.ts';
import { installRequestLifecycle, requestIdFrom } from './request-context.ts';
import { classifyRoutes } from './routes/classify.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { repositoryRoutes } from './routes/repository.ts';
import { v2InferenceRoutes } from './routes/v2-inference.ts';
import { v2MetadataRoutes } from './routes/v2-metadata.ts';

export type { HttpDeps } from './deps.ts';

export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  // Settings are validated once, in src/config.ts (e.g. METRICS_REQUIRE_TOKEN needs AUTH_TOKEN).
  const { config } = deps;
  const app = Fastify({
    // pino's Logger and Fastify's logger type disagree on generics only; the object is the same.
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // One line per request, written by the request lifecycle (request-context.ts).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']) ?? randomUUID(),
    bodyLimit: config.MAX_BODY_BYTES,
    http: { maxHeaderSize: config.MAX_HEADER_BYTES },
    // Model names may be 128 characters; find-my-way's default cap on a parameter is 100.
    routerOptions: { maxParamLength: 256 },
  });
  app.server.maxConnections = config.MAX_CONNECTIONS;

  installRequestLifecycle(app, deps);

  app.setErrorHandler((err, request, reply) => {
    const answer = toHttpError(err);
    const edge = request.edge as typeof request.edge | null;
    if (edge) edge.errorCode = answer.code ?? (answer.hidden ? 'INTERNAL' : String((err as { code?: unknown }).code ?? answer.status));
    if (answer.hidden) request.log.error({ err }, 'request failed');
    if (answer.code === 'SHUTTING_DOWN') reply.header('connection', 'close');
    return reply.code(answer.status).headers(answer.headers).send({ error: answer.message });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!.slice(0, 200);
    return reply.code(404).send({ error: `no route ${request.method} ${path}` });
  });

  const routeDocs = collectRouteDocs(app);
  await app.register(healthRoutes, deps);
  await app.register(v2MetadataRoutes, deps);
  await app.register(v2InferenceRoutes, deps);
  await app.register(classifyRoutes, deps);
  await app.register(repositoryRoutes, deps);
  await app.register(metricsRoutes, deps);
  await app.register(docsRoutes, routeDocs);
  return app;
}
