// Unloading a model while requests for it are provably waiting in its queue, through the real
// server (startServer) and both transports. The one worker process is stopped with SIGSTOP, so
// nothing can run until the test says so: the requests' presence in the queue is observed on
// /metrics (densenet_queue_depth), the unload starts, the model is seen UNLOADING with the queue
// still full, new requests are refused, and only then is the worker continued (SIGCONT). Every
// queued request must complete; after the unload, requests are refused as for an absent model.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as grpcJs from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newChildren, processState } from '../helpers/child-processes.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { sample, scrape } from '../helpers/prometheus.ts';
import { noisePng } from '../helpers/random.ts';
import { writeTinyModelFolder } from '../helpers/tiny-model.ts';
import { call, failure, grpcClients, startRealServer, type GrpcClients, type RealServer } from '../security/real-server.ts';

const MODEL = 'tiny';
const KEY = 'tiny:1';
const HTTP_REQUESTS = 3;
const GRPC_REQUESTS = 3;
const N = HTTP_REQUESTS + GRPC_REQUESTS;

const fp32Infer = (seed: number) => ({
  model_name: MODEL,
  inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '16', '16', '3'] }],
  raw_input_contents: [Buffer.alloc(16 * 16 * 3 * 4, seed)],
});

const errorCode = (err: grpcJs.ServiceError): unknown => err.metadata?.get('densenet-error-code')[0];

let repo: string;
let s: RealServer;
let base: string;
let grpc: GrpcClients;
let worker: number;

beforeAll(async () => {
  await useNativeEngine();
  repo = await mkdtemp(path.join(tmpdir(), 'unload-queued-'));
  // One image per batch: the first request's batch is handed to the stopped worker, every later
  // one stays in the queue, so the queue depth says exactly how many are waiting.
  await writeTinyModelFolder(repo, MODEL, { seed: 1, manifest: { batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 32 } } });
  const started = await newChildren(() => startRealServer({ WORKERS: '1', WORKER_ISOLATION: 'process', WORKER_HANG_TIMEOUT_MS: '600000' }, { repo, logLevel: 'silent' }));
  s = started.result;
  const workers = started.pids;
  expect(workers).toHaveLength(1);
  worker = workers[0]!;
  base = `http://127.0.0.1:${s.server.httpPort}`;
  grpc = grpcClients(`127.0.0.1:${s.server.grpcPort}`);
});

afterAll(async () => {
  if (worker) {
    try {
      process.kill(worker, 'SIGCONT'); // never leave a stopped worker behind a failed assertion
    } catch { /* already gone */ }
  }
  grpc?.close();
  await s?.close();
  await rm(repo, { recursive: true, force: true });
});

const classifyHttp = async (body: Buffer) => {
  const res = await fetch(`${base}/v1/models/${MODEL}/classify`, { method: 'POST', body });
  return { status: res.status, body: (await res.json()) as { version?: string; predictions?: unknown[][]; error?: string } };
};

const indexState = async (): Promise<string | undefined> => {
  const res = await fetch(`${base}/v2/repository/index`, { method: 'POST' });
  const list = (await res.json()) as Array<{ name: string; state?: string }>;
  return list.find((m) => m.name === MODEL)?.state;
};

describe('unload while requests are queued (real server, HTTP and gRPC)', () => {
  it('drains every queued request, refuses new ones with MODEL_NOT_READY while unloading and MODEL_NOT_FOUND after', async () => {
    const png = await noisePng(11, 20, 20);
    process.kill(worker, 'SIGSTOP');
    await expect.poll(() => processState(worker)).toBe('T');

    const httpQueued = Array.from({ length: HTTP_REQUESTS }, () => classifyHttp(png));
    const grpcQueued = Array.from({ length: GRPC_REQUESTS }, (_, i) => call<{ model_name: string; model_version: string }>(grpc.inference, 'ModelInfer', fp32Infer(i + 1), undefined, 120_000));
    // One batch went to the stopped worker; the other N - 1 requests wait in the queue.
    await expect.poll(async () => sample(await scrape(base), 'densenet_queue_depth', 'gauge', { model: KEY }), { timeout: 30_000 }).toBe(N - 1);

    const unload = fetch(`${base}/v2/repository/models/${MODEL}/unload`, { method: 'POST' });
    await expect.poll(indexState, { timeout: 30_000 }).toBe('UNLOADING');
    // Still queued now that the unload has begun: nothing can have run.
    const during = await scrape(base);
    expect(sample(during, 'densenet_queue_depth', 'gauge', { model: KEY })).toBe(N - 1);
    expect(sample(during, 'densenet_model_ready', 'gauge', { model: KEY })).toBe(0);

    // New requests are refused at once while the accepted ones wait.
    const refusedHttp = await classifyHttp(png);
    expect(refusedHttp.status).toBe(503);
    expect(refusedHttp.body.error).toMatch(/unloading/);
    const refusedGrpc = await failure(call(grpc.inference, 'ModelInfer', fp32Infer(9)));
    expect(refusedGrpc.code).toBe(14); // UNAVAILABLE
    expect(errorCode(refusedGrpc)).toBe('MODEL_NOT_READY');
    expect(processState(worker)).toBe('T');

    process.kill(worker, 'SIGCONT');
    const http = await Promise.all(httpQueued);
    const grpcAnswers = await Promise.all(grpcQueued);
    for (const r of http) {
      expect(r.status).toBe(200);
      expect(r.body.version).toBe('1');
      expect(r.body.predictions?.[0]).toHaveLength(3);
    }
    for (const r of grpcAnswers) expect(r).toMatchObject({ model_name: MODEL, model_version: '1' });
    expect((await unload).status).toBe(200);

    // Unloaded: the model is absent for both transports.
    const goneHttp = await classifyHttp(png);
    expect(goneHttp.status).toBe(404);
    const goneGrpc = await failure(call(grpc.inference, 'ModelInfer', fp32Infer(10)));
    expect(goneGrpc.code).toBe(5); // NOT_FOUND
    expect(errorCode(goneGrpc)).toBe('MODEL_NOT_FOUND');
    const after = await scrape(base);
    expect(sample(after, 'densenet_inference_items_total', 'counter', { model: KEY, outcome: 'success' })).toBe(N);
    expect(sample(after, 'densenet_inference_items_total', 'counter', { model: KEY, outcome: 'rejected' })).toBe(0);
  }, 120_000);
});
