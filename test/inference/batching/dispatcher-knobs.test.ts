// The batching knobs, ordering and fairness, end to end through the Dispatcher with fake
// executors and fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Dispatcher, type BatchingOptions } from '../../../src/inference/batching/index.ts';
import { FakeExecutor, TimedExecutor, advance, advanceTo, flush, track } from './fakes.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(options: Partial<BatchingOptions> = {}, executors: Array<FakeExecutor | TimedExecutor> = [new FakeExecutor('w1')]) {
  const d = new Dispatcher<number, string>();
  d.setModel('m', { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 100, ...options });
  for (const e of executors) d.addExecutor(e);
  return d;
}

describe('maxBatchSize and maxQueueDelayMs = 0', () => {
  it('dispatches a lone request in the tick it arrives in, with no timer', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({}, [w]);
    const r = track(d.enqueue('m', 1));
    await flush();
    expect(w.runs.map((r) => [r.inputs, r.at])).toEqual([[[1], 0]]);
    expect(vi.getTimerCount()).toBe(0);
    w.succeed();
    await flush();
    expect(r).toMatchObject({ status: 'fulfilled', value: 'm:1', at: 0 });
  });

  it('forms one batch from arrivals in the same tick, and never more than maxBatchSize', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({}, [w]);
    const results = [1, 2, 3, 4, 5, 6].map((x) => track(d.enqueue('m', x)));
    await flush();
    expect(w.batches).toEqual([[1, 2, 3, 4]]);
    w.succeed();
    await flush();
    expect(w.batches).toEqual([[1, 2, 3, 4], [5, 6]]);
    w.succeed();
    await flush();
    expect(results.map((r) => r.value)).toEqual(['m:1', 'm:2', 'm:3', 'm:4', 'm:5', 'm:6']);
  });

  it('takes up to maxBatchSize of what piled up while the executor was busy', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({}, [w]);
    track(d.enqueue('m', 1));
    await flush();
    for (const x of [2, 3, 4, 5, 6, 7]) {
      track(d.enqueue('m', x));
      await advance(1);
    }
    expect(w.batches).toEqual([[1]]);
    w.succeed();
    await flush();
    expect(w.batches).toEqual([[1], [2, 3, 4, 5]]);
    expect(w.runs[1]?.at).toBe(6);
  });
});

describe('maxQueueDelayMs > 0', () => {
  it('waits for more items up to the delay of the oldest, with a single timer', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxQueueDelayMs: 10 }, [w]);
    track(d.enqueue('m', 1));
    await advance(3);
    track(d.enqueue('m', 2));
    await advance(6);
    expect(w.runs).toEqual([]);
    expect(vi.getTimerCount()).toBe(1);
    await advance(1);
    expect(w.runs.map((r) => [r.inputs, r.at])).toEqual([[[1, 2], 10]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('dispatches at once when the batch fills before the delay', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxQueueDelayMs: 10 }, [w]);
    for (const x of [1, 2, 3, 4]) {
      track(d.enqueue('m', x));
      await advance(2);
    }
    expect(w.runs.map((r) => [r.inputs, r.at])).toEqual([[[1, 2, 3, 4], 6]]);
  });

  it('cuts the wait short so that an item still meets its deadline', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxQueueDelayMs: 50 }, [w]);
    d.observeLatency('m', 1, 10);
    track(d.enqueue('m', 1, { deadline: 30 }));
    await advance(18);
    expect(w.runs).toEqual([]);
    await advance(1);
    // 30 − L(1) − 1 ms margin: done at 29, before the deadline instant.
    expect(w.runs.map((r) => [r.inputs, r.at])).toEqual([[[1], 19]]);
  });

  it('does not wait for an item with a deadline before any latency has been measured', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxQueueDelayMs: 50 }, [w]);
    track(d.enqueue('m', 1, { deadline: 10_000 }));
    await flush();
    expect(w.runs.map((r) => r.at)).toEqual([0]);
  });
});

describe('maxQueueSize', () => {
  it('admits a request before decoding only while the queue has room', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxQueueSize: 2, maxBatchSize: 1 }, [w]);
    track(d.enqueue('m', 1)); // running, not queued
    await flush();
    expect(() => d.admit('m')).not.toThrow();
    track(d.enqueue('m', 2));
    expect(() => d.admit('m')).not.toThrow();
    track(d.enqueue('m', 3));
    let refused: unknown;
    try {
      d.admit('m');
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'QUEUE_FULL', details: { model: 'm', maxQueueSize: 2 } });
    w.succeed(); // the running item finishes, a queued one starts: room again
    await flush();
    expect(() => d.admit('m')).not.toThrow();
    expect(() => d.admit('nope')).toThrow(/not loaded/);
  });

  it('rejects one more live item at once with QUEUE_FULL', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxQueueSize: 2, maxBatchSize: 1 }, [w]);
    track(d.enqueue('m', 1)); // running, not queued
    await flush();
    const abort = new AbortController();
    const queued = [track(d.enqueue('m', 2, { signal: abort.signal })), track(d.enqueue('m', 3))];
    const over = track(d.enqueue('m', 4));
    await flush();
    expect(over).toMatchObject({ status: 'rejected', code: 'QUEUE_FULL', at: 0 });
    expect((over.error as { details: object }).details).toEqual({ model: 'm', maxQueueSize: 2 });
    expect(queued.map((q) => q.status)).toEqual(['pending', 'pending']);
    // Only live items count: a cancelled one frees its place.
    abort.abort();
    const fits = track(d.enqueue('m', 5));
    await flush();
    expect(fits.status).toBe('pending');
    expect(d.stats('m')).toEqual({ queueDepth: 2, running: 1, runningBatches: 1 });
  });

  it('adds a retry-after hint once a batch has been measured', async () => {
    const d = setup({ maxQueueSize: 1, maxBatchSize: 4 }, [new FakeExecutor('w1', [])]);
    d.addExecutor(new FakeExecutor('w2', ['m']));
    d.observeLatency('m', 4, 42.5);
    track(d.enqueue('m', 1));
    await flush();
    track(d.enqueue('m', 2));
    const over = track(d.enqueue('m', 3));
    await flush();
    expect((over.error as { details: object }).details).toMatchObject({ retryAfterMs: 43 });
  });
});

describe('preferredBatchSizes', () => {
  it('forms the largest preferred size that fits, then the next, then what is left', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxBatchSize: 8, preferredBatchSizes: [2, 4] }, [w]);
    track(d.enqueue('m', 0));
    await flush();
    for (const x of [1, 2, 3, 4, 5, 6, 7]) track(d.enqueue('m', x));
    for (let k = 0; k < 4; k++) {
      w.succeed();
      await flush();
    }
    expect(w.batches).toEqual([[0], [1, 2, 3, 4], [5, 6], [7]]);
  });

  it('dispatches as soon as a preferred size forms, without waiting for the delay', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxBatchSize: 8, maxQueueDelayMs: 20, preferredBatchSizes: [3] }, [w]);
    for (const x of [1, 2, 3]) {
      track(d.enqueue('m', x));
      await advance(1);
    }
    expect(w.runs.map((r) => [r.inputs, r.at])).toEqual([[[1, 2, 3], 2]]);
  });

  it('after the delay expired, takes up to maxBatchSize regardless of the preferred sizes (Triton)', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxBatchSize: 8, maxQueueDelayMs: 10, preferredBatchSizes: [4] }, [w]);
    for (const x of [1, 2, 3, 4]) track(d.enqueue('m', x));
    await flush();
    for (const x of [5, 6, 7, 8, 9, 10, 11]) track(d.enqueue('m', x));
    await advance(15);
    w.succeed();
    await flush();
    expect(w.batches).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8, 9, 10, 11],
    ]);
  });
});

describe('ordering', () => {
  it('serves priority 1 first and FIFO within a priority; no priority = the lowest level', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxBatchSize: 2, priorityLevels: 5 }, [w]);
    track(d.enqueue('m', 0));
    await flush();
    track(d.enqueue('m', 1, { priority: 3 }));
    track(d.enqueue('m', 2)); // default: 5
    track(d.enqueue('m', 3, { priority: 1 }));
    track(d.enqueue('m', 4, { priority: 3 }));
    track(d.enqueue('m', 5, { priority: 0 })); // 0 = default, as in KServe
    track(d.enqueue('m', 6, { priority: 1 }));
    for (let k = 0; k < 4; k++) {
      w.succeed();
      await flush();
    }
    expect(w.batches).toEqual([[0], [3, 6], [1, 4], [2, 5]]);
  });

  it('rejects a priority outside 1…priorityLevels with INVALID_INPUT', async () => {
    const d = setup({ priorityLevels: 3 });
    const bad = [4, -1, 1.5].map((priority) => track(d.enqueue('m', 1, { priority })));
    await flush();
    expect(bad.map((b) => b.code)).toEqual(['INVALID_INPUT', 'INVALID_INPUT', 'INVALID_INPUT']);
  });

  async function lowPriorityUnderAStream(priorityAgingMs: number) {
    const w = new TimedExecutor('w1', () => 30);
    const d = setup({ maxBatchSize: 1, priorityAgingMs }, [w]);
    track(d.enqueue('m', 1000, { priority: 1 }));
    const low = track(d.enqueue('m', -1, { priority: 10 }));
    for (let t = 10; t <= 300; t += 10) {
      await advanceTo(t);
      track(d.enqueue('m', t, { priority: 1 }));
    }
    d.close();
    await flush();
    return { low, lowRun: w.runs.find((r) => r.inputs[0] === -1) };
  }

  it('starvation guard: a low-priority item is served after priorityAgingMs despite a stream of urgent ones', async () => {
    const { low, lowRun } = await lowPriorityUnderAStream(100);
    // Runs start every 30 ms; at 120 the low item has waited 120 ≥ 100 and is the oldest.
    expect(lowRun?.start).toBe(120);
    expect(low.status).toBe('fulfilled');
  });

  it('without the guard, the same stream starves the low-priority item', async () => {
    const { low, lowRun } = await lowPriorityUnderAStream(Infinity);
    expect(lowRun).toBeUndefined();
    expect(low.code).toBe('MODEL_NOT_READY'); // rejected by close()
  });
});

describe('several models and executors', () => {
  it('FIFO across models at equal priority: a backlog of one model does not jump older items of another', async () => {
    const w = new FakeExecutor('w1');
    const d = setup({ maxBatchSize: 2 }, [w]);
    d.setModel('n', { maxBatchSize: 2, maxQueueDelayMs: 0, maxQueueSize: 100 });
    track(d.enqueue('m', 1));
    await flush();
    track(d.enqueue('m', 2));
    track(d.enqueue('n', 1));
    track(d.enqueue('m', 3));
    track(d.enqueue('n', 2));
    track(d.enqueue('m', 4));
    for (let k = 0; k < 3; k++) {
      w.succeed();
      await flush();
    }
    expect(w.runs.map((r) => `${r.model}${r.inputs.join('')}`)).toEqual(['m1', 'm23', 'n12', 'm4']);
  });

  it('priority across models, and the starvation guard across models', async () => {
    const w = new TimedExecutor('w1', () => 30);
    const d = setup({ maxBatchSize: 1, priorityAgingMs: 100 }, [w]);
    d.setModel('n', { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 100, priorityAgingMs: 100 });
    track(d.enqueue('m', 0, { priority: 1 }));
    track(d.enqueue('n', -1, { priority: 10 }));
    for (let t = 10; t <= 200; t += 10) {
      await advanceTo(t);
      track(d.enqueue('m', t, { priority: 1 }));
    }
    expect(w.runs.map((r) => r.start)).toEqual([0, 30, 60, 90, 120, 150, 180]);
    // Model n's lone low-priority item goes as soon as it has aged (at the run starting at 120).
    expect(w.runs.map((r) => r.inputs[0])).toEqual([0, 10, 20, 30, -1, 40, 50]);
    d.close();
  });

  it('gives each model only to executors that can run it', async () => {
    const wa = new FakeExecutor('wa', ['m']);
    const wb = new FakeExecutor('wb', ['n']);
    const d = setup({}, [wa, wb]);
    d.setModel('n', { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 100 });
    track(d.enqueue('n', 1));
    track(d.enqueue('n', 2));
    await flush();
    expect(wa.runs).toEqual([]);
    expect(wb.batches).toEqual([[1, 2]]);
    track(d.enqueue('n', 3));
    await flush();
    expect(wa.runs).toEqual([]); // wa is free but cannot run n: n waits for wb
    wb.succeed();
    await flush();
    expect(wb.batches).toEqual([[1, 2], [3]]);
  });

  it('spreads batches over free executors, the longest idle first', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const d = setup({ maxBatchSize: 2 }, [w1, w2]);
    [1, 2, 3, 4, 5].forEach((x) => track(d.enqueue('m', x)));
    await flush();
    expect([w1.batches, w2.batches]).toEqual([[[1, 2]], [[3, 4]]]);
    await advance(5);
    w2.succeed(); // free at 5: takes [5] at once
    await advance(2);
    w2.succeed(); // idle since 7
    await advance(3);
    w1.succeed(); // idle since 10
    await flush();
    track(d.enqueue('m', 6));
    await flush();
    expect([w1.batches, w2.batches]).toEqual([[[1, 2]], [[3, 4], [5], [6]]]);
  });

  it('replans when an executor starts being able to run a model (reschedule)', async () => {
    const w1 = new FakeExecutor('w1', ['m']);
    const w2 = new FakeExecutor('w2', ['other']);
    const d = setup({ maxBatchSize: 1 }, [w1, w2]);
    track(d.enqueue('m', 1));
    track(d.enqueue('m', 2));
    await flush();
    expect([w1.batches, w2.batches]).toEqual([[[1]], []]);
    w2.models = ['other', 'm']; // w2 loaded the model
    d.reschedule();
    await flush();
    expect([w1.batches, w2.batches]).toEqual([[[1]], [[2]]]);
  });
});
