// Ours vs the peers on rest-raw, one run: the table the sweep prints and the report writes.
// Ratios are ours ÷ peer; issue 15's targets apply against Ray Serve.
import { PEER_LABELS, type PeerName } from '../peers/peer-process.ts';
import type { KindSummary, LoadRun, PeerComparison } from './sweep.ts';

type Target = { ok: (v: number) => boolean; text: string };
/** Issue 15: against Ray Serve, same model, image and load generator, one run. */
export const PEER_TARGETS: Partial<Record<PeerName, Record<keyof PeerComparison, Target>>> = {
  ray: {
    saturation: { ok: (v) => v >= 1.35, text: '≥ 1.35' },
    oneClientP50: { ok: (v) => v <= 0.4, text: '≤ 0.4' },
    p99At50: { ok: (v) => v <= 0.5, text: '≤ 0.5' },
  },
};

const f = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));

export interface PeerTableRow {
  server: string;
  saturation: string;
  oneClientP50: string;
  p99At50: string;
  ratios: Record<keyof PeerComparison, string>;
  note: string;
}

function ratio(peer: PeerName, key: keyof PeerComparison, value: number | undefined): string {
  if (value === undefined) return '—';
  const target = PEER_TARGETS[peer]?.[key];
  return target ? `${f(value, 2)} ${target.ok(value) ? '✓' : '✗'} (${target.text})` : f(value, 2);
}

function cells(s: KindSummary | undefined) {
  return {
    saturation: s ? `${f(s.saturation)} (c=${s.saturationConcurrency})` : '—',
    oneClientP50: f(s?.unloadedP50Ms, 1),
    p99At50: f(s?.p99At50Ms, 1),
  };
}

export function peerTableRows(run: LoadRun): PeerTableRow[] {
  const ours = run.summary.find((s) => s.kind === 'rest-raw');
  const dash = { saturation: '', oneClientP50: '', p99At50: '' };
  const rows: PeerTableRow[] = [{ server: 'ours', ...cells(ours), ratios: dash, note: '' }];
  for (const p of run.peers ?? []) {
    const c = p.comparison ?? {};
    const answer = p.answer
      ? `top-1 ${p.answer.peerTop5[0]?.index ?? '—'} ${p.answer.sameTop1 ? '= ours' : `≠ ours (${p.answer.oursTop5[0]?.index ?? '—'})`}, ` +
        `scores within ${p.answer.maxScoreDiff.toExponential(1)}` +
        `${Number.isFinite(p.answer.maxRelativeScoreDiff) ? ` (${p.answer.maxRelativeScoreDiff.toExponential(1)} relative)` : ''}`
      : '';
    rows.push({
      server: PEER_LABELS[p.name],
      ...cells(p.summary),
      ratios: { saturation: ratio(p.name, 'saturation', c.saturation), oneClientP50: ratio(p.name, 'oneClientP50', c.oneClientP50), p99At50: ratio(p.name, 'p99At50', c.p99At50) },
      note: p.error ? `failed: ${p.error}` : answer,
    });
  }
  return rows;
}

/** The rate "50 %" stands for: 50 % of OUR rest-raw saturation, offered to every server. */
export function halfRate(run: LoadRun): number | undefined {
  return run.points.find((p) => !p.peer && p.kind === 'rest-raw' && p.mode === 'open' && p.loadFraction === 0.5)?.offeredRate;
}

const HEADINGS = ['server', 'saturation req/s', '1 client p50 ms', `p99 @ 50 % ms`, 'saturation ours÷peer', 'p50 ours÷peer', 'p99@50% ours÷peer', 'answer'];

/** Plain text, for the terminal. */
export function peerTable(run: LoadRun): string {
  const rows = peerTableRows(run).map((r) => [r.server, r.saturation, r.oneClientP50, r.p99At50, r.ratios.saturation, r.ratios.oneClientP50, r.ratios.p99At50, r.note]);
  const widths = HEADINGS.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const rate = halfRate(run);
  return [
    `ours vs peers, rest-raw (${run.image ?? 'same image'}), same concurrencies; 50 % = ${f(rate)} req/s (Poisson), 50 % of OUR saturation, for every server:`,
    line(HEADINGS),
    ...rows.map(line),
  ].join('\n');
}

/** Markdown, for docs/benchmarks.md. */
export function peerMarkdown(run: LoadRun): string {
  const rows = peerTableRows(run);
  return [
    `| server | saturation, req/s (clients) | 1 client p50, ms | p99 at ${f(halfRate(run))} req/s (50 % of ours), ms | saturation ours ÷ peer | 1-client p50 ours ÷ peer | p99 at 50 % ours ÷ peer | same answer? |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.server} | ${r.saturation} | ${r.oneClientP50} | ${r.p99At50} | ${r.ratios.saturation || '—'} | ${r.ratios.oneClientP50 || '—'} | ${r.ratios.p99At50 || '—'} | ${r.note || '—'} |`),
  ].join('\n');
}
