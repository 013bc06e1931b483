// 10× capacity offered (open loop, half HTTP, half gRPC): excess is refused fast (429 /
// RESOURCE_EXHAUSTED), every accepted request completes, the queue stays within maxQueueSize,
// and the readiness probe, polled every 100 ms, stays answered and fast.
import { metricSum, Poller, scrape } from '../harness/probes.ts';
import { openLoop } from '../harness/load.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { percentile, round, tally } from '../harness/stats.ts';
import { withServer, type Scenario } from '../harness/scenario.ts';

const FACTOR = 10;

export const overload: Scenario = (ctx) => withServer(ctx, 'overload', {}, async ({ server, clients, checks, numbers, log }) => {
  const capacity = await ctx.capacity('overload', clients);
  const durationMs = ctx.ms(60, 5);
  const rate = FACTOR * capacity;
  log(`offering ${rate.toFixed(0)} req/s for ${durationMs / 1000} s`);

  let maxQueue = 0;
  let maxLagS = 0;
  let maxClientQueued = 0;
  const sampler = setInterval(() => {
    maxClientQueued = Math.max(maxClientQueued, clients.httpQueued);
    void scrape(server.httpPort).then((m) => {
      maxQueue = Math.max(maxQueue, metricSum(m, 'densenet_queue_depth', { model: ctx.model.key }));
      maxLagS = Math.max(maxLagS, metricSum(m, 'densenet_nodejs_eventloop_lag_p99_seconds'));
    }, () => undefined);
  }, 250);
  const poller = new Poller(server.httpPort, '/v2/health/ready', 100);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const started = performance.now();
  const run = openLoop(clients, { ratePerS: rate, durationMs, lostAfterMs: 60_000 });
  await run.offered;
  const offeredS = (performance.now() - started) / 1000;
  const results = await run.settled;
  clearInterval(sampler);
  lag.disable();
  const health = await poller.stop();

  const t = tally(results);
  const rejected = results.filter((r) => r.outcome === 'rejected');
  const rejectMs = rejected.map((r) => r.ms);
  const acceptedMs = results.filter((r) => r.outcome === 'completed').map((r) => r.ms);
  const completedInWindow = results.filter((r) => r.outcome === 'completed' && r.sentAt + r.ms <= started + offeredS * 1000).length;
  const healthMs = health.map((h) => h.ms);
  const healthFailed = health.filter((h) => h.status !== 200).length;
  const offeredRate = t.offered / offeredS;

  Object.assign(numbers, {
    'capacity img/s': round(capacity),
    'offered req/s': round(offeredRate),
    'offered ×capacity': round(offeredRate / capacity),
    'reject p50 ms': round(percentile(rejectMs, 50), 2),
    'reject p99 ms': round(percentile(rejectMs, 99), 2),
    'reject p99 ms http': round(percentile(rejected.filter((r) => r.transport === 'http').map((r) => r.ms), 99), 2),
    'reject p99 ms grpc': round(percentile(rejected.filter((r) => r.transport === 'grpc').map((r) => r.ms), 99), 2),
    'accepted p99 ms': round(percentile(acceptedMs, 99)),
    'goodput img/s': round(completedInWindow / offeredS),
    'health p99 ms': round(percentile(healthMs, 99), 2),
    'health probes': health.length,
    'health failed': healthFailed,
    'max queue depth': maxQueue,
    'maxQueueSize': ctx.model.maxQueueSize,
    'server event-loop lag p99 max ms': round(maxLagS * 1000, 1),
  });

  checks.expect(`offered ≥ ${FACTOR * 0.9}× capacity`, offeredRate >= FACTOR * 0.9 * capacity, `${(offeredRate / capacity).toFixed(2)}× of ${capacity.toFixed(1)} img/s`);
  // Client-side delays would count against the server: a busy runner invalidates the latencies.
  checks.expect('load generator kept up: its event-loop lag p99 ≤ 50 ms', lag.percentile(99) / 1e6 <= 50, `${(lag.percentile(99) / 1e6).toFixed(1)} ms`);
  checks.expect('the client never queued requests itself (the load reached the server)', maxClientQueued === 0, `max ${maxClientQueued} waiting for a socket`);
  checks.expect('overload reached: excess rejected', t.rejected > 0, `${t.rejected} rejected`);
  checks.expect('rejections are only 429 / RESOURCE_EXHAUSTED', rejected.every((r) => r.code.includes('QUEUE_FULL')),
    [...new Set(rejected.map((r) => r.code))].join(', '));
  checks.expect(`rejected fast: p99 ≤ ${ctx.options.rejectP99Ms} ms`, percentile(rejectMs, 99) <= ctx.options.rejectP99Ms,
    `p99 ${percentile(rejectMs, 99).toFixed(2)} ms over ${rejectMs.length}`);
  checks.expect('every accepted request completed', t.completed === t.accepted, `${t.completed} of ${t.accepted}`);
  checks.noLossNoErrors(t);
  checks.expect('queue bounded by maxQueueSize', maxQueue <= ctx.model.maxQueueSize, `max ${maxQueue} of ${ctx.model.maxQueueSize}`);
  checks.expect('readiness answered 200 to every probe', healthFailed === 0 && health.length > 0, `${healthFailed} of ${health.length} failed`);
  checks.expect(`readiness p99 ≤ ${ctx.options.healthP99Ms} ms`, percentile(healthMs, 99) <= ctx.options.healthP99Ms, `p99 ${percentile(healthMs, 99).toFixed(2)} ms`);
  checks.expect('no congestion collapse: goodput ≥ 50% of capacity', completedInWindow / offeredS >= 0.5 * capacity,
    `${(completedInWindow / offeredS).toFixed(1)} of ${capacity.toFixed(1)} img/s`);
  return results;
});
