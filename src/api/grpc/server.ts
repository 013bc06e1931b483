// The gRPC server factory: inference.GRPCInferenceService (Open Inference Protocol),
// densenet.v1.Classifier, grpc.health.v1.Health and server reflection on one grpc-js Server.
// It does not listen: main.ts calls bind() (tests bind 127.0.0.1:0).
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { InflightCalls, unary, type EdgeDeps } from './call-context.ts';
import { classify, listModels } from './classifier.ts';
import type { GrpcServerDeps } from './deps.ts';
import type { ClassifierHandlers } from './generated/densenet/v1/Classifier.ts';
import type { GRPCInferenceServiceHandlers } from './generated/inference/GRPCInferenceService.ts';
import { DEFAULT_HEALTH_POLL_MS, HealthStatuses } from './health.ts';
import { modelInfer } from './model-infer.ts';
import { loadProtos } from './proto.ts';
import { modelMetadata, modelReady, serverLive, serverMetadata, serverReady } from './server-info.ts';

export type { GrpcServerDeps } from './deps.ts';

export interface GrpcServerOptions {
  /** How often model and server readiness are re-read for the health service. */
  healthPollMs?: number;
}

export interface GrpcServer {
  readonly server: grpc.Server;
  /** Listens on host:port (port 0: any free port); resolves to the bound port. */
  bind(host: string, port: number): Promise<number>;
  /** Overall readiness as main.ts sees it (e.g. false until start-up is complete); default true. */
  setServing(serving: boolean): void;
  /** What ServerReady and the overall health status report now. */
  isReady(): boolean;
  /**
   * Reports NOT_SERVING, stops accepting calls, waits up to graceMs for the unary calls in
   * flight, then closes every connection: calls still running are cancelled (their queued work
   * is dropped) and health Watch streams, which never end by themselves, are ended.
   */
  close(graceMs: number): Promise<void>;
}

/** At shutdown, how long answers already given get to reach their clients. */
const FLUSH_MS = 100;

function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]).then(() => clearTimeout(timer));
}

export function createGrpcServer(deps: GrpcServerDeps, options: GrpcServerOptions = {}): GrpcServer {
  const { packageDefinition, inference, densenet } = loadProtos();
  const maxMessage = deps.config.MAX_GRPC_MESSAGE_BYTES;
  const server = new grpc.Server({
    // grpc-js refuses anything over 4 MiB by default: 7 FP32 224×224×3 images. Above our limit
    // the client gets RESOURCE_EXHAUSTED from grpc-js before any handler runs.
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': maxMessage,
  });
  const edge: EdgeDeps = { log: deps.logger.child({ component: 'grpc' }), metrics: deps.metrics, inflight: new InflightCalls() };
  const health = new HealthStatuses(deps, options.healthPollMs ?? DEFAULT_HEALTH_POLL_MS);

  const inferenceHandlers: GRPCInferenceServiceHandlers = {
    ServerLive: unary(edge, 'ServerLive', serverLive, 'debug'),
    ServerReady: unary(edge, 'ServerReady', serverReady(health), 'debug'),
    ModelReady: unary(edge, 'ModelReady', modelReady(deps), 'debug'),
    ServerMetadata: unary(edge, 'ServerMetadata', serverMetadata, 'debug'),
    ModelMetadata: unary(edge, 'ModelMetadata', modelMetadata(deps), 'debug'),
    ModelInfer: unary(edge, 'ModelInfer', modelInfer(deps)),
  };
  const classifierHandlers: ClassifierHandlers = {
    Classify: unary(edge, 'Classify', classify(deps)),
    ListModels: unary(edge, 'ListModels', listModels(deps), 'debug'),
  };
  server.addService(inference.GRPCInferenceService.service, inferenceHandlers);
  server.addService(densenet.v1.Classifier.service, classifierHandlers);
  health.addToServer(server);
  new ReflectionService(packageDefinition).addToServer(server);
  health.start();

  return {
    server,
    bind(host, port) {
      const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
      return new Promise((resolve, reject) => {
        server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
      });
    },
    setServing: (serving) => health.setServing(serving),
    isReady: () => health.isServerReady(),
    async close(graceMs) {
      health.stop();
      // No new calls from here on; the ones running may finish.
      const stopped = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const end = performance.now() + graceMs;
      await within(edge.inflight.idle(), graceMs);
      // Answers just given still have to reach the wire; open Watch streams would hold
      // tryShutdown forever, so wait for it only briefly.
      await within(stopped, Math.min(FLUSH_MS, Math.max(0, end - performance.now())));
      server.forceShutdown();
    },
  };
}
