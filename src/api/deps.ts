// What both transports are built from. main.ts makes one of each; tests pass a real
// InferenceService over tiny models.
import type { Config } from '../config.ts';
import type { InferenceService } from '../inference/index.ts';
import type { Logger } from '../logger.ts';
import type { Edge } from './edge/index.ts';
import type { ServiceMetrics } from './metrics.ts';

export interface ApiDeps {
  service: InferenceService;
  config: Config;
  logger: Logger;
  metrics: ServiceMetrics;
  /** The per-request policy both transports share (draining, admission, request ids, …). */
  edge: Edge;
}
