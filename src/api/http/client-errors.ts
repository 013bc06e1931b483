// Answers for requests that never reach a route, in the API's own `{"error": "..."}` shape:
// - frameworkErrors: Fastify's router refuses the URL (bad percent-encoding, a path parameter
//   over the length limit) before any hook runs;
// - clientErrorHandler: Node's HTTP parser refuses the bytes (headers over MAX_HEADER_BYTES,
//   broken framing) or the client was too slow (HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS).
// Fastify's defaults answer these with its own body shape and say nothing about which limit hit.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

export function answerFrameworkError(error: Error & { code?: string }, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.code(414).send({ error: 'url: a path segment is longer than 256 characters' });
  } else if (error.code === 'FST_ERR_BAD_URL') {
    void reply.code(400).send({ error: 'url: not a valid path (bad percent-encoding)' });
  } else {
    void reply.code(400).send({ error: `url: ${error.message}` });
  }
}

export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers: larger than MAX_HEADER_BYTES']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request: not received in time (HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS)']
    : [400, 'request: not valid HTTP/1.1'];
  if (socket.writable) {
    const body = JSON.stringify({ error: message });
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}
