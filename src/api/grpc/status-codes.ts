// The one table from our error codes to gRPC status codes, and the one function that turns
// anything a handler throws into what the client sees.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODES, isServeError, SERVER_FAULTS, type ErrorCode } from '../../errors.ts';

/**
 * Every ErrorCode, mapped (the Record type makes a missing code a compile error; a test checks
 * it at run time too). Retryable overload is RESOURCE_EXHAUSTED (QUEUE_FULL); a request that
 * is too large for a configured limit is INVALID_ARGUMENT, because sending it again cannot
 * succeed and client retry policies commonly retry RESOURCE_EXHAUSTED. (A message above
 * MAX_GRPC_MESSAGE_BYTES is refused by grpc-js itself with RESOURCE_EXHAUSTED before any
 * handler runs.)
 */
export const GRPC_STATUS_BY_CODE: Readonly<Record<ErrorCode, status>> = Object.freeze({
  INVALID_INPUT: status.INVALID_ARGUMENT,
  INVALID_MODEL_FILE: status.FAILED_PRECONDITION,
  INVALID_CONFIG: status.INTERNAL,
  ENGINE_UNAVAILABLE: status.UNAVAILABLE,
  MODEL_NOT_FOUND: status.NOT_FOUND,
  MODEL_NOT_READY: status.UNAVAILABLE,
  QUEUE_FULL: status.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  CANCELLED: status.CANCELLED,
  LIMIT_EXCEEDED: status.INVALID_ARGUMENT,
  WORKER_FAILED: status.UNAVAILABLE,
  SHUTTING_DOWN: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  FORBIDDEN: status.PERMISSION_DENIED,
  INTERNAL: status.INTERNAL,
});

/** Trailing metadata key carrying our error code, so clients can tell e.g. QUEUE_FULL apart. */
export const ERROR_CODE_METADATA_KEY = 'densenet-error-code';

export interface MappedError {
  error: Partial<ServiceError> & { code: status; details: string };
  /** False for errors we did not expect (not a ServeError, or a server fault): log them in full. */
  expected: boolean;
}

export function statusName(code: status): string {
  return status[code] ?? String(code);
}

/**
 * A ServeError keeps its message (messages are written for clients and name the field);
 * anything else, and a server fault, is answered with the code's generic description and the
 * request id so an operator can find the full error in the logs.
 */
export function toGrpcError(err: unknown, requestId: string): MappedError {
  const metadata = new Metadata();
  if (isServeError(err) && err.code in ERROR_CODES) {
    const code = GRPC_STATUS_BY_CODE[err.code];
    metadata.set(ERROR_CODE_METADATA_KEY, err.code);
    if (!SERVER_FAULTS.has(err.code)) return { error: { code, details: err.message, metadata }, expected: true };
    // Its message may describe the server's insides (errors.ts SERVER_FAULTS), as on HTTP.
    const generic = code === status.INTERNAL ? 'internal error' : ERROR_CODES[err.code];
    return { error: { code, details: `${generic} (request id ${requestId})`, metadata }, expected: false };
  }
  metadata.set(ERROR_CODE_METADATA_KEY, 'INTERNAL');
  return { error: { code: status.INTERNAL, details: `internal error (request id ${requestId})`, metadata }, expected: false };
}
