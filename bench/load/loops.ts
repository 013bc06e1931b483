// The two ways of offering load, over any request function:
//
// - closed loop: N callers, each sending its next request when the previous one answers. The
//   server sets the pace; latency is send → answer. This finds saturation throughput, but it
//   cannot show queueing delay beyond N requests: a slow answer delays the next send
//   ("coordinated omission").
// - open loop: requests are scheduled at a fixed rate (Poisson or evenly spaced arrivals)
//   whatever the server does, and latency runs from the SCHEDULED send time, so any lag of the
//   generator or backlog at the server shows up in the percentiles.
import { setMaxListeners } from 'node:events';
import { LatencySamples, WindowRecorder, percentile } from './stats.ts';
import { seededRandom } from '../../test/helpers/random.ts';

export type Outcome = { ok: true } | { ok: false; cause: string };
/** Sends one request; resolves with its outcome (never rejects). */
export type Send = (signal: AbortSignal) => Promise<Outcome>;

export interface LoopTiming {
  warmupMs: number;
  durationMs: number;
  /** After the window, how long in-flight requests may take before they are aborted. */
  drainTimeoutMs: number;
}

export interface LoopResult {
  recorder: WindowRecorder;
  /** Open loop: how late requests were actually sent after their scheduled time. */
  sendLagP99Ms?: number;
  /** Open loop: requests scheduled in the window. */
  scheduled?: number;
  /** CPU time of this (generator) process during the run, as a fraction of one core. */
  generatorCpu: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One signal per loop, shared by every request in flight: each adds an abort listener. */
function loopController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

async function drain(pending: Set<Promise<void>>, controller: AbortController, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => controller.abort(new Error('drain timeout')), timeoutMs);
  await Promise.all([...pending]);
  clearTimeout(timer);
}

export async function closedLoop(concurrency: number, timing: LoopTiming, send: Send): Promise<LoopResult> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const recorder = new WindowRecorder(timing.warmupMs, timing.durationMs, t0);
  const controller = loopController();
  const pending = new Set<Promise<void>>();
  const caller = async () => {
    while (performance.now() < recorder.end && !controller.signal.aborted) {
      const sent = performance.now();
      const outcome = await send(controller.signal);
      const done = performance.now();
      if (outcome.ok) recorder.ok(done - sent, done, done);
      else recorder.failed(outcome.cause, done);
    }
  };
  for (let i = 0; i < concurrency; i++) {
    const p: Promise<void> = caller().finally(() => pending.delete(p));
    pending.add(p);
  }
  await sleep(recorder.end - performance.now());
  await drain(pending, controller, timing.drainTimeoutMs);
  return { recorder, generatorCpu: cpuFraction(cpu0, t0) };
}

export type Arrivals = 'poisson' | 'uniform';

export interface OpenLoopOptions {
  /** Requests per second offered. */
  rate: number;
  arrivals: Arrivals;
  seed: number;
  /** Requests in flight at once beyond which a scheduled request is counted as 'client-overflow'. */
  maxInFlight: number;
}

export async function openLoop(options: OpenLoopOptions, timing: LoopTiming, send: Send): Promise<LoopResult> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const recorder = new WindowRecorder(timing.warmupMs, timing.durationMs, t0);
  const controller = loopController();
  const pending = new Set<Promise<void>>();
  const lags = new LatencySamples();
  const random = seededRandom(options.seed);
  const meanGapMs = 1000 / options.rate;
  const gap = options.arrivals === 'uniform' ? () => meanGapMs : () => -Math.log(1 - random()) * meanGapMs;
  let scheduled = 0;

  const fire = (at: number) => {
    const now = performance.now();
    if (recorder.inWindow(at)) {
      scheduled++;
      lags.add(now - at);
    }
    if (pending.size >= options.maxInFlight) {
      recorder.failed('client-overflow', at);
      return;
    }
    const p: Promise<void> = send(controller.signal).then((outcome) => {
      const done = performance.now();
      if (outcome.ok) recorder.ok(done - at, at, done);
      else recorder.failed(outcome.cause, at);
    }).finally(() => pending.delete(p));
    pending.add(p);
  };

  // Fire every arrival that is due, then sleep until the next one. Timers wake late by a
  // millisecond or more; the requests due meanwhile go out together, and their latency still
  // counts from their own scheduled times.
  let next = t0 + gap();
  while (next < recorder.end) {
    const now = performance.now();
    while (next <= now && next < recorder.end) {
      fire(next);
      next += gap();
    }
    if (next < recorder.end) await sleep(Math.max(0, next - performance.now()));
  }
  await drain(pending, controller, timing.drainTimeoutMs);
  const sorted = lags.sorted();
  return { recorder, sendLagP99Ms: percentile(sorted, 99), scheduled, generatorCpu: cpuFraction(cpu0, t0) };
}

function cpuFraction(start: NodeJS.CpuUsage, t0: number): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / (performance.now() - t0);
}
