import { describe, expect, it } from 'vitest';
import { planBatch, resolveBatchingOptions, type BatchingOptions } from '../../../src/inference/batching/index.ts';

const affine = (size: number): number => 10 + 5 * size; // a = 10 ms, b = 5 ms/item
const unknown = (): number => Infinity;

function plan(
  options: Partial<BatchingOptions>,
  now: number,
  enqueuedAt: number[],
  latency: (size: number) => number = affine,
  deadlines: number[] = [],
) {
  const resolved = resolveBatchingOptions({ maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 1000, ...options });
  const items = enqueuedAt.map((t, i) => ({ enqueuedAt: t, deadline: deadlines[i] ?? Infinity }));
  return planBatch({ now, items, options: resolved, latency });
}

const every = (step: number, count: number, from = 0): number[] => Array.from({ length: count }, (_, i) => from + i * step);

describe('planBatch without a latency target (Triton rules)', () => {
  it('is idle on an empty queue', () => {
    expect(plan({}, 0, [])).toEqual({ kind: 'idle' });
  });

  it('dispatches what is there at once when maxQueueDelayMs is 0', () => {
    expect(plan({}, 0, [0])).toEqual({ kind: 'dispatch', size: 1, reason: 'no-delay' });
    expect(plan({}, 0, every(0, 20))).toEqual({ kind: 'dispatch', size: 8, reason: 'full' });
  });

  it('waits for the oldest item to reach maxQueueDelayMs, then takes what is there', () => {
    expect(plan({ maxQueueDelayMs: 10 }, 3, [0, 3])).toEqual({ kind: 'wait', until: 10 });
    expect(plan({ maxQueueDelayMs: 10 }, 10, [0, 3])).toEqual({ kind: 'dispatch', size: 2, reason: 'delay-expired' });
    expect(plan({ maxQueueDelayMs: 10 }, 5, every(0, 8))).toEqual({ kind: 'dispatch', size: 8, reason: 'full' });
  });

  it('forms the largest preferred size that fits, at once; after the delay, as many as allowed', () => {
    const options = { maxQueueDelayMs: 10, preferredBatchSizes: [4, 2] };
    expect(plan(options, 0, [0])).toEqual({ kind: 'wait', until: 10 });
    expect(plan(options, 0, every(0, 3))).toEqual({ kind: 'dispatch', size: 2, reason: 'preferred' });
    expect(plan(options, 0, every(0, 7))).toEqual({ kind: 'dispatch', size: 4, reason: 'preferred' });
    expect(plan(options, 10, every(0, 7))).toEqual({ kind: 'dispatch', size: 7, reason: 'delay-expired' });
  });

  it('never waits past the point where an item would miss its hard deadline', () => {
    // deadline 30, L(2) = 20 → must start by 9 (to finish 1 ms early), though the delay allows 50.
    expect(plan({ maxQueueDelayMs: 50 }, 0, [0, 0], affine, [30, Infinity])).toEqual({ kind: 'wait', until: 9 });
    expect(plan({ maxQueueDelayMs: 50 }, 9, [0, 0], affine, [30, Infinity])).toEqual({ kind: 'dispatch', size: 2, reason: 'deadline' });
    // Latency not measured yet: a finite deadline forbids betting on a wait.
    expect(plan({ maxQueueDelayMs: 50 }, 0, [0], unknown, [1000])).toEqual({ kind: 'dispatch', size: 1, reason: 'deadline' });
    expect(plan({ maxQueueDelayMs: 50 }, 0, [0], unknown)).toEqual({ kind: 'wait', until: 50 });
  });
});

describe('planBatch with latencyTargetMs (L(b) = 10 + 5b ms, target 100 ms, maxBatchSize 8)', () => {
  const target = { latencyTargetMs: 100, maxQueueDelayMs: 100 };

  it('worked example 1, sparse arrivals: waits only as long as the oldest item can afford', () => {
    // Items arrive every 20 ms. The oldest (enqueued at 0) must be done by 100, so a batch of n
    // must start by 100 − L(n): 85, 80, 75, 70.
    expect(plan(target, 0, [0])).toEqual({ kind: 'wait', until: 85 });
    expect(plan(target, 20, [0, 20])).toEqual({ kind: 'wait', until: 80 });
    expect(plan(target, 40, [0, 20, 40])).toEqual({ kind: 'wait', until: 75 });
    expect(plan(target, 60, [0, 20, 40, 60])).toEqual({ kind: 'wait', until: 70 });
    expect(plan(target, 70, [0, 20, 40, 60])).toEqual({ kind: 'dispatch', size: 4, reason: 'target' });
  });

  it('worked example 2, a backlog: picks the batch after which everyone can still make it', () => {
    // 12 items enqueued at 0, 5, …, 55; the executor frees up at 60. A batch of 8 would end at
    // 110 and make item 0 late; 6 ends at 100, then 4 (ends 130) and 2 (ends 150) keep every
    // item within 100 ms of its arrival.
    expect(plan(target, 60, every(5, 12))).toEqual({ kind: 'dispatch', size: 6, reason: 'target' });
    expect(plan(target, 100, every(5, 6, 30))).toEqual({ kind: 'dispatch', size: 4, reason: 'target' });
    expect(plan(target, 130, [50, 55])).toEqual({ kind: 'dispatch', size: 2, reason: 'target' });
    // Earlier, the whole backlog fits: a full batch.
    expect(plan(target, 40, every(5, 8))).toEqual({ kind: 'dispatch', size: 8, reason: 'target' });
  });

  it('dispatches at once when an item is already late, and does not let it constrain the size', () => {
    // Item enqueued at −95 has 5 ms left < L(1): late. It is served, in a full-throughput batch.
    expect(plan(target, 0, [-95, 0, 0])).toEqual({ kind: 'dispatch', size: 3, reason: 'late' });
  });

  it('under overload (no size keeps everyone on target) goes for throughput', () => {
    // Hard deadlines 17, 21, 36 (planned 1 ms early: 16, 20, 35): each alone is feasible,
    // together they are not (item 0 needs a batch of 1 ending at 15, then item 1 ends at 30).
    expect(plan({ ...target, maxBatchSize: 3 }, 0, [0, 0, 0], affine, [17, 21, 36])).toEqual({
      kind: 'dispatch',
      size: 3,
      reason: 'overload',
    });
  });

  it('does not wait when a bigger batch is no more efficient', () => {
    const perItemOnly = (size: number): number => 10 * size;
    expect(plan(target, 0, [0], perItemOnly)).toEqual({ kind: 'dispatch', size: 1, reason: 'target' });
  });

  it('does not wait with maxQueueDelayMs = 0, or once the oldest item has waited that long', () => {
    expect(plan({ latencyTargetMs: 100, maxQueueDelayMs: 0 }, 0, [0])).toEqual({ kind: 'dispatch', size: 1, reason: 'target' });
    expect(plan({ latencyTargetMs: 100, maxQueueDelayMs: 20 }, 20, [0, 10])).toEqual({ kind: 'dispatch', size: 2, reason: 'target' });
  });

  it('treats an unmeasured model as unable to meet any target: everything goes at once, nothing waits', () => {
    expect(plan(target, 0, every(0, 3), unknown)).toEqual({ kind: 'dispatch', size: 3, reason: 'late' });
  });

  it('uses a hard deadline tighter than the target', () => {
    expect(plan(target, 0, [0], affine, [40])).toEqual({ kind: 'wait', until: 24 });
  });

  it('prefers preferred sizes among the sizes that meet the deadlines', () => {
    const options = { ...target, preferredBatchSizes: [4, 8] };
    expect(plan(options, 40, every(5, 8))).toEqual({ kind: 'dispatch', size: 8, reason: 'target' });
    // 7 would do, and so would 4, which is preferred.
    expect(plan(options, 40, every(5, 7))).toEqual({ kind: 'dispatch', size: 4, reason: 'target' });
    // Worked example 2: only 6 keeps everyone on target; no preferred size does, so 6 it is.
    expect(plan(options, 60, every(5, 12))).toEqual({ kind: 'dispatch', size: 6, reason: 'target' });
  });

  it('picks the size with the best measured throughput, not just the largest', () => {
    // Size 5 is measured slow (80 ms: 16 ms/item), 4 takes 30 ms (7.5 ms/item).
    const lumpy = (size: number): number => (size >= 5 ? 80 : affine(size));
    expect(plan({ latencyTargetMs: 1000, maxQueueDelayMs: 0 }, 0, every(0, 5), lumpy)).toEqual({
      kind: 'dispatch',
      size: 4,
      reason: 'target',
    });
  });
});
