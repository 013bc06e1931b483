// Percentiles of latency samples (nearest rank, exact: bench/load/stats.ts).
import { percentile } from '../load/stats.ts';

export interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function latency(values: number[]): Latency {
  const sorted = Float64Array.from(values).sort();
  return { count: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.length ? (sorted.at(-1) as number) : Number.NaN };
}

/** The value at quantile q (0…1) of sorted samples. */
export function quantile(sorted: Float64Array, q: number): number {
  return percentile(sorted, Math.min(100, Math.max(0, q * 100)));
}
