// A hung worker under load (50% of capacity): its thread is made to spin, so the next batch it is
// given never returns. The per-batch watchdog (WORKER_HANG_TIMEOUT_MS) must declare it hung,
// terminate it and start a replacement; the stuck batch is retried on the other worker (or fails
// retryably); nothing is lost.
import { sleep } from '../harness/context.ts';
import { openLoop } from '../harness/load.ts';
import { metricSum, scrape } from '../harness/probes.ts';
import { round, tally } from '../harness/stats.ts';
import { withServer, type Scenario } from '../harness/scenario.ts';
import { timeUntilReplaced } from './worker-kill.ts';

/** Slack for the watchdog: the stall may start mid-batch, and timers run late on a busy machine. */
const DETECTION_SLACK_MS = 3000;

export const workerHang: Scenario = (ctx) => {
  const { hangTimeoutMs } = ctx.options;
  return withServer(ctx, 'worker-hang', { WORKER_HANG_TIMEOUT_MS: String(hangTimeoutMs) }, async ({ server, clients, checks, numbers, log }) => {
    const capacity = await ctx.capacity('worker-hang', clients);
    // Load before the hang, through detection and replacement, and for as long again after.
    const gapMs = ctx.ms(5, 2);
    const restartsBefore = metricSum(await scrape(server.httpPort), 'densenet_worker_restarts_total');
    const stopLoad = new AbortController();
    const run = openLoop(clients, { ratePerS: 0.5 * capacity, durationMs: Infinity, signal: stopLoad.signal, lostAfterMs: 120_000 });

    await sleep(gapMs);
    const hungAt = performance.now();
    const [victim] = await server.hangWorker(10 * hangTimeoutMs);
    log(`worker ${victim} spinning for ${10 * hangTimeoutMs} ms`);
    const replacedMs = await timeUntilReplaced(ctx, server, victim ? [victim] : [], hungAt);
    const detected = server.logged('worker hung; terminating it').find((l) => l.workerId === victim);
    const detectedMs = detected ? detected.at - hungAt : -1;
    log(`detected after ${detectedMs.toFixed(0)} ms, replaced after ${replacedMs.toFixed(0)} ms`);
    await sleep(gapMs);
    stopLoad.abort();
    await run.offered;
    const results = await run.settled;
    const restarts = metricSum(await scrape(server.httpPort), 'densenet_worker_restarts_total') - restartsBefore;
    const hung = server.logged('worker hung; terminating it').map((l) => String(l.workerId));

    const t = tally(results);
    Object.assign(numbers, {
      'capacity img/s': round(capacity),
      'load req/s': round(0.5 * capacity),
      'hang timeout ms': hangTimeoutMs,
      'detected after ms': round(detectedMs, 0),
      'replaced after ms': round(replacedMs, 0),
      'worker restarts': restarts,
      'workers declared hung': hung.join(', '),
      'retryable failures': t.retryable,
      'accepted max ms': round(Math.max(0, ...results.filter((r) => r.outcome === 'completed').map((r) => r.ms)), 0),
    });
    checks.expect('a worker was hung', victim !== undefined, victim ?? 'no live worker');
    checks.expect(`watchdog fired within hang timeout + ${DETECTION_SLACK_MS} ms`, detectedMs >= 0 && detectedMs <= hangTimeoutMs + DETECTION_SLACK_MS,
      detectedMs >= 0 ? `${detectedMs.toFixed(0)} ms (timeout ${hangTimeoutMs} ms)` : 'no "worker hung" log line for the victim');
    checks.expect('hung worker replaced, model reloaded', replacedMs >= 0, `${replacedMs.toFixed(0)} ms`);
    // A second one means the watchdog fired on a healthy worker whose batches got slower while
    // the replacement warmed up: the hang timeout is too tight for this machine.
    checks.expect('only the hung worker was replaced (one restart)', restarts === 1 && hung.length === 1,
      `${restarts} restarts; declared hung: ${hung.join(', ')}`);
    checks.expect('every accepted request completed or failed retryably', t.completed + t.retryable === t.accepted,
      `${t.completed} completed + ${t.retryable} retryable of ${t.accepted} accepted`);
    checks.noLossNoErrors(t);
    const afterReplaced = results.filter((r) => r.sentAt > hungAt + replacedMs && r.outcome === 'completed').length;
    checks.expect('requests complete after the replacement', afterReplaced > 0, `${afterReplaced} completed`);
    return results;
  });
};
