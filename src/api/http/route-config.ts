// What each route declares about itself in its Fastify route config (read by the request
// lifecycle hooks and the OpenAPI generator), and the edge every request carries.
import type { RequestEdge } from '../edge/index.ts';
import type { RouteDoc } from './openapi.ts';

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
    edge: RequestEdge;
  }
}
