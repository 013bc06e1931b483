// One registry of coded domain errors. Transports map each code to a status in one table
// of their own; nothing else decides what a client sees.

export const ERROR_CODES = {
  INVALID_INPUT: 'the request or one of its fields is malformed',
  INVALID_MODEL_FILE: 'a model file (weights, manifest, checkpoint) is malformed',
  INVALID_CONFIG: 'a configuration value is invalid',
  ENGINE_UNAVAILABLE: 'the requested inference engine cannot be loaded',
  MODEL_NOT_FOUND: 'no such model or version',
  MODEL_NOT_READY: 'the model exists but cannot serve now',
  QUEUE_FULL: 'the model queue is full',
  DEADLINE_EXCEEDED: 'the request deadline passed',
  CANCELLED: 'the client cancelled the request',
  LIMIT_EXCEEDED: 'a configured size limit was exceeded',
  WORKER_FAILED: 'the worker running the request crashed or hung; retrying may succeed',
  SHUTTING_DOWN: 'the server is draining and accepts no new requests',
  UNAUTHENTICATED: 'the endpoint needs the management token',
  FORBIDDEN: 'the token given is not the management token',
  INTERNAL: 'an internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Outcomes a client caused or must handle, not faults of ours: they carry no stack trace.
 * Capturing one was the costliest single step of refusing a request under overload (profiled
 * in npm run test:chaos), and the code and message already say where it came from.
 */
const CLIENT_OUTCOMES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INVALID_INPUT', 'MODEL_NOT_FOUND', 'MODEL_NOT_READY', 'QUEUE_FULL', 'DEADLINE_EXCEEDED', 'CANCELLED',
  'LIMIT_EXCEEDED', 'SHUTTING_DOWN', 'UNAUTHENTICATED', 'FORBIDDEN',
]);

/**
 * Codes whose messages may describe the server's insides (paths, settings, worker internals):
 * every transport answers them with the code's generic description and logs the full error.
 */
export const SERVER_FAULTS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['INVALID_CONFIG', 'ENGINE_UNAVAILABLE', 'INTERNAL']);

export class ServeError extends Error {
  readonly code: ErrorCode;
  /** Structured facts for logs and clients (field names, limits); never secrets or paths. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    const stackTraceLimit = Error.stackTraceLimit;
    if (CLIENT_OUTCOMES.has(code)) Error.stackTraceLimit = 0;
    try {
      super(message, options);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = 'ServeError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isServeError(err: unknown): err is ServeError {
  return err instanceof ServeError;
}

/** INVALID_INPUT naming the field at fault: `inputs[0].shape: …`. */
export function invalidInput(field: string, message: string, details: Record<string, unknown> = {}): ServeError {
  return new ServeError('INVALID_INPUT', `${field}: ${message}`, { field, ...details });
}
