// SIGTERM under load (150% of capacity, so the queue is full): readiness turns not-ready at once,
// requests already accepted finish, new ones are refused cleanly (503 draining / UNAVAILABLE, or
// the connection is refused), and the process exits 0 within SHUTDOWN_TIMEOUT_MS.
import { sleep } from '../harness/context.ts';
import { openLoop } from '../harness/load.ts';
import { Poller } from '../harness/probes.ts';
import { round, tally } from '../harness/stats.ts';
import { withServer, type Scenario } from '../harness/scenario.ts';

const SHUTDOWN_TIMEOUT_MS = 20_000;
/** Beyond the drain: stopping the workers and flushing the last log lines. */
const EXIT_SLACK_MS = 5000;
/** Still running this long after SIGTERM: record what keeps it. */
const SLOW_DRAIN_MS = 10_000;
// LOG_LEVEL info: the per-request log lines tell a request the server read from one it never saw.

export const sigterm: Scenario = (ctx) => withServer(ctx, 'sigterm', { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), LOG_LEVEL: 'info' },
  async ({ server, clients, checks, numbers, log }) => {
    const capacity = await ctx.capacity('sigterm', clients);
    const durationMs = ctx.ms(12, 6);
    const poller = new Poller(server.httpPort, '/v2/health/ready', 20, 2000);
    server.trackRequestIds();
    const start = performance.now();
    const run = openLoop(clients, { ratePerS: 1.5 * capacity, durationMs, lostAfterMs: SHUTDOWN_TIMEOUT_MS + 30_000 });
    await sleep(start + durationMs / 2 - performance.now() - 50);
    // A load balancer's kept-alive connections: a request in flight on each at SIGTERM, then
    // nothing more (a balancer that has seen not-ready sends elsewhere). The drain must close
    // them once answered, not wait for them until SHUTDOWN_TIMEOUT_MS.
    const balancer = ctx.clients(server);
    const balanced = Array.from({ length: 4 }, () => balancer.send('http', { lostAfterMs: SHUTDOWN_TIMEOUT_MS + 30_000 }));
    await sleep(50);
    const sigtermAt = server.sigterm();
    log('SIGTERM sent');
    // A drain that outlasts its work is kept by something: say what, while it is still there.
    let lingering: string[] = [];
    const slowDrain = setTimeout(() => {
      server.openHandles().then((h) => (lingering = h), () => undefined);
    }, SLOW_DRAIN_MS);
    const exit = await Promise.race([server.exited, sleep(SHUTDOWN_TIMEOUT_MS + 30_000).then(() => undefined)]);
    clearTimeout(slowDrain);
    const drainMs = exit ? exit.at - sigtermAt : Infinity;
    log(exit ? `exited ${exit.code ?? exit.signal} after ${drainMs.toFixed(0)} ms` : 'did not exit');
    await run.offered;
    const raw = [...(await run.settled), ...(await Promise.all(balanced))];
    balancer.close();
    const health = await poller.stop();

    // A broken connection under a request the server never logged: the server closed the
    // connection before reading the request on it, so it never accepted it (not lost; the client
    // may retry). After SIGTERM that is a refusal; before it, a request that was on its way when
    // the signal came was dropped without an answer, which a drain should not do (checked below).
    // Under a request the server did log, or one that got no answer at all: lost.
    const seen = server.seenRequestIds ?? new Set<string>();
    const results = raw.map((r) => (r.outcome === 'lost' && r.code.includes('RESET') && !seen.has(r.id)
      ? { ...r, outcome: 'rejected' as const, code: `connection closed unread (${r.code})` }
      : r));
    const closedUnread = results.filter((r) => r.code.startsWith('connection closed unread'));
    const t = tally(results);
    const before = results.filter((r) => r.sentAt < sigtermAt);
    const inFlight = before.filter((r) => r.sentAt + r.ms > sigtermAt);
    const inFlightCompleted = inFlight.filter((r) => r.outcome === 'completed').length;
    const after = results.filter((r) => r.sentAt >= sigtermAt);
    const firstNotReady = health.find((h) => h.at + h.ms > sigtermAt && h.status !== 200);
    const flipMs = firstNotReady ? firstNotReady.at + firstNotReady.ms - sigtermAt : Infinity;
    const readyAfterFlip = firstNotReady ? health.filter((h) => h.at > firstNotReady.at && h.status === 200).length : 0;
    const lines = server.logs.map((l) => l.msg);
    const lastCompleted = Math.max(0, ...results.filter((r) => r.outcome === 'completed').map((r) => r.sentAt + r.ms - sigtermAt));

    Object.assign(numbers, {
      'capacity img/s': round(capacity),
      'load req/s': round(1.5 * capacity),
      'readiness not-ready after ms': round(flipMs, 1),
      'in flight at SIGTERM': inFlight.length,
      'of those completed': inFlightCompleted,
      'sent after SIGTERM': after.length,
      'of those refused': after.filter((r) => r.outcome === 'rejected').length,
      'connection closed unread (sent before / after SIGTERM)': `${closedUnread.filter((r) => r.sentAt < sigtermAt).length} / ${closedUnread.filter((r) => r.sentAt >= sigtermAt).length}`,
      'last completion after SIGTERM ms': round(lastCompleted, 0),
      'drain ms': round(drainMs, 0),
      'drain after last completion ms': round(drainMs - lastCompleted, 0),
      ...(lingering.length ? { [`open handles at +${SLOW_DRAIN_MS / 1000} s`]: lingering.join(', ') } : {}),
      'exit code': exit?.code ?? String(exit?.signal ?? 'none'),
    });
    checks.expect(`readiness not-ready within ${ctx.options.readinessFlipMs} ms of SIGTERM`, flipMs <= ctx.options.readinessFlipMs, `${flipMs.toFixed(1)} ms`);
    checks.expect('readiness never ready again after it flipped', readyAfterFlip === 0, `${readyAfterFlip} probes answered 200 after the flip`);
    checks.expect('requests in flight at SIGTERM finished (completed or refused at admission before it)',
      inFlight.every((r) => r.outcome === 'completed' || r.outcome === 'rejected') && inFlightCompleted > 0,
      `${inFlightCompleted} completed of ${inFlight.length} in flight`);
    const unreadBefore = closedUnread.filter((r) => r.sentAt < sigtermAt).length;
    checks.expect('requests sent before SIGTERM all answered: completed, or refused with a status (429, 503)',
      before.every((r) => r.outcome === 'completed' || r.outcome === 'rejected') && unreadBefore === 0,
      `${before.filter((r) => r.outcome !== 'completed' && r.outcome !== 'rejected').length} without an answer; ` +
      `${unreadBefore} had their connection closed before the server read them`);
    checks.expect('requests sent after SIGTERM refused cleanly (or completed)', after.every((r) => r.outcome === 'rejected' || r.outcome === 'completed'),
      [...new Set(after.filter((r) => r.outcome !== 'rejected' && r.outcome !== 'completed').map((r) => `${r.transport} ${r.code}`))].join(', ') || 'all clean');
    checks.noLossNoErrors(t);
    checks.expect('exit code 0', exit?.code === 0, `exit ${exit ? exit.code ?? exit.signal : 'none'}`);
    checks.expect(`exit within SHUTDOWN_TIMEOUT_MS + ${EXIT_SLACK_MS} ms`, drainMs <= SHUTDOWN_TIMEOUT_MS + EXIT_SLACK_MS, `${drainMs.toFixed(0)} ms`);
    checks.expect(`exits promptly once the work is done (≤ ${EXIT_SLACK_MS} ms after the last answer)`, drainMs - lastCompleted <= EXIT_SLACK_MS,
      `${(drainMs - lastCompleted).toFixed(0)} ms${lingering.length ? `; open at +${SLOW_DRAIN_MS / 1000} s: ${lingering.join(', ')}` : ''}`);
    checks.expect('drain logged, "stopped" last', lines.some((m) => m.startsWith('draining')) && lines.at(-1) === 'stopped', `last line "${lines.at(-1)}"`);
    return results;
  });
