// One model's bounded queue: priority levels of FIFO lists, per-item deadline timers and abort
// listeners, and the bookkeeping for items in flight. It settles every item's promise exactly
// once. It decides nothing about batching (batch-planner.ts) or executors (dispatcher.ts).
//
// Dispatch order: items that have waited priorityAgingMs (the starvation guard) first, oldest
// first; then the rest by priority (1 first), FIFO within a priority. Each level stays sorted
// by a global sequence number, so an item put back after a failed run regains its place.
//
// Over 300 lines on purpose: the items, their timers and abort listeners are one state, and the
// promise that each is settled exactly once holds only if one class owns all of it.
import { ServeError } from '../../errors.ts';
import { LatencyModel } from './latency-model.ts';
import type { ResolvedBatchingOptions } from './options.ts';
import type { PlanItem } from './batch-planner.ts';
import type { BatchingStats, BatchObserver, Clock, ItemOptions, ItemOutcome, ItemStage } from './types.ts';

/** Global arrival order, shared by all queues so that cross-model ties are FIFO too. */
let nextSeq = 0;

export interface QueueItem<TIn, TOut> extends PlanItem {
  readonly seq: number;
  readonly input: TIn;
  readonly priority: number;
  state: 'queued' | 'running' | 'done';
  /** Set once the item has been put back after a retryable failure. */
  retried: boolean;
  /** The executor its last run failed on; the dispatcher prefers another one. */
  failedOn: string | undefined;
  dispatchedAt: number | undefined;
  resolve(value: TOut): void;
  reject(err: unknown): void;
  timer: unknown;
  detachAbort: (() => void) | undefined;
}

export interface ModelQueueHooks {
  clock: Clock;
  /** Whether some executor could run this model; false rejects enqueue with MODEL_NOT_READY. */
  isServable(): boolean;
  /** Items became available (enqueue, put back). */
  onWork(): void;
  observer: BatchObserver;
}

export class ModelQueue<TIn, TOut> {
  readonly latency = new LatencyModel();
  private opts: ResolvedBatchingOptions;
  private levels: Array<Array<QueueItem<TIn, TOut>>>;
  private queued = 0;
  private runningItems = 0;
  private runningBatches = 0;
  private isClosed = false;
  private closedWith: unknown;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly key: string,
    options: ResolvedBatchingOptions,
    private readonly hooks: ModelQueueHooks,
  ) {
    this.opts = options;
    this.levels = Array.from({ length: options.priorityLevels }, () => []);
  }

  get options(): ResolvedBatchingOptions {
    return this.opts;
  }

  get depth(): number {
    return this.queued;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** What close() rejected queued items with. */
  get closeReason(): unknown {
    return this.closedWith;
  }

  /** New options apply to new decisions; queued items stay (priorities clamp to the new levels). */
  configure(options: ResolvedBatchingOptions): void {
    const items = this.levels.flat();
    this.opts = options;
    this.levels = Array.from({ length: options.priorityLevels }, () => []);
    for (const item of items) this.levelOf(item).push(item);
    for (const level of this.levels) level.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Admission before decoding: throws QUEUE_FULL when the queue is already full, so that an
   * overloaded server refuses a request before spending CPU on its images. (Requests still
   * decoding do not hold places: a burst at an idle server is absorbed as before, and enqueue
   * checks the bound again once they are decoded.)
   */
  admit(): void {
    if (this.queued < this.opts.maxQueueSize) return;
    this.emitDone('rejected', 0, 0, 'queued');
    throw this.queueFull();
  }

  /** The QUEUE_FULL error a request would get now, or undefined when there is room. */
  fullError(): ServeError | undefined {
    return this.queued < this.opts.maxQueueSize ? undefined : this.queueFull();
  }

  private queueFull(): ServeError {
    const perBatch = this.latency.estimate(this.opts.maxBatchSize);
    return new ServeError('QUEUE_FULL', `the queue of model '${this.key}' is full (${this.opts.maxQueueSize} requests)`, {
      model: this.key,
      maxQueueSize: this.opts.maxQueueSize,
      // A hint for Retry-After: one full batch's estimated run time, once one has been measured.
      ...(Number.isFinite(perBatch) ? { retryAfterMs: Math.ceil(perBatch) } : {}),
    });
  }

  enqueue(input: TIn, itemOptions: ItemOptions = {}): Promise<TOut> {
    const now = this.hooks.clock.now();
    const { signal } = itemOptions;
    const deadline = itemOptions.deadline ?? Infinity;
    const refuse = (err: ServeError, outcome: ItemOutcome): Promise<TOut> => {
      this.emitDone(outcome, 0, 0, 'queued');
      return Promise.reject(err);
    };

    if (signal?.aborted) return refuse(this.cancelled(signal, 'queued'), abortOutcome(signal));
    const priority = this.resolvePriority(itemOptions.priority);
    if (priority === undefined) {
      return refuse(
        new ServeError('INVALID_INPUT', `priority must be an integer in 1…${this.opts.priorityLevels} (0 = default)`, {
          field: 'priority',
          model: this.key,
        }),
        'rejected',
      );
    }
    if (Number.isNaN(deadline)) {
      return refuse(new ServeError('INVALID_INPUT', 'deadline is not a number', { field: 'deadline', model: this.key }), 'rejected');
    }
    if (deadline <= now) return refuse(this.expired('queued'), 'expired');
    if (this.isClosed) return refuse(this.notReady('it is being removed'), 'rejected');
    if (!this.hooks.isServable()) return refuse(this.notReady('no executor can run it'), 'rejected');
    if (this.queued >= this.opts.maxQueueSize) return refuse(this.queueFull(), 'rejected');

    return new Promise<TOut>((resolve, reject) => {
      const item: QueueItem<TIn, TOut> = {
        seq: nextSeq++,
        input,
        priority,
        deadline,
        enqueuedAt: now,
        state: 'queued',
        retried: false,
        failedOn: undefined,
        dispatchedAt: undefined,
        resolve,
        reject,
        timer: undefined,
        detachAbort: undefined,
      };
      if (deadline !== Infinity) {
        // Rounded up: timers truncate fractional delays, and an early expiry would be wrong.
        item.timer = this.hooks.clock.setTimeout(() => this.drop(item, 'expired'), Math.ceil(deadline - now));
      }
      if (signal) {
        const onAbort = (): void => this.drop(item, abortOutcome(signal), signal);
        signal.addEventListener('abort', onAbort, { once: true });
        item.detachAbort = () => signal.removeEventListener('abort', onAbort);
      }
      this.levelOf(item).push(item);
      this.queued++;
      this.hooks.onWork();
    });
  }

  /** Live queued items in dispatch order; items whose deadline has come are expired first. */
  ordered(now: number): Array<QueueItem<TIn, TOut>> {
    for (const level of this.levels) {
      for (const item of level.filter((i) => i.deadline <= now)) this.drop(item, 'expired');
    }
    const promoted: Array<QueueItem<TIn, TOut>> = [];
    const rest: Array<QueueItem<TIn, TOut>> = [];
    for (const level of this.levels) {
      let k = 0;
      while (k < level.length && this.isPromoted(level[k], now)) promoted.push(level[k++] as QueueItem<TIn, TOut>);
      for (; k < level.length; k++) rest.push(level[k] as QueueItem<TIn, TOut>);
    }
    promoted.sort((a, b) => a.seq - b.seq);
    return promoted.concat(rest);
  }

  /**
   * The item that would be dispatched first, with its effective priority (1 once promoted by
   * the starvation guard); the dispatcher compares queues by (priority, seq).
   */
  head(now: number): { priority: number; seq: number } | undefined {
    let promoted: QueueItem<TIn, TOut> | undefined;
    let first: QueueItem<TIn, TOut> | undefined;
    for (const level of this.levels) {
      const item = level[0];
      if (!item) continue;
      if (this.isPromoted(item, now)) {
        if (!promoted || item.seq < promoted.seq) promoted = item;
      } else {
        first ??= item;
      }
    }
    if (promoted) return { priority: 1, seq: promoted.seq };
    return first && { priority: first.priority, seq: first.seq };
  }

  /** Moves queued items into a run. */
  take(items: ReadonlyArray<QueueItem<TIn, TOut>>, now: number): void {
    for (const item of items) {
      item.state = 'running';
      item.dispatchedAt = now;
    }
    this.levels = this.levels.map((level) => (level.some((i) => i.state !== 'queued') ? level.filter((i) => i.state === 'queued') : level));
    this.queued -= items.length;
    this.runningItems += items.length;
    this.runningBatches++;
  }

  /** A run returned (either way); its items have been settled or put back already. */
  endRun(size: number): void {
    this.runningItems -= size;
    this.runningBatches--;
    this.checkIdle();
  }

  /** Puts items of a failed run back in their place; false if the queue is closed. */
  putBack(item: QueueItem<TIn, TOut>, failedOn: string): boolean {
    if (item.state !== 'running') return true;
    if (this.isClosed) return false;
    item.state = 'queued';
    item.retried = true;
    item.failedOn = failedOn;
    const level = this.levelOf(item);
    let at = 0;
    while (at < level.length && (level[at] as QueueItem<TIn, TOut>).seq < item.seq) at++;
    level.splice(at, 0, item);
    this.queued++;
    this.hooks.onWork();
    return true;
  }

  succeed(item: QueueItem<TIn, TOut>, value: TOut): void {
    if (!this.finish(item, 'success')) return;
    item.resolve(value);
  }

  fail(item: QueueItem<TIn, TOut>, err: unknown): void {
    if (!this.finish(item, 'failed')) return;
    item.reject(err);
  }

  /** Rejects every queued item with `reason` and refuses new ones; runs in flight finish. */
  close(reason: unknown): void {
    this.isClosed = true;
    this.closedWith = reason;
    const items = this.levels.flat();
    this.levels = this.levels.map(() => []);
    this.queued = 0;
    for (const item of items) if (this.finish(item, 'rejected')) item.reject(reason);
    this.checkIdle();
  }

  /** Resolves once nothing is queued and no run is in flight. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  isIdle(): boolean {
    return this.queued === 0 && this.runningItems === 0;
  }

  stats(): BatchingStats {
    return { queueDepth: this.queued, running: this.runningItems, runningBatches: this.runningBatches };
  }

  private resolvePriority(priority: number | undefined): number | undefined {
    if (priority === undefined || priority === 0) return this.opts.defaultPriority;
    return Number.isInteger(priority) && priority >= 1 && priority <= this.opts.priorityLevels ? priority : undefined;
  }

  private levelOf(item: QueueItem<TIn, TOut>): Array<QueueItem<TIn, TOut>> {
    const index = Math.min(item.priority, this.levels.length) - 1;
    return this.levels[index] as Array<QueueItem<TIn, TOut>>;
  }

  private isPromoted(item: QueueItem<TIn, TOut> | undefined, now: number): boolean {
    return item !== undefined && now - item.enqueuedAt >= this.opts.priorityAgingMs;
  }

  /** Deadline or abort: settles at once, queued or running; a running batch's result is discarded. */
  private drop(item: QueueItem<TIn, TOut>, outcome: 'expired' | 'cancelled', signal?: AbortSignal): void {
    if (item.state === 'done') return;
    const stage = item.state;
    this.removeQueued(item);
    if (!this.finish(item, outcome)) return;
    item.reject(signal ? this.cancelled(signal, stage) : this.expired(stage));
    this.checkIdle();
  }

  private removeQueued(item: QueueItem<TIn, TOut>): void {
    if (item.state !== 'queued') return;
    const level = this.levelOf(item);
    const at = level.indexOf(item);
    if (at >= 0) level.splice(at, 1);
    this.queued--;
  }

  /** Marks the item done and reports it; false if it was settled already. */
  private finish(item: QueueItem<TIn, TOut>, outcome: ItemOutcome): boolean {
    if (item.state === 'done') return false;
    const stage = item.state;
    item.state = 'done';
    if (item.timer !== undefined) this.hooks.clock.clearTimeout(item.timer);
    item.detachAbort?.();
    const now = this.hooks.clock.now();
    this.emitDone(outcome, (item.dispatchedAt ?? now) - item.enqueuedAt, now - item.enqueuedAt, stage);
    return true;
  }

  private emitDone(outcome: ItemOutcome, queueMs: number, totalMs: number, stage: ItemStage): void {
    this.hooks.observer.onItemDone?.(this.key, outcome, queueMs, totalMs, stage);
  }

  private checkIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private notReady(why: string): ServeError {
    return new ServeError('MODEL_NOT_READY', `model '${this.key}' cannot serve now: ${why}`, { model: this.key });
  }

  private expired(stage: 'queued' | 'running'): ServeError {
    return new ServeError('DEADLINE_EXCEEDED', `the deadline passed while the request was ${stage}`, { model: this.key, stage });
  }

  /** The transport's own reason when it gave one (a call deadline aborts with DEADLINE_EXCEEDED). */
  private cancelled(signal: AbortSignal, stage: 'queued' | 'running'): ServeError {
    if (signal.reason instanceof ServeError) return signal.reason;
    return new ServeError('CANCELLED', `the client cancelled the request while it was ${stage}`, { model: this.key, stage }, { cause: signal.reason });
  }
}

/** An abort whose reason is a passed deadline counts as expired, not as a client cancellation. */
function abortOutcome(signal: AbortSignal): 'expired' | 'cancelled' {
  return signal.reason instanceof ServeError && signal.reason.code === 'DEADLINE_EXCEEDED' ? 'expired' : 'cancelled';
}
