// A few counters scraped from the server's /metrics before and after a load point, so each
// point reports the batches the server actually formed and where the time went.

export interface MetricsSnapshot {
  batchSizeSum: number;
  batchCount: number;
  computeSecondsSum: number;
  queueSecondsSum: number;
  queueCount: number;
}

export interface ServerSideStats {
  /** Mean images per batch run in the interval. */
  meanBatchSize: number;
  /** Mean duration of one batch in a worker, ms. */
  meanComputeMs: number;
  /** Mean time an image waited in the batch queue, ms. */
  meanQueueMs: number;
  batches: number;
}

/** Sum of every series of `name` (all label values). */
function sumOf(text: string, name: string): number {
  let total = 0;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'gm'))) {
    const value = Number(match[1]);
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

export async function scrapeMetrics(baseUrl: string): Promise<MetricsSnapshot | undefined> {
  const res = await fetch(`${baseUrl}/metrics`).catch(() => undefined);
  if (!res?.ok) return undefined;
  const text = await res.text();
  return {
    batchSizeSum: sumOf(text, 'densenet_batch_size_sum'),
    batchCount: sumOf(text, 'densenet_batch_size_count'),
    computeSecondsSum: sumOf(text, 'densenet_compute_duration_seconds_sum'),
    queueSecondsSum: sumOf(text, 'densenet_queue_duration_seconds_sum'),
    queueCount: sumOf(text, 'densenet_queue_duration_seconds_count'),
  };
}

export function metricsDelta(before: MetricsSnapshot | undefined, after: MetricsSnapshot | undefined): ServerSideStats | undefined {
  if (!before || !after) return undefined;
  const batches = after.batchCount - before.batchCount;
  const queued = after.queueCount - before.queueCount;
  return {
    batches,
    meanBatchSize: batches > 0 ? (after.batchSizeSum - before.batchSizeSum) / batches : Number.NaN,
    meanComputeMs: batches > 0 ? ((after.computeSecondsSum - before.computeSecondsSum) * 1000) / batches : Number.NaN,
    meanQueueMs: queued > 0 ? ((after.queueSecondsSum - before.queueSecondsSum) * 1000) / queued : Number.NaN,
  };
}
