// A gRPC inference call that would be refused whatever model it names (every model's queue full,
// or the server draining) is refused when its headers arrive, before grpc-js reads and decodes
// its message: bytes that are no protobuf at all get the refusal, not INVALID_ARGUMENT.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODE_METADATA_KEY } from '../../../src/api/grpc/status-codes.ts';
import { callError, fp32Batch, rawFp32Request, startHarness, unaryCall, type Harness } from './harness.ts';

let h: Harness;
let raw: grpc.Client;

beforeAll(async () => {
  // The only model waits 60 s for a batch-mate and holds one request: one queued call fills it.
  h = await startHarness({ models: { held: { seed: 2, manifest: { batching: { maxBatchSize: 2, maxQueueDelayMs: 60_000, maxQueueSize: 1 } } } } });
  raw = new grpc.Client(h.address, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  raw?.close();
  await h?.close();
});

/** A call whose message bytes are not a ModelInferRequest at all. */
function garbageCall(path: string, metadata = new grpc.Metadata()): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x7f]), metadata, (err) => (err ? resolve(err as grpc.ServiceError) : reject(new Error('expected a refusal'))));
  });
}

const requests = async (outcome: string) => {
  const values = (await h.metrics.registry.getSingleMetric('densenet_requests_total')!.get()).values;
  return values.filter((v) => v.labels.transport === 'grpc' && v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
};

describe('early admission of gRPC inference calls', () => {
  it('reads a call whose model has room, so garbage is the client\'s error (the control)', async () => {
    const err = await garbageCall('/inference.GRPCInferenceService/ModelInfer');
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('refuses ModelInfer and Classify with RESOURCE_EXHAUSTED before reading them when every queue is full', async () => {
    const controller = new AbortController();
    const queued = unaryCall(h.inference, 'ModelInfer', rawFp32Request('held', fp32Batch(1), [1, 16, 16, 3]), { onCall: (c) => controller.signal.addEventListener('abort', () => c.cancel()) })
      .catch((e: grpc.ServiceError) => e);
    await expect.poll(() => h.service.queueDepth('held', '1'), { timeout: 10_000 }).toBe(1);
    try {
      const before = await requests('RESOURCE_EXHAUSTED');
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', 'early-1');
      for (const path of ['/inference.GRPCInferenceService/ModelInfer', '/densenet.v1.Classifier/Classify']) {
        const err = await garbageCall(path, metadata);
        expect(err.code, path).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(err.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['QUEUE_FULL']);
        expect(err.details).toMatch(/queue of model 'held:1' is full/);
      }
      expect(await requests('RESOURCE_EXHAUSTED')).toBe(before + 2);
      expect(h.logs.filter((l) => l.reqId === 'early-1' && l.status === 'RESOURCE_EXHAUSTED').map((l) => l.method)).toEqual(['ModelInfer', 'Classify']);
      // Metadata calls are not inference: they still answer.
      expect((await unaryCall(h.inference, 'ServerLive', {})).response).toEqual({ live: true });
    } finally {
      controller.abort();
      expect((await queued as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
    }
    await expect.poll(() => h.service.queueDepth('held', '1'), { timeout: 10_000 }).toBe(0);
  });

  it('refuses inference calls with UNAVAILABLE before reading them while draining', async () => {
    h.deps.edge.setDraining(true);
    try {
      const err = await garbageCall('/inference.GRPCInferenceService/ModelInfer');
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toBe('the server is draining and accepts no new inference requests');
      expect((await callError(unaryCall(h.inference, 'ModelInfer', rawFp32Request('held', fp32Batch(1), [1, 16, 16, 3])))).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      h.deps.edge.setDraining(false);
    }
  });
});
