// Each HTTP request at the shared edge (../edge): one RequestEdge per request (request id, the
// AbortSignal aborted when the client goes away before its answer, the deadline's clock start,
// in-flight counting), the request id echoed back, and exactly one log line (and, for inference
// routes, one metrics observation) when the request ends — however it ends, a client disconnect
// included. Inference routes settle their model and are admitted in onRequest, before the body
// is read (model-admission.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ServeError } from '../../errors.ts';
import type { ApiDeps } from '../deps.ts';
import { outcomeOf } from './error-status.ts';
import './route-config.ts';

export function installRequestLifecycle(app: FastifyInstance, deps: Pick<ApiDeps, 'edge'>): void {
  const { edge } = deps;
  app.decorateRequest('edge', null as unknown as FastifyRequest['edge']);

  const finish = (request: FastifyRequest, status: number): void => {
    const config = request.routeOptions.config;
    request.edge?.finish(outcomeOf(status), {
      level: config.quiet && status < 400 ? 'debug' : 'info',
      message: 'request',
      method: request.method,
      url: request.url.length > 256 ? `${request.url.slice(0, 256)}…` : request.url,
      status,
    });
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    request.edge = edge.begin('http', { requestId: request.id, inference: request.routeOptions.config.inference === true });
    reply.header('x-request-id', request.id);
    // 'close' on the request fires once its body is read (Node ≥ 16), so it cannot tell a
    // disconnect; the response closing before it finished can.
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      request.edge.abort(new ServeError('CANCELLED', 'the client closed the connection'));
      finish(request, 499);
    });
  });

  // While draining, every answer (also to requests accepted before SIGTERM) closes its
  // connection: a kept-alive socket would otherwise hold fastify.close() until the drain timeout.
  app.addHook('onSend', async (_request: FastifyRequest, reply: FastifyReply) => {
    if (edge.isDraining) reply.header('connection', 'close');
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    finish(request, reply.statusCode);
  });
}
