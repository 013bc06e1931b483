// Bearer-token guard for the model management endpoints (and /metrics when asked). The token is
// compared as SHA-256 digests with timingSafeEqual: equal lengths whatever the client sends, and
// no early exit that would leak how much of it matched. Neither token is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export type Guard = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** An onRequest hook enforcing `token`, or undefined when no token is configured. */
export function bearerGuard(token: string | undefined): Guard | undefined {
  if (token === undefined) return undefined;
  const expected = digest(token);
  return async (request, reply) => {
    const match = /^Bearer[ \t]+(\S{1,4096})[ \t]*$/i.exec(request.headers.authorization ?? '');
    if (!match) {
      request.edge.errorCode = 'UNAUTHENTICATED';
      return reply.code(401).header('www-authenticate', 'Bearer realm="densenet-serve"')
        .send({ error: 'this endpoint needs an Authorization: Bearer <token> header' });
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      request.edge.errorCode = 'FORBIDDEN';
      return reply.code(403).send({ error: 'the bearer token is not valid' });
    }
    return undefined;
  };
}
