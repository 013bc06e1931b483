// Client cancellation and deadlines under overload (2× capacity, so requests wait in the queue):
// a third of the requests carry a short deadline (Triton's timeout parameter), a third are
// cancelled by the client (socket closed / call cancelled), a third are plain. Cancelled and
// expired work must stop costing compute: /metrics before and after show items dropped while
// queued (densenet_inference_items_dropped_total{stage="queued"}) and fewer items computed
// (densenet_batch_size_sum) than were sent.
import { sleep, waitUntil } from '../harness/context.ts';
import { openLoop } from '../harness/load.ts';
import { metricSum, scrape, type MetricSeries } from '../harness/probes.ts';
import { round, tally } from '../harness/stats.ts';
import { withServer, type Scenario } from '../harness/scenario.ts';

const SHORT_MS = 300;

export const cancellation: Scenario = (ctx) => withServer(ctx, 'cancellation', {}, async ({ server, clients, checks, numbers }) => {
  const capacity = await ctx.capacity('cancellation', clients);
  const model = ctx.model.key;
  const read = (m: MetricSeries) => ({
    computed: metricSum(m, 'densenet_batch_size_sum', { model }),
    batches: metricSum(m, 'densenet_batch_size_count', { model }),
    computeS: metricSum(m, 'densenet_compute_duration_seconds_sum', { model }),
    success: metricSum(m, 'densenet_inference_items_total', { model, outcome: 'success' }),
    rejected: metricSum(m, 'densenet_inference_items_total', { model, outcome: 'rejected' }),
    failed: metricSum(m, 'densenet_inference_items_total', { model, outcome: 'failed' }),
    queuedCancelled: metricSum(m, 'densenet_inference_items_dropped_total', { model, reason: 'cancelled', stage: 'queued' }),
    queuedDeadline: metricSum(m, 'densenet_inference_items_dropped_total', { model, reason: 'deadline', stage: 'queued' }),
    running: metricSum(m, 'densenet_inference_items_dropped_total', { model, stage: 'running' }),
    depth: metricSum(m, 'densenet_queue_depth', { model }),
  });
  const before = read(await scrape(server.httpPort));
  const kinds = ['plain', 'deadline', 'cancel'] as const;
  const kindOf = (i: number) => kinds[Math.floor(i / 2) % 3] as (typeof kinds)[number]; // both transports get every kind
  const run = openLoop(clients, {
    ratePerS: 2 * capacity,
    durationMs: ctx.ms(10, 5),
    lostAfterMs: 60_000,
    vary: (i) => (kindOf(i) === 'deadline' ? { timeoutMs: SHORT_MS } : kindOf(i) === 'cancel' ? { cancelAfterMs: SHORT_MS } : {}),
  });
  const results = await run.settled;
  // Cancellations reach the server as closed sockets and RST_STREAMs: let it see them all.
  await waitUntil(async () => read(await scrape(server.httpPort)).depth === 0, 30_000, 100);
  await sleep(500);
  const after = read(await scrape(server.httpPort));
  const d = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]])) as typeof before;

  const t = tally(results);
  const sent = t.offered;
  const droppedQueued = d.queuedCancelled + d.queuedDeadline;
  const reachedBatcher = d.computed + droppedQueued + d.rejected;
  const byKind = (kind: (typeof kinds)[number]) => results.filter((_, i) => kindOf(i) === kind);
  Object.assign(numbers, {
    'capacity img/s': round(capacity),
    'sent (1 image each)': sent,
    'computed items': d.computed,
    'batches run': d.batches,
    'compute s': round(d.computeS, 2),
    'dropped queued (deadline)': d.queuedDeadline,
    'dropped queued (cancelled)': d.queuedCancelled,
    'dropped running (result discarded)': d.running,
    'refused at enqueue (queue full)': d.rejected,
    'never reached the batcher': sent - reachedBatcher,
    'client saw 504/DEADLINE_EXCEEDED': t.expired,
    'client cancelled': t.cancelled,
  });

  checks.expect('expired requests dropped before compute (stage queued > 0)', d.queuedDeadline > 0, `${d.queuedDeadline}`);
  checks.expect('cancelled requests dropped before compute (stage queued > 0)', d.queuedCancelled > 0, `${d.queuedCancelled}`);
  checks.expect('computed fewer items than were sent', d.computed < sent, `${d.computed} computed of ${sent} sent`);
  checks.expect('every computed item succeeded or was dropped while running', d.computed === d.success + d.running,
    `${d.computed} computed = ${d.success} success + ${d.running} dropped running`);
  checks.expect('accounting: computed + dropped queued + refused ≤ sent', reachedBatcher <= sent && d.failed === 0,
    `${d.computed} + ${droppedQueued} + ${d.rejected} = ${reachedBatcher} of ${sent} (failed ${d.failed})`);
  checks.expect('deadline requests answered DEADLINE_EXCEEDED (or completed in time, or refused)',
    byKind('deadline').every((r) => ['expired', 'completed', 'rejected'].includes(r.outcome)) && t.expired > 0, `${t.expired} expired`);
  checks.expect('plain requests completed or were refused (429)', byKind('plain').every((r) => r.outcome === 'completed' || r.outcome === 'rejected'),
    `${byKind('plain').filter((r) => r.outcome !== 'completed' && r.outcome !== 'rejected').length} not`);
  checks.noLossNoErrors(t);
  return results;
});
