// Every settled item reports where it was: dropped while queued (no compute spent) or while its
// batch was running. The metrics' densenet_inference_items_dropped_total rests on this.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Dispatcher, type ItemOutcome, type ItemStage } from '../../../src/inference/batching/index.ts';
import { FakeExecutor, advance, flush, track } from './fakes.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function setup() {
  const w = new FakeExecutor('w1');
  const d = new Dispatcher<number, string>();
  d.setModel('m', { maxBatchSize: 2, maxQueueDelayMs: 0, maxQueueSize: 3 });
  d.addExecutor(w);
  const done: Array<{ outcome: ItemOutcome; stage: ItemStage }> = [];
  d.subscribe({ onItemDone: (_model, outcome, _queueMs, _totalMs, stage) => done.push({ outcome, stage }) });
  return { d, w, done };
}

describe('item stage at settling', () => {
  it('tells items dropped before any compute from items dropped with their batch running', async () => {
    const { d, w, done } = setup();
    const runningAbort = new AbortController();
    const running = track(d.enqueue('m', 1, { signal: runningAbort.signal }));
    const runningMate = track(d.enqueue('m', 2));
    await flush();
    expect(w.batches).toEqual([[1, 2]]);

    const queuedAbort = new AbortController();
    const queued = track(d.enqueue('m', 3, { signal: queuedAbort.signal }));
    const expiring = track(d.enqueue('m', 4, { deadline: performance.now() + 10 }));
    const survivor = track(d.enqueue('m', 5));
    await flush();
    expect(d.stats('m')).toEqual({ queueDepth: 3, running: 2, runningBatches: 1 });

    runningAbort.abort();
    queuedAbort.abort();
    await advance(10); // item 4's deadline
    // The queue is full again only with live items: one more is refused at enqueue.
    track(d.enqueue('m', 6));
    track(d.enqueue('m', 7));
    const refused = track(d.enqueue('m', 8));
    const alreadyCancelled = track(d.enqueue('m', 9, { signal: AbortSignal.abort() }));
    await flush();
    expect(refused.code).toBe('QUEUE_FULL');
    expect(alreadyCancelled.code).toBe('CANCELLED');

    w.succeed();
    await flush();
    expect(w.batches).toEqual([[1, 2], [5, 6]]);
    w.succeed();
    await flush();
    w.succeed();
    await flush();

    expect([running.code, queued.code, expiring.code]).toEqual(['CANCELLED', 'CANCELLED', 'DEADLINE_EXCEEDED']);
    expect([runningMate.status, survivor.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(done).toEqual([
      { outcome: 'cancelled', stage: 'running' },
      { outcome: 'cancelled', stage: 'queued' },
      { outcome: 'expired', stage: 'queued' },
      { outcome: 'rejected', stage: 'queued' },
      { outcome: 'cancelled', stage: 'queued' },
      { outcome: 'success', stage: 'running' }, // 2 (its batch mate 1 was dropped running)
      { outcome: 'success', stage: 'running' }, // 5
      { outcome: 'success', stage: 'running' }, // 6
      { outcome: 'success', stage: 'running' }, // 7
    ]);
    expect(w.batches).toEqual([[1, 2], [5, 6], [7]]);
    // Never computed: the items dropped while queued.
    expect(w.batches.flat()).not.toContain(3);
    expect(w.batches.flat()).not.toContain(4);
  });

  it('a model that is not registered refuses at enqueue, stage queued', async () => {
    const { d, done } = setup();
    track(d.enqueue('unknown', 1));
    await flush();
    expect(done).toEqual([{ outcome: 'rejected', stage: 'queued' }]);
  });
});
