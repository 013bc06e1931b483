// The gRPC server factory: inference.GRPCInferenceService (Open Inference Protocol),
// densenet.v1.Classifier, grpc.health.v1.Health and server reflection on one grpc-js Server.
// It does not listen: main.ts calls bind() (tests bind 127.0.0.1:0).
//
// Limits: message size (MAX_GRPC_MESSAGE_BYTES), calls per connection
// (GRPC_MAX_CONCURRENT_STREAMS), idle connections (IDLE_TIMEOUT_MS) and slow requests
// (REQUEST_TIMEOUT_MS) are grpc-js options or an interceptor. grpc-js 1.14 has no limit on
// connections, so the server accepts them on a net.Server of its own, where MAX_CONNECTIONS
// applies as on the HTTP port, and hands each to grpc-js (Server.createConnectionInjector).
// HTTP/2 flow-control windows are widened from Node's 64 KiB defaults (flow-control.ts).
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { limitConnections } from '../connection-limits.ts';
import type { ApiDeps } from '../deps.ts';
import type { TlsMaterial } from '../tls.ts';
import { unary } from './calls.ts';
import { classify, listModels } from './classifier.ts';
import type { ClassifierHandlers } from './generated/densenet/v1/Classifier.ts';
import type { GRPCInferenceServiceHandlers } from './generated/inference/GRPCInferenceService.ts';
import { widenConnectionWindows, widenStreamWindow } from './flow-control.ts';
import { DEFAULT_HEALTH_POLL_MS, HealthStatuses } from './health.ts';
import { modelInfer, modelStreamInfer } from './model-infer.ts';
import { earlyAdmission } from './early-admission.ts';
import { CLASSIFIER_SERVICE_NAME, INFERENCE_SERVICE_NAME, loadProtos } from './proto.ts';
import { receiveTimeout } from './receive-timeout.ts';
import { repositoryRpcs } from './repository-rpcs.ts';
import { modelConfigRpc, modelMetadataRpc, modelReady, serverLive, serverMetadataRpc, serverReady } from './server-info.ts';


export interface GrpcServerOptions {
  /** How often model and server readiness are re-read for the health service. */
  healthPollMs?: number;
  /** Serve over TLS with this material (src/api/tls.ts), mutual TLS when it has a CA; plaintext without it. */
  tls?: TlsMaterial;
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

/** Server credentials: TLS (client certificates required when the material has a CA) or plaintext. */
export function serverCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
}

export function createGrpcServer(deps: ApiDeps, options: GrpcServerOptions = {}): GrpcServer {
  const { packageDefinition, inference, densenet } = loadProtos();
  const { config } = deps;
  const maxMessage = config.MAX_GRPC_MESSAGE_BYTES;
  const log = deps.logger.child({ component: 'grpc' });
  const server = new grpc.Server({
    // grpc-js refuses anything over 4 MiB by default: 7 FP32 224×224×3 images. Above our limit
    // the client gets RESOURCE_EXHAUSTED from grpc-js before any handler runs.
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': maxMessage,
    // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: grpc-js clients queue calls above it.
    'grpc.max_concurrent_streams': config.GRPC_MAX_CONCURRENT_STREAMS,
    // A connection without calls for this long gets a GOAWAY; clients reconnect when needed.
    'grpc.max_connection_idle_ms': config.IDLE_TIMEOUT_MS,
    interceptors: [
      receiveTimeout(config.REQUEST_TIMEOUT_MS, log),
      earlyAdmission(deps.edge, new Set([`/${INFERENCE_SERVICE_NAME}/ModelInfer`, `/${CLASSIFIER_SERVICE_NAME}/Classify`])),
    ],
  });
  const { edge } = deps;
  const health = new HealthStatuses(deps, options.healthPollMs ?? DEFAULT_HEALTH_POLL_MS);
  const probe = { inference: false, level: 'debug' } as const;
  const management = { inference: false } as const;
  const inferenceCall = { inference: true } as const;
  const repository = repositoryRpcs(deps);

  const inferenceHandlers: GRPCInferenceServiceHandlers = {
    ServerLive: unary(edge, 'ServerLive', serverLive, probe),
    ServerReady: unary(edge, 'ServerReady', serverReady(health), probe),
    ModelReady: unary(edge, 'ModelReady', modelReady(deps), probe),
    ServerMetadata: unary(edge, 'ServerMetadata', serverMetadataRpc, probe),
    ModelMetadata: unary(edge, 'ModelMetadata', modelMetadataRpc(deps), probe),
    ModelConfig: unary(edge, 'ModelConfig', modelConfigRpc(deps), probe),
    ModelInfer: unary(edge, 'ModelInfer', modelInfer(deps), inferenceCall),
    ModelStreamInfer: modelStreamInfer(deps),
    RepositoryIndex: unary(edge, 'RepositoryIndex', repository.RepositoryIndex, management),
    RepositoryModelLoad: unary(edge, 'RepositoryModelLoad', repository.RepositoryModelLoad, management),
    RepositoryModelUnload: unary(edge, 'RepositoryModelUnload', repository.RepositoryModelUnload, management),
  };
  const classifierHandlers: ClassifierHandlers = {
    Classify: unary(edge, 'Classify', classify(deps), inferenceCall),
    ListModels: unary(edge, 'ListModels', listModels(deps), probe),
  };
  server.addService(inference.GRPCInferenceService.service, inferenceHandlers);
  server.addService(densenet.v1.Classifier.service, classifierHandlers);
  health.addToServer(server);
  new ReflectionService(packageDefinition).addToServer(server);
  health.start();

  let listener: NetServer | undefined;
  const sockets = new Set<Socket>();
  return {
    server,
    async bind(host, port) {
      if (listener) throw new Error('the gRPC server is already bound');
      widenStreamWindow(server);
      const injector = server.createConnectionInjector(serverCredentials(options.tls));
      widenConnectionWindows(server);
      const tcp = createServer({ noDelay: true }, (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        injector.injectConnection(socket);
      });
      limitConnections(tcp, config.MAX_CONNECTIONS, log);
      listener = tcp;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host, port }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      const address = tcp.address();
      return typeof address === 'object' && address !== null ? address.port : port;
    },
    setServing: (serving) => health.setServing(serving),
    isReady: () => health.isServerReady(),
    async close(graceMs) {
      health.stop();
      // No new connections or calls from here on; the calls running may finish.
      listener?.close();
      const stopped = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const end = performance.now() + graceMs;
      await within(edge.idle(), graceMs);
      // Answers just given still have to reach the wire; open Watch streams would hold
      // tryShutdown forever, so wait for it only briefly.
      await within(stopped, Math.min(FLUSH_MS, Math.max(0, end - performance.now())));
      server.forceShutdown();
      // Connections grpc-js never got a session for (a TLS handshake under way, say).
      for (const socket of sockets) socket.destroy();
    },
  };
}
