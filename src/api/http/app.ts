// The HTTP app factory: Fastify with the REST API (friendly classification, the Open Inference
// Protocol, model management, metrics, docs). It never listens — src/main.ts does. Limits are
// the config's: body bytes (per route, before buffering), header bytes (the Node server's
// maxHeaderSize), connections (the server's maxConnections) and the time a client may take to
// send its headers and its whole request, or to sit idle between requests. With TLS material
// it serves HTTPS (HTTP/1.1), and with a client CA only to clients with a certificate it signed.
import { randomUUID } from 'node:crypto';
import type { ServerOptions as HttpServerOptions, Server as HttpServer } from 'node:http';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { answerClientError, answerFrameworkError } from './client-errors.ts';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Config } from '../../config.ts';
import { limitConnections } from '../connection-limits.ts';
import type { TlsMaterial } from '../tls.ts';
import type { ApiDeps } from '../deps.ts';
import { requestIdFrom } from '../edge/index.ts';
import { toHttpError } from './error-status.ts';
import { collectRouteDocs } from './openapi.ts';
import { installRequestLifecycle } from './request-context.ts';
import { classifyRoutes } from './routes/classify.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { repositoryRoutes } from './routes/repository.ts';
import { v2InferenceRoutes } from './routes/v2-inference.ts';
import { v2MetadataRoutes } from './routes/v2-metadata.ts';

export interface HttpAppOptions {
  /** Serve HTTPS with this material (src/api/tls.ts); plain HTTP without it. */
  tls?: TlsMaterial;
}

/**
 * Node checks the header and request timeouts on an interval (30 s by default), so a timeout
 * fires up to that much late; a tenth of the headers timeout keeps it close, at 1 s at most.
 */
export function timeoutCheckIntervalMs(headersTimeoutMs: number): number {
  return Math.min(1_000, Math.max(10, Math.floor(headersTimeoutMs / 10)));
}

function serverOptions(config: Config): HttpServerOptions {
  return {
    maxHeaderSize: config.MAX_HEADER_BYTES,
    headersTimeout: config.HEADERS_TIMEOUT_MS,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: timeoutCheckIntervalMs(config.HEADERS_TIMEOUT_MS),
  };
}

function httpsOptions(tls: TlsMaterial, config: Config): HttpsServerOptions {
  return {
    ...serverOptions(config),
    cert: tls.cert,
    key: tls.key,
    minVersion: 'TLSv1.2',
    // A client that stalls its handshake is a slow-drip client too.
    handshakeTimeout: config.HEADERS_TIMEOUT_MS,
    ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
  };
}

export async function buildHttpApp(deps: ApiDeps, options: HttpAppOptions = {}): Promise<FastifyInstance> {
  // Settings are validated once, in src/config.ts (e.g. METRICS_REQUIRE_TOKEN needs AUTH_TOKEN).
  const { config } = deps;
  const log = deps.logger.child({ component: 'http' });
  // Fastify's typings tie `https` to an https.Server instance type; the app and its routes are
  // the same either way, so the app is typed as the plain-HTTP one.
  const transport = (options.tls ? { https: httpsOptions(options.tls, config) } : { http: serverOptions(config) }) as Pick<FastifyHttpOptions<HttpServer>, 'http'>;
  const app = Fastify({
    // pino's Logger and Fastify's logger type disagree on generics only; the object is the same.
    loggerInstance: log as FastifyBaseLogger,
    // One line per request, written by the request lifecycle (request-context.ts).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']) ?? randomUUID(),
    bodyLimit: config.MAX_BODY_BYTES,
    ...transport,
    // Fastify sets these on the server after creating it (its own requestTimeout default, 0,
    // would switch Node's off).
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.IDLE_TIMEOUT_MS,
    // Model names may be 128 characters; find-my-way's default cap on a parameter is 100.
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  });
  limitConnections(app.server, config.MAX_CONNECTIONS, log);

  installRequestLifecycle(app, deps);

  app.setErrorHandler((err, request, reply) => {
    const answer = toHttpError(err);
    const edge = request.edge as typeof request.edge | null;
    if (edge) edge.errorCode ??= answer.code ?? (answer.hidden ? 'INTERNAL' : String((err as { code?: unknown }).code ?? answer.status));
    if (answer.hidden) (edge?.log ?? request.log).error({ err }, 'request failed');
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
