// Prometheus metrics for both transports (prom-client): the quantities Triton users scrape —
// requests by outcome, queue time, compute time, end-to-end latency, batch sizes, queue depth,
// worker restarts, work dropped for cancelled or expired requests — labelled by model, plus
// Node's process metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InferenceService, ItemOutcome, ItemStage } from '../inference/index.ts';

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];

export type Transport = 'http' | 'grpc';

/** The label value of every model name the server does not hold (unknown, misspelt, hostile). */
export const UNKNOWN_MODEL_LABEL = '_unknown';

export interface ServiceMetrics {
  readonly registry: Registry;
  /**
   * One finished request at a transport edge. `model` is whatever the client named: it becomes a
   * label value only if a model of that name is loaded, else UNKNOWN_MODEL_LABEL (also when the
   * request never named one), so no client string can mint a series.
   */
  observeRequest(transport: Transport, model: string, outcome: string, seconds: number): void;
  /** Stops listening to the inference service. */
  close(): void;
}

export function createMetrics(service: InferenceService): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'densenet_' });

  const requests = new Counter({
    name: 'densenet_requests_total', help: 'Requests by transport, model and outcome (status code class or gRPC status)',
    labelNames: ['transport', 'model', 'outcome'], registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'densenet_request_duration_seconds', help: 'End-to-end request latency at the transport edge',
    labelNames: ['transport', 'model'], buckets: LATENCY_BUCKETS_S, registers: [registry],
  });
  const items = new Counter({
    name: 'densenet_inference_items_total', help: 'Images through the batcher by outcome (success, failed, cancelled, expired, rejected)',
    labelNames: ['model', 'outcome'], registers: [registry],
  });
  // Whether cancellation and deadlines save compute: stage="queued" items were dropped before any
  // worker ran them; stage="running" ones were already in a batch (its work for them is wasted).
  const dropped = new Counter({
    name: 'densenet_inference_items_dropped_total',
    help: 'Images whose request was cancelled or passed its deadline, by reason (cancelled, deadline) and stage (queued: dropped before any compute; running: its batch result is discarded)',
    labelNames: ['model', 'reason', 'stage'], registers: [registry],
  });
  const queueDuration = new Histogram({
    name: 'densenet_queue_duration_seconds', help: 'Time an image waited in the batch queue',
    labelNames: ['model'], buckets: LATENCY_BUCKETS_S, registers: [registry],
  });
  const computeDuration = new Histogram({
    name: 'densenet_compute_duration_seconds', help: 'Time of one batch in a worker (engine plus transfer)',
    labelNames: ['model'], buckets: LATENCY_BUCKETS_S, registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'densenet_batch_size', help: 'Batch sizes actually formed', labelNames: ['model'], buckets: BATCH_BUCKETS, registers: [registry],
  });
  new Gauge({
    name: 'densenet_queue_depth', help: 'Images waiting in each model queue', labelNames: ['model'], registers: [registry],
    collect() {
      this.reset();
      for (const m of service.listModels()) this.set({ model: `${m.name}:${m.version}` }, service.queueDepth(m.name, m.version));
    },
  });
  new Gauge({
    name: 'densenet_model_ready', help: '1 when the model version can serve', labelNames: ['model'], registers: [registry],
    collect() {
      this.reset();
      for (const m of service.listModels()) this.set({ model: `${m.name}:${m.version}` }, m.state === 'READY' ? 1 : 0);
    },
  });
  // A counter (the _total convention): the pool counts replacements, the scrape reads its count.
  new Counter({
    name: 'densenet_worker_restarts_total', help: 'Inference workers replaced after a crash or hang', registers: [registry],
    collect() {
      this.reset();
      this.inc(service.workerRestarts);
    },
  });

  const unsubscribe = service.subscribe({
    onBatch(model: string, size: number, queueMsPerItem: readonly number[], computeMs: number) {
      batchSize.observe({ model }, size);
      computeDuration.observe({ model }, computeMs / 1000);
      for (const ms of queueMsPerItem) queueDuration.observe({ model }, ms / 1000);
    },
    onItemDone(model: string, outcome: ItemOutcome, _queueMs: number, _totalMs: number, stage: ItemStage) {
      items.inc({ model, outcome });
      if (outcome === 'cancelled' || outcome === 'expired') dropped.inc({ model, reason: outcome === 'expired' ? 'deadline' : 'cancelled', stage });
    },
  });

  const modelLabel = (model: string): string => (service.hasModel(model) ? model : UNKNOWN_MODEL_LABEL);

  return {
    registry,
    observeRequest(transport, model, outcome, seconds) {
      const label = modelLabel(model);
      requests.inc({ transport, model: label, outcome });
      requestDuration.observe({ transport, model: label }, seconds);
    },
    close: unsubscribe,
  };
}
