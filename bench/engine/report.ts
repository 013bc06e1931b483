// The engine bench's table (markdown, one row per model × batch × engine) and its JSON record.
import type { Summary } from './measure.ts';

export interface ResultRow {
  model: string;
  batch: number;
  candidate: string;
  /** The engine's time per batch (in-process time for out-of-process engines). */
  engineMs: Summary;
  /** Caller-side time per batch including any pipe; equals engineMs for in-process engines. */
  roundTripMs: Summary;
  imagesPerSec: number;
  /** images/s of this row ÷ images/s of the base engine at the same model and batch. */
  ratios: Record<string, number | null>;
  /** Worst agreement with the reference over the check batch and this batch size. */
  maxAbsDiff: number;
  allowed: number;
  outOfProcess: boolean;
}

export interface Refusal {
  model: string;
  batch: number | null;
  candidate: string;
  reason: string;
}

export function addRatios(rows: ResultRow[], bases: readonly string[]): void {
  for (const row of rows) {
    for (const base of bases) {
      const b = rows.find((r) => r.model === row.model && r.batch === row.batch && r.candidate === base);
      row.ratios[base] = b ? row.imagesPerSec / b.imagesPerSec : null;
    }
  }
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export function markdownTable(rows: ResultRow[], bases: readonly string[]): string {
  const head = ['model', 'batch', 'engine', 'ms/batch (median)', 'p10–p90 ms', 'images/s',
    ...bases.map((b) => `× ${b}`), 'round trip ms', 'max \\|Δlogit\\| (allowed)', 'runs'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 || i === 2 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) {
    lines.push(`| ${[
      r.model, String(r.batch), r.candidate, ms(r.engineMs.median), `${ms(r.engineMs.p10)}–${ms(r.engineMs.p90)}`,
      r.imagesPerSec.toFixed(1),
      ...bases.map((b) => (r.ratios[b] == null ? '—' : `${r.ratios[b]!.toFixed(2)}×`)),
      r.outOfProcess ? ms(r.roundTripMs.median) : '=',
      `${r.maxAbsDiff.toExponential(1)} (${r.allowed.toExponential(1)})`,
      String(r.engineMs.runs),
    ].join(' | ')} |`);
  }
  return lines.join('\n');
}
