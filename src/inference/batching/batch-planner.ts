// Decides, for one model queue at the moment an executor is free, whether to dispatch a batch
// now (and how many items, always a prefix of the queue's dispatch order) or to wait until a
// given time for more items. Pure: no timers, no state. docs/batching.md has worked examples.
//
// Without latencyTargetMs: Triton's dynamic batcher (triton-inference-server/core,
// src/dynamic_batch_scheduler.cc GetDynamicBatch), with n live items and
// cap = max(preferredBatchSizes) or maxBatchSize:
//   1. the oldest item has waited ≥ maxQueueDelayMs (> 0)  → dispatch min(n, maxBatchSize);
//   2. some preferred size ≤ n                               → dispatch the largest such size;
//   3. n ≥ cap                                               → dispatch cap;
//   4. maxQueueDelayMs = 0                                   → dispatch n;
//   5. otherwise wait until oldest.enqueuedAt + maxQueueDelayMs, but never past
//      min(deadline) − 1 ms − L(n): waiting must not make an item miss its hard deadline
//      (HARD_DEADLINE_MARGIN_MS: the queue expires an item at its deadline instant). With no
//      latency measured yet, L is unknown (Infinity) and any finite deadline forbids waiting.
//
// With latencyTargetMs = T, each item i gets an effective deadline
// dᵢ = min(deadlineᵢ − 1 ms, enqueuedAtᵢ + T) and L(b) is the estimated run time of b items. Items
// are served in the queue's fixed order, so a batch is always a prefix. The planner assumes
// this executor serves what it leaves behind, one batch after another (conservative when
// several executors serve the model).
//   a. Late items. E[j] = earliest time the first j items can all be done (DP over batch
//      splits, E[0] = now). Item i is late when E[i+1] > dᵢ: it misses dᵢ whatever we do.
//      Late items are still served in order, but their deadline stops constraining: dᵢ := ∞.
//      (E is non-decreasing, so the DP stops at the first j with E[j] > max dᵢ: every item
//      from there on is late. That bounds the work by the number of items that can finish
//      within T, not by the queue length: O(that × maxBatchSize) per plan.)
//   b. G[j] = latest start at which items j… can all still meet their deadlines, served
//      in consecutive batches: G[j] = max over c of min(min(d_j…d_{j+c−1}), G[j+c]) − L(c),
//      G[n] = ∞.
//   c. Batch size b (1 ≤ b ≤ min(n, maxBatchSize)) is feasible when its own items make it,
//      now + L(b) ≤ min(d₀…d_{b−1}), and so can everyone left behind, now + L(b) ≤ G[b].
//      If no b is feasible (overload: someone will be late whatever we do), every size is a
//      candidate: throughput first, because the backlog only shrinks at full throughput
//      (serving the head on time with small batches measured worse: more late items, later).
//      Among the candidates keep the preferred sizes if any is a candidate, then take the
//      highest throughput b / L(b) (ties → the larger b).
//   d. Wait instead only if all of: maxQueueDelayMs > 0, the oldest item has waited less than
//      that, no item is late, the choice was not forced by overload, b = n < maxBatchSize,
//      some size in (n, maxBatchSize] (preferred, if configured) has a better throughput
//      than n, and all n items dispatched together at the wake-up time still meet their
//      deadlines. Wake-up = min(oldest.enqueuedAt + maxQueueDelayMs, min(dᵢ) − L(n)).
//      Every arrival replans, so a batch that grows while waiting is re-checked at once.
import type { ResolvedBatchingOptions } from './options.ts';

/**
 * Plans finish this much before a hard deadline: the queue expires an item at its deadline
 * instant, and timers are millisecond-grained, so "done exactly at the deadline" is a miss.
 */
export const HARD_DEADLINE_MARGIN_MS = 1;

export interface PlanItem {
  readonly enqueuedAt: number;
  /** Hard deadline (absolute); Infinity when none. */
  readonly deadline: number;
}

/** Why a batch was dispatched now; for tests, logs and docs. */
export type DispatchReason =
  | 'delay-expired'
  | 'preferred'
  | 'full'
  | 'no-delay'
  | 'deadline'
  | 'target'
  | 'late'
  | 'overload';

export type BatchPlan =
  | { readonly kind: 'idle' }
  | { readonly kind: 'dispatch'; readonly size: number; readonly reason: DispatchReason }
  | { readonly kind: 'wait'; readonly until: number };

export interface PlanInput {
  readonly now: number;
  /** Live items in dispatch order. */
  readonly items: readonly PlanItem[];
  readonly options: ResolvedBatchingOptions;
  /** Estimated run time of a batch of the given size (non-decreasing; Infinity = unknown). */
  readonly latency: (size: number) => number;
}

export function planBatch(input: PlanInput): BatchPlan {
  if (input.items.length === 0) return { kind: 'idle' };
  return input.options.latencyTargetMs === undefined ? planLikeTriton(input) : planForTarget(input, input.options.latencyTargetMs);
}

function oldestEnqueuedAt(items: readonly PlanItem[]): number {
  let oldest = Infinity;
  for (const item of items) oldest = Math.min(oldest, item.enqueuedAt);
  return oldest;
}

/** x − l where ∞ − anything = ∞ (a deadline-free item never constrains). */
function minus(x: number, l: number): number {
  return x === Infinity ? Infinity : x - l;
}

function planLikeTriton({ now, items, options, latency }: PlanInput): BatchPlan {
  const n = items.length;
  const { maxBatchSize, maxQueueDelayMs: delay, preferredBatchSizes: preferred } = options;
  const cap = preferred[preferred.length - 1] ?? maxBatchSize;
  const oldest = oldestEnqueuedAt(items);

  if (delay > 0 && now - oldest >= delay) return { kind: 'dispatch', size: Math.min(n, maxBatchSize), reason: 'delay-expired' };
  const bestPreferred = largestAtMost(preferred, n);
  if (bestPreferred !== undefined) return { kind: 'dispatch', size: bestPreferred, reason: 'preferred' };
  if (n >= cap) return { kind: 'dispatch', size: cap, reason: 'full' };
  if (delay === 0) return { kind: 'dispatch', size: n, reason: 'no-delay' };

  let earliestDeadline = Infinity;
  for (const item of items) earliestDeadline = Math.min(earliestDeadline, minus(item.deadline, HARD_DEADLINE_MARGIN_MS));
  const until = Math.min(oldest + delay, minus(earliestDeadline, latency(n)));
  if (until <= now) return { kind: 'dispatch', size: n, reason: 'deadline' };
  return { kind: 'wait', until };
}

function largestAtMost(sorted: readonly number[], limit: number): number | undefined {
  let best: number | undefined;
  for (const size of sorted) if (size <= limit) best = size;
  return best;
}

function throughput(size: number, ms: number): number {
  return ms === 0 ? Infinity : size / ms;
}

function planForTarget({ now, items, options, latency }: PlanInput, target: number): BatchPlan {
  const n = items.length;
  const { maxBatchSize, maxQueueDelayMs: delay, preferredBatchSizes: preferred } = options;
  const m = Math.min(n, maxBatchSize);
  const L: number[] = [0];
  for (let c = 1; c <= maxBatchSize; c++) L.push(latency(c));
  const lat = (c: number): number => L[c] ?? Infinity;

  const d = items.map((item) => Math.min(minus(item.deadline, HARD_DEADLINE_MARGIN_MS), item.enqueuedAt + target));
  let maxD = -Infinity;
  for (const di of d) maxD = Math.max(maxD, di);

  // a. Earliest completion of each prefix; items from `horizon` on are late.
  const E: number[] = [now];
  let horizon = 0;
  for (let j = 1; j <= n; j++) {
    let best = Infinity;
    for (let c = 1; c <= Math.min(maxBatchSize, j); c++) best = Math.min(best, (E[j - c] ?? Infinity) + lat(c));
    if (best > maxD) break;
    E.push(best);
    horizon = j;
  }
  let hasLate = false;
  const dd = d.map((di, i) => {
    const late = i >= horizon || (E[i + 1] ?? Infinity) > di;
    if (late) hasLate = true;
    return late ? Infinity : di;
  });

  // b. Latest start for each suffix.
  const G: number[] = new Array<number>(n + 1).fill(Infinity);
  for (let j = horizon - 1; j >= 0; j--) {
    let best = -Infinity;
    let minD = Infinity;
    for (let c = 1; c <= Math.min(maxBatchSize, n - j); c++) {
      minD = Math.min(minD, dd[j + c - 1] ?? Infinity);
      best = Math.max(best, minus(Math.min(minD, G[j + c] ?? Infinity), lat(c)));
    }
    G[j] = best;
  }

  // c. Candidate sizes.
  const prefixMin: number[] = [Infinity];
  for (let b = 1; b <= n; b++) prefixMin.push(Math.min(prefixMin[b - 1] ?? Infinity, dd[b - 1] ?? Infinity));
  const fitsAll = (b: number): boolean => now + lat(b) <= Math.min(prefixMin[b] ?? Infinity, G[b] ?? Infinity);
  const sizes = Array.from({ length: m }, (_, k) => k + 1);
  let candidates = sizes.filter(fitsAll);
  const overloaded = candidates.length === 0;
  if (overloaded) candidates = sizes;
  const preferredCandidates = candidates.filter((b) => preferred.includes(b));
  if (preferredCandidates.length > 0) candidates = preferredCandidates;
  let size = candidates[0] ?? 1;
  for (const b of candidates) if (throughput(b, lat(b)) >= throughput(size, lat(size))) size = b;

  // d. Wait for a bigger, more efficient batch when everyone can afford it.
  const oldest = oldestEnqueuedAt(items);
  if (delay > 0 && now < oldest + delay && !hasLate && !overloaded && size === n && n < maxBatchSize) {
    let gain = false;
    for (let s = n + 1; s <= maxBatchSize; s++) {
      if ((preferred.length === 0 || preferred.includes(s)) && throughput(s, lat(s)) > throughput(n, lat(n))) gain = true;
    }
    const until = Math.min(oldest + delay, minus(prefixMin[n] ?? Infinity, lat(n)));
    if (gain && until > now) return { kind: 'wait', until };
  }
  return { kind: 'dispatch', size, reason: overloaded ? 'overload' : hasLate ? 'late' : 'target' };
}
