// The gRPC server over real sockets beyond the Open Inference Protocol RPCs: the Classifier,
// deadlines and cancellation, errors and logs, health, shutdown and reflection. A grpc-js client
// against the server on 127.0.0.1:0, backed by a real InferenceService running tiny DenseNets.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import type { RequestOptions } from '../../../src/inference/index.ts';
import { createGrpcServer } from '../../../src/api/grpc/server.ts';
import { ERROR_CODE_METADATA_KEY } from '../../../src/api/grpc/status-codes.ts';
import type { ModelInferRequest } from '../../../src/api/grpc/generated/inference/ModelInferRequest.ts';
import type { ModelInferResponse__Output } from '../../../src/api/grpc/generated/inference/ModelInferResponse.ts';
import type { ClassifyResponse__Output } from '../../../src/api/grpc/generated/densenet/v1/ClassifyResponse.ts';
import type { ListModelsResponse__Output } from '../../../src/api/grpc/generated/densenet/v1/ListModelsResponse.ts';
import { callError, fp32Batch, pngOf, rawFp32Request, startHarness, unaryCall, type Harness } from './harness.ts';

/**
 * How long the 'queued' model holds a lone request waiting for batch-mates: far longer than any
 * test takes, so a request of its is still queued whenever a test looks, however slow the machine.
 */
const QUEUE_DELAY_MS = 60_000;
/**
 * For expect.poll on things that happen soon but on their own schedule (a message crossing a
 * socket): a hang guard below vitest's testTimeout, not a bound on how fast they happen.
 */
const EVENTUALLY = { timeout: 20_000 };

describe('gRPC server', () => {
  let h: Harness;
  const infer = (request: ModelInferRequest, options?: Parameters<typeof unaryCall>[3]) =>
    unaryCall<ModelInferRequest, ModelInferResponse__Output>(h.inference, 'ModelInfer', request, options);

  beforeAll(async () => {
    h = await startHarness({
      models: {
        tiny: { seed: 1 },
        spare: { seed: 3 },
        // One item waits QUEUE_DELAY_MS for batch-mates: a request that stays queued.
        queued: { seed: 2, manifest: { batching: { maxBatchSize: 4, maxQueueDelayMs: QUEUE_DELAY_MS, maxQueueSize: 8 } } },
      },
      env: { DEFAULT_MODEL: 'tiny', DEFAULT_TOP_K: '2' },
    });
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  describe('densenet.v1.Classifier', () => {
    it('classifies encoded images like the inference core, top_k per image', async () => {
      const images = await Promise.all([pngOf(1), pngOf(2, 17, 64)]);
      const expected = await h.service.classify('tiny', images, 2);
      const { response } = await unaryCall<object, ClassifyResponse__Output>(h.classifier, 'Classify', { model_name: 'tiny', images, top_k: 2 });
      expect(response.model_name).toBe('tiny');
      expect(response.model_version).toBe('1');
      expect(response.results).toHaveLength(2);
      response.results.forEach((r, i) => {
        expect(r.predictions.map((p) => [p.label, p.index])).toEqual(expected.predictions[i]!.map((p) => [p.label, p.index]));
        r.predictions.forEach((p, j) => expect(p.score).toBeCloseTo(expected.predictions[i]![j]!.score, 5));
      });
    });

    it('uses the default model and DEFAULT_TOP_K when the request names neither', async () => {
      const { response } = await unaryCall<object, ClassifyResponse__Output>(h.classifier, 'Classify', { images: [await pngOf(4)] });
      expect(response.model_name).toBe('tiny');
      expect(response.results[0]!.predictions).toHaveLength(2);
      const versioned = await unaryCall<object, ClassifyResponse__Output>(h.classifier, 'Classify', { model_name: 'tiny', model_version: '1', images: [await pngOf(4)], top_k: 9 });
      expect(versioned.response.results[0]!.predictions).toHaveLength(3); // clipped to the class count
    });

    it('names the bad field: images[i], top_k; unknown model is NOT_FOUND', async () => {
      const garbage = await callError(unaryCall(h.classifier, 'Classify', { model_name: 'tiny', images: [await pngOf(1), Buffer.from([1, 2, 3])] }));
      expect(garbage.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(garbage.details).toContain('images[1]');
      const none = await callError(unaryCall(h.classifier, 'Classify', { model_name: 'tiny', images: [] }));
      expect(none.details).toContain('images: at least one image is required');
      const negative = await callError(unaryCall(h.classifier, 'Classify', { model_name: 'tiny', images: [await pngOf(1)], top_k: -1 }));
      expect(negative.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(negative.details).toMatch(/^top_k: /);
      expect((await callError(unaryCall(h.classifier, 'Classify', { model_name: 'absent', images: [await pngOf(1)] }))).code).toBe(grpc.status.NOT_FOUND);
    });

    it('lists the models and the default one', async () => {
      const { response } = await unaryCall<object, ListModelsResponse__Output>(h.classifier, 'ListModels', {});
      expect(response.default_model).toBe('tiny');
      expect(response.models.map((m) => `${m.name}:${m.version}:${m.state}`)).toEqual(['queued:1:MODEL_STATE_READY', 'spare:1:MODEL_STATE_READY', 'tiny:1:MODEL_STATE_READY']);
    });
  });

  describe('deadlines and cancellation', () => {
    it('answers DEADLINE_EXCEEDED when the timeout parameter (µs) has passed before the work is queued', async () => {
      const err = await callError(infer(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { parameters: { timeout: { int64_param: 1 } } })));
      expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(err.details).toContain('the deadline passed'); // the batcher's words: it came from the server
    });

    it('passes the call deadline and an AbortSignal down; when the deadline passes the work is refused, DEADLINE_EXCEEDED', async () => {
      const DEADLINE_MS = 1000;
      const original = h.service.inferTensor.bind(h.service);
      let seen: RequestOptions | undefined;
      let handlerAt = 0;
      let settle!: (outcome: unknown) => void;
      const outcome = new Promise<unknown>((resolve) => (settle = resolve));
      const spy = vi.spyOn(h.service, 'inferTensor').mockImplementationOnce(async (name, tensor, options) => {
        seen = options;
        handlerAt = performance.now();
        // As if the server were busy until the deadline: hold the work until the call's own
        // signal says the deadline has passed (no sleep that a slow machine could outlast).
        const signal = options!.signal!;
        if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        try {
          const result = await original(name, tensor, options);
          settle('computed');
          return result;
        } catch (err) {
          settle(err);
          throw err;
        }
      });
      try {
        // Connected first: the deadline is for the call, not for connecting.
        await unaryCall(h.inference, 'ServerLive', {});
        const metadata = new grpc.Metadata();
        metadata.set('x-request-id', 'deadline-1');
        const before = performance.now();
        const deadline = new Date(Date.now() + DEADLINE_MS);
        const err = await callError(infer(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), { deadline, metadata }));
        expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
        // The batcher refuses it without computing (the aborted signal wins over the deadline check).
        const refused = await outcome;
        expect(refused).toBeInstanceOf(ServeError);
        expect(['CANCELLED', 'DEADLINE_EXCEEDED']).toContain((refused as ServeError).code);
        expect(spy).toHaveBeenCalledTimes(1);
        // grpc-timeout carries the time left in whole ms (rounded up) and the server counts it
        // from when it reads the header: not before the client's deadline (taken after
        // `before`), and at most the full DEADLINE_MS after the handler started (±2 ms of
        // clock conversion). Delays on a loaded machine only move the server's deadline later
        // than the first bound and the handler closer to it than the second.
        expect(seen!.deadline! - (before + DEADLINE_MS)).toBeGreaterThan(-3);
        expect(seen!.deadline! - handlerAt).toBeLessThan(DEADLINE_MS + 3);
        expect(seen!.signal!.aborted).toBe(true);
        expect((seen!.signal!.reason as ServeError).code).toBe('DEADLINE_EXCEEDED');
        // The call's line is written once the handler has settled, which may be just after.
        await expect.poll(() => h.logs.find((l) => l.reqId === 'deadline-1' && l.msg === 'grpc call'), EVENTUALLY).toMatchObject({ status: 'DEADLINE_EXCEEDED', model: 'tiny' });
      } finally {
        spy.mockRestore();
      }
    });

    it('cancels queued work when the client cancels the call', async () => {
      const outcomes: string[] = [];
      const unsubscribe = h.service.subscribe({
        onBatch() {},
        onItemDone(model, outcome) {
          if (model === 'queued:1') outcomes.push(outcome);
        },
      });
      try {
        let call: grpc.ClientUnaryCall | undefined;
        const metadata = new grpc.Metadata();
        metadata.set('x-request-id', 'cancel-1');
        const pending = callError(infer(rawFp32Request('queued', fp32Batch(1), [1, 16, 16, 3]), { metadata, onCall: (c) => (call = c) }));
        await expect.poll(() => h.service.queueDepth('queued', '1'), EVENTUALLY).toBe(1);
        call!.cancel();
        expect((await pending).code).toBe(grpc.status.CANCELLED);
        await expect.poll(() => outcomes, EVENTUALLY).toEqual(['cancelled']);
        expect(h.service.queueDepth('queued', '1')).toBe(0);
        await expect.poll(() => h.logs.find((l) => l.reqId === 'cancel-1' && l.msg === 'grpc call')?.status, EVENTUALLY).toBe('CANCELLED');
      } finally {
        unsubscribe();
      }
    });
  });


  describe('errors and observability', () => {
    it('answers an unexpected error with a generic INTERNAL and logs it in full', async () => {
      const spy = vi.spyOn(h.service, 'describe').mockImplementationOnce(() => {
        throw new Error('disk on fire at /srv/secret/models');
      });
      try {
        const metadata = new grpc.Metadata();
        metadata.set('x-request-id', 'boom-1');
        const err = await callError(unaryCall(h.inference, 'ModelMetadata', { name: 'tiny' }, { metadata }));
        expect(err.code).toBe(grpc.status.INTERNAL);
        expect(err.details).toBe('internal error (request id boom-1)');
        const line = h.logs.find((l) => l.reqId === 'boom-1' && l.level === 50);
        expect(line?.err?.message).toBe('disk on fire at /srv/secret/models');
        expect(line?.err?.stack).toContain('grpc-server.test.ts');
      } finally {
        spy.mockRestore();
      }
    });

    it('gives each call a request id (generated when the client sends none or a malformed one)', async () => {
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', 'has spaces');
      const { metadata: head } = await unaryCall(h.inference, 'ServerLive', {}, { metadata });
      expect(head.get('x-request-id')[0]).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('logs a client\'s overlong model name cut to 128 characters', async () => {
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', 'long-name-1');
      const name = 'n'.repeat(300_000);
      expect((await callError(infer(rawFp32Request(name, fp32Batch(1), [1, 16, 16, 3]), { metadata }))).code).toBe(grpc.status.INVALID_ARGUMENT);
      const line = h.logs.find((l) => l.reqId === 'long-name-1' && l.msg === 'grpc call');
      expect(line?.model).toBe(`${'n'.repeat(128)}…`);
    });

    it('counts calls by model and status; a model name the server does not hold never becomes a label value', async () => {
      const count = async (model: string, outcome: string): Promise<number> => {
        const series = (await h.metrics.registry.getSingleMetric('densenet_requests_total')!.get()).values;
        return series.find((v) => v.labels.transport === 'grpc' && v.labels.model === model && v.labels.outcome === outcome)?.value ?? 0;
      };
      const okBefore = await count('tiny', 'OK');
      const unknownBefore = await count('_unknown', 'NOT_FOUND');
      await infer(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]));
      const names = Array.from({ length: 20 }, (_, i) => `probe-${i}-${Math.random().toString(36).slice(2)}`);
      for (const name of names) {
        expect((await callError(infer(rawFp32Request(name, fp32Batch(1), [1, 16, 16, 3])))).code).toBe(grpc.status.NOT_FOUND);
      }
      expect(await count('tiny', 'OK')).toBe(okBefore + 1);
      expect(await count('_unknown', 'NOT_FOUND')).toBe(unknownBefore + names.length);
      const text = await h.metrics.registry.metrics();
      for (const name of names) expect(text).not.toContain(name);
    });
  });

  describe('grpc.health.v1 and readiness', () => {
    const check = (service: string) => unaryCall<object, { status: string }>(h.health, 'Check', { service });

    it('reports the server and each model', async () => {
      for (const name of ['', 'inference.GRPCInferenceService', 'densenet.v1.Classifier', 'tiny', 'spare', 'queued']) {
        expect((await check(name)).response.status, name).toBe('SERVING');
      }
      expect((await callError(check('absent'))).code).toBe(grpc.status.NOT_FOUND);
    });

    it('streams a model\'s status changes to Watch as it is unloaded and loaded again', async () => {
      const seen: string[] = [];
      const stream = (h.health.Watch as (req: object) => grpc.ClientReadableStream<{ status: string }>).call(h.health, { service: 'spare' });
      stream.on('data', (m: { status: string }) => seen.push(m.status));
      stream.on('error', () => undefined); // CANCELLED when we stop watching
      try {
        await expect.poll(() => seen, EVENTUALLY).toEqual(['SERVING']);
        await h.service.unload('spare');
        await expect.poll(() => seen, EVENTUALLY).toEqual(['SERVING', 'NOT_SERVING']);
        expect((await check('spare')).response.status).toBe('NOT_SERVING');
        // Unloaded, the model is unknown to the server: NOT_FOUND, as Triton answers.
        expect((await callError(unaryCall(h.inference, 'ModelReady', { name: 'spare' }))).code).toBe(grpc.status.NOT_FOUND);
        await h.service.load('spare');
        await expect.poll(() => seen, EVENTUALLY).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
      } finally {
        stream.cancel();
      }
    });

    it('reports NOT_SERVING and refuses inference with UNAVAILABLE while draining; setServing(false) flips at once', async () => {
      h.deps.edge.setDraining(true);
      try {
        await expect.poll(async () => (await check('')).response.status, EVENTUALLY).toBe('NOT_SERVING');
        expect((await unaryCall(h.inference, 'ServerReady', {})).response).toEqual({ ready: false });
        expect((await unaryCall(h.inference, 'ServerLive', {})).response).toEqual({ live: true });
        const err = await callError(infer(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3])));
        expect(err.code).toBe(grpc.status.UNAVAILABLE);
        expect(err.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['SHUTTING_DOWN']);
        expect((await callError(unaryCall(h.classifier, 'Classify', { images: [await pngOf(1)] }))).code).toBe(grpc.status.UNAVAILABLE);
      } finally {
        h.deps.edge.setDraining(false);
      }
      await expect.poll(async () => (await check('')).response.status, EVENTUALLY).toBe('SERVING');
      h.grpcServer.setServing(false);
      expect((await check('')).response.status).toBe('NOT_SERVING');
      expect((await check('tiny')).response.status).toBe('SERVING');
      h.grpcServer.setServing(true);
      expect((await check('')).response.status).toBe('SERVING');
    });
  });

  describe('shutdown', () => {
    it('close() reports NOT_SERVING to watchers, waits for calls in flight up to the grace period, then cancels them and ends streams', async () => {
      const second = createGrpcServer(h.deps, { healthPollMs: 50 });
      const address = `127.0.0.1:${await second.bind('127.0.0.1', 0)}`;
      const Health = h.health.constructor as new (...args: ConstructorParameters<typeof grpc.Client>) => Harness['health'];
      const Inference = h.inference.constructor as new (...args: ConstructorParameters<typeof grpc.Client>) => Harness['inference'];
      const health = new Health(address, grpc.credentials.createInsecure());
      const inference = new Inference(address, grpc.credentials.createInsecure());
      const outcomes: string[] = [];
      const unsubscribe = h.service.subscribe({
        onBatch() {},
        onItemDone(model, outcome) {
          if (model === 'queued:1') outcomes.push(outcome);
        },
      });
      try {
        const seen: string[] = [];
        const stream = (health.Watch as (req: object) => grpc.ClientReadableStream<{ status: string }>).call(health, { service: '' });
        const ended = new Promise<number>((resolve) => {
          stream.on('error', (err: grpc.ServiceError) => resolve(err.code));
          stream.on('end', () => resolve(grpc.status.OK));
        });
        stream.on('data', (m: { status: string }) => seen.push(m.status));
        await expect.poll(() => seen, EVENTUALLY).toEqual(['SERVING']);

        // A finished call does not hold shutdown; an open Watch stream does not either.
        expect((await unaryCall(inference, 'ServerLive', {})).response).toEqual({ live: true });
        // One call stays queued (the 'queued' model waits QUEUE_DELAY_MS for batch-mates) and does.
        const pending = callError(unaryCall(inference, 'ModelInfer', rawFp32Request('queued', fp32Batch(1), [1, 16, 16, 3])));
        await expect.poll(() => h.service.queueDepth('queued', '1'), EVENTUALLY).toBe(1);

        const GRACE_MS = 300;
        const started = performance.now();
        await second.close(GRACE_MS);
        const took = performance.now() - started;
        // It waited the grace period (timers are millisecond-grained: − 1 ms)…
        expect(took).toBeGreaterThanOrEqual(GRACE_MS - 1);
        // …and then cancelled the call rather than wait for it to be served.
        expect(took).toBeLessThan(QUEUE_DELAY_MS);
        expect(second.isReady()).toBe(false);
        expect(await ended).not.toBe(grpc.status.OK);
        // NOT_SERVING was sent when close() began; the stream's end may be read in the same turn.
        await expect.poll(() => seen, EVENTUALLY).toEqual(['SERVING', 'NOT_SERVING']);
        expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE]).toContain((await pending).code);
        await expect.poll(() => outcomes, EVENTUALLY).toEqual(['cancelled']);
        expect(h.service.queueDepth('queued', '1')).toBe(0);
      } finally {
        unsubscribe();
        health.close();
        inference.close();
      }
    });

    it('close() returns at once when nothing is in flight', async () => {
      const third = createGrpcServer(h.deps, { healthPollMs: 50 });
      await third.bind('127.0.0.1', 0);
      // A close() that waited for the grace period regardless would take all of it.
      const GRACE_MS = 30_000;
      const started = performance.now();
      await third.close(GRACE_MS);
      expect(performance.now() - started).toBeLessThan(GRACE_MS);
    });
  });

  describe('server reflection', () => {
    it('lists our services and describes them (what grpcurl uses)', async () => {
      const reflectionProto = path.join(path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto/grpc/reflection/v1/reflection.proto');
      const definition = protoLoader.loadSync(reflectionProto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
      const Reflection = (grpc.loadPackageDefinition(definition) as unknown as {
        grpc: { reflection: { v1: { ServerReflection: new (...args: ConstructorParameters<typeof grpc.Client>) => grpc.Client & Record<string, () => grpc.ClientDuplexStream<object, Record<string, { service?: { name: string }[]; file_descriptor_proto?: Buffer[] }>>> } } };
      }).grpc.reflection.v1.ServerReflection;
      const client = new Reflection(h.address, grpc.credentials.createInsecure());
      try {
        const ask = (request: object) => new Promise<Record<string, { service?: { name: string }[]; file_descriptor_proto?: Buffer[] }>>((resolve, reject) => {
          const stream = client.ServerReflectionInfo!();
          stream.on('data', (m) => {
            resolve(m);
            stream.end();
          });
          stream.on('error', reject);
          stream.write(request);
        });
        const listed = await ask({ list_services: '' });
        expect(listed.list_services_response!.service!.map((s) => s.name).sort()).toEqual(
          ['densenet.v1.Classifier', 'grpc.health.v1.Health', 'inference.GRPCInferenceService'],
        );
        const described = await ask({ file_containing_symbol: 'inference.GRPCInferenceService' });
        const files = described.file_descriptor_response!.file_descriptor_proto!.map((b) => b.toString('latin1'));
        expect(files.some((f) => f.includes('ModelInferRequest') && f.includes('raw_input_contents'))).toBe(true);
      } finally {
        client.close();
      }
    });
  });
});
