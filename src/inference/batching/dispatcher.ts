// Pull-based dynamic batching across models and executors (workers, as seen from here).
//
// Whenever an executor is free and a queue it can run has work, the dispatcher plans that
// queue (batch-planner.ts) and, among the queues whose plan is "dispatch now", serves the most
// urgent: the smallest (effective priority, arrival order) of the item it would take first.
// Priority first, then FIFO across models too; a model with only low-priority work is not
// starved because its items are promoted to priority 1 after priorityAgingMs (model-queue.ts),
// and then the oldest item wins. Queues that chose to wait get one shared wake-up timer (the
// earliest of their wake-up times); an arrival, a finished run or a new executor replans at
// once (on a microtask, so arrivals in the same tick form one batch). No polling, and with
// maxQueueDelayMs = 0 a lone request is dispatched in the tick it arrived in.
//
// Failures: a run that rejects with a retryable error (executor.ts) puts its items back in
// their places once, to be run preferably on another executor; a second failure, or any other
// error, rejects them with that error. A result array of the wrong length rejects the batch's
// items with INTERNAL. Items aborted or past their deadline are settled at that moment, queued
// or running; a result that arrives for them later is dropped.
//
// Over 300 lines on purpose: one scheduler over one state (queues, executors, the wake-up timer);
// split, its invariants (one batch per executor, every run finished once) would span files.
import { ServeError } from '../../errors.ts';
import { planBatch, type BatchPlan } from './batch-planner.ts';
import { realClock } from './clock.ts';
import { isRetryableError, type Executor } from './executor.ts';
import { ModelQueue, type QueueItem } from './model-queue.ts';
import { resolveBatchingOptions } from './options.ts';
import type { BatchingOptions, BatchingStats, BatchObserver, Clock, ItemOptions } from './types.ts';

export interface DispatcherOptions {
  clock?: Clock;
  /**
   * Receives exceptions thrown by observers (which never disturb scheduling). Default: rethrown
   * on a microtask, i.e. an uncaughtException, so a broken metrics hook is loud.
   */
  onObserverError?: (err: unknown) => void;
}

interface ExecutorSlot<TIn, TOut> {
  readonly executor: Executor<TIn, TOut>;
  readonly order: number;
  busy: boolean;
  idleSince: number;
}

interface Planned<TIn, TOut> {
  readonly items: Array<QueueItem<TIn, TOut>>;
  readonly plan: BatchPlan;
}

export class Dispatcher<TIn, TOut> {
  readonly clock: Clock;
  private readonly models = new Map<string, ModelQueue<TIn, TOut>>();
  /** Removed models whose runs are still in flight (drain waits for them). */
  private readonly retiring = new Set<ModelQueue<TIn, TOut>>();
  private readonly executors = new Map<string, ExecutorSlot<TIn, TOut>>();
  private readonly observers = new Set<BatchObserver>();
  private readonly onObserverError: (err: unknown) => void;
  private executorOrder = 0;
  private pumpQueued = false;
  private wakeTimer: unknown;
  private wakeAt = Infinity;

  constructor(options: DispatcherOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.onObserverError =
      options.onObserverError ??
      ((err) =>
        queueMicrotask(() => {
          throw err;
        }));
  }

  // ── models ──────────────────────────────────────────────────────────────────────────────

  /** Registers a model or changes its options (queued items stay). Throws INVALID_CONFIG. */
  setModel(key: string, options: BatchingOptions): void {
    const resolved = resolveBatchingOptions(options, key);
    const existing = this.models.get(key);
    if (existing) {
      existing.configure(resolved);
    } else {
      this.models.set(
        key,
        new ModelQueue<TIn, TOut>(key, resolved, {
          clock: this.clock,
          isServable: () => this.isServable(key),
          onWork: () => this.schedulePump(),
          observer: this.fanout,
        }),
      );
    }
    this.schedulePump();
  }

  /**
   * Unregisters a model: its queued items are rejected with `reason` (default MODEL_NOT_READY)
   * and new requests are refused; runs in flight finish and deliver (drain() waits for them).
   */
  removeModel(key: string, reason?: unknown): boolean {
    const queue = this.models.get(key);
    if (!queue) return false;
    this.models.delete(key);
    queue.close(reason ?? new ServeError('MODEL_NOT_READY', `model '${key}' was unloaded`, { model: key }));
    if (!queue.isIdle()) this.retiring.add(queue);
    return true;
  }

  /** Whether a request for the model can be accepted: it is registered and some executor can run it. */
  isServable(key: string): boolean {
    if (!this.models.has(key)) return false;
    for (const slot of this.executors.values()) if (slot.executor.canRun(key)) return true;
    return false;
  }

  /**
   * Queues one item. Rejects at once with MODEL_NOT_READY (unregistered, or no executor can run
   * it), CANCELLED (signal already aborted), DEADLINE_EXCEEDED (deadline not in the future),
   * INVALID_INPUT (bad priority) or QUEUE_FULL.
   */
  enqueue(key: string, input: TIn, options?: ItemOptions): Promise<TOut> {
    const queue = this.models.get(key);
    if (!queue) {
      this.fanout.onItemDone?.(key, 'rejected', 0, 0, 'queued');
      return Promise.reject(new ServeError('MODEL_NOT_READY', `model '${key}' is not loaded`, { model: key }));
    }
    return queue.enqueue(input, options);
  }

  /**
   * Admission before decoding: throws QUEUE_FULL when the model's queue is full (MODEL_NOT_READY
   * for an unknown model), before the request's images cost any CPU.
   */
  admit(key: string): void {
    const queue = this.models.get(key);
    if (!queue) throw new ServeError('MODEL_NOT_READY', `model '${key}' is not loaded`, { model: key });
    queue.admit();
  }

  /**
   * QUEUE_FULL when every model's queue is full (any request would be refused whatever model it
   * names), else undefined; for a transport that cannot see the model before reading the request
   * (gRPC: the name is inside the message).
   */
  refusalForAny(): ServeError | undefined {
    let refusal: ServeError | undefined;
    for (const queue of this.models.values()) {
      const full = queue.fullError();
      if (!full) return undefined;
      refusal ??= full;
    }
    return refusal;
  }

  /** Resolves once the model has nothing queued and nothing running (for unloading). */
  async drain(key: string): Promise<void> {
    await Promise.all(this.queuesFor(key).map((q) => q.whenIdle()));
  }

  /** Queue depth and items in flight; undefined for an unknown model. */
  stats(key: string): BatchingStats | undefined {
    const queues = this.queuesFor(key);
    if (queues.length === 0) return undefined;
    const total: BatchingStats = { queueDepth: 0, running: 0, runningBatches: 0 };
    for (const q of queues) {
      const s = q.stats();
      total.queueDepth += s.queueDepth;
      total.running += s.running;
      total.runningBatches += s.runningBatches;
    }
    return total;
  }

  /** Feeds a measured run (e.g. a warm-up) into the model's latency estimates. */
  observeLatency(key: string, batchSize: number, ms: number): void {
    this.models.get(key)?.latency.observe(batchSize, ms);
  }

  /** The current estimate for one run of `batchSize` items (Infinity before any measurement). */
  latencyEstimate(key: string, batchSize: number): number | undefined {
    return this.models.get(key)?.latency.estimate(batchSize);
  }

  /** Adds an observer (the metrics layer); returns its unsubscribe function. */
  subscribe(observer: BatchObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Removes every model (rejecting what is queued) and stops the wake-up timer. */
  close(reason?: unknown): void {
    for (const key of [...this.models.keys()]) this.removeModel(key, reason);
    this.clearWakeTimer();
  }

  // ── executors ───────────────────────────────────────────────────────────────────────────

  addExecutor(executor: Executor<TIn, TOut>): void {
    if (this.executors.has(executor.id)) {
      throw new ServeError('INTERNAL', `executor '${executor.id}' is already registered`, { executor: executor.id });
    }
    this.executors.set(executor.id, { executor, order: this.executorOrder++, busy: false, idleSince: this.clock.now() });
    this.schedulePump();
  }

  /** Forgets an executor. A batch it is running is the pool's to fail (its run() rejects). */
  removeExecutor(id: string): boolean {
    const removed = this.executors.delete(id);
    // A retry that was holding out for this executor must now settle for another one.
    if (removed) this.schedulePump();
    return removed;
  }

  /** Replans now; call when executors' canRun() answers changed (a model loaded or unloaded). */
  reschedule(): void {
    this.schedulePump();
  }

  // ── scheduling ──────────────────────────────────────────────────────────────────────────

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => this.pump());
  }

  /** Hands work to free executors until none is free or no queue wants to dispatch now. */
  private pump(wokeFor = -Infinity): void {
    this.pumpQueued = false;
    // A timer may fire a hair before the clock reaches its target; it stands for that time.
    const now = Math.max(this.clock.now(), wokeFor);
    const plans = new Map<ModelQueue<TIn, TOut>, Planned<TIn, TOut>>();
    const skipped = new Set<ModelQueue<TIn, TOut>>();
    for (;;) {
      const free = [...this.executors.values()]
        .filter((s) => !s.busy)
        .sort((a, b) => a.idleSince - b.idleSince || a.order - b.order);
      if (free.length === 0) break;

      let best: { queue: ModelQueue<TIn, TOut>; planned: Planned<TIn, TOut>; priority: number; seq: number } | undefined;
      for (const queue of this.models.values()) {
        if (queue.depth === 0 || skipped.has(queue)) continue;
        if (!free.some((s) => s.executor.canRun(queue.key))) continue;
        let planned = plans.get(queue);
        if (!planned) {
          const items = queue.ordered(now);
          const plan = planBatch({ now, items, options: queue.options, latency: (size) => queue.latency.estimate(size) });
          planned = { items, plan };
          plans.set(queue, planned);
        }
        if (planned.plan.kind !== 'dispatch') continue;
        const head = queue.head(now);
        if (!head) continue;
        if (!best || head.priority < best.priority || (head.priority === best.priority && head.seq < best.seq)) {
          best = { queue, planned, ...head };
        }
      }
      if (!best || best.planned.plan.kind !== 'dispatch') break;

      const batch = best.planned.items.slice(0, best.planned.plan.size);
      const slot = this.pickExecutor(best.queue.key, batch, free);
      if (!slot) {
        skipped.add(best.queue);
        continue;
      }
      plans.delete(best.queue);
      this.start(slot, best.queue, batch, now);
    }
    this.armWakeTimer(plans, now);
  }

  /**
   * The free executor that has been idle longest and can run the model. Items put back after a
   * failure avoid the executor they failed on while another one that can run the model exists.
   */
  private pickExecutor(
    key: string,
    batch: ReadonlyArray<QueueItem<TIn, TOut>>,
    free: ReadonlyArray<ExecutorSlot<TIn, TOut>>,
  ): ExecutorSlot<TIn, TOut> | undefined {
    const eligible = free.filter((s) => s.executor.canRun(key));
    const avoid = new Set<string>();
    for (const item of batch) if (item.failedOn !== undefined) avoid.add(item.failedOn);
    if (avoid.size === 0) return eligible[0];
    const fresh = eligible.find((s) => !avoid.has(s.executor.id));
    if (fresh) return fresh;
    for (const slot of this.executors.values()) {
      if (!avoid.has(slot.executor.id) && slot.executor.canRun(key)) return undefined; // busy: wait for it
    }
    return eligible[0];
  }

  private start(slot: ExecutorSlot<TIn, TOut>, queue: ModelQueue<TIn, TOut>, batch: Array<QueueItem<TIn, TOut>>, now: number): void {
    slot.busy = true;
    queue.take(batch, now);
    let run: Promise<TOut[]>;
    try {
      run = Promise.resolve(slot.executor.run(queue.key, batch.map((item) => item.input)));
    } catch (err) {
      run = Promise.reject(err);
    }
    run.then(
      (results) => this.finish(slot, queue, batch, now, { ok: true, results }),
      (error: unknown) => this.finish(slot, queue, batch, now, { ok: false, error }),
    );
  }

  private finish(
    slot: ExecutorSlot<TIn, TOut>,
    queue: ModelQueue<TIn, TOut>,
    batch: Array<QueueItem<TIn, TOut>>,
    startedAt: number,
    outcome: { ok: true; results: TOut[] } | { ok: false; error: unknown },
  ): void {
    const now = this.clock.now();
    if (this.executors.get(slot.executor.id) === slot) {
      slot.busy = false;
      slot.idleSince = now;
    }
    if (outcome.ok && Array.isArray(outcome.results) && outcome.results.length === batch.length) {
      const { results } = outcome;
      const computeMs = now - startedAt;
      queue.latency.observe(batch.length, computeMs);
      this.fanout.onBatch?.(queue.key, batch.length, batch.map((item) => startedAt - item.enqueuedAt), computeMs);
      batch.forEach((item, k) => queue.succeed(item, results[k] as TOut));
    } else if (outcome.ok) {
      const got = Array.isArray(outcome.results) ? outcome.results.length : typeof outcome.results;
      const err = new ServeError('INTERNAL', `executor '${slot.executor.id}' returned ${got} results for ${batch.length} inputs`, {
        model: queue.key,
        executor: slot.executor.id,
        expected: batch.length,
        got,
      });
      for (const item of batch) queue.fail(item, err);
    } else {
      const retry = isRetryableError(outcome.error);
      for (const item of batch) {
        if (item.state !== 'running') continue; // settled by its deadline or abort meanwhile
        if (retry && !item.retried) {
          if (queue.putBack(item, slot.executor.id)) continue;
          queue.fail(item, queue.closeReason);
          continue;
        }
        queue.fail(item, outcome.error);
      }
    }
    queue.endRun(batch.length);
    if (queue.closed && queue.isIdle()) this.retiring.delete(queue);
    this.schedulePump();
  }

  private armWakeTimer(plans: ReadonlyMap<ModelQueue<TIn, TOut>, Planned<TIn, TOut>>, now: number): void {
    let until = Infinity;
    for (const { plan } of plans.values()) if (plan.kind === 'wait') until = Math.min(until, plan.until);
    if (until === this.wakeAt) return;
    this.clearWakeTimer();
    if (until === Infinity) return;
    this.wakeAt = until;
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      this.pump(until);
    }, Math.ceil(until - now));
  }

  private clearWakeTimer(): void {
    if (this.wakeTimer !== undefined) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = Infinity;
  }

  private queuesFor(key: string): Array<ModelQueue<TIn, TOut>> {
    const queues = [...this.retiring].filter((q) => q.key === key);
    const live = this.models.get(key);
    if (live) queues.push(live);
    return queues;
  }

  private readonly fanout: BatchObserver = {
    onBatch: (key, size, queueMs, computeMs) => {
      for (const o of this.observers) this.safely(() => o.onBatch?.(key, size, queueMs, computeMs));
    },
    onItemDone: (key, outcome, queueMs, totalMs, stage) => {
      for (const o of this.observers) this.safely(() => o.onItemDone?.(key, outcome, queueMs, totalMs, stage));
    },
  };

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onObserverError(err);
    }
  }
}
