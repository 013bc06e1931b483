// REST load. Closed loop: autocannon (N keep-alive connections, one request in flight on each).
// Open loop: autocannon's rate options are not an open loop (see docs/benchmarks.md, "Method"),
// so scheduled requests go out through node:http with a keep-alive agent and no socket limit,
// timed by loops.ts's scheduler.
import http from 'node:http';
import autocannon from 'autocannon';
import type { LoopResult, LoopTiming, Outcome, Send } from './loops.ts';
import type { HttpRequestSpec } from './requests.ts';
import { WindowRecorder } from './stats.ts';

/** autocannon's own view of the measured run, kept as a cross-check of ours. */
export interface AutocannonSummary {
  requestsPerSecond: number;
  /** Whole milliseconds (its HDR histogram's resolution). */
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export async function autocannonClosedLoop(
  baseUrl: string,
  spec: HttpRequestSpec,
  connections: number,
  timing: LoopTiming,
): Promise<LoopResult & { autocannon: AutocannonSummary }> {
  const options = {
    url: baseUrl + spec.path,
    method: spec.method,
    headers: spec.headers,
    body: spec.body,
    connections,
    pipelining: 1,
    timeout: Math.ceil(timing.drainTimeoutMs / 1000),
    // autocannon checks for the end of the run on this tick: 100 ms keeps runs close to `duration`.
    sampleInt: 100,
  };
  if (timing.warmupMs > 0) await autocannon({ ...options, duration: timing.warmupMs / 1000 });

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const recorder = new WindowRecorder(0, timing.durationMs, t0);
  const instance = autocannon({ ...options, duration: timing.durationMs / 1000 });
  // Our own latency samples from autocannon's per-response event: full resolution, and the same
  // percentile arithmetic as the gRPC and open-loop measurements.
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseMs: number) => {
    const now = performance.now();
    if (status >= 200 && status < 300) recorder.ok(responseMs, now, now);
    else recorder.failed(`http ${status}`, now);
  });
  instance.on('reqError', (err: Error) => recorder.failed(`transport: ${err.message}`, performance.now()));
  const result = await instance;
  const used = process.cpuUsage(cpu0);
  return {
    recorder,
    generatorCpu: (used.user + used.system) / 1000 / (performance.now() - t0),
    autocannon: {
      requestsPerSecond: result['2xx'] / result.duration,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
    },
  };
}

export interface HttpSender {
  send: Send;
  close(): void;
}

/** Sends `spec` with node:http; the body is read to the end before the outcome is known. */
export function httpSender(baseUrl: string, spec: HttpRequestSpec, timeoutMs: number): HttpSender {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
  const headers = { ...spec.headers, 'content-length': String(spec.body.length) };
  const send: Send = (signal) => new Promise<Outcome>((resolve) => {
    const req = http.request({
      host: url.hostname, port: url.port, method: spec.method, path: spec.path, headers, agent, signal, timeout: timeoutMs,
    }, (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', (err) => resolve({ ok: false, cause: `transport: ${err.message}` }));
      res.on('end', () => resolve(status >= 200 && status < 300 ? { ok: true } : { ok: false, cause: `http ${status}` }));
      res.resume();
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, cause: `transport: ${err.code ?? err.message}` }));
    req.end(spec.body);
  });
  return { send, close: () => agent.destroy() };
}
