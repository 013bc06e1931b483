// The latency-target planner end to end: an executor whose runs take L(b) = 10 + 5·b ms of fake
// time, latencyTargetMs 100, maxBatchSize 8, maxQueueDelayMs 100. Compared with the same
// arrivals under plain Triton rules.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Dispatcher, type BatchingOptions } from '../../../src/inference/batching/index.ts';
import { TimedExecutor, advanceTo, flush, track, type Settlement } from './fakes.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const L = (size: number): number => 10 + 5 * size;
const TARGET = 100;

interface Arrival {
  input: number;
  at: number;
  settlement: Settlement<string>;
}

/**
 * Runs `arrivalTimes` for model m (input = index) through one executor. `busyUntil` first
 * occupies the executor with another model's run. Returns m's runs and each item's latency.
 */
async function simulate(options: Partial<BatchingOptions>, arrivalTimes: number[], busyUntil = 0) {
  const d = new Dispatcher<number, string>();
  const w = new TimedExecutor('w1', (size, model) => (model === 'other' ? busyUntil : L(size)));
  d.setModel('m', { maxBatchSize: 8, maxQueueDelayMs: 100, maxQueueSize: 1000, ...options });
  d.setModel('other', { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 1 });
  d.addExecutor(w);
  // As the worker pool would after warming up batch sizes 1 and 8.
  d.observeLatency('m', 1, L(1));
  d.observeLatency('m', 8, L(8));
  if (busyUntil > 0) {
    track(d.enqueue('other', -1));
    await flush();
  }
  const arrivals: Arrival[] = [];
  for (const [input, at] of arrivalTimes.entries()) {
    await advanceTo(at);
    arrivals.push({ input, at, settlement: track(d.enqueue('m', input)) });
  }
  await vi.runAllTimersAsync();
  const runs = w.runs.filter((r) => r.model === 'm').map((r) => ({ inputs: r.inputs, start: r.start, end: r.end }));
  const latencies = arrivals.map((a) => (a.settlement.at ?? Infinity) - a.at);
  expect(arrivals.every((a) => a.settlement.status === 'fulfilled')).toBe(true);
  return { runs, latencies };
}

const every = (step: number, count: number, from = 0): number[] => Array.from({ length: count }, (_, i) => from + i * step);

describe('latencyTargetMs', () => {
  it('sparse arrivals (every 20 ms): batches of 4, each started just in time for its oldest item', async () => {
    const { runs, latencies } = await simulate({ latencyTargetMs: TARGET }, every(20, 10));
    expect(runs).toEqual([
      { inputs: [0, 1, 2, 3], start: 70, end: 100 },
      { inputs: [4, 5, 6, 7], start: 150, end: 180 },
      { inputs: [8, 9], start: 240, end: 260 },
    ]);
    expect(Math.max(...latencies)).toBe(TARGET);
  });

  it('the same arrivals under Triton rules wait the full delay and miss 100 ms', async () => {
    const { runs, latencies } = await simulate({}, every(20, 10));
    expect(runs).toEqual([
      { inputs: [0, 1, 2, 3, 4], start: 100, end: 135 },
      { inputs: [5, 6, 7, 8, 9], start: 200, end: 235 },
    ]);
    expect(Math.max(...latencies)).toBe(135);
  });

  it('a backlog (12 items while the executor is busy until 60): sizes 6, 4, 2 keep everyone on target', async () => {
    const { runs, latencies } = await simulate({ latencyTargetMs: TARGET }, every(5, 12), 60);
    expect(runs).toEqual([
      { inputs: [0, 1, 2, 3, 4, 5], start: 60, end: 100 },
      { inputs: [6, 7, 8, 9], start: 100, end: 130 },
      { inputs: [10, 11], start: 130, end: 150 },
    ]);
    expect(Math.max(...latencies)).toBe(TARGET);
  });

  it('the same backlog under Triton rules takes a full batch first and makes the oldest items late', async () => {
    const { runs, latencies } = await simulate({ maxQueueDelayMs: 0 }, every(5, 12), 60);
    expect(runs).toEqual([
      { inputs: [0, 1, 2, 3, 4, 5, 6, 7], start: 60, end: 110 },
      { inputs: [8, 9, 10, 11], start: 110, end: 140 },
    ]);
    expect(latencies.slice(0, 3)).toEqual([110, 105, 100]);
  });

  it('steady load within capacity (one item every 8 ms for a second): nobody misses the target, batches stay large', async () => {
    const arrivals = every(8, 125);
    const { runs, latencies } = await simulate({ latencyTargetMs: TARGET }, arrivals);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(TARGET);
    expect(runs.flatMap((r) => r.inputs)).toEqual(arrivals.map((_, i) => i));
    expect(runs.map((r) => r.inputs.length)).toEqual([...Array<number>(17).fill(7), 6]);
  });

  it('sustained overload (one item every 6 ms, capacity 8 per 50 ms): full batches once it cannot keep up; nothing dropped', async () => {
    const { runs, latencies } = await simulate({ latencyTargetMs: TARGET }, every(6, 167));
    // Batches shrink while a smaller one still keeps everyone on target, then go full size.
    expect(runs.map((r) => r.inputs.length)).toEqual([8, 8, 8, 8, 8, 7, 7, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 6]);
    expect(latencies.filter((l) => l > TARGET).length).toBe(68);
  });

  it('items that cannot make the target are still served, at once and in full batches', async () => {
    const { runs, latencies } = await simulate({ latencyTargetMs: TARGET }, [0, 0, 0], 150);
    expect(runs).toEqual([{ inputs: [0, 1, 2], start: 150, end: 175 }]);
    expect(latencies).toEqual([175, 175, 175]);
  });

  it('a hard deadline tighter than the target shortens the wait (to finish 1 ms before it)', async () => {
    const d = new Dispatcher<number, string>();
    const w = new TimedExecutor('w1', L);
    d.setModel('m', { maxBatchSize: 8, maxQueueDelayMs: 100, maxQueueSize: 10, latencyTargetMs: TARGET });
    d.addExecutor(w);
    d.observeLatency('m', 1, L(1));
    d.observeLatency('m', 8, L(8));
    const x = track(d.enqueue('m', 1, { deadline: 40 }));
    await vi.runAllTimersAsync();
    expect(w.runs).toEqual([{ model: 'm', inputs: [1], start: 24, end: 39 }]);
    expect(x).toMatchObject({ status: 'fulfilled', at: 39 });
  });

  it('with a single measured size there is no evidence that batching pays: it does not wait', async () => {
    const d = new Dispatcher<number, string>();
    const w = new TimedExecutor('w1', L);
    d.setModel('m', { maxBatchSize: 8, maxQueueDelayMs: 100, maxQueueSize: 10, latencyTargetMs: TARGET });
    d.addExecutor(w);
    d.observeLatency('m', 1, L(1)); // estimates 15·b for b > 1: no throughput gain
    track(d.enqueue('m', 1));
    await vi.runAllTimersAsync();
    expect(w.runs.map((r) => r.start)).toEqual([0]);
  });
});
