// The metrics layer turns batcher observations into Prometheus series; here, the counter of work
// dropped for cancelled or expired requests, by whether compute had been spent on it.
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/api/metrics.ts';
import type { BatchObserver, InferenceService } from '../../src/inference/index.ts';

function fakeService() {
  const observers: BatchObserver[] = [];
  const service = {
    subscribe: (o: BatchObserver) => {
      observers.push(o);
      return () => observers.splice(observers.indexOf(o), 1);
    },
    listModels: () => [],
    queueDepth: () => 0,
    workerRestarts: 0,
  } as unknown as InferenceService;
  return { service, observers };
}

describe('metrics: dropped items', () => {
  it('counts cancelled and expired items by reason and stage, and nothing else', async () => {
    const { service, observers } = fakeService();
    const metrics = createMetrics(service);
    const [o] = observers;
    o?.onItemDone?.('m:1', 'cancelled', 5, 5, 'queued');
    o?.onItemDone?.('m:1', 'cancelled', 5, 9, 'queued');
    o?.onItemDone?.('m:1', 'expired', 3, 3, 'queued');
    o?.onItemDone?.('m:1', 'cancelled', 1, 7, 'running');
    o?.onItemDone?.('m:1', 'success', 1, 7, 'running');
    o?.onItemDone?.('m:1', 'rejected', 0, 0, 'queued');
    const text = await metrics.registry.metrics();
    const series = text.split('\n').filter((l) => l.startsWith('densenet_inference_items_dropped_total{')).sort();
    expect(series).toEqual([
      'densenet_inference_items_dropped_total{model="m:1",reason="cancelled",stage="queued"} 2',
      'densenet_inference_items_dropped_total{model="m:1",reason="cancelled",stage="running"} 1',
      'densenet_inference_items_dropped_total{model="m:1",reason="deadline",stage="queued"} 1',
    ]);
    metrics.close();
    expect(observers).toHaveLength(0);
  });
});
