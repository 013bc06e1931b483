// The real entry point in a child process: starts both frontends from the environment, serves,
// and on SIGTERM under load finishes the accepted requests, refuses new ones, exits 0.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableCores, loadConfig } from '../src/config.ts';
import { planEngine } from '../src/inference/index.ts';
import { listenerClosed } from './helpers/drain-probe.ts';
import { useNativeEngine } from './helpers/engine.ts';
import { writeTinyModelFolder } from './helpers/tiny-model.ts';

await useNativeEngine();
const ROOT = new URL('..', import.meta.url).pathname;
/** Within the model's queue (maxQueueSize) and the server's MAX_CONNECTIONS. */
const MAX_IN_FLIGHT = 900;
const SLOWER = { growthRate: 32, blockLayers: [6, 12], stemChannels: 32 };

interface Started { child: ChildProcessWithoutNullStreams; httpPort: number; grpcPort: number; lines: string[] }

function start(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: { ...process.env, ...env } });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        const entry = JSON.parse(line) as { msg?: string; httpPort?: number; grpcPort?: number };
        if (entry.msg === 'densenet-serve ready') resolve({ child, httpPort: entry.httpPort!, grpcPort: entry.grpcPort!, lines });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before it was ready: ${lines.join('\n')}`)));
  });
}

/** The refusal of an inference request while draining (request-context.ts), answered 503. */
const DRAINING = 'the server is draining and accepts no new inference requests';
/** Fastify's own 503 for a request read after close() began (return503OnClosing), before any hook. */
const FASTIFY_CLOSING = '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}';

type Outcome =
  | { kind: 'ok'; at: number }
  /** Refused: the connection was refused, or the server answered a clean 503 without running it. */
  | { kind: 'refused'; how: 'ECONNREFUSED' | 'SHUTTING_DOWN' | 'CLOSING' }
  /** Anything else: reset or hung up after connecting, another status, a body cut short. */
  | { kind: 'broken'; detail: string };

/**
 * One inference request on a connection of its own (so each request's fate is its own),
 * classified. It asks for 100 Continue and sends its body on it: Node's server answers 100 when
 * it has read the request head and hands the request to fastify, so `onAccepted` runs once the
 * server has accepted this request.
 */
function post(port: number, body: string, onAccepted?: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let connected = false;
    let accepted = false;
    let settled = false;
    const settle = (outcome: Outcome): void => {
      if (!settled) resolve(outcome);
      settled = true;
    };
    const req = http.request({
      host: '127.0.0.1', port, path: '/v2/models/tiny/infer', method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) settle({ kind: 'ok', at: performance.now() });
        else if (res.statusCode === 503 && text === FASTIFY_CLOSING) settle({ kind: 'refused', how: 'CLOSING' });
        else if (res.statusCode === 503 && (JSON.parse(text) as { error?: string }).error === DRAINING) settle({ kind: 'refused', how: 'SHUTTING_DOWN' });
        else settle({ kind: 'broken', detail: `${res.statusCode}: ${text}` });
      });
      res.on('error', (err) => settle({ kind: 'broken', detail: `response cut short: ${err.message}` }));
      res.on('close', () => settle({ kind: 'broken', detail: 'response closed before its end' }));
    });
    req.on('socket', (socket) => socket.once('connect', () => (connected = true)));
    req.on('continue', () => {
      accepted = true;
      onAccepted?.();
      req.end(body);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected && err.code === 'ECONNREFUSED') settle({ kind: 'refused', how: 'ECONNREFUSED' });
      else settle({ kind: 'broken', detail: `${err.code ?? 'error'}: ${err.message} (connected: ${connected}, accepted: ${accepted})` });
    });
    req.flushHeaders();
  });
}

async function waitForLine(server: Started, predicate: (entry: { msg?: string }) => boolean): Promise<void> {
  while (!server.lines.some((l) => predicate(JSON.parse(l) as { msg?: string }))) await new Promise((r) => setTimeout(r, 5));
}

describe('main: start-up and graceful shutdown', () => {
  let repo: string;
  beforeAll(async () => {
    repo = await mkdtemp(path.join(tmpdir(), 'main-'));
    // Wider and deeper than the default tiny model, so a request costs compute rather than HTTP.
    await writeTinyModelFolder(repo, 'tiny', { architecture: SLOWER, manifest: { batching: { maxBatchSize: 2, maxQueueDelayMs: 0, maxQueueSize: 1000 } } });
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  it('refuses a bad setting with a message naming it, exit code 2', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--workers=zero'], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('WORKERS');
  });

  it('refuses to start with an unreadable TLS file, naming the setting, exit code 2, before any worker starts', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, MODEL_REPOSITORY: repo, HTTP_PORT: '0', GRPC_PORT: '0', TLS_CERT_FILE: path.join(repo, 'absent.crt'), TLS_KEY_FILE: path.join(repo, 'absent.key') },
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; err?: { code: string; message: string } });
    expect(lines.map((l) => l.msg)).toEqual(['failed to start']);
    expect(lines[0]!.err).toMatchObject({ code: 'INVALID_CONFIG', message: `TLS_CERT_FILE: cannot read '${path.join(repo, 'absent.crt')}' (ENOENT)` });
  });

  it('serves, then on SIGTERM finishes accepted requests, refuses new ones and exits 0', async () => {
    const env = {
      MODEL_REPOSITORY: repo, HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '60000',
    };
    const server = await start(env);
    const port = server.httpPort;

    // The engine plan is logged once, before the server is ready, with every field: the plan for
    // these settings on this machine (by default: one worker process running onnxruntime).
    const startup = server.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const planLines = startup.filter((l) => l.msg === 'engine plan');
    expect(planLines).toHaveLength(1);
    expect(startup.indexOf(planLines[0]!)).toBeLessThan(startup.findIndex((l) => l.msg === 'densenet-serve ready'));
    const plan = planEngine(loadConfig({ ...process.env, ...env }), { cores: availableCores() });
    expect(plan).toMatchObject({ executor: 'onnxruntime', workers: 1, isolation: 'process' });
    const logged = Object.fromEntries(Object.keys(plan).map((k) => [k, planLines[0]![k]]));
    expect(logged).toEqual(JSON.parse(JSON.stringify(plan)));
    expect((await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).status).toBe(200);
    expect(server.grpcPort).toBeGreaterThan(0);
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: new Array(768).fill(0.5) }] });
    const requests = (n: number, onSent?: () => void) => Array.from({ length: n }, () => post(port, body, onSent));
    const send = (n: number) => Promise.all(requests(n));
    /** Milliseconds per request from the moment n requests are all accepted until all are answered. */
    const drainRate = async (n: number): Promise<number> => {
      let acceptedAt = 0;
      let count = 0;
      const outcomes = await Promise.all(requests(n, () => {
        if (++count === n) acceptedAt = performance.now();
      }));
      expect(outcomes.map((o) => o.kind)).toEqual(new Array(n).fill('ok'));
      return (performance.now() - acceptedAt) / n;
    };

    // How long the server takes to finish a queue of accepted requests here, now (the machine is
    // shared): enough are put in flight to keep it busy about four times the drain's read grace
    // (1 s), so some are still running when the listener closes, not only at SIGTERM.
    expect((await send(10)).map((o) => o.kind)).toEqual(new Array(10).fill('ok'));
    const perRequestMs = await drainRate(100);
    const inFlight = Math.min(MAX_IN_FLIGHT, Math.ceil(4000 / perRequestMs));

    // SIGTERM once the server has accepted every one of these requests (most still queued).
    let acceptedCount = 0;
    let allAccepted!: () => void;
    const accepted = new Promise<void>((resolve) => (allAccepted = resolve));
    const before = requests(inFlight, () => {
      if (++acceptedCount === inFlight) allAccepted();
    });
    await accepted;
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    const sigtermAt = performance.now();
    server.child.kill('SIGTERM');
    // When the listener closes (seen from outside: a bare connect is refused).
    const closed = listenerClosed(port).then(() => performance.now());
    // Requests sent once the server says it is draining, on new connections.
    await waitForLine(server, (l) => l.msg?.startsWith('draining') === true);
    const duringDrain = await send(10);
    // Requests sent once the listener is closed.
    const listenerClosedAt = await closed;
    const afterClose = await send(4);
    const outcomes = await Promise.all(before);
    expect(await exited).toBe(0);

    expect([...outcomes, ...duringDrain, ...afterClose].filter((o) => o.kind === 'broken')).toEqual([]);
    // Accepted before SIGTERM: every one answered, many after SIGTERM, some after the listener had
    // closed (the drain waited for them).
    expect(outcomes.map((o) => o.kind)).toEqual(new Array(inFlight).fill('ok'));
    const okAt = outcomes.flatMap((o) => (o.kind === 'ok' ? [o.at] : []));
    expect(okAt.filter((at) => at > sigtermAt).length).toBeGreaterThan(0);
    expect(okAt.filter((at) => at > listenerClosedAt).length).toBeGreaterThan(0);
    // Refusals, each in the way its moment calls for.
    expect(duringDrain.every((o) => o.kind === 'refused' && o.how !== 'ECONNREFUSED')).toBe(true);
    expect(afterClose).toEqual(new Array(4).fill({ kind: 'refused', how: 'ECONNREFUSED' }));
    const log = server.lines.map((l) => JSON.parse(l) as { msg?: string });
    expect(log.some((l) => l.msg?.startsWith('draining'))).toBe(true);
    expect(log.at(-1)?.msg).toBe('stopped');
  }, 120_000);
});
