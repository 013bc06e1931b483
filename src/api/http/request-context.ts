// The transport edge of every request: one AbortSignal (aborted when the client goes away before
// its answer), one clock start for the deadline, the request id echoed back, and exactly one log
// line (and, for inference routes, one metrics observation) when the request ends — however it
// ends, a client disconnect included.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ServeError } from '../../errors.ts';
import type { RequestOptions } from '../../inference/index.ts';
import type { HttpDeps } from './deps.ts';
import { outcomeOf } from './error-status.ts';
import { UNKNOWN_MODEL_LABEL } from '../metrics.ts';

export interface EdgeContext {
  /** performance.now() when the request arrived: deadlines count from here. */
  readonly startedAt: number;
  readonly signal: AbortSignal;
  /** The model the request is about, once a route knows it (for the log line and metrics). */
  model?: string;
  /** The version the request names, if any. */
  version?: string;
  /** The domain error code the request failed with, for the log line. */
  errorCode?: string;
  finished: boolean;
}

/** Incoming x-request-id values are echoed and logged, so only tame ones are honoured. */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && REQUEST_ID.test(value) ? value : undefined;
}

/** The service's per-request options: the edge's signal and a deadline counted from arrival. */
export function requestOptions(
  request: FastifyRequest,
  options: { version?: string; timeoutMs?: number; priority?: number },
): RequestOptions {
  const { timeoutMs, priority, version } = options;
  return {
    signal: request.edge.signal,
    ...(version !== undefined ? { version } : {}),
    ...(timeoutMs !== undefined && timeoutMs > 0 ? { deadline: request.edge.startedAt + timeoutMs } : {}),
    ...(priority !== undefined && priority > 0 ? { priority } : {}),
  };
}

export function installRequestLifecycle(app: FastifyInstance, deps: HttpDeps): void {
  const { lifecycle, metrics } = deps;
  app.decorateRequest('edge', null as unknown as EdgeContext);

  const finish = (request: FastifyRequest, status: number): void => {
    const edge = request.edge;
    if (!edge || edge.finished) return;
    edge.finished = true;
    const seconds = (performance.now() - edge.startedAt) / 1000;
    const config = request.routeOptions.config;
    // The metrics map names of models not loaded to one label value.
    if (config.inference) metrics.observeRequest('http', edge.model ?? UNKNOWN_MODEL_LABEL, outcomeOf(status), seconds);
    const level = config.quiet && status < 400 ? 'debug' : 'info';
    request.log[level]({
      method: request.method,
      url: request.url.length > 256 ? `${request.url.slice(0, 256)}…` : request.url,
      model: edge.model,
      status,
      latencyMs: Math.round(seconds * 1e6) / 1e3,
      ...(edge.errorCode ? { code: edge.errorCode } : {}),
    }, 'request');
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const controller = new AbortController();
    request.edge = { startedAt: performance.now(), signal: controller.signal, finished: false };
    reply.header('x-request-id', request.id);
    // 'close' on the request fires once its body is read (Node ≥ 16), so it cannot tell a
    // disconnect; the response closing before it finished can.
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      controller.abort(new ServeError('CANCELLED', 'the client closed the connection'));
      request.edge.errorCode ??= 'CANCELLED';
      finish(request, 499);
    });
    const params = request.params as { model?: unknown } | undefined;
    if (typeof params?.model === 'string') request.edge.model = params.model;
    if (request.routeOptions.config.inference && lifecycle.isDraining()) {
      reply.header('connection', 'close');
      throw new ServeError('SHUTTING_DOWN', 'the server is draining and accepts no new inference requests');
    }
  });

  // While draining, every answer (also to requests accepted before SIGTERM) closes its
  // connection: a kept-alive socket would otherwise hold fastify.close() until the drain timeout.
  app.addHook('onSend', async (_request: FastifyRequest, reply: FastifyReply) => {
    if (lifecycle.isDraining()) reply.header('connection', 'close');
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    finish(request, reply.statusCode);
  });
}
