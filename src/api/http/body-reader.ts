// Request bodies read with a limit checked before anything is buffered: a declared
// Content-Length above it is refused at once, a chunked body as soon as it crosses it. The 413
// names the setting, so an operator knows which knob to turn.
import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ServeError } from '../../errors.ts';

export interface BodyLimit {
  bytes: number;
  /** The setting that sets it (MAX_BODY_BYTES, MAX_IMAGE_BYTES). */
  setting: string;
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);

export function tooLarge(limit: BodyLimit, what = 'request body'): ServeError {
  return new ServeError('LIMIT_EXCEEDED', `${what} exceeds ${limit.bytes} bytes (${limit.setting})`, {
    limit: limit.setting,
    max: limit.bytes,
  });
}

/** Refuses a declared Content-Length above the limit before a byte of the body is read. */
export function checkDeclaredLength(request: FastifyRequest, limit: BodyLimit): void {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit.bytes) throw tooLarge(limit);
}

export function readBody(payload: IncomingMessage, limit: BodyLimit): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      payload.removeListener('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit.bytes) {
        cleanup();
        // Keep the connection readable for the 413; the rest of the upload is discarded unread.
        payload.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    // The only way a request stream fails is the client going away mid-body.
    const onError = (err: Error): void => {
      cleanup();
      reject(new ServeError('CANCELLED', 'the client closed the connection while sending the body', {}, { cause: err }));
    };
    const onClose = (): void => onError(new Error('the request stream closed before its end'));
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.on('close', onClose);
  });
}

type BodyParser = (request: FastifyRequest, payload: IncomingMessage) => Promise<unknown>;

/** A content-type parser handing the body over as a Buffer read under `limit`. */
export function rawParser(limit: BodyLimit): BodyParser {
  return async (request, payload) => {
    checkDeclaredLength(request, limit);
    return await readBody(payload, limit);
  };
}

/** A content-type parser for JSON read under `limit`; an empty body is `undefined`. */
export function jsonParser(limit: BodyLimit): BodyParser {
  const raw = rawParser(limit);
  return async (request, payload) => parseJson(await raw(request, payload) as Buffer);
}

/**
 * Installs this plugin context's body parsers, all reading under `limit`:
 * - 'raw': every content type arrives as a Buffer;
 * - 'json': every body is parsed as JSON, whatever its Content-Type (tritonclient sends its
 *   JSON bodies without one), and an empty body is `undefined`.
 */
export function useBodies(app: FastifyInstance, limit: BodyLimit, mode: 'raw' | 'json'): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', mode === 'json' ? jsonParser(limit) : rawParser(limit));
}

export function parseJson(body: Buffer, what = 'body'): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ServeError('INVALID_INPUT', `${what}: not valid JSON (${(err as Error).message})`, { field: what });
  }
}

/**
 * Undoes a request Content-Encoding (tritonclient's request_compression_algorithm: gzip or
 * deflate) off the event loop, capping the inflated size at `limit` as well: a small
 * compressed body must not inflate past the limit the raw one is held to.
 */
export async function decodeContentEncoding(body: Buffer, encoding: string | undefined, limit: BodyLimit): Promise<Buffer> {
  const name = (encoding ?? 'identity').trim().toLowerCase();
  if (name === 'identity' || name === '') return body;
  const inflate = name === 'gzip' || name === 'x-gzip' ? gunzip : name === 'deflate' ? inflateAuto : undefined;
  if (!inflate) throw new ServeError('INVALID_INPUT', `Content-Encoding: '${name.slice(0, 32)}' is not supported (gzip, deflate)`, { field: 'Content-Encoding' });
  try {
    return await inflate(body, { maxOutputLength: limit.bytes });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit, 'the decompressed request body');
    throw new ServeError('INVALID_INPUT', `body: not valid ${name} data`, { field: 'body' });
  }
}

/** Raw deflate or zlib-wrapped: clients disagree on what "deflate" means. */
async function inflateAuto(body: Buffer, options: { maxOutputLength: number }): Promise<Buffer> {
  const zlibWrapped = body.length >= 2 && (body[0]! & 0x0f) === 8 && ((body[0]! << 8) | body[1]!) % 31 === 0;
  return zlibWrapped ? inflate(body, options) : inflateRaw(body, options);
}
