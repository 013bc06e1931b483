// A real gRPC server on 127.0.0.1:0 over a real InferenceService (tiny DenseNets in a temporary
// repository), with grpc-js clients of every service and the server's log lines captured.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Edge } from '../../../src/api/edge/index.ts';
import type { ApiDeps } from '../../../src/api/deps.ts';
import { float32ToLE } from '../../../src/api/oip/index.ts';
import type { ModelInferRequest } from '../../../src/api/grpc/generated/inference/ModelInferRequest.ts';
import { createMetrics, type ServiceMetrics } from '../../../src/api/metrics.ts';
import { createGrpcServer, type GrpcServer } from '../../../src/api/grpc/server.ts';
import { loadProtos } from '../../../src/api/grpc/proto.ts';
import type { ClassifierClient } from '../../../src/api/grpc/generated/densenet/v1/Classifier.ts';
import type { GRPCInferenceServiceClient } from '../../../src/api/grpc/generated/inference/GRPCInferenceService.ts';
import { availableCores, loadConfig, type Config } from '../../../src/config.ts';
import { DEFAULT_IMAGE_LIMITS, InferenceService, planEngine } from '../../../src/inference/index.ts';
import { createLogger } from '../../../src/logger.ts';
import { useNativeEngine } from '../../helpers/engine.ts';
import { writeTinyModelFolder, type TinyFolderOptions } from '../../helpers/tiny-model.ts';
import { noisePng } from '../../helpers/random.ts';

export interface HarnessOptions {
  models: Record<string, TinyFolderOptions>;
  env?: Record<string, string>;
  healthPollMs?: number;
}

export interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  method?: string;
  model?: string;
  status?: string;
  latencyMs?: number;
  error?: string;
  err?: { message: string; stack?: string };
}

export interface Harness {
  root: string;
  service: InferenceService;
  config: Config;
  metrics: ServiceMetrics;
  /** What the server was built from (to build another one over the same service). */
  deps: ApiDeps;
  grpcServer: GrpcServer;
  address: string;
  logs: LogLine[];
  inference: GRPCInferenceServiceClient;
  classifier: ClassifierClient;
  health: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  close(): Promise<void>;
}

const CLIENT_OPTIONS = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 };

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  await useNativeEngine(); // the tiny models are built in this thread
  const root = await mkdtemp(path.join(tmpdir(), 'grpc-api-'));
  for (const [name, folder] of Object.entries(options.models)) await writeTinyModelFolder(root, name, folder);
  const config = loadConfig({ LOG_LEVEL: 'debug', MODEL_REPOSITORY: root, WORKERS: '1', ...options.env });
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const service = await InferenceService.start({
    repositoryRoot: root, engine: planEngine({ ENGINE_EXECUTOR: 'fused', WORKERS: 1, TF_INTRA_OP_THREADS: 1 }, { cores: availableCores() }),
    hangTimeoutMs: 20_000, loadTimeoutMs: 60_000,
    imageLimits: { ...DEFAULT_IMAGE_LIMITS, maxImagesPerRequest: config.MAX_IMAGES_PER_REQUEST, maxEncodedBytes: config.MAX_IMAGE_BYTES },
    logger,
  });
  const metrics = createMetrics(service);
  const deps: ApiDeps = { service, config, logger, metrics, edge: new Edge({ service, config, logger, metrics }) };
  const grpcServer = createGrpcServer(deps, { healthPollMs: options.healthPollMs ?? 50 });
  const port = await grpcServer.bind('127.0.0.1', 0);
  const address = `127.0.0.1:${port}`;
  const objects = grpc.loadPackageDefinition(loadProtos().packageDefinition) as unknown as {
    inference: { GRPCInferenceService: new (...args: ConstructorParameters<typeof grpc.Client>) => GRPCInferenceServiceClient };
    densenet: { v1: { Classifier: new (...args: ConstructorParameters<typeof grpc.Client>) => ClassifierClient } };
    grpc: { health: { v1: { Health: new (...args: ConstructorParameters<typeof grpc.Client>) => Harness['health'] } } };
  };
  const credentials = grpc.credentials.createInsecure();
  const inference = new objects.inference.GRPCInferenceService(address, credentials, CLIENT_OPTIONS);
  const classifier = new objects.densenet.v1.Classifier(address, credentials, CLIENT_OPTIONS);
  const health = new objects.grpc.health.v1.Health(address, credentials, CLIENT_OPTIONS);
  return {
    root, service, config, metrics, deps, grpcServer, address, logs, inference, classifier, health,
    async close() {
      for (const client of [inference, classifier, health]) client.close();
      await grpcServer.close(0);
      metrics.close();
      await service.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface CallResult<Res> {
  response: Res;
  /** Initial (header) metadata the server sent. */
  metadata: grpc.Metadata;
}

/** A unary call as a promise; rejects with the grpc ServiceError. */
export function unaryCall<Req, Res>(
  client: grpc.Client,
  method: string,
  request: Req,
  options: { deadline?: Date; metadata?: grpc.Metadata; onCall?: (call: grpc.ClientUnaryCall) => void } = {},
): Promise<CallResult<Res>> {
  return new Promise((resolve, reject) => {
    let metadata = new grpc.Metadata();
    const callOptions: grpc.CallOptions = options.deadline === undefined ? {} : { deadline: options.deadline };
    const fn = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)[method]!.bind(client);
    const call = fn(request, options.metadata ?? new grpc.Metadata(), callOptions, (err: grpc.ServiceError | null, response: Res) => {
      if (err) reject(err);
      else resolve({ response, metadata });
    });
    call.on('metadata', (m: grpc.Metadata) => {
      metadata = m;
    });
    options.onCall?.(call);
  });
}

/** The error a call failed with (fails the test when it succeeds). */
export async function callError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  const outcome = await promise.then(() => undefined, (e: unknown) => e as grpc.ServiceError);
  if (!outcome) throw new Error('expected the call to fail');
  return outcome;
}

export const pngOf = (seed: number, width = 40, height = 30): Promise<Buffer> => noisePng(seed, width, height);

export const PIXELS = 16 * 16 * 3;

/** Deterministic pixels in -2…2 (what normalised images look like), for the tiny models' [16, 16, 3] input. */
export function fp32Batch(n: number, seed = 1): Float32Array {
  return new Float32Array(n * PIXELS).map((_, i) => 2 * Math.sin(seed * 7919 + i * 0.37));
}

export function rawFp32Request(model: string, data: Float32Array, shape: (number | string)[], extra: Partial<ModelInferRequest> = {}): ModelInferRequest {
  return {
    model_name: model,
    inputs: [{ name: 'input', datatype: 'FP32', shape }],
    raw_input_contents: [float32ToLE(data)],
    ...extra,
  };
}
