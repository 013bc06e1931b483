// The one table from domain error codes to HTTP statuses, and the one function that turns any
// thrown value into what a client sees. Typed as a Record over ErrorCode, so a new code does not
// compile until it is mapped here.
import { ERROR_CODES, isServeError, SERVER_FAULTS, type ErrorCode } from '../../errors.ts';

export interface HttpErrorMapping {
  status: number;
  /** Seconds for Retry-After when retrying the same request later may succeed. */
  retryAfterS?: number;
  /** Headers every such answer carries. */
  headers?: Readonly<Record<string, string>>;
}

export const HTTP_ERRORS: Readonly<Record<ErrorCode, HttpErrorMapping>> = Object.freeze({
  INVALID_INPUT: { status: 400 },
  // Only reachable through POST /v2/repository/models/{m}/load; Triton answers a failed load 400.
  INVALID_MODEL_FILE: { status: 400 },
  // Raised by server-side settings (repository root, batching options), never by a request.
  INVALID_CONFIG: { status: 500 },
  ENGINE_UNAVAILABLE: { status: 503 },
  MODEL_NOT_FOUND: { status: 404 },
  MODEL_NOT_READY: { status: 503, retryAfterS: 1 },
  QUEUE_FULL: { status: 429, retryAfterS: 1 },
  DEADLINE_EXCEEDED: { status: 504 },
  // nginx's "client closed request": the client is gone; the status is for logs and metrics.
  CANCELLED: { status: 499 },
  LIMIT_EXCEEDED: { status: 413 },
  WORKER_FAILED: { status: 503, retryAfterS: 1 },
  SHUTTING_DOWN: { status: 503 },
  UNAUTHENTICATED: { status: 401, headers: { 'www-authenticate': 'Bearer realm="densenet-serve"' } },
  FORBIDDEN: { status: 403 },
  INTERNAL: { status: 500 },
});

export interface HttpError {
  status: number;
  message: string;
  headers: Record<string, string>;
  /** The domain code, or undefined for transport errors (Fastify's own 4xx) and unknown ones. */
  code?: ErrorCode;
  /** True when the client got a generic message and the error must be logged in full. */
  hidden: boolean;
}

const GENERIC_INTERNAL = 'internal server error';

/** What the client sees for any thrown value. */
export function toHttpError(err: unknown): HttpError {
  if (isServeError(err)) {
    const mapping = HTTP_ERRORS[err.code];
    const headers: Record<string, string> = { ...mapping.headers };
    if (mapping.retryAfterS !== undefined) {
      const hintMs = typeof err.details.retryAfterMs === 'number' ? err.details.retryAfterMs : 0;
      headers['retry-after'] = String(Math.max(mapping.retryAfterS, Math.ceil(hintMs / 1000)));
    }
    return {
      status: mapping.status,
      // A server fault's message may describe the server's insides: the client reads the code's
      // generic description and the full error goes to the log.
      message: SERVER_FAULTS.has(err.code) ? ERROR_CODES[err.code] : err.message,
      headers,
      code: err.code,
      hidden: SERVER_FAULTS.has(err.code),
    };
  }
  // Fastify's own client errors (bad Content-Length, unsupported media type, malformed URL…)
  // carry a 4xx statusCode and a message written for clients.
  const fastifyError = err as { code?: unknown; statusCode?: unknown; message?: unknown };
  if (
    typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_') &&
    typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500 &&
    typeof fastifyError.message === 'string'
  ) {
    return { status: fastifyError.statusCode, message: fastifyError.message, headers: {}, hidden: false };
  }
  return { status: 500, message: GENERIC_INTERNAL, headers: {}, hidden: true };
}

/** The metrics outcome label: the status class, as densenet_requests_total documents. */
export function outcomeOf(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
