// Engine bench (issue 6): DenseNet images/s and ms/batch of our engine path against plain
// tfjs-layers, a TF SavedModel through tfjs-node, PyTorch eager and onnxruntime-node, on the
// same weights, with every engine's logits checked against the tfjs-layers reference first.
// One process run, one machine, ratios in one table; nothing gates on time.
//
//   npm run bench:engine -- [--models densenet121,densenet-bc-100] [--batches 1,8,32]
//     [--seconds 5 | --iters N] [--candidates ours,tfjs-layers,...] [--threads N] [--help]
//
// See bench/engine/README.md for the candidates, the Python environments and the method.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initEngine } from '../src/densenet/tf-runtime.ts';
import { EXECUTORS, isPresetName, presetConfig, type DenseNetConfig, type ExecutorName, type PresetName } from '../src/densenet/index.ts';
import { availableCores } from '../src/config.ts';
import { ENGINE_DEFAULTS } from '../src/inference/index.ts';
import { prepareModel, type PreparedModel } from './engine/artifacts.ts';
import type { BenchEnv, Candidate } from './engine/candidate.ts';
import { CANDIDATES, RATIO_BASES, REFERENCE } from './engine/candidates/index.ts';
import { compareLogits, summarize, tileRows } from './engine/measure.ts';
import { addRatios, markdownTable, type Refusal, type ResultRow } from './engine/report.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Short names for the issue's two networks; any preset name works too. */
const MODEL_ALIASES: Record<string, PresetName> = {
  densenet121: 'densenet121',
  'densenet-bc-100': 'densenet-bc-100-k12',
};

const USAGE = `usage: npm run bench:engine -- [options]
  --models LIST        densenet121, densenet-bc-100 or any preset (default densenet121,densenet-bc-100)
  --batches LIST       batch sizes (default 1,8,32)
  --seconds S          timed seconds per engine × model × batch (default 5; at least --min-iters runs)
  --iters N            exactly N timed runs per engine × model × batch instead of --seconds
  --min-iters N        fewest timed runs with --seconds (default 3)
  --warmup N           untimed runs per engine × batch before timing (default 2; the first is checked)
  --rounds N           timed runs are split into N rounds, engines interleaved in each (default 3)
  --candidates LIST    ${Object.keys(CANDIDATES).join(', ')} (default all)
  --ours-executor E    ${EXECUTORS.join(' | ')}: the 'ours' row's executor (default ${ENGINE_DEFAULTS.ENGINE_EXECUTOR}, the service's)
  --threads N          threads per engine (default: cores = ${availableCores()})
  --tolerance T        max |Δlogit| ≤ T · max(1, max |reference logit|) (default 1e-3)
  --seed N             weights seed (default 1)
  --torch-format F     auto | channels_last | contiguous (default auto: the faster at setup)
  --torch-python P     Python with torch (default python3)
  --tf-python P        Python with tensorflow-cpu (default ~/.cache/densenet-serve/bench-venv/bin/python)
  --cache-dir D        generated weights and models (default bench/.cache/engine)
  --json FILE          results file (default bench/results/engine-<date>-<time>.json)`;

const { values: flags } = parseArgs({
  options: {
    models: { type: 'string', default: 'densenet121,densenet-bc-100' },
    batches: { type: 'string', default: '1,8,32' },
    seconds: { type: 'string', default: '5' },
    iters: { type: 'string' },
    'min-iters': { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    candidates: { type: 'string', default: Object.keys(CANDIDATES).join(',') },
    'ours-executor': { type: 'string', default: ENGINE_DEFAULTS.ENGINE_EXECUTOR },
    threads: { type: 'string', default: String(availableCores()) },
    tolerance: { type: 'string', default: '1e-3' },
    seed: { type: 'string', default: '1' },
    'torch-format': { type: 'string', default: 'auto' },
    'torch-python': { type: 'string', default: 'python3' },
    'tf-python': { type: 'string', default: path.join(os.homedir(), '.cache/densenet-serve/bench-venv/bin/python') },
    'cache-dir': { type: 'string', default: path.join(BENCH_DIR, '.cache/engine') },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

function fail(message: string): never {
  console.error(`bench:engine: ${message}\n\n${USAGE}`);
  process.exit(2);
}
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
function int(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

const models: [string, DenseNetConfig][] = list(flags.models).map((name) => {
  const preset = MODEL_ALIASES[name] ?? (isPresetName(name) ? name : fail(`unknown model '${name}'`));
  return [name, presetConfig(preset)];
});
const batches = list(flags.batches).map((b) => int('batches', b, 1));
const candidateNames = list(flags.candidates);
for (const c of candidateNames) if (!Object.hasOwn(CANDIDATES, c)) fail(`unknown candidate '${c}'`);
const iters = flags.iters === undefined ? undefined : int('iters', flags.iters, 1);
const seconds = Number(flags.seconds);
if (!(seconds > 0)) fail(`--seconds must be > 0, got '${flags.seconds}'`);
const minIters = int('min-iters', flags['min-iters'], 1);
const warmup = int('warmup', flags.warmup, 1);
const rounds = int('rounds', flags.rounds, 1);
const threads = int('threads', flags.threads, 1);
const seed = int('seed', flags.seed, 0);
const tolerance = Number(flags.tolerance);
if (!(tolerance > 0)) fail(`--tolerance must be > 0, got '${flags.tolerance}'`);
const oursExecutor = flags['ours-executor'] as ExecutorName;
if (!EXECUTORS.includes(oursExecutor)) fail(`unknown --ours-executor '${oursExecutor}'`);
const torchFormat = flags['torch-format'];
if (torchFormat !== 'auto' && torchFormat !== 'channels_last' && torchFormat !== 'contiguous') fail(`bad --torch-format '${torchFormat}'`);

const log = (line: string) => console.error(`[bench:engine] ${line}`);
const loadAtStart = os.loadavg();
if (loadAtStart[0]! > 0.5) {
  log(`WARNING: the machine is not idle (1-min load average ${loadAtStart[0]!.toFixed(2)} on ${os.cpus().length} CPUs): ` +
    'these numbers only show that the bench works; measure on a quiet machine.');
}

// Every TF candidate shares this process's engine, initialised once the way the service does.
const engine = await initEngine({ backend: 'tensorflow', intraOpThreads: threads, interOpThreads: 1, oneDnn: false });

const rows: ResultRow[] = [];
const refusals: Refusal[] = [];
const descriptions = new Map<string, string>();
const versions: Record<string, string> = { node: process.version, tfjs: engine.tfjsVersion, tensorflow: engine.tensorflowVersion ?? 'unknown' };

for (const [modelName, config] of models) {
  const prepared = await prepareModel(modelName, config, {
    cacheDir: flags['cache-dir'], seed, torchPython: flags['torch-python'], tfPython: flags['tf-python'], log,
  });
  await benchModel(prepared);
}

addRatios(rows, RATIO_BASES);
const loadAtEnd = os.loadavg();
console.log(`\n## Engine bench: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs, ${threads} threads per engine\n`);
console.log(markdownTable(rows, RATIO_BASES));
console.log(`\n× base = images/s of the row ÷ images/s of the base engine at the same model and batch (> 1: faster).`);
console.log(`ms/batch: median of the timed runs after warm-up; for out-of-process engines the time measured inside`);
console.log(`that process (the pipe round trip is in its own column; '=' means in-process).`);
console.log(`Logits: every engine vs ${REFERENCE} on a seeded check batch and at every batch size; allowed = ${tolerance} · max(1, max |logit|).`);
for (const [name, text] of descriptions) console.log(`- ${name}: ${text}`);
for (const r of refusals) console.log(`- NOT REPORTED ${r.model}${r.batch === null ? '' : ` batch ${r.batch}`} ${r.candidate}: ${r.reason}`);
console.log(`\nLoad average (1 min) at start ${loadAtStart[0]!.toFixed(2)}, at end ${loadAtEnd[0]!.toFixed(2)}. ` +
  `Versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`);

const stamp = new Date().toISOString().replace(/:\d\d\.\d+Z$/, '').replace(':', '').replace('T', '-');
const jsonPath = flags.json ?? path.join(BENCH_DIR, 'results', `engine-${stamp}.json`);
await mkdir(path.dirname(jsonPath), { recursive: true });
await writeFile(jsonPath, `${JSON.stringify({
  date: new Date().toISOString(),
  host: { cpu: os.cpus()[0]?.model, cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, loadAvgStart: loadAtStart, loadAvgEnd: loadAtEnd },
  settings: { models: models.map(([m]) => m), batches, seed, oursExecutor, seconds: iters === undefined ? seconds : null, iters: iters ?? null, minIters, warmup, rounds, threads, tolerance, torchFormat, candidates: candidateNames },
  engineEnvironment: { TF_NUM_INTRAOP_THREADS: process.env.TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS: process.env.TF_NUM_INTEROP_THREADS, TF_ENABLE_ONEDNN_OPTS: process.env.TF_ENABLE_ONEDNN_OPTS },
  versions,
  candidates: Object.fromEntries(descriptions),
  rows,
  refusals,
}, null, 2)}\n`);
log(`results written to ${path.relative(process.cwd(), jsonPath)}`);
process.exit(refusals.length ? 1 : 0);

async function benchModel(model: PreparedModel): Promise<void> {
  const { config } = model;
  const perImage = config.inputHeight * config.inputWidth * config.inputChannels;
  const env: BenchEnv = {
    threads, artifacts: model.artifacts, torchPython: flags['torch-python'], torchFormat: torchFormat as BenchEnv['torchFormat'],
    maxBatch: Math.max(...batches), log,
  };
  const refuse = (candidate: string, batch: number | null, reason: string) => {
    refusals.push({ model: model.name, batch, candidate, reason });
    log(`${model.name}${batch === null ? '' : ` batch ${batch}`}: ${candidate} NOT REPORTED: ${reason}`);
  };

  const reference = CANDIDATES[REFERENCE]!({ oursExecutor });
  await reference.setup(config, model.weightsPath, env);
  const referenceLogits = await reference.run(model.checkInput, model.checkCount);
  const classes = referenceLogits.length / model.checkCount;

  const active: Candidate[] = [];
  const worstDiff = new Map<Candidate, { maxAbsDiff: number; allowed: number }>();
  for (const name of candidateNames) {
    const candidate = name === REFERENCE ? reference : CANDIDATES[name]!({ oursExecutor });
    try {
      if (candidate !== reference) await candidate.setup(config, model.weightsPath, env);
      const check = compareLogits(await candidate.run(model.checkInput, model.checkCount), referenceLogits, tolerance);
      log(`${model.name}: ${name} check batch of ${model.checkCount}: max |Δlogit| ${check.maxAbsDiff.toExponential(2)} (allowed ${check.allowed.toExponential(2)})`);
      if (!check.ok) {
        refuse(name, null, `logits differ from ${REFERENCE}: max |Δ| ${check.maxAbsDiff.toExponential(2)} > ${check.allowed.toExponential(2)}`);
        if (candidate !== reference) await candidate.dispose();
        continue;
      }
      worstDiff.set(candidate, check);
      active.push(candidate);
      descriptions.set(candidate.name, candidate.describe());
      Object.assign(versions, candidate.versions?.() ?? {});
    } catch (err) {
      refuse(name, null, `unavailable: ${(err as Error).message.split('\n')[0]}`);
      if (candidate !== reference) await candidate.dispose().catch(() => undefined);
    }
  }

  for (const batch of batches) {
    const input = tileRows(model.checkInput, perImage, batch);
    const expected = tileRows(referenceLogits, classes, batch);
    const timed: Candidate[] = [];
    const agreement = new Map<Candidate, { maxAbsDiff: number; allowed: number }>();
    for (const candidate of active) {
      try {
        const check = compareLogits(await candidate.run(input, batch), expected, tolerance);
        if (!check.ok) {
          refuse(candidate.name, batch, `logits differ from ${REFERENCE}: max |Δ| ${check.maxAbsDiff.toExponential(2)} > ${check.allowed.toExponential(2)}`);
          continue;
        }
        for (let i = 1; i < warmup; i++) await candidate.run(input, batch);
        const before = worstDiff.get(candidate)!;
        // Keep the worse of the two checks, relative to what each allowed.
        agreement.set(candidate, check.maxAbsDiff / check.allowed > before.maxAbsDiff / before.allowed ? check : before);
        timed.push(candidate);
      } catch (err) {
        refuse(candidate.name, batch, `failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }

    const samples = new Map(timed.map((c) => [c, { engine: [] as number[], wall: [] as number[] }]));
    const failed = new Set<Candidate>();
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round so no engine always runs right after the same neighbour.
      const order = timed.map((_, i) => timed[(i + round) % timed.length]!);
      for (const candidate of order) {
        if (failed.has(candidate)) continue;
        const s = samples.get(candidate)!;
        const runsThisRound = iters === undefined ? Math.ceil(minIters / rounds) : Math.floor(iters / rounds) + (round < iters % rounds ? 1 : 0);
        const until = performance.now() + (seconds * 1000) / rounds;
        try {
          for (let i = 0; i < runsThisRound || (iters === undefined && performance.now() < until); i++) {
            const started = performance.now();
            const out = await candidate.run(input, batch);
            const wall = performance.now() - started;
            if (out.length !== batch * classes) throw new Error(`returned ${out.length} logits, expected ${batch * classes}`);
            s.wall.push(wall);
            s.engine.push(candidate.lastEngineMs?.() ?? wall);
          }
        } catch (err) {
          failed.add(candidate);
          refuse(candidate.name, batch, `failed while timed: ${(err as Error).message.split('\n')[0]}`);
        }
      }
    }

    for (const candidate of timed) {
      if (failed.has(candidate)) continue;
      const s = samples.get(candidate)!;
      const engineMs = summarize(s.engine);
      const { maxAbsDiff, allowed } = agreement.get(candidate)!;
      rows.push({
        model: model.name, batch, candidate: candidate.name, engineMs, roundTripMs: summarize(s.wall),
        imagesPerSec: (batch * 1000) / engineMs.median, ratios: {}, maxAbsDiff, allowed,
        outOfProcess: candidate.lastEngineMs !== undefined,
      });
      log(`${model.name} batch ${batch} ${candidate.name}: ${engineMs.median.toFixed(2)} ms/batch (${engineMs.runs} runs)`);
    }
  }

  for (const candidate of new Set([reference, ...active])) await candidate.dispose();
}
