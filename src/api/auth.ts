// The management token (AUTH_TOKEN) for model load/unload and the repository index, on HTTP
// (Authorization: Bearer <token>) and gRPC (the same as `authorization` metadata). The token is
// compared as SHA-256 digests with timingSafeEqual: equal lengths whatever the client sends, and
// no early exit that would leak how much of it matched. Neither token is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ServeError } from '../errors.ts';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
const BEARER = /^Bearer[ \t]+(\S{1,4096})[ \t]*$/i;

/** A check of the Authorization value, or undefined when no token is configured. */
export function bearerCheck(token: string | undefined): ((authorization: unknown) => void) | undefined {
  if (token === undefined) return undefined;
  const expected = digest(token);
  return (authorization) => {
    const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
    if (!match) throw new ServeError('UNAUTHENTICATED', 'this endpoint needs an Authorization: Bearer <token> header');
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new ServeError('FORBIDDEN', 'the bearer token is not valid');
  };
}
