// The per-request policy of both transports, in one place: draining, request ids, one
// AbortSignal and one deadline per request, which model a request is for (the default model
// when it names none) and whether it is admitted before its body is read, in-flight counting
// for the drain, and the one log line and metrics observation when the request ends. HTTP calls
// it from its request hooks, gRPC from the wrapper around every handler; neither repeats it.
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config.ts';
import { ServeError } from '../../errors.ts';
import type { InferenceService, RequestOptions } from '../../inference/index.ts';
import type { Logger } from '../../logger.ts';
import type { ServiceMetrics, Transport } from '../metrics.ts';
import { InflightCounter } from './inflight-counter.ts';
import { resolveModelRef, type ModelRef } from './model-ref.ts';

export interface EdgeDeps {
  service: InferenceService;
  config: Config;
  logger: Logger;
  metrics: ServiceMetrics;
}

/** Client-supplied request ids are echoed and logged, so only tame ones are honoured. */
/** Model names are at most 128 characters; a longer one a client sent is logged cut to that. */
const MAX_LOGGED_NAME = 128;
/** setTimeout cannot wait longer (it fires at once instead); such deadlines are "none". */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const MAX_REQUEST_ID_LENGTH = 128;
const REQUEST_ID = new RegExp(`^[A-Za-z0-9._:@/+=-]{1,${MAX_REQUEST_ID_LENGTH}}$`);

export function requestIdFrom(value: unknown): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && REQUEST_ID.test(first) ? first : undefined;
}

export interface BeginOptions {
  /** The id the client sent (header or metadata value); a new one is made when it is not tame. */
  requestId?: unknown;
  /** An inference request: refused while draining, counted in densenet_requests_total. */
  inference: boolean;
  /** The transport's own deadline (gRPC's), on performance.now()'s clock. */
  deadline?: number;
  /**
   * Counted among the requests a drain waits for (default true). A gRPC stream is not: its
   * messages are, and an idle open stream must not hold the drain until its timeout.
   */
  counted?: boolean;
}

export class Edge {
  private draining = false;
  private readonly inflight = new InflightCounter();
  /** performance.now() of the latest request's arrival, on either transport. */
  private lastArrival = -Infinity;

  constructor(readonly deps: EdgeDeps) {}

  get isDraining(): boolean {
    return this.draining;
  }

  /** From SIGTERM on (main.ts): inference requests are refused and readiness reports false. */
  setDraining(draining: boolean): void {
    this.draining = draining;
  }

  /** Requests begun and not yet finished, on both transports. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    return this.inflight.idle();
  }

  begin(transport: Transport, options: BeginOptions): RequestEdge {
    this.lastArrival = performance.now();
    return new RequestEdge(this, transport, options, this.inflight);
  }

  /**
   * Resolves once no request has arrived for `quietMs` (waiting at least `minMs`), or after
   * `maxMs`. A drain keeps reading this long, so requests a burst left unread on open
   * connections are refused cleanly (SHUTTING_DOWN) rather than reset when the sockets close.
   */
  async quiet(quietMs: number, minMs: number, maxMs: number): Promise<void> {
    const start = performance.now();
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await sleep(Math.min(minMs, maxMs));
    for (;;) {
      const now = performance.now();
      const left = Math.min(quietMs - (now - this.lastArrival), start + maxMs - now);
      if (left <= 0) return;
      await sleep(left);
    }
  }

  /**
   * What an inference request would be refused with before the server reads it, whatever model
   * it names (draining; every model's queue full), or undefined. gRPC asks this when a call's
   * headers arrive: the model name is inside the message, which grpc-js would otherwise read and
   * decode whole first.
   */
  refusalBeforeReading(): ServeError | undefined {
    if (this.draining) return new ServeError('SHUTTING_DOWN', 'the server is draining and accepts no new inference requests');
    return this.deps.service.refusalForAny();
  }

  /** Readiness as probes see it: not while draining, and only with a worker to serve. */
  isReady(model?: string, version?: string): boolean {
    return !this.draining && this.deps.service.isReady(model, version);
  }
}

export type FinishLine = Record<string, unknown> & { level: 'info' | 'debug' | 'error'; message: string };

/** One request or call, from its arrival at the transport to its answer. */
export class RequestEdge {
  readonly requestId: string;
  readonly startedAt = performance.now();
  readonly log: Logger;
  /** The model a request is about, once known (a label only if the server holds it). */
  model: string | undefined;
  version: string | undefined;
  /** The domain error code the request failed with, for its log line. */
  errorCode: string | undefined;
  private readonly controller = new AbortController();
  private deadline: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(private readonly edge: Edge, readonly transport: Transport, private readonly options: BeginOptions, private readonly inflight: InflightCounter) {
    this.requestId = requestIdFrom(options.requestId) ?? randomUUID();
    this.log = edge.deps.logger.child({ component: transport, reqId: this.requestId });
    if (options.counted !== false) inflight.enter();
    if (options.deadline !== undefined) this.armDeadline(options.deadline);
  }

  /** Aborted when the client goes away or the deadline passes; the reason is a ServeError. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the request was aborted, if it was. */
  get abortReason(): ServeError | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as ServeError) : undefined;
  }

  abort(reason: ServeError): void {
    this.errorCode ??= reason.code;
    this.controller.abort(reason);
  }

  /**
   * Settles which model an inference request is for and refuses it now if it would be refused
   * when queued (SHUTTING_DOWN, MODEL_NOT_FOUND, MODEL_NOT_READY, QUEUE_FULL): a transport calls
   * this before it reads the body, so excess load costs no reading or parsing. The request is
   * checked again when it is queued.
   */
  admit(model: string | undefined, version: string | undefined): ModelRef {
    this.model = model || undefined;
    if (this.options.inference && this.edge.isDraining) {
      throw new ServeError('SHUTTING_DOWN', 'the server is draining and accepts no new inference requests');
    }
    const { service, config } = this.edge.deps;
    const ref = resolveModelRef(service, config.DEFAULT_MODEL, model, version);
    this.model = ref.model;
    this.version = ref.version;
    service.admit(ref.model, ref.version);
    return ref;
  }

  /** The inference core's options: this request's signal and its earliest deadline. */
  requestOptions(extra: { version?: string; priority?: number; timeoutMs?: number } = {}): RequestOptions {
    if (extra.timeoutMs !== undefined && extra.timeoutMs > 0) this.armDeadline(this.startedAt + extra.timeoutMs);
    return {
      signal: this.controller.signal,
      ...(extra.version !== undefined ? { version: extra.version } : {}),
      ...(extra.priority !== undefined && extra.priority > 0 ? { priority: extra.priority } : {}),
      ...(this.deadline !== undefined ? { deadline: this.deadline } : {}),
    };
  }

  /** The deadline if it has passed by `now` (for transports that learn of it themselves). */
  deadlinePassedBy(now: number, slackMs = 0): boolean {
    return this.deadline !== undefined && now >= this.deadline - slackMs;
  }

  /**
   * The request ended (answered, refused, or the client left): one log line, and for inference
   * requests one observation in densenet_requests_total. Later calls do nothing.
   */
  finish(outcome: string, line: FinishLine): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.options.counted !== false) this.inflight.leave();
    const seconds = (performance.now() - this.startedAt) / 1000;
    if (this.options.inference) this.edge.deps.metrics.observeRequest(this.transport, this.model ?? '', outcome, seconds);
    const { level, message, ...fields } = line;
    this.log[level]({
      ...fields,
      // A client's string: bounded in the log as everywhere (the metrics label is the known name or _unknown).
      model: this.model !== undefined && this.model.length > MAX_LOGGED_NAME ? `${this.model.slice(0, MAX_LOGGED_NAME)}…` : this.model,
      latencyMs: Math.round(seconds * 1e6) / 1e3,
      ...(this.errorCode ? { code: this.errorCode } : {}),
    }, message);
  }

  private armDeadline(deadline: number): void {
    if (this.deadline !== undefined && this.deadline <= deadline) return;
    const wait = deadline - performance.now();
    if (wait > MAX_TIMER_MS) return;
    this.deadline = deadline;
    if (this.timer) clearTimeout(this.timer);
    // The batcher drops expired items by itself; the timer also stops image decoding and makes
    // the outcome DEADLINE_EXCEEDED however far the work got.
    this.timer = setTimeout(() => this.abort(new ServeError('DEADLINE_EXCEEDED', 'the request deadline passed')), Math.max(0, wait));
    this.timer.unref();
  }
}
