// grpc-js handlers around the shared request edge (../edge): every unary call and every message
// of a stream becomes one RequestEdge — request id, AbortSignal, deadline, admission, one log
// line and one metrics observation — and anything a handler throws becomes a status in one place
// (status-codes.ts). What is gRPC's own stays here: the call's deadline and 'cancelled' event, the
// request id in the response headers, requests that were not valid protobuf.
import { Metadata, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { isServeError, ServeError } from '../../errors.ts';
import type { Edge, RequestEdge } from '../edge/index.ts';
import { UndecodableRequest } from './proto.ts';
import { statusName, toGrpcError } from './status-codes.ts';

export const REQUEST_ID_METADATA_KEY = 'x-request-id';
/**
 * How close to the deadline a 'cancelled' event counts as the deadline. grpc-js starts its own
 * deadline timer when it reads the headers, before our handler runs and converts the deadline
 * (millisecond granularity, wall clock to monotonic): on a loaded machine its timer fires tens
 * of milliseconds before ours (2 ms was seen to be too little in CI). A client that cancels
 * within this window of its own deadline is reported as a deadline.
 */
const DEADLINE_SLACK_MS = 50;

/** A handler sees the request, its edge and the call's metadata (e.g. for the management token). */
export type CallHandler<Req, Res> = (request: Req, ctx: RequestEdge, metadata: Metadata) => Promise<Res> | Res;

export interface CallOptions {
  /** An inference call: refused while draining, counted in densenet_requests_total. */
  inference: boolean;
  /** Probes call often: their lines go to debug. */
  level?: 'info' | 'debug';
}

/** grpc-js deadlines are wall-clock (a Date or ms since the epoch; Infinity = none). */
export function deadlineOnMonotonicClock(deadline: Date | number, nowWall = Date.now(), nowMono = performance.now()): number | undefined {
  const wall = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(wall)) return undefined;
  return nowMono + (wall - nowWall);
}

/** A call (or stream, or stream message) begins at the edge: its id from the metadata, its deadline from grpc-js. */
export function beginCall(
  edge: Edge,
  call: { metadata: Metadata; getDeadline(): Date | number },
  options: { inference: boolean; requestId?: string; counted?: boolean },
): RequestEdge {
  const deadline = deadlineOnMonotonicClock(call.getDeadline());
  return edge.begin('grpc', {
    requestId: options.requestId ?? call.metadata.get(REQUEST_ID_METADATA_KEY)[0],
    inference: options.inference,
    ...(options.counted === false ? { counted: false } : {}),
    ...(deadline !== undefined ? { deadline } : {}),
  });
}

/** grpc-js ends a call at its deadline with its own timer and reports 'cancelled' for it too. */
export function cancellation(ctx: RequestEdge): ServeError {
  return ctx.deadlinePassedBy(performance.now(), DEADLINE_SLACK_MS)
    ? new ServeError('DEADLINE_EXCEEDED', 'the call deadline passed')
    : new ServeError('CANCELLED', 'the client cancelled the call');
}

/** Bytes that are not a protobuf message of the method's type (proto.ts): the client's error. */
export function checkDecoded<Req>(request: Req | UndecodableRequest): Req {
  if (request instanceof UndecodableRequest) {
    throw new ServeError('INVALID_INPUT', `request: not a valid ${request.messageType} message (${request.reason})`, { field: 'request' });
  }
  return request;
}

/**
 * Ends one call or stream message at the edge and maps its failure: what the client is told and
 * the outcome label. Once cancelled or past its deadline the client has had its answer from
 * grpc-js: that is what is logged and counted, whatever the handler did afterwards.
 */
export function settle(ctx: RequestEdge, method: string, level: 'info' | 'debug', err: unknown): { code: number; details: string; metadata?: Metadata } | undefined {
  const failure: unknown = ctx.abortReason ?? err;
  if (failure === undefined) {
    ctx.finish('OK', { level, message: 'grpc call', method, status: 'OK' });
    return undefined;
  }
  const mapped = toGrpcError(failure, ctx.requestId);
  const outcome = statusName(mapped.error.code);
  ctx.errorCode ??= isServeError(failure) ? failure.code : 'INTERNAL';
  if (mapped.expected) {
    ctx.finish(outcome, { level, message: 'grpc call', method, status: outcome, error: mapped.error.details });
  } else {
    ctx.finish(outcome, { level: 'error', message: 'grpc call failed unexpectedly', method, status: outcome, err: failure });
  }
  if (failure !== err && err !== undefined && !isServeError(err)) ctx.log.error({ method, err }, 'handler failed after the call ended');
  return mapped.error;
}

export function unary<Req, Res>(edge: Edge, method: string, handler: CallHandler<Req, Res>, options: CallOptions): handleUnaryCall<Req, Res> {
  const level = options.level ?? 'info';
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const ctx = beginCall(edge, call, { inference: options.inference });
    const onCancelled = (): void => ctx.abort(cancellation(ctx));
    call.once('cancelled', onCancelled);
    const head = new Metadata();
    head.set(REQUEST_ID_METADATA_KEY, ctx.requestId);
    call.sendMetadata(head);

    const finish = (err: unknown, response?: Res): void => {
      call.off('cancelled', onCancelled);
      const error = settle(ctx, method, level, err);
      if (error) callback(error);
      else callback(null, response);
    };
    Promise.resolve()
      .then(() => handler(checkDecoded(call.request as Req | UndecodableRequest), ctx, call.metadata))
      .then((response) => finish(undefined, response), (err: unknown) => finish(err ?? new Error('handler rejected without a reason')));
  };
}
