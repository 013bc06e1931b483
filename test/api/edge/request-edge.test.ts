// The shared edge on its own (src/api/edge): request ids, deadlines, in-flight counting, one
// finish per request, and how long a drain keeps reading. Fake timers drive every wait; the
// inference core and the metrics are small stand-ins, since what is under test is the edge.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Edge, requestIdFrom } from '../../../src/api/edge/index.ts';
import type { ServiceMetrics } from '../../../src/api/metrics.ts';
import { loadConfig } from '../../../src/config.ts';
import type { InferenceService } from '../../../src/inference/index.ts';
import { createLogger } from '../../../src/logger.ts';

interface Line { msg: string; reqId?: string; model?: string; code?: string; latencyMs?: number }

function edgeOf() {
  const lines: Line[] = [];
  const observed: [string, string, string][] = [];
  const admitted: [string, string | undefined][] = [];
  const service = {
    listModels: () => [{ name: 'tiny', version: '1', state: 'READY' }],
    admit: (model: string, version?: string) => void admitted.push([model, version]),
    isReady: () => true,
  } as unknown as InferenceService;
  const metrics = { observeRequest: (t: string, m: string, o: string) => void observed.push([t, m, o]) } as unknown as ServiceMetrics;
  const logger = createLogger('debug', { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  const edge = new Edge({ service, config: loadConfig({}), logger, metrics });
  return { edge, lines, observed, admitted };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('request ids', () => {
  it('honours tame ids up to 128 characters, one rule for both transports', () => {
    expect(requestIdFrom('abc-1.2:3@x/y+z=')).toBe('abc-1.2:3@x/y+z=');
    expect(requestIdFrom(['first', 'second'])).toBe('first');
    for (const bad of ['has spaces', 'x'.repeat(129), '', '<script>', 'a\nb', 42, undefined]) expect(requestIdFrom(bad)).toBeUndefined();
    const { edge } = edgeOf();
    expect(edge.begin('grpc', { requestId: 'has spaces', inference: false }).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('a request at the edge', () => {
  it('resolves the default model, refuses while draining, and is counted until it finishes, once', () => {
    const { edge, observed, lines, admitted } = edgeOf();
    const ctx = edge.begin('http', { requestId: 'r-1', inference: true });
    expect(edge.inflightCount).toBe(1);
    expect(ctx.admit(undefined, undefined)).toEqual({ model: 'tiny' });
    expect(ctx.admit('tiny', '')).toEqual({ model: 'tiny' });
    expect(admitted).toEqual([['tiny', undefined], ['tiny', undefined]]);
    ctx.finish('2xx', { level: 'info', message: 'request' });
    ctx.finish('5xx', { level: 'info', message: 'request' });
    expect(edge.inflightCount).toBe(0);
    expect(observed).toEqual([['http', 'tiny', '2xx']]);
    expect(lines.filter((l) => l.reqId === 'r-1')).toHaveLength(1);

    edge.setDraining(true);
    const late = edge.begin('grpc', { inference: true });
    expect(() => late.admit('tiny', undefined)).toThrow('the server is draining and accepts no new inference requests');
    expect(edge.isReady()).toBe(false);
    // Not an inference request (metadata, probes): not refused, not counted in the metrics.
    const meta = edge.begin('grpc', { inference: false });
    expect(meta.admit('tiny', undefined)).toEqual({ model: 'tiny' });
    meta.finish('OK', { level: 'debug', message: 'grpc call' });
    expect(observed).toHaveLength(1);
  });

  it('aborts at the earliest of the transport deadline and the request timeout, with DEADLINE_EXCEEDED', () => {
    const { edge } = edgeOf();
    const ctx = edge.begin('grpc', { inference: true, deadline: performance.now() + 500 });
    const options = ctx.requestOptions({ timeoutMs: 200 });
    expect(options.deadline).toBe(ctx.startedAt + 200);
    expect(ctx.requestOptions({ timeoutMs: 900 }).deadline).toBe(ctx.startedAt + 200); // the earlier stays
    vi.advanceTimersByTime(199);
    expect(ctx.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.abortReason?.code).toBe('DEADLINE_EXCEEDED');
    expect(ctx.errorCode).toBe('DEADLINE_EXCEEDED');
  });

  it('leaves out of the drain\'s count what is begun uncounted (a gRPC stream)', async () => {
    const { edge } = edgeOf();
    const stream = edge.begin('grpc', { inference: false, counted: false });
    expect(edge.inflightCount).toBe(0);
    const message = edge.begin('grpc', { inference: true });
    let idle = false;
    void edge.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    message.finish('OK', { level: 'info', message: 'grpc call' });
    await Promise.resolve();
    expect(idle).toBe(true);
    stream.finish('OK', { level: 'info', message: 'grpc call' });
    expect(edge.inflightCount).toBe(0);
  });

  it('logs a client\'s overlong model name cut to 128 characters', () => {
    const { edge, lines } = edgeOf();
    const ctx = edge.begin('grpc', { requestId: 'long', inference: false });
    ctx.model = 'm'.repeat(10_000);
    ctx.finish('NOT_FOUND', { level: 'info', message: 'grpc call' });
    expect(lines.find((l) => l.reqId === 'long')?.model).toBe(`${'m'.repeat(128)}…`);
  });
});

describe('how long a drain keeps reading', () => {
  const settled = (promise: Promise<void>) => {
    const state = { done: false };
    void promise.then(() => (state.done = true));
    return state;
  };

  it('waits the minimum when nothing arrives', async () => {
    const { edge } = edgeOf();
    const quiet = settled(edge.quiet(250, 1000, 5000));
    await vi.advanceTimersByTimeAsync(999);
    expect(quiet.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(quiet.done).toBe(true);
  });

  it('goes on while requests keep arriving, until none has for the quiet time', async () => {
    const { edge } = edgeOf();
    const quiet = settled(edge.quiet(250, 1000, 5000));
    await vi.advanceTimersByTimeAsync(900);
    edge.begin('http', { inference: true }); // at 900
    await vi.advanceTimersByTimeAsync(200); // 1100: 200 ms since the last arrival
    expect(quiet.done).toBe(false);
    edge.begin('http', { inference: true }); // at 1100
    await vi.advanceTimersByTimeAsync(249);
    expect(quiet.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // 1350: 250 ms quiet
    expect(quiet.done).toBe(true);
  });

  it('stops at the maximum however busy it is', async () => {
    const { edge } = edgeOf();
    const quiet = settled(edge.quiet(250, 1000, 2000));
    for (let t = 0; t < 1990; t += 100) {
      edge.begin('grpc', { inference: true });
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(10);
    expect(quiet.done).toBe(true);
  });
});
