// A short chaos smoke in `npm test`: the worker-kill and SIGTERM scenarios of the chaos suite
// (test/chaos/scenarios/, unchanged), at a tenth of their durations (each scenario's minimum:
// a few seconds of load), on the embedded model, against the real server in a child process.
// The full suite stays `npm run test:chaos`.
//
// Kept: no request lost, no unexpected answer, and every check of the scenario that is about
// counts, ordering and outcomes. Dropped, because they are bounds on wall-clock time or depend on
// a probe landing inside a window of a given length, which 2 busy CI cores cannot promise
// (the full suite judges them):
//   - sigterm: readiness not-ready within --readiness-flip-ms of SIGTERM;
//   - sigterm: no request sent before SIGTERM has its connection closed unread: the draining
//     server reads for a fixed DRAIN_READ_GRACE_MS (1 s) before closing idle kept-alive sockets,
//     so this holds only while its event loop lags less than that (seen failing here with the
//     runner and other test files on the same 2 cores: 99 such requests). Those requests were
//     never accepted (the client sees a reset and may retry); lost 0 and errors 0 still hold;
//   - sigterm: exit within SHUTDOWN_TIMEOUT_MS + 5 s; exits ≤ 5 s after the last answer;
//   - worker-kill: readiness answered 503 while no worker held the model (a 50 ms poller must
//     land inside the replacement window).
// The worker-kill scenario's "replaced, model reloaded" waits up to 120 s: a hang guard, kept.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context, type ScenarioResult } from './harness/context.ts';
import type { Scenario } from './harness/scenario.ts';
import { ROOT } from './harness/server-process.ts';
import { sigterm } from './scenarios/sigterm.ts';
import { workerKill } from './scenarios/worker-kill.ts';

const MODEL = 'fashion-mnist-densenet';
const SCALE = 0.1;
/**
 * The embedded model with batches of at most 4 (its manifest says 16): a replacement worker warms
 * every batch size twice before it takes work, 20 images instead of 272, which keeps the three
 * replacements of the worker-kill scenario short.
 */
const BATCHING = { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 64 };

/** Checks judged only by the full suite (see above), by exact name or name prefix. */
const DROPPED: Record<string, RegExp[]> = {
  'worker-kill': [/^readiness 503 while no worker held the model$/],
  'sigterm': [
    /^readiness not-ready within \d+ ms of SIGTERM$/,
    /^requests sent before SIGTERM all answered/,
    /^exit within SHUTDOWN_TIMEOUT_MS \+ \d+ ms$/,
    /^exits promptly once the work is done/,
  ],
};

let logDir: string;
let repository: string;
let ctx: Context;
const printed: string[] = [];

beforeAll(async () => {
  logDir = await mkdtemp(path.join(tmpdir(), 'chaos-smoke-'));
  repository = await mkdtemp(path.join(tmpdir(), 'chaos-smoke-models-'));
  const source = path.join(ROOT, 'models', MODEL);
  await mkdir(path.join(repository, MODEL));
  for (const file of ['weights.safetensors', 'labels.txt']) await copyFile(path.join(source, file), path.join(repository, MODEL, file));
  const manifest = JSON.parse(await readFile(path.join(source, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(repository, MODEL, 'manifest.json'), JSON.stringify({ ...manifest, batching: BATCHING }));
  ctx = new Context({
    // One worker: the kills replace one process at a time, and the run stays short.
    scale: SCALE, datatype: 'FP32', soakSeconds: 10, serverEnv: { WORKERS: '1' },
    // Bounds of the timing checks this smoke drops; the scenarios still need values.
    rejectP99Ms: 10, healthP99Ms: 100, readinessFlipMs: 250, hangTimeoutMs: 3000,
    logDir,
  }, {
    repository, name: MODEL, key: `${MODEL}:1`, shape: undefined,
    maxBatchSize: BATCHING.maxBatchSize, maxQueueSize: BATCHING.maxQueueSize,
  }, (line) => printed.push(line));
});

afterAll(async () => {
  for (const dir of [logDir, repository]) if (dir) await rm(dir, { recursive: true, force: true });
});

async function smoke(name: string, scenario: Scenario): Promise<ScenarioResult> {
  const result = await scenario(ctx);
  const report = () => [
    ...printed,
    ...result.checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.name} — ${c.detail}`),
    `tally ${JSON.stringify(result.tally)}`, `codes ${JSON.stringify(result.codes)}`, `server log ${JSON.stringify(result.serverLog)}`,
    result.crashed ?? '',
  ].join('\n');
  expect(result.crashed, report()).toBeUndefined();
  const dropped = DROPPED[name] ?? [];
  // Each dropped check names one the scenario really has: a renamed check fails here instead of
  // being judged (or ignored) by accident.
  for (const pattern of dropped) expect(result.checks.filter((c) => pattern.test(c.name)), `${name}: check ${pattern}`).toHaveLength(1);
  const kept = result.checks.filter((c) => !dropped.some((p) => p.test(c.name)));
  expect(kept.filter((c) => !c.ok).map((c) => `${c.name} — ${c.detail}`), report()).toEqual([]);
  expect(result.tally.lost, report()).toBe(0);
  expect(result.tally.error, report()).toBe(0);
  expect(result.tally.completed, report()).toBeGreaterThan(0);
  return result;
}

describe('chaos smoke (short worker-kill and SIGTERM runs; the full suite is npm run test:chaos)', () => {
  it('worker kill under load: workers replaced, restarts counted, no request lost', async () => {
    const result = await smoke('worker-kill', workerKill);
    expect(result.numbers['workers killed']).toBe(result.numbers['worker restarts']);
  }, 150_000);

  it('SIGTERM under load: accepted requests finish, new ones refused, exit 0, no request lost', async () => {
    const result = await smoke('sigterm', sigterm);
    expect(result.numbers['exit code']).toBe(0);
    expect(result.numbers['in flight at SIGTERM']).toBeGreaterThan(0);
  }, 150_000);
});
