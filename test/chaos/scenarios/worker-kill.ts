// Workers killed under load (70% of capacity): one from outside (Worker.terminate(), the nearest a
// thread gets to SIGKILL), one by a fatal exit inside the thread, then all of them at once.
// Each is replaced with its model reloaded; no accepted request is lost or hangs (it completes,
// or fails with the retryable WORKER_FAILED after its one retry); readiness turns 503 while no
// worker holds the model and 200 again after.
import type { Context } from '../harness/context.ts';
import { sleep, waitUntil } from '../harness/context.ts';
import { openLoop } from '../harness/load.ts';
import { metricSum, Poller, scrape } from '../harness/probes.ts';
import type { ServerProcess } from '../harness/server-process.ts';
import { round, tally } from '../harness/stats.ts';
import { withServer, type Scenario } from '../harness/scenario.ts';

const REPLACE_TIMEOUT_MS = 120_000;

/** ms from now until `count` live workers that are not in `gone` hold the model; -1 on timeout. */
export async function timeUntilReplaced(ctx: Context, server: ServerProcess, gone: readonly string[], since: number): Promise<number> {
  const ok = await waitUntil(async () => {
    const { workers } = await server.stats();
    const fresh = workers.filter((w) => !gone.includes(w.id) && w.models.includes(ctx.model.key));
    return fresh.length === ctx.workers && workers.every((w) => !gone.includes(w.id));
  }, REPLACE_TIMEOUT_MS, 25);
  return ok ? performance.now() - since : -1;
}

export const workerKill: Scenario = (ctx) => withServer(ctx, 'worker-kill', {}, async ({ server, clients, checks, numbers, log }) => {
  const capacity = await ctx.capacity('worker-kill', clients);
  // Load before, between and after the kills; each kill waits for the previous replacement.
  const gapMs = ctx.ms(6, 2);
  const restartsBefore = metricSum(await scrape(server.httpPort), 'densenet_worker_restarts_total');
  const poller = new Poller(server.httpPort, '/v2/health/ready', 50);
  const stopLoad = new AbortController();
  const loadStart = performance.now();
  const run = openLoop(clients, { ratePerS: 0.7 * capacity, durationMs: Infinity, signal: stopLoad.signal, lostAfterMs: 120_000 });

  const kills: Array<{ mode: 'terminate' | 'crash'; all: boolean; at: number; replacedMs: number; ids: string[] }> = [];
  const plan = [
    { mode: 'terminate', all: false },
    { mode: 'crash', all: false },
    { mode: 'terminate', all: true },
  ] as const;
  for (const step of plan) {
    await sleep(gapMs);
    const at = performance.now();
    const ids = await server.killWorker(step.mode, step.all);
    const replacedMs = await timeUntilReplaced(ctx, server, ids, at);
    log(`${step.mode} ${ids.join(', ')} → replaced in ${replacedMs.toFixed(0)} ms`);
    kills.push({ ...step, at, ids, replacedMs });
  }
  await sleep(gapMs);
  stopLoad.abort();
  const loadS = (performance.now() - loadStart) / 1000;
  await run.offered;
  const results = await run.settled;
  const health = await poller.stop();
  const restarts = metricSum(await scrape(server.httpPort), 'densenet_worker_restarts_total') - restartsBefore;
  const t = tally(results);
  const killedIds = kills.flatMap((k) => k.ids);
  const allKill = kills.find((k) => k.all);
  const windowEnd = allKill ? allKill.at + allKill.replacedMs : 0;
  const notReady = health.filter((h) => allKill && h.at >= allKill.at && h.at <= windowEnd && h.status === 503);
  const firstNotReady = notReady[0];
  const lastNotReady = notReady.at(-1);
  const afterLast = results.filter((r) => r.sentAt > windowEnd && r.outcome === 'completed').length;

  kills.forEach((k, i) => {
    numbers[`replace ${i + 1} (${k.mode}${k.all ? ', all' : ''}) ms`] = round(k.replacedMs, 0);
  });
  Object.assign(numbers, {
    'capacity img/s': round(capacity),
    'load req/s': round(0.7 * capacity),
    'load s': round(loadS, 1),
    'workers killed': killedIds.length,
    'worker restarts': restarts,
    'not-ready window ms': firstNotReady && lastNotReady ? round(lastNotReady.at - firstNotReady.at, 0) : 0,
    'retryable failures': t.retryable,
    'accepted max ms': round(Math.max(0, ...results.filter((r) => r.outcome === 'completed').map((r) => r.ms)), 0),
    'refused while no worker (503 MODEL_NOT_READY)': results.filter((r) => r.code.includes('MODEL_NOT_READY')).length,
  });

  for (const [i, k] of kills.entries()) {
    checks.expect(`kill ${i + 1} (${k.mode}${k.all ? ', all workers' : ''}): replaced, model reloaded`, k.replacedMs >= 0,
      k.replacedMs >= 0 ? `${k.replacedMs.toFixed(0)} ms` : `not within ${REPLACE_TIMEOUT_MS} ms`);
  }
  checks.expect('worker restarts counted, one per killed worker', restarts === killedIds.length, `${restarts} restarts for ${killedIds.length} killed`);
  checks.expect('readiness 503 while no worker held the model', notReady.length > 0, `${notReady.length} probes answered 503 in the window`);
  checks.expect('readiness 200 again once replaced', health.at(-1)?.status === 200, `last probe ${health.at(-1)?.status}`);
  checks.expect('every accepted request completed or failed retryably', t.completed + t.retryable === t.accepted,
    `${t.completed} completed + ${t.retryable} retryable of ${t.accepted} accepted`);
  checks.noLossNoErrors(t);
  checks.expect('requests complete again after the last replacement', afterLast > 0, `${afterLast} completed`);
  return results;
});
