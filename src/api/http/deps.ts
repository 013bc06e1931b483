// What the HTTP app is built from, and what each route declares about itself in its Fastify
// route config (read by the request lifecycle hooks and the OpenAPI generator).
import type { Config } from '../../config.ts';
import type { InferenceService } from '../../inference/index.ts';
import type { Logger } from '../../logger.ts';
import type { ServiceMetrics } from '../metrics.ts';
import type { RouteDoc } from './openapi.ts';
import type { EdgeContext } from './request-context.ts';

export interface HttpDeps {
  service: InferenceService;
  config: Config;
  logger: Logger;
  metrics: ServiceMetrics;
  lifecycle: { isDraining(): boolean };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's OpenAPI description; routes without one are left out of /openapi.json. */
    doc?: RouteDoc;
    /** An inference route: refused while draining, counted in densenet_requests_total. */
    inference?: boolean;
    /** Probes and scrapes: their request line is logged at debug when they succeed. */
    quiet?: boolean;
  }
  interface FastifyRequest {
    edge: EdgeContext;
  }
}
