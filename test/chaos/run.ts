// Chaos run: overload, worker kill, worker hang, SIGTERM under load, cancellation/deadlines and a
// soak, each against the real server (src/main.ts) in a child process, over real sockets. Prints
// a summary table, writes the full results as JSON to test/chaos/results/, and exits non-zero
// if any check failed. Not part of `npm test` (minutes of load; see test/chaos/README.md).
//
//   npm run test:chaos                                  # all scenarios, ~6 minutes
//   npm run test:chaos -- --duration-scale 0.1          # a quick look (durations × 0.1)
//   npm run test:chaos -- --scenario overload,sigterm   # some scenarios
//   npm run test:chaos -- --scenario soak --soak-seconds 600   # the issue's 10-minute soak
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Context, type ChaosOptions, type ModelUnderTest, type ScenarioResult } from './harness/context.ts';
import type { Scenario } from './harness/scenario.ts';
import { ROOT } from './harness/server-process.ts';
import { cancellation } from './scenarios/cancellation.ts';
import { overload } from './scenarios/overload.ts';
import { sigterm } from './scenarios/sigterm.ts';
import { soak } from './scenarios/soak.ts';
import { workerHang } from './scenarios/worker-hang.ts';
import { workerKill } from './scenarios/worker-kill.ts';

const SCENARIOS: Record<string, Scenario> = {
  'overload': overload,
  'worker-kill': workerKill,
  'worker-hang': workerHang,
  'sigterm': sigterm,
  'cancellation': cancellation,
  'soak': soak,
};

/** The numbers that make the summary table's last column (all of them go to the JSON). */
const KEY_NUMBERS: Record<string, string[]> = {
  'overload': ['offered ×capacity', 'reject p99 ms', 'health p99 ms', 'max queue depth', 'goodput img/s'],
  'worker-kill': ['replace 1 (terminate) ms', 'replace 2 (crash) ms', 'replace 3 (terminate, all) ms', 'not-ready window ms'],
  'worker-hang': ['detected after ms', 'replaced after ms'],
  'sigterm': ['readiness not-ready after ms', 'in flight at SIGTERM', 'of those completed', 'drain ms', 'exit code'],
  'cancellation': ['computed items', 'dropped queued (deadline)', 'dropped queued (cancelled)', 'dropped running (result discarded)'],
  'soak': ['RSS baseline MB', 'RSS end MB', 'tensors baseline', 'tensors end'],
};

const USAGE = `usage: tsx test/chaos/run.ts [options]
  --scenario a,b          ${Object.keys(SCENARIOS).join(', ')} (default: all)
  --duration-scale x      multiply every duration (default 1: overload 60 s, soak 60 s)
  --soak-seconds n        soak length (default 60 × scale; the issue's soak is 600)
  --preset name           DenseNet preset generated for the run (default densenet-bc-100-k12)
  --max-batch-size n      its maxBatchSize (default 8)
  --datatype FP32|UINT8   pixels each request carries (default FP32; UINT8 is 4× fewer bytes)
  --server-cpus list      run the server on these CPUs (taskset -c list); pin the runner
                          elsewhere: taskset -c 8-15 npm run test:chaos -- --server-cpus 0-3
  --max-queue-size n      its maxQueueSize (default 128)
  --model-repository dir  use this repository instead of a generated one (with --model)
  --model name            the model to load from it
  --server-env K=V        a server setting for every scenario (repeatable), e.g. WORKERS=1
  --reject-p99-ms n       bound on rejection latency (default 10)
  --health-p99-ms n       bound on readiness-probe latency under overload (default 100)
  --readiness-flip-ms n   bound on SIGTERM → not ready (default 250)
  --hang-timeout-ms n     WORKER_HANG_TIMEOUT_MS in the hang scenario (default 3000)
  --json file             where to write results (default test/chaos/results/chaos-<time>.json)`;

const { values: args } = parseArgs({
  options: {
    'scenario': { type: 'string', multiple: true },
    'duration-scale': { type: 'string', default: '1' },
    'soak-seconds': { type: 'string' },
    'preset': { type: 'string', default: 'densenet-bc-100-k12' },
    'max-batch-size': { type: 'string', default: '8' },
    'datatype': { type: 'string', default: 'FP32' },
    'server-cpus': { type: 'string' },
    'max-queue-size': { type: 'string', default: '128' },
    'model-repository': { type: 'string' },
    'model': { type: 'string' },
    'server-env': { type: 'string', multiple: true },
    'reject-p99-ms': { type: 'string', default: '10' },
    'health-p99-ms': { type: 'string', default: '100' },
    'readiness-flip-ms': { type: 'string', default: '250' },
    'hang-timeout-ms': { type: 'string', default: '3000' },
    'json': { type: 'string' },
    'help': { type: 'boolean', default: false },
  },
});

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got '${text}'`);
  return n;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const selected = (args.scenario ?? []).flatMap((s) => s.split(',')).filter(Boolean);
const names = selected.length ? selected : Object.keys(SCENARIOS);
for (const name of names) if (!SCENARIOS[name]) fail(`unknown scenario '${name}'`);
if ((args['model-repository'] === undefined) !== (args.model === undefined)) fail('--model-repository and --model go together');

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const RESULTS = path.join(ROOT, 'test/chaos/results');
const logDir = path.join(RESULTS, `logs-${stamp}`);

let options: ChaosOptions;
try {
  const scale = positive('duration-scale', args['duration-scale']);
  const serverEnv: Record<string, string> = {};
  for (const kv of args['server-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--server-env wants KEY=VALUE, got '${kv}'`);
    serverEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const datatype = args.datatype;
  if (datatype !== 'FP32' && datatype !== 'UINT8') throw new Error(`--datatype is FP32 or UINT8, got '${datatype}'`);
  const serverCpus = args['server-cpus'];
  if (serverCpus !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(serverCpus)) throw new Error(`--server-cpus wants a CPU list like 0-3 or 0,2, got '${serverCpus}'`);
  options = {
    scale,
    datatype,
    ...(serverCpus !== undefined ? { serverCpus } : {}),
    soakSeconds: args['soak-seconds'] !== undefined ? positive('soak-seconds', args['soak-seconds']) : Math.max(10, 60 * scale),
    serverEnv,
    rejectP99Ms: positive('reject-p99-ms', args['reject-p99-ms']),
    healthP99Ms: positive('health-p99-ms', args['health-p99-ms']),
    readinessFlipMs: positive('readiness-flip-ms', args['readiness-flip-ms']),
    hangTimeoutMs: positive('hang-timeout-ms', args['hang-timeout-ms']),
    logDir,
  };
} catch (err) {
  fail((err as Error).message);
}

/** Generates the model repository in a child process (the runner never loads TensorFlow). */
async function generateModel(dir: string): Promise<ModelUnderTest> {
  const script = path.join(ROOT, 'test/chaos/harness/make-model.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, args.preset, args['max-batch-size'], args['max-queue-size']], {
    cwd: ROOT, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`generating the ${args.preset} model failed (exit ${code})`);
  const info = JSON.parse(out.trim().split('\n').at(-1) as string) as { model: string; shape: [number, number, number]; maxBatchSize: number; maxQueueSize: number };
  return { repository: dir, name: info.model, key: `${info.model}:1`, shape: info.shape, maxBatchSize: info.maxBatchSize, maxQueueSize: info.maxQueueSize };
}

/** A model of an existing repository: batching from its manifest, the rest from the server. */
async function existingModel(repository: string, name: string): Promise<ModelUnderTest> {
  const manifest = JSON.parse(await readFile(path.join(repository, name, 'manifest.json'), 'utf8')) as { batching?: { maxBatchSize?: number; maxQueueSize?: number } };
  return {
    repository: path.resolve(repository), name, key: `${name}:1`, shape: undefined,
    // The manifest schema's defaults (src/inference/repository/manifest.ts).
    maxBatchSize: manifest.batching?.maxBatchSize ?? 8, maxQueueSize: manifest.batching?.maxQueueSize ?? 256,
  };
}

function cell(value: number | string | undefined): string {
  return value === undefined ? '–' : String(value);
}

function summaryTable(results: ScenarioResult[]): string {
  const rows = [
    '| scenario | result | offered | accepted | rejected | completed | failed-retryable | expired / cancelled | lost | errors | key numbers |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of results) {
    const ok = !r.crashed && r.checks.every((c) => c.ok);
    const t = r.tally;
    const keys = (KEY_NUMBERS[r.scenario] ?? []).map((k) => `${k}: ${cell(r.numbers[k])}`).join('; ');
    rows.push(`| ${r.scenario} | ${ok ? 'PASS' : 'FAIL'} | ${t.offered} | ${t.accepted} | ${t.rejected} | ${t.completed} | ${t.retryable} | ` +
      `${t.expired} / ${t.cancelled} | ${t.lost} | ${t.error} | ${keys} |`);
  }
  return rows.join('\n');
}

const print = (line: string) => process.stdout.write(`${line}\n`);
await mkdir(logDir, { recursive: true });
// Interrupted: exit through process.exit, so the servers started so far are killed with us.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
let tmp: string | undefined;
const results: ScenarioResult[] = [];
let model: ModelUnderTest;
try {
  if (args['model-repository'] !== undefined && args.model !== undefined) {
    model = await existingModel(args['model-repository'], args.model);
  } else {
    tmp = await mkdtemp(path.join(tmpdir(), 'densenet-chaos-'));
    model = await generateModel(tmp);
  }
  print(`chaos: ${names.join(', ')}; model ${model.name} (${args['model-repository'] ? model.repository : args.preset}), ` +
    `maxBatchSize ${model.maxBatchSize}, maxQueueSize ${model.maxQueueSize}; durations ×${options.scale}, soak ${options.soakSeconds} s` +
    `${Object.keys(options.serverEnv).length ? `; server ${JSON.stringify(options.serverEnv)}` : ''}`);
  const ctx = new Context(options, model, print);
  for (const name of names) {
    print(`▶ ${name}`);
    const result = await (SCENARIOS[name] as Scenario)(ctx);
    results.push(result);
    const failed = result.checks.filter((c) => !c.ok);
    print(`  ${failed.length === 0 && !result.crashed ? 'PASS' : 'FAIL'} in ${result.seconds.toFixed(1)} s`);
    for (const c of result.checks) print(`    ${c.skipped ? '–' : c.ok ? '✓' : '✗'} ${c.name} — ${c.detail}`);
    if (result.crashed) print(`    crashed: ${result.crashed}`);
  }
} finally {
  if (tmp) await rm(tmp, { recursive: true, force: true });
}

print('\n## Chaos summary\n');
print(summaryTable(results));
const failedScenarios = results.filter((r) => r.crashed || r.checks.some((c) => !c.ok));
for (const r of failedScenarios) {
  print(`\n${r.scenario}: ${r.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`).join('; ')}`);
  print(`  answers: ${JSON.stringify(r.codes)}`);
  if (Object.keys(r.serverLog).length) print(`  server warnings/errors: ${JSON.stringify(r.serverLog)}`);
}

const file = args.json ?? path.join(RESULTS, `chaos-${stamp}.json`);
await mkdir(path.dirname(file), { recursive: true });
await writeFile(file, `${JSON.stringify({ startedAt, options, model, results }, null, 2)}\n`);
print(`\nresults: ${path.relative(process.cwd(), file)}`);
// Server logs are kept when something failed, for the post-mortem.
if (failedScenarios.length === 0) await rm(logDir, { recursive: true, force: true });
else print(`server logs: ${path.relative(process.cwd(), logDir)}`);
print(failedScenarios.length === 0 ? 'all checks passed' : `${failedScenarios.length} scenario(s) failed`);
process.exit(failedScenarios.length === 0 ? 0 : 1);
