// The limits that keep one client from holding the server's connections, memory or time, on
// real sockets: slow-drip headers and bodies, idle connections, connections and streams per
// port, tensor elements, and the gRPC message size that follows MAX_BODY_BYTES.
import http2 from 'node:http2';
import { connect, createServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { limitConnections } from '../../src/api/connection-limits.ts';
import { Edge } from '../../src/api/edge/index.ts';
import { buildHttpApp, timeoutCheckIntervalMs } from '../../src/api/http/app.ts';
import { createGrpcServer, type GrpcServer } from '../../src/api/grpc/server.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { fp32Batch, rawFp32Request, startHarness, type Harness } from '../api/grpc/harness.ts';
import { call, failure, grpcClients, type GrpcClients } from './real-server.ts';

let h: Harness;
const apps: FastifyInstance[] = [];
const servers: GrpcServer[] = [];
const clients: GrpcClients[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  h = await startHarness({ models: { tiny: { seed: 1 } } });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const c of clients) c.close();
  for (const a of apps) await a.close();
  for (const s of servers) await s.close(0);
  await h?.close();
});

const configOf = (env: Record<string, string>) => loadConfig({ MODEL_REPOSITORY: h.root, LOG_LEVEL: 'silent', ...env });

async function httpApp(env: Record<string, string>): Promise<number> {
  const config = configOf(env);
  const deps = { service: h.service, config, logger: h.deps.logger, metrics: h.metrics };
  const app = await buildHttpApp({ ...deps, edge: new Edge(deps) });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as { port: number }).port;
}

async function grpcServer(env: Record<string, string>): Promise<{ port: number; clients: GrpcClients }> {
  const config = configOf(env);
  const deps = { ...h.deps, config };
  const server = createGrpcServer({ ...deps, edge: new Edge(deps) }, { healthPollMs: 50 });
  servers.push(server);
  const port = await server.bind('127.0.0.1', 0);
  const c = grpcClients(`127.0.0.1:${port}`);
  clients.push(c);
  return { port, clients: c };
}

interface Drip {
  /** Everything the server sent back. */
  answer: string;
  /** Milliseconds from connecting to the server closing the connection. */
  closedAfterMs: number;
}

/** Connects, writes `chunks` one every `everyMs` (as a slow client would), and waits for the server to hang up. */
function drip(port: number, chunks: string[], everyMs: number): Promise<Drip> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      let i = 0;
      const next = (): void => {
        if (i < chunks.length && socket.writable) socket.write(chunks[i++]!);
        if (i < chunks.length) timer = setTimeout(next, everyMs);
      };
      next();
    });
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedAfterMs: performance.now() - started });
    });
  });
}

/**
 * Makes the next `service.inferTensor` call wait `ms` before it runs, as a slow model would, and
 * counts: `calls`, the calls it held; `served`, the holds that ran to the end and then inferred.
 * Tests assert both, so a request that never reached the slow path cannot pass for one that did.
 */
function holdNextInference(ms: number): { calls: number; served: number; restore(): void } {
  const original = h.service.inferTensor.bind(h.service);
  const counts = { calls: 0, served: 0 };
  const spy = vi.spyOn(h.service, 'inferTensor').mockImplementationOnce(async (...args) => {
    counts.calls++;
    await new Promise((resolve) => setTimeout(resolve, ms));
    const result = await original(...args);
    counts.served++;
    return result;
  });
  return Object.assign(counts, { restore: () => spy.mockRestore() });
}

// Lower bounds are the settings: the server's clock for a connection starts after the client's
// and its timers are millisecond-grained (hence − 1 ms). There are no small upper bounds (a
// loaded machine may fire a timer late); where the test makes one limit short it leaves the
// others at minutes, so a cut-off can only come from the limit under test, and a limit that is
// not enforced leaves the connection open until the test times out.
const TIMER_GRAIN_MS = 1;
const MINUTES = '60000';

describe('HTTP timeouts (slow-drip clients)', () => {
  it('applies the settings to the Node server', async () => {
    await httpApp({ HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: '900', IDLE_TIMEOUT_MS: '400' });
    const server = apps.at(-1)!.server;
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout]).toEqual([300, 900, 400]);
    expect(timeoutCheckIntervalMs(300)).toBe(30);
    expect(timeoutCheckIntervalMs(10_000)).toBe(1_000);
  });

  it('HEADERS_TIMEOUT_MS: a client that sends nothing, or its headers a byte at a time, gets 408 and is disconnected', async () => {
    const HEADERS_TIMEOUT_MS = 300;
    const port = await httpApp({ HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), REQUEST_TIMEOUT_MS: MINUTES, IDLE_TIMEOUT_MS: MINUTES });
    // 54 bytes, one every 50 ms: complete after 2.7 s, long after the headers timeout.
    const headers = 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n';
    const [silent, slow] = await Promise.all([drip(port, [], 0), drip(port, [...headers], 50)]);
    for (const d of [silent, slow]) {
      // 408, not the 200 the slow client's request would have had once complete, and not
      // REQUEST_TIMEOUT_MS's 408 (that one is minutes away).
      expect(d.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(d.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - TIMER_GRAIN_MS);
    }
  });

  it('REQUEST_TIMEOUT_MS: a body sent a few bytes at a time is cut off with 408', async () => {
    const REQUEST_TIMEOUT_MS = 900;
    const port = await httpApp({ HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), IDLE_TIMEOUT_MS: MINUTES });
    // Complete headers at once (the headers timeout does not apply), then 10 of the 4,000 bytes every 50 ms.
    const head = 'POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n';
    const d = await drip(port, [head, ...Array.from({ length: 100 }, () => '          ')], 50);
    expect(d.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(d.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - TIMER_GRAIN_MS);
  });

  it('IDLE_TIMEOUT_MS: a keep-alive connection with nothing to do is closed', async () => {
    const IDLE_TIMEOUT_MS = 400;
    const port = await httpApp({ HEADERS_TIMEOUT_MS: MINUTES, REQUEST_TIMEOUT_MS: MINUTES, IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS) });
    const d = await drip(port, ['GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n'], 0);
    expect(d.answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(d.answer).not.toContain('HTTP/1.1 408');
    expect(d.closedAfterMs).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - TIMER_GRAIN_MS);
  });

  it('a slow answer is not a slow request: inference longer than REQUEST_TIMEOUT_MS completes', async () => {
    const REQUEST_TIMEOUT_MS = 900;
    const port = await httpApp({ HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), IDLE_TIMEOUT_MS: MINUTES });
    // Past the timeout and then ten of Node's checks for it (one every 30 ms here).
    const hold = holdNextInference(REQUEST_TIMEOUT_MS + 10 * timeoutCheckIntervalMs(300));
    try {
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: Array.from(fp32Batch(1)) }] });
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ model_name: 'tiny', outputs: [{ name: 'logits', shape: [1, 3] }, { name: 'probabilities', shape: [1, 3] }] });
      // The answer went through the hold, and the exchange outlasted REQUEST_TIMEOUT_MS.
      expect([hold.calls, hold.served]).toEqual([1, 1]);
      expect(performance.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    } finally {
      hold.restore();
    }
  });
});

describe('MAX_TENSOR_ELEMENTS', () => {
  const input = (shape: number[], data: number[]) => JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape, data }] });

  it('HTTP: a shape above the limit is refused (413) before anything is allocated for it, whatever data follows', async () => {
    const port = await httpApp({ MAX_TENSOR_ELEMENTS: '1000' });
    const infer = (body: string) => fetch(`http://127.0.0.1:${port}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const over = await infer(input([2, 16, 16, 3], []));
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ error: 'inputs[0].shape: [2, 16, 16, 3] is 1536 elements, more than MAX_TENSOR_ELEMENTS 1000' });
    expect((await infer(input([1, 16, 16, 3], Array.from(fp32Batch(1))))).status).toBe(200);
    // A 60-byte body declaring 3 GB of FP32 under the default limit.
    const defaults = await httpApp({});
    const huge = await fetch(`http://127.0.0.1:${defaults}/v2/models/tiny/infer`, { method: 'POST', body: input([1_000_000, 16, 16, 3], [0]), headers: { 'content-type': 'application/json' } });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: string }).error).toContain('more than MAX_TENSOR_ELEMENTS 16777216');
  });

  it('gRPC: the same limit, INVALID_ARGUMENT (sending it again cannot succeed)', async () => {
    const { clients: c } = await grpcServer({ MAX_TENSOR_ELEMENTS: '1000' });
    const err = await failure(call(c.inference, 'ModelInfer', rawFp32Request('tiny', fp32Batch(2), [2, 16, 16, 3])));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toBe('inputs[0].shape: [2, 16, 16, 3] is 1536 elements, more than MAX_TENSOR_ELEMENTS 1000');
    expect(await call(c.inference, 'ModelInfer', rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]))).toMatchObject({ model_name: 'tiny' });
  });
});

describe('gRPC connection limits', () => {
  it('MAX_GRPC_MESSAGE_BYTES follows MAX_BODY_BYTES unless set', async () => {
    expect(configOf({ MAX_BODY_BYTES: '100000' }).MAX_GRPC_MESSAGE_BYTES).toBe(100_000);
    const { clients: c } = await grpcServer({ MAX_BODY_BYTES: '100000' });
    const err = await failure(call(c.inference, 'ModelInfer', rawFp32Request('tiny', fp32Batch(40), [40, 16, 16, 3])));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await call(c.inference, 'ModelInfer', rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]))).toMatchObject({ model_name: 'tiny' });
  });

  it('GRPC_MAX_CONCURRENT_STREAMS is announced to clients in the HTTP/2 settings', async () => {
    const { port } = await grpcServer({ GRPC_MAX_CONCURRENT_STREAMS: '3' });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      expect(session.remoteSettings.maxConcurrentStreams).toBe(3);
    } finally {
      session.destroy();
    }
  });

  it('metadata is bounded by Node\'s HTTP/2 header limit (about 64 KiB), as docs/security.md says', async () => {
    const { port } = await grpcServer({});
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const live = (padding: number) => new Promise<string>((resolve) => {
      const stream = session.request({
        ':method': 'POST', ':path': '/inference.GRPCInferenceService/ServerLive', 'content-type': 'application/grpc', te: 'trailers', 'x-padding': 'p'.repeat(padding),
      });
      stream.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      stream.on('trailers', (t) => resolve(`grpc-status ${String(t['grpc-status'])}`));
      stream.end(Buffer.alloc(5)); // an empty ServerLiveRequest
    });
    try {
      expect(await live(32 * 1024)).toBe('grpc-status 0');
      expect(await live(256 * 1024)).toBe('ERR_HTTP2_STREAM_ERROR');
    } finally {
      session.destroy();
    }
  });

  it('MAX_CONNECTIONS: a connection above the limit is closed on accept, with one warning; freed slots are reused', async () => {
    const logsBefore = h.logs.length;
    const { clients: c, port } = await grpcServer({ MAX_CONNECTIONS: '1' });
    // A bare TCP connection takes the only slot…
    const holder = connect(port, '127.0.0.1');
    sockets.push(holder);
    await new Promise((resolve) => holder.once('connect', resolve));
    // …so a client is refused (a refused connection fails the call at once; the deadline only
    // guards against a hang)…
    expect((await failure(call(c.inference, 'ServerLive', {}))).code).toBe(grpc.status.UNAVAILABLE);
    // …until that connection goes away (the server notices the close on its own time: poll).
    holder.destroy();
    await expect.poll(() => call(c.inference, 'ServerLive', {}).then(() => 'served', () => 'refused'), { timeout: 30_000, interval: 100 }).toBe('served');
    const warnings = h.logs.slice(logsBefore).filter((l) => l.msg === 'connection refused: MAX_CONNECTIONS reached');
    expect(warnings.length).toBe(1);
  });

  it('IDLE_TIMEOUT_MS: a connection with no calls is sent away', async () => {
    const IDLE_TIMEOUT_MS = 300;
    const { port } = await grpcServer({ IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS) });
    const started = performance.now();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    // Without the limit nothing would ever send GOAWAY: the test would time out.
    await new Promise((resolve) => session.once('goaway', resolve));
    expect(performance.now() - started).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - TIMER_GRAIN_MS);
    session.destroy();
  });

  /**
   * How long slowCall waits for an answer before it reports 'no answer': a hang guard below
   * vitest's testTimeout, for a readable failure, not a bound on how fast the server is.
   */
  const NO_ANSWER_GUARD_MS = 40_000;

  /** Opens a gRPC call by hand, writes `prefix`, then `drip` every 100 ms, never half-closing; resolves to the status it ends with and when (ms after opening). */
  async function slowCall(port: number, path: string, prefix: Buffer, drip?: Buffer): Promise<{ status: string; message: string; ms: number }> {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const started = performance.now();
    try {
      const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write(prefix);
      const dripping = drip ? setInterval(() => stream.writable && stream.write(drip), 100) : undefined;
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) => {
        setTimeout(() => resolve({ 'grpc-status': `no answer after ${NO_ANSWER_GUARD_MS} ms` }), NO_ANSWER_GUARD_MS).unref();
        stream.on('trailers', resolve);
        stream.on('response', (headers) => {
          if (headers['grpc-status'] !== undefined) resolve(headers); // a trailers-only answer
        });
      });
      clearInterval(dripping);
      return { status: String(trailers['grpc-status']), message: decodeURIComponent(String(trailers['grpc-message'])), ms: performance.now() - started };
    } finally {
      session.destroy();
    }
  }

  it('REQUEST_TIMEOUT_MS: a request sent a few bytes at a time, or never completed, ends with DEADLINE_EXCEEDED', async () => {
    const logsBefore = h.logs.length;
    const REQUEST_TIMEOUT_MS = 500;
    const { port } = await grpcServer({ HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
    const expected = { status: String(grpc.status.DEADLINE_EXCEEDED), message: `the request message did not arrive within REQUEST_TIMEOUT_MS (${REQUEST_TIMEOUT_MS} ms)` };
    const [dripped, unfinished] = await Promise.all([
      // A length-prefixed message of 10,000 bytes, of which 5 arrive every 100 ms.
      slowCall(port, '/inference.GRPCInferenceService/ModelInfer', Buffer.from([0, 0, 0, 0x27, 0x10]), Buffer.alloc(5)),
      // A complete (empty) ServerLive request, but the client never half-closes: a unary handler would wait for ever.
      slowCall(port, '/inference.GRPCInferenceService/ServerLive', Buffer.from([0, 0, 0, 0, 0])),
    ]);
    // Without the limit neither call would ever end (the dripped message needs 200 s).
    for (const answer of [dripped, unfinished]) {
      expect(answer).toMatchObject(expected);
      expect(answer.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - TIMER_GRAIN_MS);
    }
    expect(h.logs.slice(logsBefore).filter((l) => l.msg === 'grpc request not received in time').length).toBe(2);
  });

  it('REQUEST_TIMEOUT_MS bounds receiving, not answering: a slow inference completes, health Watch streams stay open', async () => {
    const REQUEST_TIMEOUT_MS = 300;
    const { clients: c, port } = await grpcServer({ HEADERS_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
    // The receive timer, were it still running, is due before the hold ends (both timers are in
    // this process, and run in the order they are due): a late answer would be DEADLINE_EXCEEDED.
    const hold = holdNextInference(2 * REQUEST_TIMEOUT_MS);
    try {
      const started = performance.now();
      expect(await call(c.inference, 'ModelInfer', rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]))).toMatchObject({ model_name: 'tiny' });
      expect([hold.calls, hold.served]).toEqual([1, 1]);
      expect(performance.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    } finally {
      hold.restore();
    }
    const Health = h.health.constructor as new (...args: ConstructorParameters<typeof grpc.Client>) => Harness['health'];
    const health = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const stream = (health.Watch as (req: object) => grpc.ClientReadableStream<{ status: string }>).call(health, { service: '' });
      let ended = false;
      stream.on('error', () => (ended = true));
      stream.on('end', () => (ended = true));
      await new Promise((resolve) => stream.once('data', resolve));
      // Wait past the time the receive timer would end the stream, then make a call on the same
      // connection: its answer comes after anything the server sent before it, so an ended
      // stream has been seen by then.
      await new Promise((resolve) => setTimeout(resolve, 2 * REQUEST_TIMEOUT_MS));
      expect((await new Promise<{ status: string }>((resolve, reject) => {
        (health.Check as (req: object, cb: (err: Error | null, res: { status: string }) => void) => void).call(health, { service: '' }, (err, res) => (err ? reject(err) : resolve(res)));
      })).status).toBe('SERVING');
      expect(ended).toBe(false);
      stream.cancel();
    } finally {
      health.close();
    }
  });
});

describe('limitConnections', () => {
  it('warns about dropped connections at most once per 10 s, with the count since the last warning', () => {
    const lines: Array<{ msg: string; dropped: number }> = [];
    const server = createServer();
    let now = 0;
    limitConnections(server, 5, createLogger('warn', { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string; dropped: number }) }), () => now);
    expect(server.maxConnections).toBe(5);
    for (let i = 0; i < 3; i++) server.emit('drop');
    now = 9_999;
    server.emit('drop');
    now = 10_000;
    server.emit('drop');
    expect(lines.map((l) => [l.msg, l.dropped])).toEqual([
      ['connection refused: MAX_CONNECTIONS reached', 1],
      ['connection refused: MAX_CONNECTIONS reached', 4],
    ]);
  });
});
