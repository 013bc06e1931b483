// One real InferenceService (one worker) over a temp repository of tiny DenseNets, and the HTTP
// app built on it, shared by the tests of one file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHttpApp } from '../../../src/api/http/app.ts';
import { Edge } from '../../../src/api/edge/index.ts';
import { createMetrics, type ServiceMetrics } from '../../../src/api/metrics.ts';
import { availableCores, loadConfig, type Config } from '../../../src/config.ts';
import { InferenceService, planEngine } from '../../../src/inference/index.ts';
import { silentLogger, type Logger } from '../../../src/logger.ts';
import { useNativeEngine } from '../../helpers/engine.ts';
import { writeTinyModelFolder, type TinyFolderOptions } from '../../helpers/tiny-model.ts';
import { noisePng } from '../../helpers/random.ts';

export interface Harness {
  root: string;
  config: Config;
  service: InferenceService;
  metrics: ServiceMetrics;
  /** The apps' shared edge: setDraining(true) makes them drain. */
  edge: Edge;
  app: FastifyInstance;
  /** Another app on the same service, with other settings. */
  buildApp(env?: Record<string, string>, logger?: Logger): Promise<FastifyInstance>;
  close(): Promise<void>;
}

export async function startHarness(options: {
  models: Record<string, TinyFolderOptions>;
  env?: Record<string, string>;
  logger?: Logger;
}): Promise<Harness> {
  await useNativeEngine();
  const root = await mkdtemp(path.join(tmpdir(), 'http-'));
  for (const [name, folder] of Object.entries(options.models)) await writeTinyModelFolder(root, name, folder);
  const configOf = (env: Record<string, string> = {}) => loadConfig({ MODEL_REPOSITORY: root, LOG_LEVEL: 'silent', ...options.env, ...env });
  const config = configOf();
  const service = await InferenceService.start({
    repositoryRoot: root,
    engine: planEngine({ ENGINE_EXECUTOR: 'fused', WORKERS: 1, TF_INTRA_OP_THREADS: 1 }, { cores: availableCores() }),
    hangTimeoutMs: 30_000,
    loadTimeoutMs: 60_000,
    imageLimits: {
      maxEncodedBytes: config.MAX_IMAGE_BYTES,
      maxPixels: config.MAX_IMAGE_PIXELS,
      maxImagesPerRequest: config.MAX_IMAGES_PER_REQUEST,
      maxDimension: config.MAX_IMAGE_DIMENSION,
    },
    logger: silentLogger,
  });
  const metrics = createMetrics(service);
  const edge = new Edge({ service, config, logger: options.logger ?? silentLogger, metrics });
  const apps: FastifyInstance[] = [];
  const buildApp = async (env?: Record<string, string>, logger: Logger = options.logger ?? silentLogger) => {
    const edgeConfig = configOf(env);
    const app = await buildHttpApp({ service, config: edgeConfig, logger, metrics, edge: env ? new Edge({ service, config: edgeConfig, logger, metrics }) : edge });
    apps.push(app);
    return app;
  };
  const app = await buildApp();
  return {
    root, config, service, metrics, edge, app, buildApp,
    async close() {
      for (const a of apps) await a.close();
      metrics.close();
      await service.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A PNG of seeded noise. */
export const pngOf = (seed: number, width = 20, height = 20): Promise<Buffer> => noisePng(seed, width, height);

/** A multipart/form-data body with the given files under the field `file`. */
export function multipartBody(files: Array<{ name: string; type: string; data: Buffer }>, boundary = 'test-boundary-7b1f'): { body: Buffer; contentType: string } {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${f.name}"\r\nContent-Type: ${f.type}\r\n\r\n`));
    parts.push(f.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}
