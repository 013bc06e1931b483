// Clients for the bad-input corpus: HTTP/1.1 written byte by byte on a TCP socket (so a test can
// send what no well-behaved client would: broken framing, oversized headers, bodies dripped
// over seconds, bodies abandoned half-way), gRPC calls with typed or raw (undecodable) request
// messages, and a runner that keeps a bounded number of cases in flight.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** How the request bytes go on the wire. */
export type Delivery =
  | { mode: 'whole' }
  /**
   * The body (and with `head`, the request line and headers too) in `chunk`-byte pieces, one
   * every `everyMs`; writing stops once an answer arrives.
   */
  | { mode: 'drip'; chunk: number; everyMs: number; head?: boolean }
  /** Headers and `sendBytes` of the body, then the socket is destroyed: there is no answer. */
  | { mode: 'abandon'; sendBytes: number }
  /** The first `sendBytes` of the request (head included), then nothing: the server must give up. */
  | { mode: 'stall'; sendBytes: number };

export interface RawHttpRequest {
  /** The request line and headers exactly as written, without the final CRLF CRLF. */
  head: string;
  body: Buffer;
  delivery: Delivery;
}

function parseAnswer(bytes: Buffer): HttpAnswer | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  if (!Number.isInteger(status)) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = bytes.subarray(end + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isInteger(size)) return undefined;
      if (size === 0) return { status, headers, body: Buffer.concat(parts) };
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const length = Number(headers['content-length'] ?? 0);
  if (rest.length < length) return undefined;
  return { status, headers, body: rest.subarray(0, length) };
}

/**
 * Sends one request on a fresh connection and resolves with the answer, or undefined when the
 * server closed the connection without one (what an abandoned upload gets).
 */
export function rawHttp(port: number, request: RawHttpRequest, timeoutMs = 20_000): Promise<HttpAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let answer: HttpAnswer | undefined;
    let drip: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearInterval(drip);
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(answer);
    };
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (data: Buffer) => {
      received.push(data);
      answer = parseAnswer(Buffer.concat(received));
      if (answer) done();
    });
    // The server may answer early (413) and reset the connection while we still write: what
    // was received counts.
    socket.on('error', () => done());
    socket.on('close', () => done());
    socket.on('connect', () => {
      const head = Buffer.from(`${request.head}\r\n\r\n`, 'latin1');
      const { delivery } = request;
      if (delivery.mode === 'stall') {
        socket.write(Buffer.concat([head, request.body]).subarray(0, delivery.sendBytes));
        return;
      }
      const dripHead = delivery.mode === 'drip' && delivery.head === true;
      if (!dripHead) socket.write(head);
      const body = dripHead ? Buffer.concat([head, request.body]) : request.body;
      if (delivery.mode === 'whole') {
        socket.write(body);
      } else if (delivery.mode === 'abandon') {
        socket.write(body.subarray(0, delivery.sendBytes), () => setTimeout(() => done(), 50));
      } else {
        let at = 0;
        drip = setInterval(() => {
          if (answer || socket.destroyed) return clearInterval(drip);
          socket.write(body.subarray(at, at + delivery.chunk));
          at += delivery.chunk;
          if (at >= body.length) clearInterval(drip);
        }, delivery.everyMs);
      }
    });
  });
}

export interface GrpcAnswer {
  code: grpc.status;
  details: string;
  /** Our error code from the trailing metadata (densenet-error-code), if the server set one. */
  errorCode?: string;
  response?: unknown;
}

/** A unary call that always resolves: OK with the response, or the status it failed with. */
export function grpcCall(client: grpc.Client, method: string, request: unknown, metadata = new grpc.Metadata(), deadlineMs = 20_000): Promise<GrpcAnswer> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)[method]!.bind(client);
    fn(request, metadata, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, response: unknown) => {
      if (!err) return resolve({ code: grpc.status.OK, details: '', response });
      const [errorCode] = err.metadata?.get('densenet-error-code') ?? [];
      resolve({ code: err.code, details: err.details, ...(typeof errorCode === 'string' ? { errorCode } : {}) });
    });
  });
}

/** A unary call whose request message is `bytes` as they are (not necessarily valid protobuf). */
export function grpcRawCall(client: grpc.Client, path: string, bytes: Buffer, deadlineMs = 20_000): Promise<GrpcAnswer> {
  return new Promise((resolve) => {
    const identity = (b: Buffer): Buffer => b;
    client.makeUnaryRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, response) => {
      if (!err) return resolve({ code: grpc.status.OK, details: '', response });
      const [errorCode] = err.metadata?.get('densenet-error-code') ?? [];
      resolve({ code: err.code, details: err.details, ...(typeof errorCode === 'string' ? { errorCode } : {}) });
    });
  });
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function runBounded<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
