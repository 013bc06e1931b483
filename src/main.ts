// The one place that wires the service together and owns start-up and shutdown order:
// config → logger → engine plan (logged once) → inference core (workers, models) → metrics →
// HTTP and gRPC frontends.
// On SIGTERM/SIGINT: report not-ready at once, stop accepting, let in-flight requests finish
// (bounded by SHUTDOWN_TIMEOUT_MS), stop the workers, exit 0.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { availableCores, loadConfig, type Config } from './config.ts';
import { isServeError } from './errors.ts';
import { asyncStdout, createLogger, type Logger } from './logger.ts';
import { InferenceService, DEFAULT_IMAGE_LIMITS, oneDnnProbeNeeded, planEngine } from './inference/index.ts';
import { probeOneDnn } from './densenet/onednn-probe.ts';
import { Edge } from './api/edge/index.ts';
import { createMetrics } from './api/metrics.ts';
import { buildHttpApp } from './api/http/app.ts';
import { createGrpcServer } from './api/grpc/server.ts';
import { loadTlsMaterial } from './api/tls.ts';

export interface RunningServer {
  httpPort: number;
  grpcPort: number;
  /** Drains and stops everything; resolves when it is safe to exit. */
  shutdown(reason: string): Promise<void>;
}

/**
 * A draining server keeps reading requests arriving on open connections, to refuse them cleanly:
 * at least DRAIN_READ_GRACE_MS (requests already on their way), then until none has arrived for
 * DRAIN_QUIET_MS (a burst queued on kept-alive sockets), at most a quarter of SHUTDOWN_TIMEOUT_MS.
 */
const DRAIN_READ_GRACE_MS = 1000;
const DRAIN_QUIET_MS = 250;

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  // Unreadable or mismatched certificates fail start-up before any worker starts.
  const tls = await loadTlsMaterial(config);
  // libvips' operation cache keeps decoded images around; a server decoding untrusted uploads
  // wants predictable memory instead.
  sharp.cache(false);
  // Only servers whose batches run on native TensorFlow ask whether its oneDNN kernels are safe here.
  const oneDnnProbe = oneDnnProbeNeeded(config) ? await probeOneDnn() : undefined;
  const engine = planEngine(config, { cores: availableCores(), ...(oneDnnProbe ? { oneDnnProbe } : {}) });
  logger.info({ ...engine }, 'engine plan');
  if (engine.backend !== 'tensorflow') {
    logger.warn({ backend: engine.backend },
      `DEVELOPMENT ONLY: inference runs on the '${engine.backend}' backend, orders of magnitude slower than native TensorFlow`);
  }
  const service = await InferenceService.start({
    repositoryRoot: config.MODEL_REPOSITORY,
    engine,
    hangTimeoutMs: config.WORKER_HANG_TIMEOUT_MS,
    loadTimeoutMs: config.MODEL_LOAD_TIMEOUT_MS,
    imageLimits: {
      ...DEFAULT_IMAGE_LIMITS,
      maxEncodedBytes: config.MAX_IMAGE_BYTES,
      maxPixels: config.MAX_IMAGE_PIXELS,
      maxDimension: config.MAX_IMAGE_DIMENSION,
      maxImagesPerRequest: config.MAX_IMAGES_PER_REQUEST,
    },
    logger,
  });
  const metrics = createMetrics(service);
  const edge = new Edge({ service, config, logger, metrics });
  const deps = { service, config, logger, metrics, edge };
  const http = await buildHttpApp(deps, { tls });
  const grpc = createGrpcServer(deps, { tls });
  const httpAddress = await http.listen({ host: config.HOST, port: config.HTTP_PORT });
  const grpcPort = await grpc.bind(config.HOST, config.GRPC_PORT);
  const httpPort = Number(new URL(httpAddress).port);
  const security = {
    tls: tls ? (tls.ca ? 'mutual' : 'server') : 'off',
    ...(tls ? { certificateValidTo: tls.validTo } : {}),
    managementToken: config.AUTH_TOKEN !== undefined,
  };
  logger.info({ httpPort, grpcPort, models: service.listModels(), ...security }, 'densenet-serve ready');

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason, timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'draining: not ready, finishing in-flight requests');
      edge.setDraining(true);
      grpc.setServing(false);
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.SHUTDOWN_TIMEOUT_MS).unref());
      // Keep reading before closing idle kept-alive sockets: a request already on its way down one
      // gets a clean 503 SHUTTING_DOWN (and Connection: close) instead of a reset.
      await edge.quiet(DRAIN_QUIET_MS, Math.min(DRAIN_READ_GRACE_MS, config.SHUTDOWN_TIMEOUT_MS / 10), config.SHUTDOWN_TIMEOUT_MS / 4);
      // fastify.close stops accepting, waits for in-flight requests, then closes idle sockets.
      await Promise.race([Promise.all([http.close(), grpc.close(config.SHUTDOWN_TIMEOUT_MS)]), deadline]);
      await service.close();
      metrics.close();
      logger.info('stopped');
    })();
    return stopping;
  };
  return { httpPort, grpcPort, shutdown };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env, process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`densenet-serve: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.LOG_LEVEL, asyncStdout());
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (err) {
    logger.fatal({ err: isServeError(err) ? { code: err.code, message: err.message } : err }, 'failed to start');
    // 2, as for a bad setting caught by loadConfig: a configuration problem, not a crash.
    process.exit(isServeError(err) && err.code === 'INVALID_CONFIG' ? 2 : 1);
  }
  const stop = (signal: string) => {
    server.shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.fatal({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** Whether this module is the program node was started with (through symlinks, spaces and all). */
function isEntryPoint(): boolean {
  const started = process.argv[1];
  if (started === undefined) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(started);
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
