// Percentiles and per-outcome tallies of request results.
import type { Outcome, RequestResult } from './clients.ts';

/** Nearest-rank percentile (p in 0…100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export type Tally = Record<Outcome, number> & { offered: number; accepted: number };

export function tally(results: readonly RequestResult[]): Tally {
  const t: Tally = { offered: results.length, accepted: 0, completed: 0, rejected: 0, retryable: 0, expired: 0, cancelled: 0, error: 0, lost: 0 };
  for (const r of results) t[r.outcome]++;
  t.accepted = t.offered - t.rejected;
  return t;
}

/** The distinct codes of results with one of these outcomes, with counts (for failure messages). */
export function codes(results: readonly RequestResult[], outcomes: readonly Outcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) if (outcomes.includes(r.outcome)) out[`${r.transport} ${r.code}`] = (out[`${r.transport} ${r.code}`] ?? 0) + 1;
  return out;
}

export const round = (n: number, digits = 1): number => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n);
