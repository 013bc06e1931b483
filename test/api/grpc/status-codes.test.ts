// The one table from error codes to gRPC statuses: complete, and what clients see.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ServeError, type ErrorCode } from '../../../src/errors.ts';
import { ERROR_CODE_METADATA_KEY, GRPC_STATUS_BY_CODE, statusName, toGrpcError } from '../../../src/api/grpc/status-codes.ts';

describe('gRPC status mapping', () => {
  it('maps every error code to a gRPC status, and nothing else', () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    expect(Object.keys(GRPC_STATUS_BY_CODE).sort()).toEqual([...codes].sort());
    const valid = new Set(Object.values(status).filter((v): v is number => typeof v === 'number'));
    for (const code of codes) {
      expect(valid.has(GRPC_STATUS_BY_CODE[code]), code).toBe(true);
      expect(GRPC_STATUS_BY_CODE[code], code).not.toBe(status.OK);
    }
  });

  it.each([
    ['INVALID_INPUT', 'INVALID_ARGUMENT'],
    ['MODEL_NOT_FOUND', 'NOT_FOUND'],
    ['MODEL_NOT_READY', 'UNAVAILABLE'],
    ['QUEUE_FULL', 'RESOURCE_EXHAUSTED'],
    ['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED'],
    ['CANCELLED', 'CANCELLED'],
    ['LIMIT_EXCEEDED', 'INVALID_ARGUMENT'],
    ['WORKER_FAILED', 'UNAVAILABLE'],
    ['SHUTTING_DOWN', 'UNAVAILABLE'],
    ['INTERNAL', 'INTERNAL'],
  ] as const)('%s → %s', (code, expected) => {
    expect(statusName(GRPC_STATUS_BY_CODE[code])).toBe(expected);
  });

  it('keeps a coded error\'s message (it names the field) and sends the code as trailing metadata', () => {
    const { error, expected } = toGrpcError(new ServeError('QUEUE_FULL', "model 'tiny:1' queue is full (32)"), 'r1');
    expect(expected).toBe(true);
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.details).toBe("model 'tiny:1' queue is full (32)");
    expect(error.metadata!.get(ERROR_CODE_METADATA_KEY)).toEqual(['QUEUE_FULL']);
  });

  it('answers unknown errors and server faults generically with the request id, on gRPC as on HTTP', () => {
    for (const err of [new Error('ENOENT /srv/models/secret'), new ServeError('INTERNAL', 'worker said: /srv/x'), new ServeError('INVALID_CONFIG', 'bad /etc/conf'), 'a string']) {
      const { error, expected } = toGrpcError(err, 'req-9');
      expect(expected).toBe(false);
      expect(error.code).toBe(status.INTERNAL);
      expect(error.details).toBe('internal error (request id req-9)');
    }
    const engine = toGrpcError(new ServeError('ENGINE_UNAVAILABLE', 'libtensorflow.so.2 missing in /opt/secret'), 'req-8');
    expect(engine.expected).toBe(false);
    expect(engine.error.code).toBe(status.UNAVAILABLE);
    expect(engine.error.details).toBe('the requested inference engine cannot be loaded (request id req-8)');
  });
});
