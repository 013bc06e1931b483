// The transport edge of every unary call: one request id, one AbortSignal and one deadline per
// call, passed down to the inference core; one log line and one metrics observation when the
// call ends; errors mapped to a status in one place (status-codes.ts).
import { randomUUID } from 'node:crypto';
import { Metadata, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ServeError, isServeError } from '../../errors.ts';
import type { RequestOptions } from '../../inference/index.ts';
import type { Logger } from '../../logger.ts';
import type { ServiceMetrics } from '../metrics.ts';
import { UndecodableRequest } from './proto.ts';
import { statusName, toGrpcError } from './status-codes.ts';

export const REQUEST_ID_METADATA_KEY = 'x-request-id';
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** setTimeout cannot wait longer (it fires at once instead); such deadlines are "none". */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * How close to the deadline a 'cancelled' event counts as the deadline. grpc-js starts its own
 * deadline timer when it reads the headers, before our handler runs and converts the deadline
 * (millisecond granularity, wall clock to monotonic): on a loaded machine its timer fires tens
 * of milliseconds before ours (2 ms was seen to be too little in CI). A client that cancels
 * within this window of its own deadline is reported as a deadline.
 */
const DEADLINE_SLACK_MS = 50;

export interface CallContext {
  readonly requestId: string;
  /** Aborted when the client cancels or the call's deadline passes (reason: a ServeError). */
  readonly signal: AbortSignal;
  /** The call's deadline on performance.now()'s clock; undefined when it has none. */
  readonly deadline: number | undefined;
  readonly log: Logger;
  /** Set by the handler once it knows the model, for the log line and the metrics label. */
  model: string;
  /** RequestOptions for the inference core: this call's signal and deadline (the earlier of it and `deadline`). */
  requestOptions(extra?: { version?: string; priority?: number; deadline?: number }): RequestOptions;
}

/** Unary calls being handled, so shutdown can wait for them and no longer. */
export class InflightCalls {
  private count = 0;
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.count;
  }

  enter(): void {
    this.count++;
  }

  leave(): void {
    if (--this.count > 0) return;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Resolves when no call is in flight. */
  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

export interface EdgeDeps {
  log: Logger;
  metrics: ServiceMetrics;
  inflight: InflightCalls;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res> | Res;

/** Readiness probes call often: their lines go to debug, inference calls to info. */
export type CallLogLevel = 'info' | 'debug';

export function requestIdOf(metadata: Metadata): string {
  const [value] = metadata.get(REQUEST_ID_METADATA_KEY);
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : randomUUID();
}

/** grpc-js deadlines are wall-clock (a Date or ms since the epoch; Infinity = none). */
export function deadlineOnMonotonicClock(deadline: Date | number, nowWall = Date.now(), nowMono = performance.now()): number | undefined {
  const wall = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(wall)) return undefined;
  const remaining = wall - nowWall;
  return remaining > MAX_TIMER_MS ? undefined : nowMono + remaining;
}

export function unary<Req, Res>(
  deps: EdgeDeps,
  method: string,
  handler: UnaryHandler<Req, Res>,
  level: CallLogLevel = 'info',
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const started = performance.now();
    deps.inflight.enter();
    const requestId = requestIdOf(call.metadata);
    const log = deps.log.child({ reqId: requestId });
    const controller = new AbortController();
    const deadline = deadlineOnMonotonicClock(call.getDeadline());
    // The batcher drops expired items by itself; the timer also stops image decoding and makes
    // the outcome DEADLINE_EXCEEDED however far the work got.
    const deadlinePassed = (): ServeError => new ServeError('DEADLINE_EXCEEDED', 'the call deadline passed');
    const timer = deadline === undefined ? undefined : setTimeout(() => controller.abort(deadlinePassed()), Math.max(0, deadline - started));
    // grpc-js ends a call at its deadline with its own timer and reports that as 'cancelled' too;
    // that is a deadline, not a client's choice.
    const onCancelled = (): void => controller.abort(deadline !== undefined && performance.now() >= deadline - DEADLINE_SLACK_MS
      ? deadlinePassed()
      : new ServeError('CANCELLED', 'the client cancelled the call'));
    call.once('cancelled', onCancelled);

    const head = new Metadata();
    head.set(REQUEST_ID_METADATA_KEY, requestId);
    call.sendMetadata(head);

    const ctx: CallContext = {
      requestId,
      signal: controller.signal,
      deadline,
      log,
      model: '',
      requestOptions(extra = {}) {
        const earliest = [deadline, extra.deadline].filter((d): d is number => d !== undefined);
        return {
          ...(extra.version !== undefined ? { version: extra.version } : {}),
          ...(extra.priority !== undefined ? { priority: extra.priority } : {}),
          ...(earliest.length ? { deadline: Math.min(...earliest) } : {}),
          signal: controller.signal,
        };
      },
    };

    const finish = (err: unknown, response?: Res): void => {
      deps.inflight.leave();
      if (timer) clearTimeout(timer);
      call.off('cancelled', onCancelled);
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      const line = { method, model: ctx.model || undefined, ms };
      // Once cancelled or past its deadline the client has had its answer from grpc-js: that is
      // what we log and count, whatever the handler did afterwards.
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      const failure = isServeError(reason) ? reason : err;
      if (failure === undefined) {
        log[level]({ ...line, status: 'OK' }, 'grpc call');
        deps.metrics.observeRequest('grpc', ctx.model, 'OK', ms / 1000);
        callback(null, response);
        return;
      }
      const mapped = toGrpcError(failure, requestId);
      const outcome = statusName(mapped.error.code);
      if (mapped.expected) log[level]({ ...line, status: outcome, error: mapped.error.details }, 'grpc call');
      else log.error({ ...line, status: outcome, err: failure }, 'grpc call failed unexpectedly');
      if (failure !== err && err !== undefined && !isServeError(err)) log.error({ ...line, err }, 'handler failed after the call ended');
      deps.metrics.observeRequest('grpc', ctx.model, outcome, ms / 1000);
      callback(mapped.error);
    };

    Promise.resolve()
      .then(() => {
        // Bytes that are not a protobuf message of the method's type (proto.ts): the client's error.
        if (call.request instanceof UndecodableRequest) {
          const { messageType, reason } = call.request;
          throw new ServeError('INVALID_INPUT', `request: not a valid ${messageType} message (${reason})`, { field: 'request' });
        }
        return handler(call.request, ctx);
      })
      .then((response) => finish(undefined, response), (err: unknown) => finish(err ?? new Error('handler rejected without a reason')));
  };
}
