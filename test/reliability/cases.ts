// What a corpus case is (an HTTP or gRPC request and exactly what the service must answer), the
// service the corpus is written for, and the wire helpers the corpus files share.
import { status } from '@grpc/grpc-js';
import type { ImageOutcome } from './bad-images.ts';
import type { Delivery } from './wire.ts';

/** The service the corpus is written for (see bad-input.test.ts): limits and models. */
export const LIMITS = {
  MAX_BODY_BYTES: 4 << 20,
  MAX_IMAGE_BYTES: 1 << 20,
  MAX_IMAGES_PER_REQUEST: 8,
  MAX_TENSOR_ELEMENTS: 16 << 20,
  MAX_GRPC_MESSAGE_BYTES: 4 << 20,
  MAX_HEADER_BYTES: 16 << 10,
  // Short, so that stalled uploads are given up on within the test; the drips that must
  // complete take about a second, far inside them even on a loaded machine.
  HEADERS_TIMEOUT_MS: 3000,
  REQUEST_TIMEOUT_MS: 6000,
} as const;

/** Models: 16×16 inputs, 3 classes; `tiny` has versions 1 and 2. */
export const MODELS = { rgb: 'tiny', grey: 'tiny-grey', crop: 'tiny-crop' } as const;
export type ModelName = (typeof MODELS)[keyof typeof MODELS];
export const CHANNELS: Record<ModelName, number> = { tiny: 3, 'tiny-grey': 1, 'tiny-crop': 3 };
export const CLASSES = 3;

export interface HttpRequestSpec {
  method: string;
  path: string;
  headers?: [string, string][];
  body?: Buffer;
  /**
   * content-length (default): the header is added with the body's length; chunked: the body is
   * sent with Transfer-Encoding: chunked (64 KiB chunks); none: no framing header at all;
   * verbatim: `head` is written as is (the request line and every header).
   */
  framing?: 'content-length' | 'chunked' | 'none' | 'verbatim';
  head?: string;
  delivery?: Delivery;
}

export interface HttpExpect {
  status: number;
  /**
   * The code on the request's log line: our ErrorCode, or Fastify's FST_* code. null: the
   * request must not be logged with a code (a 200, or a route that does not exist); 'unlogged':
   * Node's HTTP parser refused the bytes before any route ran, so there is no request line.
   */
  code: string | null | 'unlogged';
  /** The `error` message must match (non-2xx). */
  message?: RegExp;
  /** Node's own answer to bytes it cannot parse as HTTP: no body at all. */
  bodyless?: true;
  /** 200 answers: how many images were classified. */
  images?: number;
}

export interface GrpcExpect {
  status: status;
  /** densenet-error-code trailing metadata; null: grpc-js answered before any handler ran. */
  code: string | null;
  message?: RegExp;
  /** OK answers: images classified, or (ModelReady) the readiness expected. */
  images?: number;
  ready?: boolean;
}

interface Base {
  name: string;
  category: string;
  /** An image whose outcome only the decoder knows: the test resolves `expect` from it. */
  decoder?: { bytes: Buffer; model: ModelName; resolve(outcome: Exclude<ImageOutcome, 'decoder'>): HttpExpect | GrpcExpect };
}

export interface HttpCase extends Base {
  kind: 'http';
  request: HttpRequestSpec;
  expect: HttpExpect | 'no-answer';
}

export interface GrpcCase extends Base {
  kind: 'grpc';
  service: 'inference' | 'classifier' | 'health';
  method: string;
  /** The request message, or `raw` bytes sent as the message as they are. */
  request?: unknown;
  raw?: Buffer;
  metadata?: [string, string][];
  /** Sent on a connection of its own: what it does to the connection must not touch other cases. */
  ownConnection?: true;
  expect: GrpcExpect;
}

export type Case = HttpCase | GrpcCase;

// ---- helpers shared by the corpus files ------------------------------------------------------

export const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** The binary data extension: JSON header then the tensors' bytes; returns body and header. */
export function binaryBody(header: unknown, ...tensors: Buffer[]): { body: Buffer; headerLength: number } {
  const text = json(header);
  return { body: Buffer.concat([text, ...tensors]), headerLength: text.length };
}

/** BYTES elements on the wire: a uint32 LE length, then the bytes, for each. */
export function bytesElements(elements: readonly Buffer[]): Buffer {
  return Buffer.concat(elements.flatMap((e) => {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(e.length);
    return [length, e];
  }));
}

/** A multipart/form-data body; a part with `filename: ''` is a plain form field (no filename, no type). */
export function multipart(files: { field?: string; filename?: string; type?: string; data: Buffer }[], boundary = 'corpus-b0undary'): { body: Buffer; type: string } {
  const parts = files.flatMap((f) => [
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? 'file'}"` +
      (f.filename === '' ? '\r\n\r\n' : `; filename="${f.filename ?? 'x.bin'}"\r\nContent-Type: ${f.type ?? 'application/octet-stream'}\r\n\r\n`)),
    f.data,
    Buffer.from('\r\n'),
  ]);
  return { body: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]), type: `multipart/form-data; boundary=${boundary}` };
}

export function float32Le(values: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  return out;
}

/** The error the service gives for one image it refuses, on either transport. */
export function imageRefusal(outcome: 'undecodable' | 'limit', index = 0, transport: 'http' | 'grpc' = 'http'): HttpExpect | GrpcExpect {
  const code = outcome === 'limit' ? 'LIMIT_EXCEEDED' : 'INVALID_INPUT';
  const message = new RegExp(`^images\\[${index}\\]: `);
  if (transport === 'grpc') return { status: status.INVALID_ARGUMENT, code, message };
  return { status: outcome === 'limit' ? 413 : 400, code, message };
}

/** The request line and headers of an HTTP case, with the request id the test tracks it by. */
export function headOf(request: HttpRequestSpec, requestId: string): string {
  if (request.framing === 'verbatim') return request.head!;
  const lines = [`${request.method} ${request.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', `x-request-id: ${requestId}`];
  for (const [k, v] of request.headers ?? []) lines.push(`${k}: ${v}`);
  const framing = request.framing ?? 'content-length';
  if (framing === 'content-length') lines.push(`Content-Length: ${request.body?.length ?? 0}`);
  if (framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  return lines.join('\r\n');
}

/** The body bytes as framed on the wire (chunked bodies in 64 KiB chunks). */
export function wireBody(request: HttpRequestSpec): Buffer {
  const body = request.body ?? Buffer.alloc(0);
  if (request.framing !== 'chunked') return body;
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += 65_536) {
    const piece = body.subarray(at, at + 65_536);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}
