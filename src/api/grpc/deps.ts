// What the gRPC server is built from: the inference core and the process's shared pieces.
// main.ts creates them; tests pass a real InferenceService over tiny models.
import type { Config } from '../../config.ts';
import type { InferenceService } from '../../inference/index.ts';
import type { Logger } from '../../logger.ts';
import type { ServiceMetrics } from '../metrics.ts';

export interface GrpcServerDeps {
  service: InferenceService;
  config: Config;
  logger: Logger;
  metrics: ServiceMetrics;
  /** True from SIGTERM on: inference calls are refused and readiness reports false. */
  lifecycle: { isDraining(): boolean };
}
