// /metrics as a Prometheus server reads it: scraped over HTTP and parsed by a text-format parser
// that is not ours (prom2javascript, which throws on a line it cannot parse), with lookups of one
// series by its labels. Label sets match exactly, so a stray or missing label is a failed lookup.
//
// One gap of that parser: it refuses NaN sample values, which the format allows (Go's ParseFloat,
// any case) and prom-client writes as `Nan` for the event-loop-lag gauges when no lag was sampled
// since the last scrape. Such lines are set aside, and only those gauges may have one.
import { getMetricsFromIterator, type PromHistogramData, type PromMetrics } from 'prom2javascript';

export type Labels = Record<string, string>;

export async function scrape(baseUrl: string, headers: Record<string, string> = {}): Promise<PromMetrics> {
  const res = await fetch(`${baseUrl}/metrics`, { headers });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? '')) {
    throw new Error(`/metrics content-type ${res.headers.get('content-type')}, not the Prometheus text format`);
  }
  const lines = text.split('\n');
  const nan = lines.filter((l) => NAN_SAMPLE.test(l));
  const unexpected = nan.filter((l) => !NAN_ALLOWED.test(l));
  if (unexpected.length) throw new Error(`NaN samples outside the event-loop-lag gauges: ${unexpected.join('; ')}`);
  return getMetricsFromIterator(lines.filter((l) => !NAN_SAMPLE.test(l))[Symbol.iterator]());
}

const NAN_SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?\s+nan(\s+-?\d+)?$/i;
const NAN_ALLOWED = /^densenet_nodejs_eventloop_lag_[a-z0-9_]*_seconds\s/;

const sameLabels = (a: Labels, b: Labels): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

function family(metrics: PromMetrics, name: string, type: string) {
  const f = metrics[name];
  if (!f) throw new Error(`no metric family ${name} in the scrape`);
  if (f.type !== type) throw new Error(`${name} is a ${f.type}, not a ${type}`);
  return f;
}

/**
 * The value of a counter or gauge series with exactly these labels; 0 when the family has no such
 * series yet (prom-client creates a labelled series on its first increment).
 */
export function sample(metrics: PromMetrics, name: string, type: 'counter' | 'gauge', labels: Labels = {}): number {
  const data = family(metrics, name, type).data as Array<{ labels: Labels; value: number }>;
  return data.find((d) => sameLabels(d.labels, labels))?.value ?? 0;
}

export interface HistogramSeries {
  count: number;
  sum: number;
  buckets: Record<string, number>;
}

/** A histogram series with exactly these labels (le aside); all zero when it does not exist yet. */
export function histogram(metrics: PromMetrics, name: string, labels: Labels): HistogramSeries {
  const data = family(metrics, name, 'histogram').data as PromHistogramData[];
  const found = data.find((d) => sameLabels(d.labels, labels));
  return found ? { count: found.count, sum: found.sum ?? NaN, buckets: found.buckets } : { count: 0, sum: 0, buckets: {} };
}

/** Every label set of a family (to assert which series exist). */
export function labelSets(metrics: PromMetrics, name: string): Labels[] {
  return (metrics[name]?.data ?? []).map((d) => d.labels);
}
