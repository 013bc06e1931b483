// What an orchestrator would watch: the readiness probe, polled on its own connection, and
// /metrics, scraped and parsed.
import http from 'node:http';

export interface ProbeSample {
  /** performance.now() when the probe was sent. */
  at: number;
  /** HTTP status; 0 = no answer (refused, reset or timed out). */
  status: number;
  ms: number;
}

const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<{ status: number; body: string; ms: number }> {
  const sentAt = performance.now();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: probeAgent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - sentAt }));
      res.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - sentAt }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '', ms: performance.now() - sentAt }));
  });
}

/** Polls GET path every intervalMs (one probe at a time, as kubelet does) until stopped. */
export class Poller {
  readonly samples: ProbeSample[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(port: number, path = '/v2/health/ready', intervalMs = 100, timeoutMs = 5000) {
    this.loop = (async () => {
      while (!this.stopped) {
        const at = performance.now();
        const { status, ms } = await httpGet(port, path, timeoutMs);
        this.samples.push({ at, status, ms });
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (performance.now() - at))));
      }
    })();
  }

  async stop(): Promise<ProbeSample[]> {
    this.stopped = true;
    await this.loop;
    return this.samples;
  }
}

/** Prometheus text format → series (`name{a="b",…}` exactly as exposed) → value. */
export type MetricSeries = Map<string, number>;

export function parseMetrics(text: string): MetricSeries {
  const series: MetricSeries = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return series;
}

/** Sum of the series of one metric whose labels include every given label="value". */
export function metricSum(series: MetricSeries, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of series) {
    const brace = key.indexOf('{');
    const metric = brace < 0 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

export async function scrape(port: number): Promise<MetricSeries> {
  const { status, body } = await httpGet(port, '/metrics', 10_000);
  if (status !== 200) throw new Error(`GET /metrics answered ${status}`);
  return parseMetrics(body);
}
