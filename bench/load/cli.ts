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
import { isPresetName } from '../../src/densenet/index.ts';
import { isPeerName, PEER_NAMES } from '../peers/peer-process.ts';
import { runPeers } from '../peers/run-peers.ts';
import { peerTable } from './peer-table.ts';
import { buildPayloads, chooseImage, fetchModelShape, isKind, KINDS, type Payloads } from './requests.ts';
import { REPO_ROOT, startServerProcess } from './server-process.ts';
import { runSweep, summarizeKinds, type HostInfo, type LoadRun, type PointResult, type SweepContext } from './sweep.ts';

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
    image: { type: 'string', default: 'cat' },
    peers: { type: 'string', default: PEER_NAMES.join(',') },
    'peer-threads': { type: 'string' },
    'peer-batch-wait-ms': { type: 'string', default: '2' },
    'peer-max-ongoing': { type: 'string', default: '16' },
    'peer-python': { type: 'string' },
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
const peers = args.peers.split(',').map((p) => p.trim()).filter((p) => p !== '' && p !== 'none').map((p) => {
  if (!isPeerName(p)) throw new Error(`--peers: '${p}' is not one of ${PEER_NAMES.join(', ')} (or 'none')`);
  return p;
});
if (!(Number(args['peer-batch-wait-ms']) >= 0)) throw new Error(`--peer-batch-wait-ms: '${args['peer-batch-wait-ms']}' is not a number of ms ≥ 0`);
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
    (p.peer ? `${p.kind}@${p.peer}` : p.kind).padEnd(17), p.mode.padEnd(6), load.padEnd(16), f(p.throughput).padStart(8),
    f(p.latency.p50Ms, 2).padStart(9), f(p.latency.p90Ms, 2).padStart(9), f(p.latency.p99Ms, 2).padStart(9),
    String(p.errors).padStart(6), f(p.server?.meanBatchSize, 2).padStart(6), f(p.rssAfterKiB / 1024).padStart(8),
    f(p.generatorCpu, 2).padStart(6),
  ].join(' ');
}
const HEADER = `${'kind'.padEnd(17)} ${'mode'.padEnd(6)} ${'load'.padEnd(16)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(9)} ` +
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
  const loadPercents = numbers('loads', args.loads);
  const seconds = positive('seconds', args.seconds);
  const concurrencies = numbers('concurrency', args.concurrency);
  const engineRate = args['engine-rate'] ? positive('engine-rate', args['engine-rate']) : undefined;
  const sweepSettings: Omit<SweepContext, 'server' | 'peer' | 'payloads'> = {
    timing: { warmupMs: warmupSeconds * 1000, durationMs: seconds * 1000, drainTimeoutMs: 60_000 },
    arrivals,
    seed: Number(args.seed),
    maxInFlight: positive('max-in-flight', args['max-in-flight']),
    onPoint: (p: PointResult) => console.log(pointRow(p)),
  };
  log(`server: ${repo.description}, settings ${JSON.stringify(settings)}; log ${path.relative(REPO_ROOT, logFile)}`);
  const server = await startServerProcess({ repository: repo.root, settings, logFile, readyTimeoutMs, ...(serverCpus ? { cpus: serverCpus } : {}) });
  let ours: { run: LoadRun; payloads: Payloads; answer: unknown };
  try {
    await waitForGrpc(server.grpcAddress, 10_000);
    const shape = await fetchModelShape(server.baseUrl, repo.name);
    const payloads = await buildPayloads(shape, await chooseImage(args.image, shape));
    const rssIdleKiB = (await server.memory()).rssKiB;
    console.log(`${repo.description}; server pid ${server.pid}, ${workers} worker(s); idle RSS ${mib(rssIdleKiB)}`);
    console.log(`image: ${payloads.imageDescription}`);
    console.log(`${seconds} s per point after ${warmupSeconds} s warm-up; open loop: ${arrivals} arrivals; host ${host.cpus} CPUs, load ${host.loadAverage.join(' ')}`);
    console.log(HEADER);
    const points = await runSweep({ ...sweepSettings, server, payloads }, { kinds, concurrencies, loadFractions: loadPercents.map((p) => p / 100) });
    // Our answer for the image, to check that the peers name the same class.
    const raw = payloads.http['rest-raw'];
    const answer: unknown = peers.length
      ? await fetch(server.baseUrl + raw.path, { method: raw.method, headers: raw.headers, body: raw.body })
        .then((r) => r.json() as Promise<unknown>).catch(() => undefined)
      : undefined;
    ours = {
      payloads,
      answer,
      run: {
        type: 'sweep', startedAt, finishedAt: '', command: process.argv.slice(2).join(' '), host,
        model, modelDescription: repo.description, serverSettings: server.settings,
        settings: { kinds, concurrencies, loadPercents, seconds, warmupSeconds, arrivals, seed: Number(args.seed) },
        rssIdleKiB, rssEndKiB: (await server.memory()).rssKiB,
        ...(engineRate ? { engineRate } : {}),
        image: payloads.imageDescription,
        points, summary: summarizeKinds(points, engineRate, workers),
      },
    };
  } finally {
    // Stopped before any peer starts: the two never share the cores.
    await server.stop();
  }
  const { run } = ours;

  let skipped: string | undefined;
  if (peers.length && !kinds.includes('rest-raw')) skipped = `the peers are compared on rest-raw, which --kinds leaves out`;
  else if (peers.length && !isPresetName(model)) skipped = `the peers serve DenseNet presets (resize-crop preprocessing), not '${model}'`;
  if (skipped) {
    log(`\n!!! PEERS SKIPPED (${peers.join(', ')}): ${skipped}\n`);
    run.peersSkipped = skipped;
  } else if (peers.length) {
    const result = await runPeers({
      peers, model, repo, payloads: ours.payloads,
      ours: { points: run.points, summary: run.summary.find((s) => s.kind === 'rest-raw'), answer: ours.answer },
      concurrencies, sweep: sweepSettings,
      cpus: host.cpus,
      threads: args['peer-threads'] ? positive('peer-threads', args['peer-threads']) : host.cpus,
      maxBatch: repoOptions.maxBatchSize,
      batchWaitMs: Number(args['peer-batch-wait-ms']),
      maxOngoing: positive('peer-max-ongoing', args['peer-max-ongoing']),
      readyTimeoutMs, logDir: path.join(CACHE_DIR, 'peers'),
      ...(serverCpus ? { pinCpus: serverCpus } : {}),
      ...(args['peer-python'] ? { basePython: args['peer-python'] } : {}),
      log,
    });
    run.peers = result.runs;
    if (result.environment) run.peerEnvironment = result.environment;
    if (result.skipped) run.peersSkipped = result.skipped;
  }
  run.finishedAt = new Date().toISOString();

  console.log('\nper kind: saturation, 32 vs 1 client, p99 at 50% load vs the ideal queue (same arrivals, the workers, unloaded p50 each, no overhead)');
  for (const s of run.summary) {
    console.log(`  ${s.kind.padEnd(15)} saturation ${f(s.saturation)} req/s (c=${s.saturationConcurrency})` +
      `  unloaded p50 ${f(s.unloadedP50Ms, 2)} ms` +
      `  32÷1 ${f(s.ratio32Over1, 2)}` +
      `  p99@50% ${f(s.p99At50Ms, 2)} ms = ${f(s.p99At50OverIdeal, 2)}× the ideal queue's (${f(s.idealP99At50Ms, 2)} ms)` +
      (s.overEngine !== undefined ? `  ÷engine ${f(s.overEngine, 2)}` : ''));
  }
  if (run.peers?.length) console.log(`\n${peerTable(run)}`);
  const out = args.out ?? path.join(resultsDir, `load-${stamp}.json`);
  await writeJson(out, run);
  if (args.doc) {
    const memory = await latestResult(path.dirname(out), 'memory');
    await writeServiceReport({ sweep: run, memory, doc: args.doc, svgDir: args['svg-dir'] ?? path.join(path.dirname(args.doc), 'benchmarks') });
  }
}
