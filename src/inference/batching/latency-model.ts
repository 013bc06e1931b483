// Estimated duration of one executor run per batch size, learnt from observed runs.
//
// - Observed size: an EWMA of its runs (recent runs count most; a warm-up outlier fades) plus
//   DEVIATION_WEIGHT × an EWMA of the runs' absolute deviation from it, as TCP's retransmission
//   timer does: plans are made against a bad-but-typical run, not the average one, so jitter
//   makes the planner dispatch a little early rather than past a deadline. Steady runs have
//   no deviation and are estimated exactly.
// - Unseen size between two observed ones: linear interpolation between its neighbours.
// - Beyond the largest observed size: that size's estimate plus the least-squares slope of all
//   observed sizes (latency ≈ a + b·size); with a single observed size s₀, proportional scaling
//   L(s₀)·s/s₀, which assumes no batching gain and so never underestimates an affine cost.
// - Below the smallest observed size: the line from the fitted intercept (clamped to
//   [0, L(s_min)]) to L(s_min); with a single observed size, flat at L(s₀).
// - Nothing observed: Infinity. The planner reads that as "unknown, do not bet a deadline on
//   it": it never waits on behalf of an item with a deadline until a run has been measured
//   (the worker pool can seed estimates from its warm-up runs).
// Estimates are made non-decreasing in size (a batch cannot be faster than one of its subsets).

/** Weight of the newest run in a size's EWMAs (mean and deviation). */
export const LATENCY_EWMA_ALPHA = 0.3;
/** How many mean deviations above the mean a size's estimate sits. */
export const DEVIATION_WEIGHT = 2;

export interface LinearFit {
  fixedMs: number;
  perItemMs: number;
}

export class LatencyModel {
  private readonly stats = new Map<number, { mean: number; deviation: number }>();
  /** Cached monotone estimates by size (index 0 unused); cleared on every observation. */
  private table: number[] = [];

  constructor(private readonly alpha: number = LATENCY_EWMA_ALPHA) {}

  /** Records one run of `size` items that took `ms`. Nonsense samples are ignored. */
  observe(size: number, ms: number): void {
    if (!Number.isInteger(size) || size < 1 || !Number.isFinite(ms) || ms < 0) return;
    const prev = this.stats.get(size);
    if (prev === undefined) {
      this.stats.set(size, { mean: ms, deviation: 0 });
    } else {
      prev.deviation += this.alpha * (Math.abs(ms - prev.mean) - prev.deviation);
      prev.mean += this.alpha * (ms - prev.mean);
    }
    this.table = [];
  }

  /** Estimated run duration for `size` items, in ms (Infinity before any observation). */
  estimate(size: number): number {
    if (size < 1) return 0;
    const s = Math.ceil(size);
    if (this.table.length === 0) this.table.push(0);
    for (let k = this.table.length; k <= s; k++) {
      this.table.push(Math.max(this.table[k - 1] ?? 0, this.raw(k)));
    }
    return this.table[s] ?? Infinity;
  }

  /** Observed sizes with their planning value (mean + DEVIATION_WEIGHT × deviation), ascending. */
  observations(): Array<{ size: number; ms: number; mean: number; deviation: number }> {
    return [...this.stats]
      .map(([size, { mean, deviation }]) => ({ size, ms: mean + DEVIATION_WEIGHT * deviation, mean, deviation }))
      .sort((a, b) => a.size - b.size);
  }

  /** Least-squares latency ≈ fixedMs + perItemMs·size over observed sizes (≥ 2 needed). */
  fit(): LinearFit | undefined {
    const pts = this.observations();
    if (pts.length < 2) return undefined;
    const mx = pts.reduce((s, p) => s + p.size, 0) / pts.length;
    const my = pts.reduce((s, p) => s + p.ms, 0) / pts.length;
    let sxy = 0;
    let sxx = 0;
    for (const p of pts) {
      sxy += (p.size - mx) * (p.ms - my);
      sxx += (p.size - mx) ** 2;
    }
    const perItemMs = Math.max(0, sxy / sxx);
    return { fixedMs: my - perItemMs * mx, perItemMs };
  }

  private raw(s: number): number {
    const pts = this.observations();
    const first = pts[0];
    const last = pts[pts.length - 1];
    if (!first || !last) return Infinity;
    const exact = pts.find((p) => p.size === s);
    if (exact) return exact.ms;
    if (s > last.size) {
      const fit = this.fit();
      return fit ? last.ms + fit.perItemMs * (s - last.size) : (last.ms * s) / last.size;
    }
    if (s < first.size) {
      const fit = this.fit();
      if (!fit) return first.ms;
      const intercept = Math.min(Math.max(fit.fixedMs, 0), first.ms);
      return intercept + ((first.ms - intercept) * s) / first.size;
    }
    for (let i = 1; i < pts.length; i++) {
      const lo = pts[i - 1];
      const hi = pts[i];
      if (lo && hi && s < hi.size) return lo.ms + ((hi.ms - lo.ms) * (s - lo.size)) / (hi.size - lo.size);
    }
    return last.ms;
  }
}
