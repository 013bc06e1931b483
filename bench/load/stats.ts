// What one load point measured: completions in the measurement window, their latencies and the
// failures by cause. Latencies are kept as raw samples (a few hundred thousand doubles at most
// per point) and sorted once: exact percentiles at full timer resolution, where autocannon's own
// HDR histogram rounds to whole milliseconds (lowestDiscernibleValue 1).

/** Growable sample buffer of latencies in milliseconds. */
export class LatencySamples {
  private values = new Float64Array(1024);
  private length = 0;

  add(ms: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = ms;
  }

  get count(): number {
    return this.length;
  }

  /** Sorted copy of the samples. */
  sorted(): Float64Array {
    return this.values.slice(0, this.length).sort();
  }
}

/** Nearest-rank percentile (p in 0…100) of sorted samples; NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export interface LatencySummary {
  /** Successful requests whose latency is summarised. */
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function summarize(samples: LatencySamples): LatencySummary {
  const sorted = samples.sorted();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    meanMs: sorted.length ? sum / sorted.length : Number.NaN,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
  };
}

/** Counts of failed requests by cause: an HTTP status, a gRPC status name, or a transport error. */
export class ErrorCounts {
  readonly byCause: Record<string, number> = {};
  total = 0;

  add(cause: string): void {
    this.byCause[cause] = (this.byCause[cause] ?? 0) + 1;
    this.total++;
  }
}

/**
 * Collects one point's outcomes inside a measurement window [start, end) on performance.now()'s
 * clock; the warm-up before it and the stragglers after it are left out. Throughput counts
 * successes that COMPLETE in the window. Latencies and errors are attributed by `stamp`: the
 * completion time in a closed loop, the scheduled send time in an open loop (so a request
 * scheduled in the window is measured however late it finishes).
 */
export class WindowRecorder {
  readonly latencies = new LatencySamples();
  readonly errors = new ErrorCounts();
  /** Successes completed inside the window. */
  completed = 0;
  readonly start: number;
  readonly end: number;

  constructor(warmupMs: number, durationMs: number, now = performance.now()) {
    this.start = now + warmupMs;
    this.end = this.start + durationMs;
  }

  get windowMs(): number {
    return this.end - this.start;
  }

  inWindow(t: number): boolean {
    return t >= this.start && t < this.end;
  }

  ok(latencyMs: number, stamp: number, completedAt = performance.now()): void {
    if (this.inWindow(completedAt)) this.completed++;
    if (this.inWindow(stamp)) this.latencies.add(latencyMs);
  }

  failed(cause: string, stamp: number): void {
    if (this.inWindow(stamp)) this.errors.add(cause);
  }

  /** Successful requests per second over the window. */
  throughput(): number {
    return (this.completed * 1000) / this.windowMs;
  }
}
