// The batching scheduler's vocabulary: what callers configure, what they pass per request,
// and what it reports. Pure types; validation and defaults live in options.ts.

/** A model's dynamic batching knobs; the names follow Triton's model config. */
export interface BatchingOptions {
  /** Triton `max_batch_size`: the most items one executor run may take (≥ 1). */
  maxBatchSize: number;
  /**
   * Triton `max_queue_delay_microseconds`, in ms: how long the oldest queued item may wait for a
   * batch to fill. 0 = dispatch as soon as an executor is free.
   */
  maxQueueDelayMs: number;
  /** Triton `max_queue_size`: live queued items; one more is rejected at once with QUEUE_FULL. */
  maxQueueSize: number;
  /** Triton `preferred_batch_size`: sizes to form when more than one size is possible. */
  preferredBatchSizes?: number[];
  /**
   * Soft per-item latency target (enqueue → result) that batch sizes and waits are planned
   * against; see docs/batching.md. Never expires an item: only its hard deadline does.
   */
  latencyTargetMs?: number;
  /** Triton `priority_levels`: valid priorities are 1 (highest) … priorityLevels. */
  priorityLevels?: number;
  /** Triton `default_priority_level`: the priority of an item that names none. */
  defaultPriority?: number;
  /**
   * Starvation guard: an item that has waited this long is served as if it had priority 1
   * (oldest first), so a stream of urgent work cannot starve it forever. Infinity disables it.
   */
  priorityAgingMs?: number;
}

/** Per-request scheduling facts, set once at the transport edge. */
export interface ItemOptions {
  /** 1 = highest; 0 or absent = the model's default priority (Triton's convention). */
  priority?: number;
  /** Absolute time on the dispatcher's clock after which the result is useless; default Infinity. */
  deadline?: number;
  /** The client's cancellation. */
  signal?: AbortSignal;
}

/** Time source; the real one is performance.now() and the global timers (see clock.ts). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * How an item left the scheduler: `rejected` = refused at enqueue (full queue, model not ready,
 * invalid priority) or removed with its model; `failed` = an executor error.
 */
export type ItemOutcome = 'success' | 'failed' | 'cancelled' | 'expired' | 'rejected';

/**
 * Where an item was when it settled: `queued` = waiting for an executor (refused at enqueue
 * included), so no compute is spent on it from then on; `running` = inside an executor's run,
 * whose work for it is spent (and, for a cancelled or expired item, discarded).
 */
export type ItemStage = 'queued' | 'running';

/** Hooks for the metrics layer. Called synchronously; they must be cheap. */
export interface BatchObserver {
  /** One successful executor run: its size, each item's time in queue, and the run's duration. */
  onBatch?(modelKey: string, size: number, queueMsPerItem: readonly number[], computeMs: number): void;
  /** Once per item, when its promise settles. queueMs ends at its (last) dispatch, or at settling. */
  onItemDone?(modelKey: string, outcome: ItemOutcome, queueMs: number, totalMs: number, stage: ItemStage): void;
}

export interface BatchingStats {
  /** Live items waiting for an executor. */
  queueDepth: number;
  /** Items inside executor runs that have not returned yet (including ones already cancelled). */
  running: number;
  /** Executor runs in flight for this model. */
  runningBatches: number;
}
