// One phase of the overload bench: the C generators (wrk for HTTP/1.1, h2load for gRPC) against
// a running server for warm-up + window + tail seconds, with CPU read at the window's edges, the
// readiness probe polled and (under overload) the gRPC sampler running. Client-side, requests
// SENT inside the window are judged (the tail keeps the load on while their answers come back);
// server-side counts are the requests its log says ENDED inside the window (server-log.ts). Two
// phases: capacity (closed loop) and overload (fixed offered rate).
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { percentile } from '../load/stats.ts';
import type { ServerHandle } from '../load/server-process.ts';
import { Poller } from '../../test/chaos/harness/probes.ts';
import { descendantsOf } from '../../test/helpers/child-processes.ts';
import { cpuMs } from '../../test/helpers/process-cpu.ts';
import type { GeneratorRun } from './generator-process.ts';
import { connect, grpcCall, GrpcSampler, type GrpcCall } from './grpc-sampler.ts';
import { runH2load, type H2Run } from './h2load.ts';
import { GRPC_CLASSIFY_PATH, type Payloads } from './payloads.ts';
import { latency, quantile, type Latency } from './latency.ts';
import { serverCounts, serverLines, type ServerCounts } from './server-log.ts';
import { runWrk, type WrkRun } from './wrk.ts';

export type { Latency } from './latency.ts';
export type { ServerCounts } from './server-log.ts';

export type Transport = 'http' | 'grpc';

export interface PhaseSettings {
  server: ServerHandle;
  /** The server's log file (one line per request: server-log.ts). */
  serverLog: string;
  payloads: Payloads;
  transports: Transport[];
  warmupS: number;
  windowS: number;
  tailS: number;
  /** taskset list for wrk and h2load. */
  generatorCpus?: string | undefined;
  wrkThreads: number;
}

export interface CpuShare {
  /** CPU time used, ms. */
  cpuMs: number;
  /** Over this wall time, ms. */
  wallMs: number;
  /** cpuMs / wallMs: cores kept busy on average. */
  cores: number;
  /** cores / CPUs of the machine. */
  machineShare: number;
}

const CPUS = os.availableParallelism();
const epochUs = (): number => (performance.timeOrigin + performance.now()) * 1000;
const sleepUntil = (t: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - performance.now())));

export function share(cpu: number, wallMs: number): CpuShare {
  const cores = cpu / wallMs;
  return { cpuMs: Math.round(cpu), wallMs: Math.round(wallMs), cores, machineShare: cores / CPUS };
}

const generatorShare = (run: GeneratorRun): CpuShare => share(run.cpuMs, run.wallMs);

/** CPU ms of the server process and every process below it (its workers). */
function serverCpuMs(pid: number): number {
  return [pid, ...descendantsOf(pid)].reduce((sum, p) => sum + (cpuMs(p) ?? 0), 0);
}

/** CPU at one of the window's edges. */
interface Edge {
  serverCpuMs: number;
  benchCpu: NodeJS.CpuUsage;
  atMs: number;
}

function edge(server: ServerHandle): Edge {
  return { serverCpuMs: serverCpuMs(server.pid), benchCpu: process.cpuUsage(), atMs: performance.now() };
}

/** Checks the prepared gRPC body: one call must come back OK before any load. */
export async function checkGrpcBody(server: ServerHandle, payloads: Payloads): Promise<void> {
  const session = await connect(server.grpcPort);
  try {
    const call = await grpcCall(session, GRPC_CLASSIFY_PATH, payloads.grpcBody, 60_000);
    if (call.grpcStatus !== 0) throw new Error(`the prepared Classify request was answered grpc-status ${call.grpcStatus ?? 'none'} ${call.error ?? ''}`);
  } finally {
    session.close();
  }
}

// ───────────────────────────── capacity ─────────────────────────────

export interface CapacityResult {
  /** Images per second the server completed in the window (its own count). */
  imagesPerS: number;
  callers: Record<Transport, number>;
  server: ServerCounts;
  /** Client-side completions in the window. */
  httpCompleted?: number;
  grpcAnswered?: number;
  generators: Partial<Record<'wrk' | 'h2load', CpuShare>>;
  serverCpu: CpuShare;
}

export async function measureCapacity(s: PhaseSettings, callers: number): Promise<CapacityResult> {
  const split: Record<Transport, number> = s.transports.length === 2
    ? { http: Math.ceil(callers / 2), grpc: Math.floor(callers / 2) }
    : { http: s.transports[0] === 'http' ? callers : 0, grpc: s.transports[0] === 'grpc' ? callers : 0 };
  const seconds = Math.ceil(s.warmupS + s.windowS + s.tailS);
  const start = performance.now();
  const t0 = epochUs();
  const wrk = split.http > 0 ? runWrk({
    url: `${s.server.baseUrl}${s.payloads.httpPath}`, bodyFile: s.payloads.jpegFile, contentType: 'image/jpeg',
    connections: split.http, threads: Math.min(s.wrkThreads, split.http), seconds, rate: 0, cpus: s.generatorCpus,
  }) : undefined;
  const h2 = split.grpc > 0 ? runH2load({
    url: `http://${s.server.grpcAddress}${GRPC_CLASSIFY_PATH}`, bodyFile: s.payloads.grpcFile,
    connections: 1, streams: split.grpc, seconds, rate: 0, cpus: s.generatorCpus,
  }) : undefined;
  await sleepUntil(start + s.warmupS * 1000);
  const a = edge(s.server);
  await sleepUntil(start + (s.warmupS + s.windowS) * 1000);
  const b = edge(s.server);
  const [w, h] = await Promise.all([wrk, h2]);
  const from = t0 + s.warmupS * 1e6;
  const to = from + s.windowS * 1e6;
  const server = serverCounts(await serverLines(s.serverLog, s.payloads.httpPath, from / 1000, to / 1000), s.windowS);
  const done = (sentUs: number, ms: number | undefined) => ms !== undefined && sentUs + ms * 1000 >= from && sentUs + ms * 1000 < to;
  return {
    imagesPerS: server.completed / server.seconds,
    callers: split,
    server,
    ...(w ? { httpCompleted: w.samples.filter((x) => x.status === 200 && done(x.sentUs, x.latencyMs)).length } : {}),
    ...(h ? { grpcAnswered: h.samples.filter((x) => x.status === 200 && done(x.sentUs, x.latencyMs)).length } : {}),
    generators: { ...(w ? { wrk: generatorShare(w.process) } : {}), ...(h ? { h2load: generatorShare(h.process) } : {}) },
    serverCpu: share(b.serverCpuMs - a.serverCpuMs, b.atMs - a.atMs),
  };
}

// ───────────────────────────── overload ─────────────────────────────

export interface OverloadSettings extends PhaseSettings {
  /** Requests per second offered, over all transports. */
  rate: number;
  /** HTTP connections wrk keeps (each one request at a time). */
  httpConnections: number;
  grpcConnections: number;
  /** Streams per gRPC connection at most (the server allows GRPC_MAX_CONCURRENT_STREAMS). */
  grpcStreams: number;
  /** Calls per second of the gRPC sampler (taken from the gRPC share of the rate). */
  samplerRate: number;
  probeIntervalMs: number;
}

export interface HttpOverload {
  targetRate: number;
  connections: number;
  threads: number;
  /** Requests sent in the window. */
  sent: number;
  offeredRate: number;
  byStatus: Record<string, number>;
  /** Sent in the window, no answer before wrk stopped (or the socket broke: see wrkErrors). */
  unanswered: number;
  /** 200s that completed inside the window, per second. */
  goodput: number;
  refusal: Latency;
  completion: Latency;
  /** How far behind the schedule sends went: p99, and how many were > 10 ms late. */
  lateP99Ms: number;
  lateOver10Ms: number;
  wrkErrors: WrkRun['summary']['errors'];
  unmatched: number;
  generator: CpuShare;
  args: string[];
}

export interface GrpcOverload {
  targetRate: number;
  h2loadRate: number;
  samplerRate: number;
  connections: number;
  streams: number;
  /** h2load's own count over its whole run, and the rate it offered. */
  h2load: H2Run['summary'] & { seconds: number; offeredRate: number };
  /** h2load answers to calls sent in the window: HTTP status only (-1: stream failed). */
  answeredInWindow: number;
  failedInWindow: number;
  /** Latency of every h2load answer sent in the window, refusals and completions mixed. */
  all: Latency;
  /** gRPC outcomes of calls that ended in the window, as the server's log has them (h2load's and the sampler's). */
  serverOutcomes: Record<string, number>;
  /** OK calls that ended in the window (server log), per second. */
  goodput: number;
  /**
   * Where the p99 of h2load's refusals must lie, knowing only the refused fraction f (server
   * count) and the mixed latencies: between the q(0.99 f) quantile (refusals the fastest answers)
   * and the q(1 − 0.01 f) quantile (refusals the slowest).
   */
  refusalP99Bounds: { lowMs: number; highMs: number; refusedFraction: number };
  /** The sampler's calls sent in the window, by grpc-status, timed per status. */
  sampler: { sent: number; byStatus: Record<string, number>; refusal: Latency; completion: Latency; sessionEvents: Record<string, number> };
  generator: CpuShare;
  args: string[];
}

export interface OverloadResult {
  rate: number;
  windowS: number;
  warmupS: number;
  tailS: number;
  http?: HttpOverload;
  grpc?: GrpcOverload;
  server: ServerCounts;
  /** Images completed per second in the window (server log, all transports). */
  goodput: number;
  readiness: Latency & { failed: number };
  probeIntervalMs: number;
  serverCpu: CpuShare;
  /** This process (readiness prober, gRPC sampler) during the window. */
  benchCpu: CpuShare;
  /** This process's event-loop delay p99 during the run: bounds the error of the prober's and sampler's timings. */
  benchLagP99Ms: number;
}

const inWindow = (from: number, to: number) => (sentUs: number) => sentUs >= from && sentUs < to;

function byKey<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

export async function runOverload(s: OverloadSettings): Promise<OverloadResult> {
  const both = s.transports.length === 2;
  const httpRate = s.transports.includes('http') ? (both ? s.rate / 2 : s.rate) : 0;
  const grpcRate = s.transports.includes('grpc') ? (both ? s.rate / 2 : s.rate) : 0;
  const samplerRate = grpcRate > 0 ? Math.min(s.samplerRate, grpcRate / 4) : 0;
  const h2Rate = grpcRate - samplerRate;
  const seconds = Math.ceil(s.warmupS + s.windowS + s.tailS);

  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const start = performance.now();
  const t0 = epochUs();
  const wrk = httpRate > 0 ? runWrk({
    url: `${s.server.baseUrl}${s.payloads.httpPath}`, bodyFile: s.payloads.jpegFile, contentType: 'image/jpeg',
    connections: s.httpConnections, threads: s.wrkThreads, seconds, rate: httpRate, cpus: s.generatorCpus,
  }) : undefined;
  const h2 = h2Rate > 0 ? runH2load({
    url: `http://${s.server.grpcAddress}${GRPC_CLASSIFY_PATH}`, bodyFile: s.payloads.grpcFile,
    connections: s.grpcConnections, streams: s.grpcStreams, seconds, rate: h2Rate, cpus: s.generatorCpus,
  }) : undefined;
  const sampler = samplerRate > 0 ? new GrpcSampler(s.server.grpcPort, GRPC_CLASSIFY_PATH, s.payloads.grpcBody, samplerRate) : undefined;
  const poller = new Poller(s.server.httpPort, '/v2/health/ready', s.probeIntervalMs);

  await sleepUntil(start + s.warmupS * 1000);
  const a = edge(s.server);
  await sleepUntil(start + (s.warmupS + s.windowS) * 1000);
  const b = edge(s.server);
  const [w, h] = await Promise.all([wrk, h2]);
  const probes = await poller.stop();
  const calls: GrpcCall[] = sampler ? await sampler.stop() : [];
  lag.disable();

  const from = t0 + s.warmupS * 1e6;
  const to = from + s.windowS * 1e6;
  const sentIn = inWindow(from, to);
  const server = serverCounts(await serverLines(s.serverLog, s.payloads.httpPath, from / 1000, to / 1000), s.windowS);
  const result: OverloadResult = {
    rate: s.rate, windowS: s.windowS, warmupS: s.warmupS, tailS: s.tailS,
    server,
    goodput: server.completed / server.seconds,
    readiness: (() => {
      const judged = probes.filter((p) => sentIn((performance.timeOrigin + p.at) * 1000));
      return { ...latency(judged.map((p) => p.ms)), failed: judged.filter((p) => p.status !== 200).length };
    })(),
    probeIntervalMs: s.probeIntervalMs,
    serverCpu: share(b.serverCpuMs - a.serverCpuMs, b.atMs - a.atMs),
    benchCpu: share((b.benchCpu.user - a.benchCpu.user + b.benchCpu.system - a.benchCpu.system) / 1000, b.atMs - a.atMs),
    benchLagP99Ms: lag.percentile(99) / 1e6,
  };

  if (w) {
    const judged = w.samples.filter((x) => sentIn(x.sentUs));
    const late = Float64Array.from(judged.map((x) => x.lateMs ?? 0)).sort();
    result.http = {
      targetRate: httpRate, connections: s.httpConnections, threads: Math.min(s.wrkThreads, s.httpConnections),
      sent: judged.length,
      offeredRate: judged.length / s.windowS,
      byStatus: byKey(judged.filter((x) => x.status !== undefined), (x) => String(x.status)),
      unanswered: judged.filter((x) => x.status === undefined).length,
      goodput: w.samples.filter((x) => x.status === 200 && x.latencyMs !== undefined && sentIn(x.sentUs + x.latencyMs * 1000)).length / s.windowS,
      refusal: latency(judged.filter((x) => x.status === 429).map((x) => x.latencyMs as number)),
      completion: latency(judged.filter((x) => x.status === 200).map((x) => x.latencyMs as number)),
      lateP99Ms: percentile(late, 99),
      lateOver10Ms: judged.filter((x) => (x.lateMs ?? 0) > 10).length,
      wrkErrors: w.summary.errors,
      unmatched: w.summary.unmatched,
      generator: generatorShare(w.process),
      args: w.args,
    };
  }

  if (grpcRate > 0) {
    const judged = h ? h.samples.filter((x) => sentIn(x.sentUs)) : [];
    const answered = judged.filter((x) => x.status >= 0);
    const mixed = Float64Array.from(answered.map((x) => x.latencyMs)).sort();
    const ok = server.requests['grpc OK'] ?? 0;
    const refused = server.requests['grpc RESOURCE_EXHAUSTED'] ?? 0;
    // The refused fraction of calls that ENDED in the window, applied to h2load's calls SENT in it:
    // the same in a steady overload.
    const f = ok + refused > 0 ? refused / (ok + refused) : 0;
    const sampled = calls.filter((c) => sentIn(c.sentUs));
    const runSeconds = h ? h.process.wallMs / 1000 : seconds;
    result.grpc = {
      targetRate: grpcRate, h2loadRate: h2Rate, samplerRate,
      connections: s.grpcConnections, streams: s.grpcStreams,
      h2load: { ...(h?.summary ?? { total: 0, started: 0, done: 0, succeeded: 0, failed: 0, errored: 0, timeout: 0 }), seconds: runSeconds, offeredRate: (h?.summary.started ?? 0) / runSeconds },
      answeredInWindow: answered.length,
      failedInWindow: judged.length - answered.length,
      all: latency(answered.map((x) => x.latencyMs)),
      serverOutcomes: Object.fromEntries(Object.entries(server.requests).filter(([k]) => k.startsWith('grpc ')).map(([k, v]) => [k.slice(5), v])),
      goodput: ok / server.seconds,
      refusalP99Bounds: { lowMs: quantile(mixed, 0.99 * f), highMs: quantile(mixed, 1 - 0.01 * f), refusedFraction: f },
      sampler: {
        sent: sampled.length,
        byStatus: byKey(sampled, (c) => (c.grpcStatus === undefined ? `none (${c.error ?? '?'})` : String(c.grpcStatus))),
        refusal: latency(sampled.filter((c) => c.grpcStatus === 8).map((c) => c.ms)),
        completion: latency(sampled.filter((c) => c.grpcStatus === 0).map((c) => c.ms)),
        sessionEvents: byKey(sampler?.events ?? [], (e) => e),
      },
      generator: h ? generatorShare(h.process) : share(0, 1),
      args: h?.args ?? [],
    };
  }
  return result;
}
