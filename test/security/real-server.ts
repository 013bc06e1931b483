// The service as main.ts starts it (startServer), on 127.0.0.1:0, over a temporary repository of
// tiny DenseNets, with every log line it writes captured; plus clients for both transports.
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/api/grpc/proto.ts';
import type { ClassifierClient } from '../../src/api/grpc/generated/densenet/v1/Classifier.ts';
import type { GRPCInferenceServiceClient } from '../../src/api/grpc/generated/inference/GRPCInferenceService.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type RunningServer } from '../../src/main.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { writeTinyModelFolder } from '../helpers/tiny-model.ts';

export interface RealServer {
  server: RunningServer;
  repo: string;
  /** Every log line the server wrote, raw (as it would reach a log collector). */
  logs: string[];
  close(): Promise<void>;
}

/** A repository with the model `tiny`; `prepare` may add more to it before the server starts. */
export async function makeRepository(prepare?: (repo: string) => Promise<void>): Promise<string> {
  await useNativeEngine(); // the tiny model is built in this thread
  const repo = await mkdtemp(path.join(tmpdir(), 'security-'));
  await writeTinyModelFolder(repo, 'tiny', { seed: 1 });
  await prepare?.(repo);
  return repo;
}

export async function startRealServer(env: Record<string, string>, options: { repo?: string; logLevel?: string } = {}): Promise<RealServer> {
  const repo = options.repo ?? await makeRepository();
  const config = loadConfig({
    MODEL_REPOSITORY: repo, HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', WORKERS: '1', TF_INTRA_OP_THREADS: '1',
    SHUTDOWN_TIMEOUT_MS: '2000', ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { logs.push(chunk.toString()); done(); } });
  const server = await startServer(config, createLogger(options.logLevel ?? 'trace', sink));
  return {
    server, repo, logs,
    async close() {
      await server.shutdown('test over');
      if (!options.repo) await rm(repo, { recursive: true, force: true });
    },
  };
}

type ClientClass<C> = new (...args: ConstructorParameters<typeof grpc.Client>) => C;

export interface GrpcClients {
  inference: GRPCInferenceServiceClient;
  classifier: ClassifierClient;
  close(): void;
}

export function grpcClients(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): GrpcClients {
  const objects = grpc.loadPackageDefinition(loadProtos().packageDefinition) as unknown as {
    inference: { GRPCInferenceService: ClientClass<GRPCInferenceServiceClient> };
    densenet: { v1: { Classifier: ClientClass<ClassifierClient> } };
  };
  // No reconnect back-off games in tests: fail a refused connection at once.
  const options = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1, 'grpc.initial_reconnect_backoff_ms': 100 };
  const inference = new objects.inference.GRPCInferenceService(address, credentials, options);
  const classifier = new objects.densenet.v1.Classifier(address, credentials, options);
  return { inference, classifier, close: () => [inference, classifier].forEach((c) => c.close()) };
}

/** A unary call as a promise; rejects with the grpc ServiceError. */
export function call<Res>(client: grpc.Client, method: string, request: object, metadata = new grpc.Metadata(), deadlineMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)[method]!.bind(client);
    fn(request, metadata, { deadline: new Date(Date.now() + deadlineMs) }, (err: grpc.ServiceError | null, response: Res) => (err ? reject(err) : resolve(response)));
  });
}

/** The error a call failed with (throws when it succeeded). */
export async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  const outcome = await promise.then(() => undefined, (e: unknown) => e as grpc.ServiceError);
  if (!outcome) throw new Error('expected the call to fail');
  return outcome;
}

export interface HttpsAnswer {
  status: number;
  body: string;
}

/** One HTTPS request with the given trust and client identity; rejects on a TLS or socket failure. */
export function httpsRequest(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer }, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method ?? 'GET', headers: init.headers, ...tls, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end(init.body);
  });
}
