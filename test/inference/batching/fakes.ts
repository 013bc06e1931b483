// Collaborators for the batching tests: executors whose runs finish when the test says so (or
// after a scripted latency on the fake clock), and a recorder of promise settlements.
import { vi } from 'vitest';
import type { BatchObserver, Executor, ItemOutcome } from '../../../src/inference/batching/index.ts';

export interface FakeRun {
  model: string;
  inputs: number[];
  at: number;
  resolve(results: string[]): void;
  reject(err: unknown): void;
}

/** An executor whose runs stay pending until the test resolves or rejects them. */
export class FakeExecutor implements Executor<number, string> {
  readonly runs: FakeRun[] = [];

  constructor(
    readonly id: string,
    public models: readonly string[] | 'all' = 'all',
  ) {}

  canRun(model: string): boolean {
    return this.models === 'all' || this.models.includes(model);
  }

  run(model: string, inputs: number[]): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.runs.push({ model, inputs: [...inputs], at: performance.now(), resolve, reject });
    });
  }

  /** Inputs of every run so far, in order. */
  get batches(): number[][] {
    return this.runs.map((r) => r.inputs);
  }

  /** Finishes run k (default: the latest) with one result per input, `model:input`. */
  succeed(k = this.runs.length - 1): void {
    const run = this.runs[k];
    if (!run) throw new Error(`no run ${k}`);
    run.resolve(run.inputs.map((x) => `${run.model}:${x}`));
  }

  fail(err: unknown, k = this.runs.length - 1): void {
    const run = this.runs[k];
    if (!run) throw new Error(`no run ${k}`);
    run.reject(err);
  }
}

/** An executor that takes `latency(batchSize, model)` ms of fake time per run, and records each run. */
export class TimedExecutor implements Executor<number, string> {
  readonly runs: Array<{ model: string; inputs: number[]; start: number; end: number }> = [];

  constructor(
    readonly id: string,
    private readonly latency: (size: number, model: string) => number,
  ) {}

  canRun(): boolean {
    return true;
  }

  run(model: string, inputs: number[]): Promise<string[]> {
    const start = performance.now();
    const ms = this.latency(inputs.length, model);
    this.runs.push({ model, inputs: [...inputs], start, end: start + ms });
    return new Promise((resolve) => setTimeout(() => resolve(inputs.map((x) => `${model}:${x}`)), ms));
  }
}

export interface Settlement<T> {
  status: 'pending' | 'fulfilled' | 'rejected';
  value?: T;
  error?: unknown;
  /** Fake-clock time of settlement. */
  at?: number;
  /** The ServeError code, when rejected with one. */
  code?: string;
}

/** Records how and when a promise settles (and keeps its rejection handled). */
export function track<T>(promise: Promise<T>): Settlement<T> {
  const s: Settlement<T> = { status: 'pending' };
  promise.then(
    (value) => Object.assign(s, { status: 'fulfilled', value, at: performance.now() }),
    (error: unknown) =>
      Object.assign(s, { status: 'rejected', error, at: performance.now(), code: (error as { code?: string }).code }),
  );
  return s;
}

/** Lets queued microtasks run (the dispatcher plans on a microtask), without moving time. */
export const flush = (): Promise<void> => vi.advanceTimersByTimeAsync(0).then(() => undefined);

/** Moves fake time forward, running timers and microtasks on the way. */
export const advance = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

/** Moves fake time to an absolute instant. */
export const advanceTo = (t: number): Promise<void> => advance(t - performance.now());

export interface RecordedBatch {
  model: string;
  size: number;
  queueMs: readonly number[];
  computeMs: number;
}

/** An observer that records everything it is told. */
export function recorder(): BatchObserver & {
  batches: RecordedBatch[];
  items: Array<{ model: string; outcome: ItemOutcome; queueMs: number; totalMs: number }>;
} {
  const batches: RecordedBatch[] = [];
  const items: Array<{ model: string; outcome: ItemOutcome; queueMs: number; totalMs: number }> = [];
  return {
    batches,
    items,
    onBatch: (model, size, queueMs, computeMs) => batches.push({ model, size, queueMs: [...queueMs], computeMs }),
    onItemDone: (model, outcome, queueMs, totalMs) => items.push({ model, outcome, queueMs, totalMs }),
  };
}
