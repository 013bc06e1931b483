// Overload bench: the real server (compiled, dist/main.js) driven past its capacity by C load
// generators — wrk (HTTP/1.1, raw JPEG to /v1/models/{m}/classify) and h2load (gRPC
// densenet.v1.Classifier/Classify) — so that the generator does not take the server's CPU the
// way a Node generator does on a small machine. Capacity is measured first (closed loop), then
// `--multiple` × capacity is offered at a fixed rate while readiness is polled. Prints a table,
// writes bench/results/overload-<date>.json and, with --doc, the Overload section of that doc.
//   node --import tsx bench/overload/cli.ts [options]      (options: --help; method: README.md)
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ENGINE_DEFAULTS } from '../../src/inference/index.ts';
import { waitForGrpc } from '../load/grpc-driver.ts';
import { CACHE_DIR, ensureCacheDir, modelRepository } from '../load/model-repo.ts';
import { REPO_ROOT, startServerProcess } from '../load/server-process.ts';
import { checkGrpcBody, measureCapacity, runOverload, type Transport } from './measure.ts';
import { writePayloads } from './payloads.ts';
import { overloadTable, writeOverloadReport, type OverloadRun } from './report.ts';

const USAGE = `usage: node --import tsx bench/overload/cli.ts [options]
  --model name            densenet121 (default), densenet-bc-100, any DenseNet preset, or fashion-mnist (embedded)
  --seconds n             measurement window under overload (default 30)
  --warmup n              load before the window, not judged (default 2)
  --tail n                load after the window, not judged, while the window's answers come back
                          (default: 1.5 × maxQueueSize ÷ capacity + 2 s, at least 5, at most 60)
  --multiple x            offered rate as a multiple of the measured capacity (default 10)
  --rate n                offered req/s instead (e.g. the 10× of a quiet machine's capacity on a busy one)
  --capacity-seconds n    capacity window, closed loop (default 5, after 2 s of warm-up)
  --capacity-callers n    closed-loop callers (default 2 × workers × maxBatchSize)
  --transports list       http,grpc (default both, half the rate each), or one of them
  --max-batch n, --max-queue n   batching of a generated model (default 8, 128)
  --workers n             WORKERS of the server (default: the server's default)
  --server-setting K=V    any other server setting, repeatable
  --server-cpus list      pin the server and its workers (taskset -c list)
  --generator-cpus list   pin wrk and h2load (taskset -c list); pin this process with taskset around the command
  --wrk-threads n         wrk threads (default 1)
  --headroom-seconds n    size the generators' connections for maxQueueSize accepted requests in flight plus
                          refusals this slow (default 3): wrk connections, h2load streams
  --http-connections n    wrk connections (default: maxQueueSize + HTTP rate × headroom)
  --grpc-connections n    h2load connections (default: (maxQueueSize + gRPC rate × headroom) ÷ --grpc-streams, at least 2)
  --grpc-streams n        streams per h2load connection at most (default 100, the server's GRPC_MAX_CONCURRENT_STREAMS)
  --sampler-rate n        gRPC calls/s timed per grpc-status by this process (default 20, part of the gRPC rate)
  --probe-interval-ms n   readiness probe period (default 20)
  --out file              results JSON (default bench/results/overload-<date>.json)
  --doc file              also rewrite that doc's Overload section
  --ready-timeout n       seconds to wait for the server to load the model (default 600)`;

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'densenet121' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '2' },
    tail: { type: 'string' },
    multiple: { type: 'string', default: '10' },
    rate: { type: 'string' },
    'capacity-seconds': { type: 'string', default: '5' },
    'capacity-callers': { type: 'string' },
    transports: { type: 'string', default: 'http,grpc' },
    'max-batch': { type: 'string', default: '8' },
    'max-queue': { type: 'string', default: '128' },
    workers: { type: 'string' },
    'server-setting': { type: 'string', multiple: true, default: [] },
    'server-cpus': { type: 'string' },
    'generator-cpus': { type: 'string' },
    'wrk-threads': { type: 'string', default: '1' },
    'headroom-seconds': { type: 'string', default: '3' },
    'http-connections': { type: 'string' },
    'grpc-connections': { type: 'string' },
    'grpc-streams': { type: 'string', default: '100' },
    'sampler-rate': { type: 'string', default: '20' },
    'probe-interval-ms': { type: 'string', default: '20' },
    out: { type: 'string' },
    doc: { type: 'string' },
    'ready-timeout': { type: 'string', default: '600' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

function positive(name: string, text: string | undefined, integer = false): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  return n;
}
function nonNegative(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a number ≥ 0, got '${text}'`);
  return n;
}
const cpuList = (name: string, text: string | undefined): string | undefined => {
  if (text !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) fail(`--${name} wants a CPU list like 0-3 or 0,2, got '${text}'`);
  return text;
};

// bench/engine.ts and the issue call DenseNet-BC-100 by a short name.
const MODEL_ALIASES: Record<string, string> = { 'densenet-bc-100': 'densenet-bc-100-k12' };
const model = MODEL_ALIASES[args.model] ?? args.model;
const transports = args.transports.split(',').filter(Boolean);
if (transports.length === 0 || transports.some((t) => t !== 'http' && t !== 'grpc') || new Set(transports).size !== transports.length) {
  fail(`--transports is http, grpc or http,grpc; got '${args.transports}'`);
}
const windowS = positive('seconds', args.seconds);
const warmupS = nonNegative('warmup', args.warmup);
const multiple = positive('multiple', args.multiple);
const capacitySeconds = positive('capacity-seconds', args['capacity-seconds']);
const maxBatchSize = positive('max-batch', args['max-batch'], true);
const maxQueueSize = positive('max-queue', args['max-queue'], true);
const workers = args.workers !== undefined ? positive('workers', args.workers, true) : ENGINE_DEFAULTS.WORKERS;
const settings: Record<string, string> = { WORKERS: String(workers) };
for (const kv of args['server-setting']) {
  const eq = kv.indexOf('=');
  if (eq <= 0) fail(`--server-setting wants KEY=VALUE, got '${kv}'`);
  settings[kv.slice(0, eq)] = kv.slice(eq + 1);
}
const serverCpus = cpuList('server-cpus', args['server-cpus']);
const generatorCpus = cpuList('generator-cpus', args['generator-cpus']);
const wrkThreads = positive('wrk-threads', args['wrk-threads'], true);
const grpcStreams = positive('grpc-streams', args['grpc-streams'], true);
const headroomS = positive('headroom-seconds', args['headroom-seconds']);
const samplerRate = nonNegative('sampler-rate', args['sampler-rate']);
const probeIntervalMs = positive('probe-interval-ms', args['probe-interval-ms']);
const readyTimeoutMs = positive('ready-timeout', args['ready-timeout']) * 1000;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** wrk and h2load, installed by install-generators.sh when missing (Debian: apt-get, as root). */
function ensureGenerators(): void {
  const missing = () => ['wrk', 'h2load'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0);
  if (missing().length === 0) return;
  log(`${missing().join(' and ')} not found: running bench/overload/install-generators.sh`);
  spawnSync('sh', [path.join(REPO_ROOT, 'bench/overload/install-generators.sh')], { stdio: 'inherit' });
  const still = missing();
  if (still.length) {
    process.stderr.write(`the overload bench needs ${still.join(' and ')} (Debian: apt-get install wrk nghttp2-client); see bench/overload/README.md\n`);
    process.exit(3);
  }
}

function toolVersions(): Record<string, string> {
  const first = (cmd: string, a: string[]) => (spawnSync(cmd, a, { encoding: 'utf8' }).stdout ?? '').split('\n')[0]?.trim() ?? '';
  return { wrk: first('wrk', ['-v']).replace(/ Copyright.*$/, ''), h2load: first('h2load', ['--version']) };
}

/** maxBatchSize and maxQueueSize of a model folder, the manifest schema's defaults where absent. */
async function servedBatching(manifest: string): Promise<{ maxBatchSize: number; maxQueueSize: number }> {
  const m = JSON.parse(await readFile(manifest, 'utf8')) as { batching?: { maxBatchSize?: number; maxQueueSize?: number } };
  // Defaults of src/inference/repository/manifest.ts.
  return { maxBatchSize: m.batching?.maxBatchSize ?? 8, maxQueueSize: m.batching?.maxQueueSize ?? 256 };
}

ensureGenerators();
await ensureCacheDir();
const stamp = new Date().toISOString().slice(0, 16).replace(':', '').replace('T', '-');
const logFile = path.join(CACHE_DIR, 'overload-server.log');
const startedAt = new Date().toISOString();
const host = {
  cpus: os.availableParallelism(),
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  node: process.version,
};
const repo = await modelRepository(model, { maxBatchSize, maxQueueSize });
// The embedded model keeps its own manifest's batching: report what is served.
const batching = await servedBatching(path.join(repo.root, repo.name, 'manifest.json'));
// Enough callers to keep every worker's batches full, as the chaos overload scenario measures it.
const callers = args['capacity-callers'] !== undefined ? positive('capacity-callers', args['capacity-callers'], true) : 2 * workers * batching.maxBatchSize;
log(`server: ${repo.description}, maxQueueSize ${batching.maxQueueSize}, settings ${JSON.stringify(settings)}; log ${path.relative(REPO_ROOT, logFile)}`);
const server = await startServerProcess({ repository: repo.root, settings, logFile, readyTimeoutMs, ...(serverCpus ? { cpus: serverCpus } : {}) });
let run: OverloadRun;
try {
  await waitForGrpc(server.grpcAddress, 10_000);
  const payloads = await writePayloads(path.join(CACHE_DIR, 'overload'), repo.name);
  await checkGrpcBody(server, payloads);
  const phase = { server, serverLog: logFile, payloads, transports: transports as Transport[], generatorCpus, wrkThreads };
  log(`capacity: closed loop, ${callers} callers, ${capacitySeconds} s after 2 s of warm-up`);
  // The tail keeps the callers busy past the window's end: stopping the generators cancels the
  // calls in flight, which must not end inside the window.
  const capacity = await measureCapacity({ ...phase, warmupS: 2, windowS: capacitySeconds, tailS: 1 }, callers);
  if (!(capacity.imagesPerS > 0)) {
    throw new Error(`capacity: the server's log (${path.relative(REPO_ROOT, logFile)}) has no completed request in the window ` +
      `(${JSON.stringify(capacity.server.requests)}); its request lines need LOG_LEVEL info or lower`);
  }
  const rate = args.rate !== undefined ? positive('rate', args.rate) : multiple * capacity.imagesPerS;
  // An accepted request waits for the queue ahead of it: up to maxQueueSize ÷ capacity.
  const tailS = args.tail !== undefined ? nonNegative('tail', args.tail)
    : Math.min(60, Math.max(5, Math.ceil((1.5 * batching.maxQueueSize) / capacity.imagesPerS + 2)));
  const share = transports.length === 2 ? rate / 2 : rate;
  // An open loop needs a free connection (stream) for every request in flight: the accepted ones
  // (the queue's worth at most) and the refusals on their way (rate × refusal latency).
  const inFlight = batching.maxQueueSize + share * headroomS;
  const httpConnections = args['http-connections'] !== undefined ? positive('http-connections', args['http-connections'], true) : Math.ceil(inFlight);
  const grpcConnections = args['grpc-connections'] !== undefined ? positive('grpc-connections', args['grpc-connections'], true) : Math.max(2, Math.ceil(inFlight / grpcStreams));
  log(`capacity ${capacity.imagesPerS.toFixed(1)} img/s; offering ${rate.toFixed(0)} req/s (${(rate / capacity.imagesPerS).toFixed(1)}×) for ${warmupS} + ${windowS} + ${tailS} s`);
  const overload = await runOverload({
    ...phase, warmupS, windowS, tailS, rate, httpConnections, grpcConnections, grpcStreams, samplerRate, probeIntervalMs,
  });
  run = {
    type: 'overload', startedAt, finishedAt: new Date().toISOString(), command: process.argv.slice(2).join(' '), host, tools: toolVersions(),
    model, modelDescription: repo.description, ...batching, serverSettings: server.settings, serverCpus, generatorCpus,
    image: { description: 'cat fixture resized to 451×300, JPEG quality 92', bytes: payloads.jpegBytes },
    multiple, capacityCallers: callers, capacity, overload,
  };
} finally {
  await server.stop();
}

console.log(overloadTable(run));
const out = args.out ?? path.join(REPO_ROOT, 'bench/results', `overload-${stamp}.json`);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(run, null, 2)}\n`);
log(`results: ${path.relative(REPO_ROOT, path.resolve(out))}`);
if (args.doc) await writeOverloadReport(run, args.doc);
