// One load point at a time against a running server, and the sweep: per request kind, closed
// loops at rising concurrency (→ saturation throughput), then open loops at fractions of that
// saturation (→ queueing as load approaches capacity).
import { idealQueuePercentile } from './ideal-queue.ts';
import { autocannonClosedLoop, httpSender, type AutocannonSummary } from './http-driver.ts';
import { grpcSender } from './grpc-driver.ts';
import { closedLoop, openLoop, type Arrivals, type LoopResult, type LoopTiming } from './loops.ts';
import type { Kind, Payloads } from './requests.ts';
import { metricsDelta, scrapeMetrics, type ServerSideStats } from './server-metrics.ts';
import type { PeerName } from '../peers/peer-process.ts';
import type { ServerHandle } from './server-process.ts';
import { summarize, type LatencySummary } from './stats.ts';

export interface PointResult {
  kind: Kind;
  /** A peer server (bench/peers) instead of ours. */
  peer?: PeerName;
  mode: 'closed' | 'open';
  /** Closed loop: callers (REST: connections). */
  concurrency?: number;
  /** Open loop: requests per second offered, and as a fraction of the kind's saturation (a peer: of OUR saturation). */
  offeredRate?: number;
  loadFraction?: number;
  /** Successful requests (one image each) per second, completed in the window. */
  throughput: number;
  latency: LatencySummary;
  errors: number;
  errorsByCause: Record<string, number>;
  windowMs: number;
  /** Open loop: p99 of how late requests left after their scheduled time (generator lag). */
  sendLagP99Ms?: number;
  /** Generator process CPU during the point, in cores. */
  generatorCpu: number;
  server?: ServerSideStats;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  autocannon?: AutocannonSummary;
}

/** What a point is driven against: our server, or a peer (REST only, no /metrics). */
export type SweepTarget = Pick<ServerHandle, 'baseUrl' | 'grpcAddress' | 'memory'>;

export interface SweepContext {
  server: SweepTarget;
  /** Set when `server` is a peer: its points are tagged, and /metrics is not scraped. */
  peer?: PeerName;
  payloads: Payloads;
  timing: LoopTiming;
  arrivals: Arrivals;
  seed: number;
  maxInFlight: number;
  /** Called after each point, for progress output. */
  onPoint(point: PointResult): void;
}

type Load = { mode: 'closed'; concurrency: number } | { mode: 'open'; rate: number; fraction: number };

async function drive(ctx: SweepContext, kind: Kind, load: Load): Promise<LoopResult & { autocannon?: AutocannonSummary }> {
  const { server, payloads, timing } = ctx;
  if (kind === 'grpc-infer' || kind === 'grpc-classify') {
    const sender = grpcSender(kind, server.grpcAddress, payloads, timing.drainTimeoutMs);
    try {
      return load.mode === 'closed'
        ? await closedLoop(load.concurrency, timing, sender.send)
        : await openLoop({ rate: load.rate, arrivals: ctx.arrivals, seed: ctx.seed, maxInFlight: ctx.maxInFlight }, timing, sender.send);
    } finally {
      sender.close();
    }
  }
  const spec = payloads.http[kind];
  if (load.mode === 'closed') return autocannonClosedLoop(server.baseUrl, spec, load.concurrency, timing);
  const sender = httpSender(server.baseUrl, spec, timing.drainTimeoutMs);
  try {
    return await openLoop({ rate: load.rate, arrivals: ctx.arrivals, seed: ctx.seed, maxInFlight: ctx.maxInFlight }, timing, sender.send);
  } finally {
    sender.close();
  }
}

export async function runPoint(ctx: SweepContext, kind: Kind, load: Load): Promise<PointResult> {
  const before = await ctx.server.memory();
  const metricsBefore = ctx.peer ? undefined : await scrapeMetrics(ctx.server.baseUrl);
  const result = await drive(ctx, kind, load);
  const metricsAfter = ctx.peer ? undefined : await scrapeMetrics(ctx.server.baseUrl);
  const after = await ctx.server.memory();
  const { recorder } = result;
  const server = metricsDelta(metricsBefore, metricsAfter);
  const point: PointResult = {
    kind,
    ...(ctx.peer ? { peer: ctx.peer } : {}),
    mode: load.mode,
    ...(load.mode === 'closed' ? { concurrency: load.concurrency } : { offeredRate: load.rate, loadFraction: load.fraction }),
    throughput: recorder.throughput(),
    latency: summarize(recorder.latencies),
    errors: recorder.errors.total,
    errorsByCause: recorder.errors.byCause,
    windowMs: recorder.windowMs,
    ...(result.sendLagP99Ms !== undefined ? { sendLagP99Ms: result.sendLagP99Ms } : {}),
    generatorCpu: result.generatorCpu,
    ...(server ? { server } : {}),
    rssBeforeKiB: before.rssKiB,
    rssAfterKiB: after.rssKiB,
    ...(result.autocannon ? { autocannon: result.autocannon } : {}),
  };
  ctx.onPoint(point);
  return point;
}

export interface SweepPlan {
  kinds: Kind[];
  concurrencies: number[];
  /** Open-loop loads as fractions of each kind's closed-loop saturation (1 = 100%). */
  loadFractions: number[];
}

export async function runSweep(ctx: SweepContext, plan: SweepPlan): Promise<PointResult[]> {
  const points: PointResult[] = [];
  for (const kind of plan.kinds) {
    const closed: PointResult[] = [];
    for (const concurrency of plan.concurrencies) closed.push(await runPoint(ctx, kind, { mode: 'closed', concurrency }));
    points.push(...closed);
    const saturation = Math.max(0, ...closed.map((p) => p.throughput));
    if (saturation <= 0) {
      if (plan.loadFractions.length) process.stderr.write(`${kind}: no closed-loop throughput measured; open-loop points skipped\n`);
      continue;
    }
    for (const fraction of plan.loadFractions) {
      points.push(await runPoint(ctx, kind, { mode: 'open', rate: saturation * fraction, fraction }));
    }
  }
  return points;
}

/**
 * A peer on `rest-raw`: the same closed-loop concurrencies, then the same open-loop rates as
 * ours — computed from OUR saturation, so "p99 at 50 %" is the same arrival rate for both.
 */
export async function runPeerSweep(ctx: SweepContext, concurrencies: number[], rates: { rate: number; fraction: number }[]): Promise<PointResult[]> {
  const points: PointResult[] = [];
  for (const concurrency of concurrencies) points.push(await runPoint(ctx, 'rest-raw', { mode: 'closed', concurrency }));
  for (const { rate, fraction } of rates) points.push(await runPoint(ctx, 'rest-raw', { mode: 'open', rate, fraction }));
  return points;
}

/** The open-loop rates a sweep offered ours for one kind: what the peers are offered too. */
export function openRates(points: PointResult[], kind: Kind): { rate: number; fraction: number }[] {
  return points
    .filter((p) => p.kind === kind && p.mode === 'open' && !p.peer)
    .map((p) => ({ rate: p.offeredRate ?? 0, fraction: p.loadFraction ?? 0 }));
}

export interface KindSummary {
  kind: Kind;
  /** Highest closed-loop throughput, and the concurrency that reached it. */
  saturation: number;
  saturationConcurrency: number;
  /** Closed loop with one caller: the unloaded latency. */
  unloadedP50Ms?: number;
  unloadedP99Ms?: number;
  throughputAt1?: number;
  throughputAt32?: number;
  /** Throughput with 32 concurrent callers over one at a time (target ≥ 1.5). */
  ratio32Over1?: number;
  /** Open loop at 50% of saturation: p99, and p99 over the unloaded p50 (target ≤ 2). */
  p99At50Ms?: number;
  p99At50OverUnloadedP50?: number;
  p99At50OverUnloadedP99?: number;
  /** Saturation over the engine alone at the same batch size (target ≥ 0.9), when given. */
  overEngine?: number;
  /**
   * The ideal queue at the 50 % point: the same Poisson rate, `servers` workers, the unloaded p50
   * as a constant service time, no overhead (ideal-queue.ts); and the measured p99 over its p99
   * (target ≤ 1.5).
   */
  idealP99At50Ms?: number;
  p99At50OverIdeal?: number;
}

/** Per kind, over the points given (one server's: ours, or one peer's). */
export function summarizeKinds(points: PointResult[], engineRate?: number, servers?: number): KindSummary[] {
  const kinds = [...new Set(points.map((p) => p.kind))];
  return kinds.map((kind) => {
    const closed = points.filter((p) => p.kind === kind && p.mode === 'closed');
    const best = closed.reduce<PointResult | undefined>((a, p) => (!a || p.throughput > a.throughput ? p : a), undefined);
    const at = (c: number) => closed.find((p) => p.concurrency === c);
    const one = at(1);
    const c32 = at(32);
    const half = points.find((p) => p.kind === kind && p.mode === 'open' && p.loadFraction === 0.5);
    const summary: KindSummary = { kind, saturation: best?.throughput ?? 0, saturationConcurrency: best?.concurrency ?? 0 };
    if (one) {
      summary.unloadedP50Ms = one.latency.p50Ms;
      summary.unloadedP99Ms = one.latency.p99Ms;
      summary.throughputAt1 = one.throughput;
    }
    if (c32) summary.throughputAt32 = c32.throughput;
    if (one && c32 && one.throughput > 0) summary.ratio32Over1 = c32.throughput / one.throughput;
    if (half) {
      summary.p99At50Ms = half.latency.p99Ms;
      if (one) {
        summary.p99At50OverUnloadedP50 = half.latency.p99Ms / one.latency.p50Ms;
        summary.p99At50OverUnloadedP99 = half.latency.p99Ms / one.latency.p99Ms;
      }
    }
    if (engineRate && best) summary.overEngine = best.throughput / engineRate;
    if (half && one && servers && half.offeredRate) {
      summary.idealP99At50Ms = idealQueuePercentile({ rate: half.offeredRate, servers, serviceMs: one.latency.p50Ms }, 99);
      summary.p99At50OverIdeal = half.latency.p99Ms / summary.idealP99At50Ms;
    }
    return summary;
  });
}

/** Ours ÷ a peer on the same kind, same run (issue 15's three ratios; targets vs Ray Serve). */
export interface PeerComparison {
  /** Saturation, ours ÷ peer (Ray: target ≥ 1.35). */
  saturation?: number;
  /** One client at a time, p50 latency, ours ÷ peer (Ray: target ≤ 0.4). */
  oneClientP50?: number;
  /** p99 at the same Poisson rate (50 % of OUR saturation), ours ÷ peer (Ray: target ≤ 0.5). */
  p99At50?: number;
}

export function comparePeer(ours: KindSummary | undefined, peer: KindSummary | undefined): PeerComparison {
  const ratio = (a: number | undefined, b: number | undefined) =>
    (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : undefined);
  const c: PeerComparison = {};
  const saturation = ratio(ours?.saturation, peer?.saturation);
  const oneClientP50 = ratio(ours?.unloadedP50Ms, peer?.unloadedP50Ms);
  const p99At50 = ratio(ours?.p99At50Ms, peer?.p99At50Ms);
  if (saturation !== undefined) c.saturation = saturation;
  if (oneClientP50 !== undefined) c.oneClientP50 = oneClientP50;
  if (p99At50 !== undefined) c.p99At50 = p99At50;
  return c;
}

/** Does the peer answer like ours: the same image's top-5 from each. */
export interface AnswerCheck {
  oursTop5: { index: number; score: number }[];
  peerTop5: { index: number; score: number }[];
  sameTop1: boolean;
  /** Largest |score difference| over the classes both top-5 lists hold. */
  maxScoreDiff: number;
  /** The same, ÷ our top-1 score (random weights give near-uniform scores: ~1/classes). */
  maxRelativeScoreDiff: number;
}

export interface PeerRun {
  name: PeerName;
  description: string;
  settings: Record<string, string | number>;
  /** Spawn to first answer, s. */
  startSeconds?: number;
  rssIdleKiB?: number;
  rssEndKiB?: number;
  points: PointResult[];
  summary?: KindSummary;
  comparison?: PeerComparison;
  answer?: AnswerCheck;
  /** Why this peer has no points (it failed to start or died). */
  error?: string;
}

/** The peers' Python environment, as the run found or made it. */
export interface PeerEnvironment {
  venv: string;
  versions: Record<string, string>;
  installSeconds: number;
  sizeMiB: number;
  madeThisRun: boolean;
  onnx: string;
}

export interface HostInfo {
  cpus: number;
  cpuModel: string;
  loadAverage: number[];
  memoryGiB: number;
  node: string;
  platform: string;
}

/** What a sweep writes to bench/results/load-<date>.json. */
export interface LoadRun {
  type: 'sweep';
  startedAt: string;
  finishedAt: string;
  command: string;
  host: HostInfo;
  model: string;
  modelDescription: string;
  serverSettings: Record<string, string>;
  settings: {
    kinds: Kind[];
    concurrencies: number[];
    loadPercents: number[];
    seconds: number;
    warmupSeconds: number;
    arrivals: Arrivals;
    seed: number;
  };
  rssIdleKiB: number;
  rssEndKiB: number;
  engineRate?: number;
  /** The image of rest-raw and grpc-classify (`--image`). */
  image?: string;
  points: PointResult[];
  summary: KindSummary[];
  /** Peer servers on rest-raw (bench/peers), each with its points and ratios against ours. */
  peers?: PeerRun[];
  peerEnvironment?: PeerEnvironment;
  /** Why no peer ran, when peers were asked for and none could. */
  peersSkipped?: string;
}

