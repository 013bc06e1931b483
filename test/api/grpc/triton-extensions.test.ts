// What tritonclient calls beyond the KServe core: ModelConfig, ModelStreamInfer and the model
// repository RPCs, over real sockets against a real InferenceService running tiny DenseNets.
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Edge } from '../../../src/api/edge/index.ts';
import { buildHttpApp } from '../../../src/api/http/app.ts';
import { createGrpcServer, type GrpcServer } from '../../../src/api/grpc/server.ts';
import { ERROR_CODE_METADATA_KEY } from '../../../src/api/grpc/status-codes.ts';
import type { ModelConfigResponse__Output } from '../../../src/api/grpc/generated/inference/ModelConfigResponse.ts';
import type { ModelInferRequest } from '../../../src/api/grpc/generated/inference/ModelInferRequest.ts';
import type { ModelStreamInferResponse__Output } from '../../../src/api/grpc/generated/inference/ModelStreamInferResponse.ts';
import type { RepositoryIndexResponse__Output } from '../../../src/api/grpc/generated/inference/RepositoryIndexResponse.ts';
import type { GRPCInferenceServiceClient } from '../../../src/api/grpc/generated/inference/GRPCInferenceService.ts';
import { loadProtos } from '../../../src/api/grpc/proto.ts';
import { loadConfig } from '../../../src/config.ts';
import { expectLogitsClose } from '../../helpers/logits.ts';
import { callError, fp32Batch, rawFp32Request, startHarness, unaryCall, type Harness } from './harness.ts';

const TOKEN = 'a-management-token-of-some-length';

let h: Harness;
let app: FastifyInstance;

beforeAll(async () => {
  h = await startHarness({
    models: {
      tiny: { seed: 1 },
      spare: { seed: 3 },
      // Items wait up to 10 s for batch-mates: a stream message that stays queued.
      held: { seed: 2, manifest: { batching: { maxBatchSize: 4, maxQueueDelayMs: 10_000, maxQueueSize: 8 } } },
    },
  });
  app = await buildHttpApp(h.deps);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await h?.close();
});

type Stream = grpc.ClientDuplexStream<ModelInferRequest, ModelStreamInferResponse__Output>;

function openStream(options: grpc.CallOptions = {}, client: GRPCInferenceServiceClient = h.inference): Stream {
  return (client.ModelStreamInfer as unknown as (metadata: grpc.Metadata, options: grpc.CallOptions) => Stream).call(client, new grpc.Metadata(), options);
}

/** Every message of a stream until it ends (or errors: then the error is the second result). */
function collect(stream: Stream): Promise<[ModelStreamInferResponse__Output[], grpc.ServiceError | undefined]> {
  const got: ModelStreamInferResponse__Output[] = [];
  return new Promise((resolve) => {
    stream.on('data', (m: ModelStreamInferResponse__Output) => got.push(m));
    stream.on('end', () => resolve([got, undefined]));
    stream.on('error', (err: grpc.ServiceError) => resolve([got, err]));
  });
}

describe('ModelConfig', () => {
  it("answers Triton's model configuration, the same as GET /v2/models/{m}/config", async () => {
    const { response } = await unaryCall<object, ModelConfigResponse__Output>(h.inference, 'ModelConfig', { name: 'held' });
    const rest = (await app.inject('/v2/models/held/config')).json() as Record<string, unknown>;
    const config = response.config!;
    // protobuf carries int64 as decimal strings and every field (defaults included).
    expect({
      ...config,
      input: config.input.map((t) => ({ name: t.name, data_type: t.data_type, format: t.format, dims: t.dims.map(Number) })),
      output: config.output.map((t) => ({ name: t.name, data_type: t.data_type, dims: t.dims.map(Number) })),
    }).toEqual(rest);
    expect(config).toMatchObject({ name: 'held', max_batch_size: 4, dynamic_batching: { max_queue_delay_microseconds: '10000000' } });
    const err = await callError(unaryCall(h.inference, 'ModelConfig', { name: 'absent' }));
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect((await callError(unaryCall(h.inference, 'ModelConfig', { name: 'tiny', version: '9' }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await callError(unaryCall(h.inference, 'ModelConfig', { name: '' }))).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe('ModelStreamInfer', () => {
  it('answers each request once, failures in the stream, with the logits ModelInfer gives', async () => {
    const data = fp32Batch(1, 5);
    const unary = await unaryCall<ModelInferRequest, { raw_output_contents: Buffer[] }>(h.inference, 'ModelInfer', rawFp32Request('tiny', data, [1, 16, 16, 3]));
    const stream = openStream();
    const done = collect(stream);
    for (let i = 0; i < 6; i++) {
      const model = i === 2 ? 'absent' : 'tiny';
      const request = i === 4
        ? { model_name: 'tiny', id: `m-${i}`, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 15, 16, 3] }], raw_input_contents: [Buffer.alloc(15 * 16 * 3 * 4)] }
        : rawFp32Request(model, data, [1, 16, 16, 3], { id: `m-${i}` });
      stream.write(request);
    }
    stream.end();
    const [messages, error] = await done;
    expect(error).toBeUndefined();
    const byId = new Map(messages.map((m) => [m.infer_response!.id, m]));
    expect([...byId.keys()].sort()).toEqual(['m-0', 'm-1', 'm-2', 'm-3', 'm-4', 'm-5']);
    expect(messages).toHaveLength(6);
    expect(byId.get('m-2')!.error_message).toBe("no model 'absent'");
    expect(byId.get('m-4')!.error_message).toMatch(/^inputs\[0\]\.shape: expected \[-1, 16, 16, 3\]/);
    // The stream's messages are batched together (a batch of 4 may round differently in the
    // last bit from the unary call's batch of 1).
    const logitsOf = (b: Buffer) => Array.from(new Float32Array(new Uint8Array(b).buffer));
    const expected = logitsOf(unary.response.raw_output_contents[0]!);
    for (const id of ['m-0', 'm-1', 'm-3', 'm-5']) {
      const m = byId.get(id)!;
      expect(m.error_message).toBe('');
      expect(m.infer_response!.model_name).toBe('tiny');
      const got = logitsOf(m.infer_response!.raw_output_contents[0]!);
      expect(got).toHaveLength(3);
      expectLogitsClose(Float32Array.from(got), Float32Array.from(expected));
    }
    // Each message is a request at the edge: counted and logged on its own.
    const lines = h.logs.filter((l) => l.method === 'ModelStreamInfer' && l.model !== undefined);
    expect(lines.length).toBeGreaterThanOrEqual(6);
  });

  it('answers a message that is not a ModelInferRequest in the stream and goes on', async () => {
    const client = new grpc.Client(h.address, grpc.credentials.createInsecure());
    try {
      const stream = client.makeBidiStreamRequest<Buffer, Buffer>('/inference.GRPCInferenceService/ModelStreamInfer', (b) => b, (b) => b);
      const got: Buffer[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('data', (b: Buffer) => got.push(b));
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      stream.write(Buffer.from([0x0a, 0xff, 0xff, 0xff])); // field 1 declared longer than the message
      stream.end();
      await ended;
      expect(got).toHaveLength(1);
      const decoded = loadedInference().ModelStreamInferResponse.deserialize(got[0]!) as ModelStreamInferResponse__Output;
      expect(decoded.error_message).toMatch(/^request: not a valid ModelInferRequest message/);
    } finally {
      client.close();
    }
  });

  it('drops the queued work of a cancelled stream before it is computed', async () => {
    const counter = async () => {
      const family = await h.metrics.registry.getSingleMetric('densenet_inference_items_dropped_total')!.get();
      return family.values.filter((v) => v.labels.model === 'held:1' && v.labels.stage === 'queued').reduce((n, v) => n + v.value, 0);
    };
    const before = await counter();
    const stream = openStream();
    const done = collect(stream);
    stream.write(rawFp32Request('held', fp32Batch(1), [1, 16, 16, 3], { id: 'q-0' }));
    await expect.poll(() => h.service.queueDepth('held', '1'), { timeout: 10_000 }).toBe(1);
    stream.cancel();
    const [messages, error] = await done;
    expect(error?.code).toBe(grpc.status.CANCELLED);
    expect(messages).toEqual([]);
    await expect.poll(counter, { timeout: 10_000 }).toBe(before + 1);
    expect(h.service.queueDepth('held', '1')).toBe(0);
  });

  it('is not a request a drain waits for while idle; its messages are', async () => {
    const stream = openStream();
    const done = collect(stream);
    await new Promise((resolve) => stream.once('metadata', resolve));
    expect(h.deps.edge.inflightCount).toBe(0);
    stream.write(rawFp32Request('held', fp32Batch(1), [1, 16, 16, 3], { id: 'i-0' }));
    await expect.poll(() => h.service.queueDepth('held', '1'), { timeout: 10_000 }).toBe(1);
    expect(h.deps.edge.inflightCount).toBe(1);
    stream.cancel();
    await done;
    await expect.poll(() => h.deps.edge.inflightCount, { timeout: 10_000 }).toBe(0);
  });

  it('keeps each message id a valid request id, whatever the stream id', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', 'x'.repeat(128));
    const stream = (h.inference.ModelStreamInfer as unknown as (m: grpc.Metadata) => Stream).call(h.inference, metadata);
    const done = collect(stream);
    stream.write(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { id: 'long-0' }));
    stream.end();
    await done;
    const line = h.logs.find((l) => l.method === 'ModelStreamInfer' && l.model === 'tiny' && l.reqId?.endsWith(':0') && l.reqId.startsWith('xxx'));
    expect(line?.reqId).toBe(`${'x'.repeat(126)}:0`);
  });

  it('gives every message the stream deadline', async () => {
    const stream = openStream({ deadline: Date.now() + 300 });
    const done = collect(stream);
    stream.write(rawFp32Request('held', fp32Batch(1), [1, 16, 16, 3], { id: 'd-0' }));
    const [, error] = await done;
    expect(error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => h.service.queueDepth('held', '1'), { timeout: 10_000 }).toBe(0);
  });

  it('refuses messages while the server drains, in the stream', async () => {
    const stream = openStream();
    const done = collect(stream);
    h.deps.edge.setDraining(true);
    try {
      stream.write(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { id: 'x-0' }));
      stream.end();
      const [messages] = await done;
      expect(messages.map((m) => m.error_message)).toEqual(['the server is draining and accepts no new inference requests']);
    } finally {
      h.deps.edge.setDraining(false);
    }
  });
});

function loadedInference() {
  const objects = grpc.loadPackageDefinition(loadProtos().packageDefinition) as unknown as {
    inference: { ModelStreamInferResponse: { deserialize(b: Buffer): unknown } };
  };
  return objects.inference;
}

describe('model repository RPCs', () => {
  let server: GrpcServer;
  let client: GRPCInferenceServiceClient;
  const withToken = (token: string) => {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${token}`);
    return m;
  };

  beforeAll(async () => {
    const config = loadConfig({ MODEL_REPOSITORY: h.root, WORKERS: '1', LOG_LEVEL: 'debug', AUTH_TOKEN: TOKEN });
    const deps = { ...h.deps, config };
    server = createGrpcServer({ ...deps, edge: new Edge(deps) });
    const port = await server.bind('127.0.0.1', 0);
    type Ctor = new (...args: ConstructorParameters<typeof grpc.Client>) => GRPCInferenceServiceClient;
    const objects = grpc.loadPackageDefinition(loadProtos().packageDefinition) as unknown as { inference: { GRPCInferenceService: Ctor } };
    client = new objects.inference.GRPCInferenceService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await server?.close(0);
  });

  it('needs the management token: UNAUTHENTICATED without one, PERMISSION_DENIED with a wrong one', async () => {
    const none = await callError(unaryCall(client, 'RepositoryIndex', {}));
    expect(none.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(none.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['UNAUTHENTICATED']);
    const wrong = await callError(unaryCall(client, 'RepositoryModelUnload', { model_name: 'spare' }, { metadata: withToken('not-the-token-at-all') }));
    expect(wrong.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(h.service.isReady('spare')).toBe(true);
    // Inference stays open.
    await unaryCall(client, 'ModelInfer', rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]));
  });

  it('lists the repository, unloads and loads a model, as HTTP does', async () => {
    const metadata = withToken(TOKEN);
    const index = async () => (await unaryCall<object, RepositoryIndexResponse__Output>(client, 'RepositoryIndex', {}, { metadata })).response.models;
    const rest = (await app.inject({ method: 'POST', url: '/v2/repository/index', payload: {} })).json() as { name: string; version?: string; state: string; reason?: string }[];
    expect(await index()).toEqual(rest.map((e) => ({ name: e.name, version: e.version ?? '', state: e.state, reason: e.reason ?? '' })));
    await unaryCall(client, 'RepositoryModelUnload', { model_name: 'spare' }, { metadata });
    expect((await index()).find((m) => m.name === 'spare')).toEqual({ name: 'spare', version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
    const ready = (await unaryCall<object, RepositoryIndexResponse__Output>(client, 'RepositoryIndex', { ready: true }, { metadata })).response.models;
    expect(ready.map((m) => m.name)).not.toContain('spare');
    await unaryCall(client, 'RepositoryModelLoad', { model_name: 'spare' }, { metadata });
    expect(h.service.isReady('spare')).toBe(true);
    const params = await callError(unaryCall(client, 'RepositoryModelLoad', { model_name: 'spare', parameters: { config: { string_param: '{}' } } }, { metadata }));
    expect(params.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(params.details).toMatch(/^parameters: load parameters/);
    expect((await callError(unaryCall(client, 'RepositoryModelLoad', { model_name: 'nowhere' }, { metadata }))).code).toBe(grpc.status.NOT_FOUND);
    expect((await callError(unaryCall(client, 'RepositoryModelUnload', { model_name: '' }, { metadata }))).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
