// /metrics as Prometheus scrapes it from the real server (startServer, worker processes): parsed
// by a third-party text-format parser, and checked by exact deltas against a known mix of
// succeeding and failing requests on both transports, then against a worker SIGKILLed from
// outside. Deltas (not absolute values) make the checks independent of anything else the
// server did before, such as start-up.
import type { PromMetrics } from 'prom2javascript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, failure, grpcClients, startRealServer, type GrpcClients, type RealServer } from '../security/real-server.ts';
import { childPids, isRunning, newChildren } from '../helpers/child-processes.ts';
import { histogram, sample, scrape, type Labels } from '../helpers/prometheus.ts';
import { noisePng } from '../helpers/random.ts';
import { multipartBody } from './http/harness.ts';

const MODEL = 'tiny';
const KEY = 'tiny:1'; // the batcher's metrics are labelled name:version
const PIXELS = 16 * 16 * 3;

const fp32Infer = (model: string, bytes = PIXELS * 4) => ({
  model_name: model,
  inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '16', '16', '3'] }],
  raw_input_contents: [Buffer.alloc(bytes, 0x3e)], // 0x3e3e3e3e ≈ 0.186 as FP32
});

let s: RealServer;
let base: string;
let grpc: GrpcClients;
let workerPids: number[];

beforeAll(async () => {
  ({ result: s, pids: workerPids } = await newChildren(() => startRealServer({ WORKERS: '1', WORKER_ISOLATION: 'process' }, { logLevel: 'silent' })));
  base = `http://127.0.0.1:${s.server.httpPort}`;
  grpc = grpcClients(`127.0.0.1:${s.server.grpcPort}`);
});

afterAll(async () => {
  grpc?.close();
  await s?.close();
});

const requests = (m: PromMetrics, transport: string, model: string, outcome: string) =>
  sample(m, 'densenet_requests_total', 'counter', { transport, model, outcome });

/** Counter series in `after` minus `before`, for each label set asked. */
function deltas(before: PromMetrics, after: PromMetrics, name: string, sets: Labels[]): number[] {
  return sets.map((labels) => sample(after, name, 'counter', labels) - sample(before, name, 'counter', labels));
}

describe('/metrics scraped and parsed as Prometheus text', () => {
  it('counts requests by transport, model and outcome, images and batches, by exact deltas', async () => {
    const png = await noisePng(3, 20, 20);
    const before = await scrape(base);

    // HTTP: 3 single images, 1 request with 2 images, 1 undecodable image, 1 unknown model.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/v1/models/${MODEL}/classify`, { method: 'POST', body: png });
      expect(res.status).toBe(200);
    }
    const two = multipartBody([{ name: 'a.png', type: 'image/png', data: png }, { name: 'b.png', type: 'image/png', data: png }]);
    const multi = await fetch(`${base}/v1/models/${MODEL}/classify`, { method: 'POST', body: two.body, headers: { 'content-type': two.contentType } });
    expect(((await multi.json()) as { predictions: unknown[] }).predictions).toHaveLength(2);
    expect((await fetch(`${base}/v1/models/${MODEL}/classify`, { method: 'POST', body: Buffer.from('not an image at all') })).status).toBe(400);
    expect((await fetch(`${base}/v1/models/no-such-model/classify`, { method: 'POST', body: png })).status).toBe(404);

    // gRPC: 2 FP32 tensors and 1 Classify, a tensor of the wrong byte count, an unknown model.
    for (let i = 0; i < 2; i++) expect(await call(grpc.inference, 'ModelInfer', fp32Infer(MODEL))).toMatchObject({ model_name: MODEL });
    expect(await call(grpc.classifier, 'Classify', { model_name: MODEL, images: [png] })).toMatchObject({ model_name: MODEL });
    expect((await failure(call(grpc.inference, 'ModelInfer', fp32Infer(MODEL, 100)))).code).toBe(3); // INVALID_ARGUMENT
    expect((await failure(call(grpc.inference, 'ModelInfer', fp32Infer('no-such-model')))).code).toBe(5); // NOT_FOUND

    const after = await scrape(base);
    expect(deltas(before, after, 'densenet_requests_total', [
      { transport: 'http', model: MODEL, outcome: '2xx' },
      { transport: 'http', model: MODEL, outcome: '4xx' },
      { transport: 'http', model: '_unknown', outcome: '4xx' },
      { transport: 'http', model: MODEL, outcome: '5xx' },
      { transport: 'grpc', model: MODEL, outcome: 'OK' },
      { transport: 'grpc', model: MODEL, outcome: 'INVALID_ARGUMENT' },
      { transport: 'grpc', model: '_unknown', outcome: 'NOT_FOUND' },
    ])).toEqual([4, 1, 1, 0, 3, 1, 1]);
    // A client-sent model name never becomes a label value.
    expect(JSON.stringify(after.densenet_requests_total)).not.toContain('no-such-model');

    // One duration observation per counted request, per transport and model; +Inf holds them all.
    for (const [transport, model, n] of [['http', MODEL, 5], ['http', '_unknown', 1], ['grpc', MODEL, 4], ['grpc', '_unknown', 1]] as const) {
      const h0 = histogram(before, 'densenet_request_duration_seconds', { transport, model });
      const h1 = histogram(after, 'densenet_request_duration_seconds', { transport, model });
      expect(h1.count - h0.count, `${transport} ${model}`).toBe(n);
      expect(h1.buckets['+Inf']).toBe(h1.count);
      expect(h1.sum - h0.sum).toBeGreaterThan(0);
      const outcomes = ['2xx', '4xx', '5xx', 'OK', 'INVALID_ARGUMENT', 'NOT_FOUND'];
      const total = (m: PromMetrics) => outcomes.reduce((acc, o) => acc + requests(m, transport, model, o), 0);
      expect(h1.count - h0.count).toBe(total(after) - total(before));
    }

    // Images through the batcher: 3 + 2 over HTTP, 2 + 1 over gRPC, all successful; the refused
    // requests never reached it.
    expect(deltas(before, after, 'densenet_inference_items_total', ['success', 'failed', 'cancelled', 'expired', 'rejected']
      .map((outcome) => ({ model: KEY, outcome })))).toEqual([8, 0, 0, 0, 0]);
    // Requests were sent one at a time, so no batch mixes two requests: 7 batches, or 8 if the
    // two-image request was split; the sizes add up to the 8 images either way.
    const b0 = histogram(before, 'densenet_batch_size', { model: KEY });
    const b1 = histogram(after, 'densenet_batch_size', { model: KEY });
    expect(b1.sum - b0.sum).toBe(8);
    expect([7, 8]).toContain(b1.count - b0.count);
    expect(b1.buckets['1']! - (b0.buckets['1'] ?? 0)).toBeGreaterThanOrEqual(6);
    // One compute observation per batch, one queue-time observation per image.
    const c0 = histogram(before, 'densenet_compute_duration_seconds', { model: KEY });
    const c1 = histogram(after, 'densenet_compute_duration_seconds', { model: KEY });
    expect(c1.count - c0.count).toBe(b1.count - b0.count);
    const q0 = histogram(before, 'densenet_queue_duration_seconds', { model: KEY });
    const q1 = histogram(after, 'densenet_queue_duration_seconds', { model: KEY });
    expect(q1.count - q0.count).toBe(8);
    expect(sample(after, 'densenet_queue_depth', 'gauge', { model: KEY })).toBe(0);
    expect(sample(after, 'densenet_model_ready', 'gauge', { model: KEY })).toBe(1);
  });

  it('counts exactly one worker restart after a worker process is SIGKILLed, and serves again', async () => {
    expect(workerPids).toHaveLength(1);
    const [pid] = workerPids as [number];
    const restartsBefore = sample(await scrape(base), 'densenet_worker_restarts_total', 'counter');
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => isRunning(pid), { timeout: 10_000 }).toBe(false);
    // The replacement reloads the model before it takes work; then the model is ready again.
    await expect.poll(async () => {
      const m = await scrape(base);
      return [sample(m, 'densenet_worker_restarts_total', 'counter'), sample(m, 'densenet_model_ready', 'gauge', { model: KEY })];
    }, { timeout: 60_000, interval: 100 }).toEqual([restartsBefore + 1, 1]);
    const res = await fetch(`${base}/v1/models/${MODEL}/classify`, { method: 'POST', body: await noisePng(4, 20, 20) });
    expect(res.status).toBe(200);
    const m = await scrape(base);
    expect(sample(m, 'densenet_worker_restarts_total', 'counter')).toBe(restartsBefore + 1);
    // The replacement is another process.
    const now = [...childPids()].filter(isRunning);
    expect(now).not.toContain(pid);
  }, 90_000);
});
