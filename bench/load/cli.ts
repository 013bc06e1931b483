// Service load generator: starts the server (compiled: dist/main.js) in a child process and sweeps it.
//   npm run bench:load -- [options]         (= node --import tsx bench/load/cli.ts)
// See docs/benchmarks.md for the method and bench/load/README.md for the options.
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ENGINE_DEFAULTS } from '../../src/inference/index.ts';
import { waitForGrpc } from './grpc-driver.ts';
import { runMemory, mib, type MemoryRun } from './memory.ts';
import { CACHE_DIR, ensureCacheDir, modelRepository } from './model-repo.ts';
import { latestResult, writeServiceReport } from './report.ts';
import { buildPayloads, fetchModelShape, isKind, KINDS } from './requests.ts';
import { REPO_ROOT, startServerProcess } from './server-process.ts';
import { runSweep, summarizeKinds, type HostInfo, type LoadRun, type PointResult } from './sweep.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    kinds: { type: 'string', default: KINDS.join(',') },
    concurrency: { type: 'string', default: '1,2,4,8,16,32,64' },
    loads: { type: 'string', default: '25,50,75,90,100,110' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    arrivals: { type: 'string', default: 'poisson' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string' },
    'max-batch': { type: 'string', default: '8' },
    'max-queue': { type: 'string', default: '1024' },
    'max-in-flight': { type: 'string', default: '4096' },
    'server-setting': { type: 'string', multiple: true, default: [] },
    'engine-rate': { type: 'string' },
    out: { type: 'string' },
    doc: { type: 'string' },
    'svg-dir': { type: 'string' },
    memory: { type: 'boolean', default: false },
    requests: { type: 'string', default: '10000' },
    'sample-every': { type: 'string', default: '500' },
    'memory-concurrency': { type: 'string', default: '8' },
    'ready-timeout': { type: 'string', default: '600' },
    'server-cpus': { type: 'string' },
  },
  strict: true,
});

const numbers = (flag: string, text: string): number[] =>
  text.split(',').filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag}: '${s}' is not a positive number`);
    return n;
  });
const positive = (flag: string, text: string): number => {
  const [n] = numbers(flag, text);
  if (n === undefined) throw new Error(`--${flag} needs a value`);
  return n;
};

const kinds = args.kinds.split(',').map((k) => {
  if (!isKind(k)) throw new Error(`--kinds: '${k}' is not one of ${KINDS.join(', ')}`);
  return k;
});
if (args.arrivals !== 'poisson' && args.arrivals !== 'uniform') throw new Error(`--arrivals: '${args.arrivals}' is not poisson or uniform`);
const arrivals = args.arrivals;
const warmupSeconds = Number(args.warmup);
if (!(warmupSeconds >= 0)) throw new Error(`--warmup: '${args.warmup}' is not a number of seconds ≥ 0`);
const workers = args.workers ? positive('workers', args.workers) : ENGINE_DEFAULTS.WORKERS;
const settings: Record<string, string> = { WORKERS: String(workers) };
for (const s of args['server-setting']) {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new Error(`--server-setting: '${s}' is not KEY=VALUE`);
  settings[s.slice(0, eq)] = s.slice(eq + 1);
}
const repoOptions = { maxBatchSize: positive('max-batch', args['max-batch']), maxQueueSize: positive('max-queue', args['max-queue']) };
const readyTimeoutMs = positive('ready-timeout', args['ready-timeout']) * 1000;
const serverCpus = args['server-cpus'];
// UTC, as bench/engine.ts names its results: load-2025-01-31-1405.json
const stamp = new Date().toISOString().slice(0, 16).replace(':', '').replace('T', '-');
const resultsDir = path.join(REPO_ROOT, 'bench/results');
await ensureCacheDir();
const logFile = path.join(CACHE_DIR, 'server.log');
const log = (line: string) => process.stderr.write(`${line}\n`);

function hostInfo(): HostInfo {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

async function writeJson(file: string, data: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  log(`results: ${path.relative(REPO_ROOT, file)}`);
}

const f = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));

function pointRow(p: PointResult): string {
  const load = p.mode === 'closed' ? `c=${p.concurrency}` : `${Math.round((p.loadFraction ?? 0) * 100)}% ${f(p.offeredRate)}/s`;
  return [
    p.kind.padEnd(15), p.mode.padEnd(6), load.padEnd(16), f(p.throughput).padStart(8),
    f(p.latency.p50Ms, 2).padStart(9), f(p.latency.p90Ms, 2).padStart(9), f(p.latency.p99Ms, 2).padStart(9),
    String(p.errors).padStart(6), f(p.server?.meanBatchSize, 2).padStart(6), f(p.rssAfterKiB / 1024).padStart(8),
    f(p.generatorCpu, 2).padStart(6),
  ].join(' ');
}
const HEADER = `${'kind'.padEnd(15)} ${'mode'.padEnd(6)} ${'load'.padEnd(16)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(9)} ` +
  `${'p90 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'errors'.padStart(6)} ${'batch'.padStart(6)} ${'RSS MiB'.padStart(8)} ${'genCPU'.padStart(6)}`;

if (args.memory) {
  const model = args.model ?? 'densenet121';
  const run: MemoryRun = await runMemory({
    model, repo: repoOptions, workers, settings, kinds, logFile, readyTimeoutMs, log, ...(serverCpus ? { cpus: serverCpus } : {}),
    requests: positive('requests', args.requests),
    concurrency: positive('memory-concurrency', args['memory-concurrency']),
    sampleEvery: positive('sample-every', args['sample-every']),
  });
  console.log(`memory, ${run.modelDescription}, ${workers} worker(s), ${run.requests} requests (${kinds.join(', ')}), ${run.concurrency} concurrent`);
  const rows: [string, string][] = [];
  if (run.emptyRssKiB !== undefined) rows.push(['idle, empty repository', mib(run.emptyRssKiB)]);
  for (const l of run.loaded) rows.push([`idle, model on ${l.instances} worker(s)`, mib(l.rssKiB)]);
  if (run.perInstanceKiB !== undefined) rows.push(['RSS per loaded instance', mib(run.perInstanceKiB)]);
  rows.push([`after ${run.warmupRequests} requests (warm-up)`, mib(run.rssAfterWarmupKiB)]);
  rows.push([`after ${run.requests} requests`, `${mib(run.rssEndKiB)}   growth ${mib(run.growthKiB)}, slope ${f(run.slopeKiBPer1000)} KiB / 1000 requests`]);
  rows.push(['peak (VmHWM)', mib(run.peakKiB)]);
  rows.push(['errors', `${run.errors}${run.errors ? ` ${JSON.stringify(run.errorsByCause)}` : ''}`]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  for (const [k, v] of rows) console.log(`  ${`${k}:`.padEnd(width)} ${v}`);
  const out = args.out ?? path.join(resultsDir, `load-memory-${stamp}.json`);
  const recorded: MemoryRun = { ...run, host: hostInfo(), command: process.argv.slice(2).join(' '), finishedAt: new Date().toISOString() };
  await writeJson(out, recorded);
  if (args.doc) {
    const sweep = await latestResult(path.dirname(out), 'sweep');
    await writeServiceReport({ sweep, memory: recorded, doc: args.doc, svgDir: args['svg-dir'] ?? path.join(path.dirname(args.doc), 'benchmarks') });
  }
} else {
  const model = args.model ?? 'densenet-bc-100-k12';
  const startedAt = new Date().toISOString();
  const host = hostInfo();
  const repo = await modelRepository(model, repoOptions);
  log(`server: ${repo.description}, settings ${JSON.stringify(settings)}; log ${path.relative(REPO_ROOT, logFile)}`);
  const server = await startServerProcess({ repository: repo.root, settings, logFile, readyTimeoutMs, ...(serverCpus ? { cpus: serverCpus } : {}) });
  try {
    await waitForGrpc(server.grpcAddress, 10_000);
    const payloads = await buildPayloads(await fetchModelShape(server.baseUrl, repo.name));
    const rssIdleKiB = (await server.memory()).rssKiB;
    const loadPercents = numbers('loads', args.loads);
    const seconds = positive('seconds', args.seconds);
    console.log(`${repo.description}; server pid ${server.pid}, ${workers} worker(s); idle RSS ${mib(rssIdleKiB)}`);
    console.log(`${seconds} s per point after ${warmupSeconds} s warm-up; open loop: ${arrivals} arrivals; host ${host.cpus} CPUs, load ${host.loadAverage.join(' ')}`);
    console.log(HEADER);
    const points = await runSweep({
      server, payloads,
      timing: { warmupMs: warmupSeconds * 1000, durationMs: seconds * 1000, drainTimeoutMs: 60_000 },
      arrivals,
      seed: Number(args.seed),
      maxInFlight: positive('max-in-flight', args['max-in-flight']),
      onPoint: (p) => console.log(pointRow(p)),
    }, { kinds, concurrencies: numbers('concurrency', args.concurrency), loadFractions: loadPercents.map((p) => p / 100) });
    const engineRate = args['engine-rate'] ? positive('engine-rate', args['engine-rate']) : undefined;
    const summary = summarizeKinds(points, engineRate);
    const run: LoadRun = {
      type: 'sweep', startedAt, finishedAt: new Date().toISOString(), command: process.argv.slice(2).join(' '), host,
      model, modelDescription: repo.description, serverSettings: server.settings,
      settings: {
        kinds, concurrencies: numbers('concurrency', args.concurrency), loadPercents, seconds, warmupSeconds,
        arrivals, seed: Number(args.seed),
      },
      rssIdleKiB, rssEndKiB: (await server.memory()).rssKiB,
      ...(engineRate ? { engineRate } : {}),
      points, summary,
    };
    console.log('\nper kind: saturation, 32 vs 1 client, p99 at 50% load vs unloaded');
    for (const s of summary) {
      console.log(`  ${s.kind.padEnd(15)} saturation ${f(s.saturation)} req/s (c=${s.saturationConcurrency})` +
        `  unloaded p50 ${f(s.unloadedP50Ms, 2)} ms` +
        `  32÷1 ${f(s.ratio32Over1, 2)}` +
        `  p99@50% ${f(s.p99At50Ms, 2)} ms = ${f(s.p99At50OverUnloadedP50, 2)}× unloaded p50` +
        (s.overEngine !== undefined ? `  ÷engine ${f(s.overEngine, 2)}` : ''));
    }
    const out = args.out ?? path.join(resultsDir, `load-${stamp}.json`);
    await writeJson(out, run);
    if (args.doc) {
      const memory = await latestResult(path.dirname(out), 'memory');
      await writeServiceReport({ sweep: run, memory, doc: args.doc, svgDir: args['svg-dir'] ?? path.join(path.dirname(args.doc), 'benchmarks') });
    }
  } finally {
    await server.stop();
  }
}
