// Cancellation, deadlines, executor failures, model removal and draining, observability.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import { Dispatcher, WorkerLostError, type BatchingOptions } from '../../../src/inference/batching/index.ts';
import { FakeExecutor, advance, flush, recorder, track } from './fakes.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(options: Partial<BatchingOptions> = {}, executors: FakeExecutor[] = [new FakeExecutor('w1')]) {
  const d = new Dispatcher<number, string>();
  d.setModel('m', { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 100, ...options });
  for (const e of executors) d.addExecutor(e);
  const obs = recorder();
  d.subscribe(obs);
  return { d, obs };
}

/** Starts a run of item 0 so that what is enqueued next waits in the queue. */
async function occupy(d: Dispatcher<number, string>): Promise<void> {
  track(d.enqueue('m', 0));
  await flush();
}

describe('cancellation', () => {
  it('an abort while queued rejects with CANCELLED at that moment; the executor never sees the item', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({}, [w]);
    await occupy(d);
    const abort = new AbortController();
    const x = track(d.enqueue('m', 1, { signal: abort.signal }));
    track(d.enqueue('m', 2));
    await advance(5);
    abort.abort(new Error('client went away'));
    await flush();
    expect(x).toMatchObject({ status: 'rejected', code: 'CANCELLED', at: 5 });
    expect((x.error as Error).cause).toEqual(new Error('client went away'));
    expect(d.stats('m')).toEqual({ queueDepth: 1, running: 1, runningBatches: 1 });
    w.succeed();
    await flush();
    expect(w.batches).toEqual([[0], [2]]);
    expect(obs.items.find((i) => i.outcome === 'cancelled')).toEqual({ model: 'm', outcome: 'cancelled', queueMs: 5, totalMs: 5 });
  });

  it('an abort carrying a transport deadline counts as expired and keeps its reason', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({}, [w]);
    await occupy(d);
    const abort = new AbortController();
    const x = track(d.enqueue('m', 1, { signal: abort.signal }));
    await advance(3);
    const reason = new ServeError('DEADLINE_EXCEEDED', 'the call deadline passed');
    abort.abort(reason);
    await flush();
    expect(x).toMatchObject({ status: 'rejected', code: 'DEADLINE_EXCEEDED', at: 3 });
    expect(x.error).toBe(reason);
    expect(obs.items.find((i) => i.outcome === 'expired')).toEqual({ model: 'm', outcome: 'expired', queueMs: 3, totalMs: 3 });
    w.succeed();
  });

  it('an already aborted signal is rejected at enqueue', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({}, [w]);
    const x = track(d.enqueue('m', 1, { signal: AbortSignal.abort() }));
    await flush();
    expect(x.code).toBe('CANCELLED');
    expect(w.runs).toEqual([]);
  });

  it('an abort while running settles at once; the late result is discarded', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({}, [w]);
    const abort = new AbortController();
    const x = track(d.enqueue('m', 1, { signal: abort.signal }));
    const y = track(d.enqueue('m', 2));
    await advance(3);
    abort.abort();
    await flush();
    expect(x).toMatchObject({ status: 'rejected', code: 'CANCELLED', at: 3 });
    expect(d.stats('m')).toEqual({ queueDepth: 0, running: 2, runningBatches: 1 });
    await advance(4);
    w.succeed();
    await flush();
    expect(x.status).toBe('rejected');
    expect(y).toMatchObject({ status: 'fulfilled', value: 'm:2', at: 7 });
    expect(obs.items.map((i) => i.outcome).sort()).toEqual(['cancelled', 'success']);
  });
});

describe('deadlines', () => {
  it('an item whose deadline passes in the queue is rejected at that instant and never reaches an executor', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({}, [w]);
    await occupy(d);
    const x = track(d.enqueue('m', 1, { deadline: 25 }));
    track(d.enqueue('m', 2, { deadline: 1000 }));
    await advance(24);
    expect(x.status).toBe('pending');
    await advance(1);
    expect(x).toMatchObject({ status: 'rejected', code: 'DEADLINE_EXCEEDED', at: 25 });
    expect((x.error as ServeError).details).toEqual({ model: 'm', stage: 'queued' });
    w.succeed();
    await flush();
    expect(w.batches).toEqual([[0], [2]]);
    expect(obs.items.find((i) => i.outcome === 'expired')).toEqual({ model: 'm', outcome: 'expired', queueMs: 25, totalMs: 25 });
  });

  it('a deadline not in the future is rejected at enqueue', async () => {
    const { d } = setup();
    await advance(10);
    const x = track(d.enqueue('m', 1, { deadline: 10 }));
    await flush();
    expect(x).toMatchObject({ code: 'DEADLINE_EXCEEDED', at: 10 });
  });

  it('a deadline that passes while running rejects then; the result that comes later is discarded', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({}, [w]);
    const x = track(d.enqueue('m', 1, { deadline: 20 }));
    await advance(20);
    expect(x).toMatchObject({ status: 'rejected', code: 'DEADLINE_EXCEEDED', at: 20 });
    expect((x.error as ServeError).details).toEqual({ model: 'm', stage: 'running' });
    await advance(10);
    w.succeed();
    await flush();
    expect(x.status).toBe('rejected');
    expect(obs.items).toEqual([{ model: 'm', outcome: 'expired', queueMs: 0, totalMs: 20 }]);
    // The run itself did happen, and is measured.
    expect(obs.batches).toEqual([{ model: 'm', size: 1, queueMs: [0], computeMs: 30 }]);
  });

  it('a queue no executor can run any more keeps its items until their deadlines, and refuses new ones', async () => {
    const w = new FakeExecutor('w1', ['m']);
    const { d } = setup({}, [w]);
    await occupy(d);
    const x = track(d.enqueue('m', 1, { deadline: 50 }));
    w.models = []; // the worker unloaded the model
    w.succeed();
    await advance(49);
    expect(x.status).toBe('pending');
    expect(d.isServable('m')).toBe(false);
    const refused = track(d.enqueue('m', 2));
    await advance(1);
    expect(x).toMatchObject({ code: 'DEADLINE_EXCEEDED', at: 50 });
    expect(refused).toMatchObject({ code: 'MODEL_NOT_READY', at: 49 });
    expect(w.batches).toEqual([[0]]);
  });
});

describe('executor failures', () => {
  it('a retryable failure puts the items back in their place once, on another executor', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const { d, obs } = setup({ maxBatchSize: 4 }, [w1, w2]);
    const first = [1, 2].map((x) => track(d.enqueue('m', x)));
    await flush();
    w2.models = []; // keep w2 out of it for now
    const later = track(d.enqueue('m', 3));
    await flush();
    expect([w1.batches, w2.batches]).toEqual([[[1, 2]], []]);
    w2.models = 'all';
    w1.fail(new WorkerLostError('worker exited with code 1'));
    await flush();
    // The retried items keep their places ahead of the later item, and avoid w1.
    expect([w1.batches, w2.batches]).toEqual([[[1, 2]], [[1, 2, 3]]]);
    w2.succeed();
    await flush();
    expect([...first, later].map((r) => r.value)).toEqual(['m:1', 'm:2', 'm:3']);
    expect(obs.items.map((i) => i.outcome)).toEqual(['success', 'success', 'success']);
  });

  it('a second retryable failure rejects the items with that error', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const { d, obs } = setup({}, [w1, w2]);
    const x = track(d.enqueue('m', 1));
    await flush();
    w1.fail(new WorkerLostError('first'));
    await flush();
    const second = new WorkerLostError('second');
    w2.fail(second);
    await flush();
    expect(x.error).toBe(second);
    expect(w1.batches.length + w2.batches.length).toBe(2);
    expect(obs.items).toEqual([{ model: 'm', outcome: 'failed', queueMs: 0, totalMs: 0 }]);
  });

  it('a ServeError marked retryable is retried; with a single executor, on that one', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({}, [w]);
    const x = track(d.enqueue('m', 1));
    await flush();
    w.fail(new ServeError('INTERNAL', 'out of memory', { retryable: true }));
    await flush();
    w.succeed();
    await flush();
    expect(w.batches).toEqual([[1], [1]]);
    expect(x.value).toBe('m:1');
  });

  it('the retry waits for another executor that is busy rather than reuse the failed one', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const { d } = setup({ maxBatchSize: 1 }, [w1, w2]);
    track(d.enqueue('m', 1));
    track(d.enqueue('m', 2));
    await flush();
    w1.fail(new WorkerLostError('gone'));
    await advance(5);
    expect(w1.batches).toEqual([[1]]);
    w2.succeed();
    await flush();
    expect(w2.batches).toEqual([[2], [1]]);
  });

  it('a retry holding out for a busy executor falls back to the failed one when that executor is removed', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const { d } = setup({ maxBatchSize: 1 }, [w1, w2]);
    track(d.enqueue('m', 1));
    track(d.enqueue('m', 2));
    await flush();
    w1.fail(new ServeError('INTERNAL', 'transient', { retryable: true }));
    await flush();
    d.removeExecutor('w2');
    await flush();
    expect(w1.batches).toEqual([[1], [1]]);
  });

  it('a non-retryable failure rejects the batch at once', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const { d } = setup({}, [w1, w2]);
    const xs = [1, 2].map((x) => track(d.enqueue('m', x)));
    await flush();
    const err = new Error('tensor shape mismatch');
    w1.fail(err);
    await flush();
    expect(xs.map((x) => x.error)).toEqual([err, err]);
    expect(w2.runs).toEqual([]);
  });

  it('a result array of the wrong length rejects the items with INTERNAL', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({}, [w]);
    const xs = [1, 2].map((x) => track(d.enqueue('m', x)));
    await flush();
    w.runs[0]?.resolve(['only one']);
    await flush();
    expect(xs.map((x) => x.code)).toEqual(['INTERNAL', 'INTERNAL']);
    expect((xs[0]?.error as ServeError).details).toEqual({ model: 'm', executor: 'w1', expected: 2, got: 1 });
    expect(obs.batches).toEqual([]);
  });

  it('an executor that throws synchronously fails its batch like a rejection', async () => {
    const { d } = setup({}, []);
    d.addExecutor({
      id: 'bad',
      canRun: () => true,
      run: () => {
        throw new Error('boom');
      },
    });
    const x = track(d.enqueue('m', 1));
    await flush();
    expect((x.error as Error).message).toBe('boom');
  });

  it('a removed executor is not given work again; its failed batch goes to another', async () => {
    const w1 = new FakeExecutor('w1');
    const w2 = new FakeExecutor('w2');
    const { d } = setup({ maxBatchSize: 2 }, [w1, w2]);
    [1, 2, 3].forEach((x) => track(d.enqueue('m', x)));
    await flush();
    expect(d.removeExecutor('w1')).toBe(true);
    w1.fail(new WorkerLostError('terminated'));
    await flush();
    w2.succeed();
    await flush();
    expect(w1.batches).toEqual([[1, 2]]);
    expect(w2.batches).toEqual([[3], [1, 2]]);
  });
});

describe('models coming and going', () => {
  it('removeModel rejects what is queued, lets the running batch deliver, and drain waits for it', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({ maxBatchSize: 1 }, [w]);
    const running = track(d.enqueue('m', 1));
    const queued = track(d.enqueue('m', 2));
    await flush();
    let drained = false;
    void d.drain('m').then(() => (drained = true));
    expect(d.removeModel('m')).toBe(true);
    await flush();
    expect(queued).toMatchObject({ code: 'MODEL_NOT_READY' });
    expect(d.stats('m')).toEqual({ queueDepth: 0, running: 1, runningBatches: 1 });
    expect(drained).toBe(false);
    const after = track(d.enqueue('m', 3));
    await advance(5);
    w.succeed();
    await flush();
    expect(running.value).toBe('m:1');
    expect(drained).toBe(true);
    expect(after.code).toBe('MODEL_NOT_READY');
    expect(d.stats('m')).toBeUndefined();
  });

  it('removeModel uses the given reason', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({ maxBatchSize: 1 }, [w]);
    await occupy(d);
    const queued = track(d.enqueue('m', 2));
    const reason = new ServeError('MODEL_NOT_FOUND', 'model m was deleted');
    d.removeModel('m', reason);
    await flush();
    expect(queued.error).toBe(reason);
  });

  it('a retryable failure after removal rejects with the removal reason', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({}, [w]);
    const x = track(d.enqueue('m', 1));
    await flush();
    d.removeModel('m');
    w.fail(new WorkerLostError('gone'));
    await flush();
    expect(x.code).toBe('MODEL_NOT_READY');
    expect(w.batches).toEqual([[1]]);
  });

  it('drain on a busy model resolves once nothing is queued or running', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({ maxBatchSize: 1 }, [w]);
    track(d.enqueue('m', 1));
    track(d.enqueue('m', 2));
    await flush();
    let drained = false;
    void d.drain('m').then(() => (drained = true));
    w.succeed();
    await flush();
    expect(drained).toBe(false);
    w.succeed();
    await flush();
    expect(drained).toBe(true);
    await expect(d.drain('unknown')).resolves.toBeUndefined();
  });

  it('refuses an unknown model, or one no executor can run, with MODEL_NOT_READY', async () => {
    const { d, obs } = setup({}, [new FakeExecutor('w1', ['n'])]);
    const xs = [track(d.enqueue('m', 1)), track(d.enqueue('zzz', 1))];
    await flush();
    expect(xs.map((x) => x.code)).toEqual(['MODEL_NOT_READY', 'MODEL_NOT_READY']);
    expect(obs.items.map((i) => i.outcome)).toEqual(['rejected', 'rejected']);
    expect(d.isServable('m')).toBe(false);
  });

  it('setModel validates options and names the bad fields', () => {
    const d = new Dispatcher<number, string>();
    let err: ServeError | undefined;
    try {
      d.setModel('m', { maxBatchSize: 0, maxQueueDelayMs: -1, maxQueueSize: 10, priorityLevels: 2.5 });
    } catch (e) {
      err = e as ServeError;
    }
    expect(err?.code).toBe('INVALID_CONFIG');
    expect(err?.details.fields).toEqual(['maxBatchSize', 'maxQueueDelayMs', 'priorityLevels']);
    expect(err?.message).toContain('maxBatchSize: must be ≥ 1');
    expect(() => d.setModel('m', { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10, preferredBatchSizes: [16] })).toThrow(
      /preferredBatchSizes: 16 exceeds maxBatchSize 8/,
    );
  });

  it('setModel on a registered model changes its options and keeps its queue', async () => {
    const w = new FakeExecutor('w1');
    const { d } = setup({ maxBatchSize: 1 }, [w]);
    await occupy(d);
    [1, 2, 3].forEach((x) => track(d.enqueue('m', x)));
    d.setModel('m', { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 100 });
    w.succeed();
    await flush();
    expect(w.batches).toEqual([[0], [1, 2, 3]]);
  });
});

describe('observability', () => {
  it('reports each batch (size, queue time per item, compute time) and each item outcome', async () => {
    const w = new FakeExecutor('w1');
    const { d, obs } = setup({ maxBatchSize: 2 }, [w]);
    await occupy(d);
    track(d.enqueue('m', 1));
    await advance(4);
    track(d.enqueue('m', 2));
    await advance(6);
    w.succeed();
    await advance(7);
    w.succeed();
    await flush();
    expect(obs.batches).toEqual([
      { model: 'm', size: 1, queueMs: [0], computeMs: 10 },
      { model: 'm', size: 2, queueMs: [10, 6], computeMs: 7 },
    ]);
    expect(obs.items).toEqual([
      { model: 'm', outcome: 'success', queueMs: 0, totalMs: 10 },
      { model: 'm', outcome: 'success', queueMs: 10, totalMs: 17 },
      { model: 'm', outcome: 'success', queueMs: 6, totalMs: 13 },
    ]);
    // Runs feed the latency estimates.
    expect(d.latencyEstimate('m', 1)).toBe(10);
    expect(d.latencyEstimate('m', 2)).toBe(10); // measured 7, but never below a smaller batch
  });

  it('an observer that throws disturbs nothing; its error goes to onObserverError', async () => {
    const errors: unknown[] = [];
    const d = new Dispatcher<number, string>({ onObserverError: (err) => errors.push(err) });
    d.setModel('m', { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 10 });
    const w = new FakeExecutor('w1');
    d.addExecutor(w);
    const unsubscribe = d.subscribe({
      onItemDone: () => {
        throw new Error('metrics bug');
      },
    });
    const x = track(d.enqueue('m', 1));
    await flush();
    w.succeed();
    await flush();
    expect(x.value).toBe('m:1');
    expect(errors).toEqual([new Error('metrics bug')]);
    unsubscribe();
    track(d.enqueue('m', 2));
    await flush();
    w.succeed();
    await flush();
    expect(errors.length).toBe(1);
  });
});
