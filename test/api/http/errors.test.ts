// The transport's error table and the pure codecs of the wire: no service needed.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ServeError, type ErrorCode } from '../../../src/errors.ts';
import { HTTP_ERRORS, toHttpError } from '../../../src/api/http/error-status.ts';
import { decodeBase64 } from '../../../src/api/oip/base64.ts';
import { BinaryReader, composeBinaryResponse, splitBody } from '../../../src/api/http/binary-data.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ServeError ? `${err.code}: ${err.message}` : String(err);
  }
  return undefined;
}

describe('error status table', () => {
  it('maps every error code to an HTTP error status, and nothing else', () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    expect(Object.keys(HTTP_ERRORS).sort()).toEqual([...codes].sort());
    for (const code of codes) {
      const { status } = toHttpError(new ServeError(code, `boom ${code}`));
      expect(status, code).toBe(HTTP_ERRORS[code].status);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
  });

  it('uses the statuses clients expect for the codes they act on', () => {
    const status = (code: ErrorCode) => toHttpError(new ServeError(code, 'x')).status;
    expect(status('INVALID_INPUT')).toBe(400);
    expect(status('MODEL_NOT_FOUND')).toBe(404);
    expect(status('LIMIT_EXCEEDED')).toBe(413);
    expect(status('QUEUE_FULL')).toBe(429);
    expect(status('CANCELLED')).toBe(499);
    expect(status('INTERNAL')).toBe(500);
    expect(status('MODEL_NOT_READY')).toBe(503);
    expect(status('WORKER_FAILED')).toBe(503);
    expect(status('SHUTTING_DOWN')).toBe(503);
    expect(status('DEADLINE_EXCEEDED')).toBe(504);
  });

  it('sends Retry-After on retryable overload, at least the batcher hint', () => {
    expect(toHttpError(new ServeError('QUEUE_FULL', 'full')).headers).toEqual({ 'retry-after': '1' });
    expect(toHttpError(new ServeError('QUEUE_FULL', 'full', { retryAfterMs: 2300 })).headers).toEqual({ 'retry-after': '3' });
    expect(toHttpError(new ServeError('WORKER_FAILED', 'crashed')).headers).toEqual({ 'retry-after': '1' });
    expect(toHttpError(new ServeError('INVALID_INPUT', 'bad')).headers).toEqual({});
  });

  it('answers internal and unknown errors generically, never with their message', () => {
    const internal = toHttpError(new ServeError('INTERNAL', 'worker 3 at /srv/models/x.safetensors exploded'));
    expect(internal).toMatchObject({ status: 500, message: ERROR_CODES.INTERNAL, hidden: true });
    const config = toHttpError(new ServeError('INVALID_CONFIG', 'model repository /secret/path does not exist'));
    expect(config.message).not.toContain('/secret');
    const unknown = toHttpError(new TypeError("Cannot read properties of undefined (reading 'x') at /app/src/y.ts:3"));
    expect(unknown).toEqual({ status: 500, message: 'internal server error', headers: {}, hidden: true });
    const fastify = toHttpError(Object.assign(new Error('Unsupported Media Type: text/x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }));
    expect(fastify).toMatchObject({ status: 415, message: 'Unsupported Media Type: text/x', hidden: false });
  });
});

describe('binary data extension codec', () => {
  it('splits a body at Inference-Header-Content-Length and checks the header', () => {
    const body = Buffer.concat([Buffer.from('{"a":1}'), Buffer.from([1, 2, 3])]);
    const { json, binary } = splitBody(body, '7');
    expect(json.toString()).toBe('{"a":1}');
    expect([...binary]).toEqual([1, 2, 3]);
    expect(splitBody(body, undefined).json.length).toBe(10);
    expect(codeOf(() => splitBody(body, '11'))).toMatch(/^INVALID_INPUT: Inference-Header-Content-Length: 11 exceeds the body's 10 bytes/);
    expect(codeOf(() => splitBody(body, 'abc'))).toMatch(/^INVALID_INPUT: Inference-Header-Content-Length/);
    expect(codeOf(() => splitBody(body, '-1'))).toMatch(/^INVALID_INPUT: Inference-Header-Content-Length/);
  });

  it('hands out tensor slices and refuses leftovers and overruns', () => {
    const reader = new BinaryReader(Buffer.from([1, 2, 3, 4, 5]));
    expect([...reader.take(2, 'a')]).toEqual([1, 2]);
    expect(codeOf(() => reader.take(4, 'inputs[0]'))).toMatch(/inputs\[0\]: binary_data_size 4 runs past the end/);
    expect(codeOf(() => reader.finish())).toMatch(/3 bytes after the JSON header belong to no input/);
  });

  it('composes a response: the JSON header length, then the sections', () => {
    const { body, headerLength } = composeBinaryResponse({ x: 'é' }, [Buffer.from([9, 8])]);
    expect(headerLength).toBe(Buffer.byteLength('{"x":"é"}'));
    expect(JSON.parse(body.subarray(0, headerLength).toString())).toEqual({ x: 'é' });
    expect([...body.subarray(headerLength)]).toEqual([9, 8]);
  });
});

describe('strict base64', () => {
  it('decodes standard, URL-safe, wrapped and data-URL base64', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x10]);
    expect(Buffer.from(decodeBase64(bytes.toString('base64'), 'f'))).toEqual(bytes);
    expect(Buffer.from(decodeBase64(bytes.toString('base64url'), 'f'))).toEqual(bytes);
    expect(Buffer.from(decodeBase64(`data:image/png;base64,${bytes.toString('base64')}`, 'f'))).toEqual(bytes);
    expect(Buffer.from(decodeBase64('+/+/\nAB==', 'f'))).toEqual(Buffer.from('+/+/AB==', 'base64'));
  });

  it('rejects what Buffer.from would silently mangle, naming the field', () => {
    expect(codeOf(() => decodeBase64('not base64!', 'images[1]'))).toBe('INVALID_INPUT: images[1]: not valid base64');
    expect(codeOf(() => decodeBase64('abcde', 'f'))).toBe('INVALID_INPUT: f: not valid base64');
    expect(codeOf(() => decodeBase64('ab=', 'f'))).toBe('INVALID_INPUT: f: not valid base64');
    expect(codeOf(() => decodeBase64('', 'f'))).toMatch(/f: empty/);
  });
});
