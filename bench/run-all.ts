// `npm run bench`: the engine table (bench/engine.ts), then the service sweep and the memory
// check (bench/load/cli.ts), then the overload run with C load generators (bench/overload/cli.ts;
// --skip-overload leaves it out), one after the other, each in its own process so they never
// share cores or a heap; docs/benchmarks.md and its plots are rewritten from what they measured.
//
//   npm run bench [-- [--smoke] [--skip-engine] [--skip-load] [--skip-memory] [--peers LIST] [--doc FILE] [--svg-dir DIR] [-- ARGS…]]
//
// ARGS after a second `--` go to the service sweep (e.g. `--seconds 10 --kinds grpc-infer`).
// --peers: the peer servers the sweep compares ours with on rest-raw (bench/peers; default
// ray,fastapi, 'none' for none); the smoke run has none (its model and kinds leave them out).
// --smoke: a few seconds per step on the small embedded model, output under bench/.cache/:
// proves the tools work, measures nothing worth keeping.
import { spawn } from 'node:child_process';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readDoc, replaceSection } from './load/report.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENGINE = path.join(ROOT, 'bench/engine.ts');
const LOAD = path.join(ROOT, 'bench/load/cli.ts');
const OVERLOAD = path.join(ROOT, 'bench/overload/cli.ts');
process.chdir(ROOT);

const { values: args, positionals: extra } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    'skip-engine': { type: 'boolean', default: false },
    'skip-load': { type: 'boolean', default: false },
    'skip-memory': { type: 'boolean', default: false },
    'skip-overload': { type: 'boolean', default: false },
    doc: { type: 'string' },
    'svg-dir': { type: 'string' },
    peers: { type: 'string' },
  },
  allowPositionals: true,
});

// Paths relative to the repository root (every child runs there): the commands recorded in the
// results and the doc then read the same on any machine.
const smokeDir = 'bench/.cache/smoke';
const doc = args.doc ?? (args.smoke ? path.join(smokeDir, 'benchmarks.md') : 'docs/benchmarks.md');
const svgDir = args['svg-dir'] ?? path.join(path.dirname(doc), 'benchmarks');
const docArgs = ['--doc', doc, '--svg-dir', svgDir];
const smokeSweep = ['--model', 'fashion-mnist', '--kinds', 'rest-v2-binary,grpc-infer', '--concurrency', '1,4', '--loads', '50,100',
  '--seconds', '2', '--warmup', '0.5', '--peers', 'none', '--out', path.join(smokeDir, 'results', 'load-smoke.json')];
const smokeEngine = ['--models', 'densenet-bc-100', '--batches', '8', '--iters', '3', '--warmup', '1', '--rounds', '1',
  '--candidates', 'ours', '--json', path.join(smokeDir, 'results', 'engine-smoke.json')];
const resultsDir = path.join(ROOT, args.smoke ? path.join(smokeDir, 'results') : 'bench/results');
const smokeMemory = ['--model', 'fashion-mnist', '--requests', '300', '--sample-every', '50', '--memory-concurrency', '4',
  '--out', path.join(smokeDir, 'results', 'load-memory-smoke.json')];
const smokeOverload = ['--model', 'fashion-mnist', '--capacity-seconds', '2', '--multiple', '3', '--seconds', '3',
  '--out', path.join(smokeDir, 'results', 'overload-smoke.json')];

/** Runs a TypeScript entry in a child Node: its exit code, and its stdout when asked to capture it. */
function run(script: string, scriptArgs: string[], capture = false): Promise<{ code: number; out: string }> {
  console.log(`\n$ node --import tsx ${path.relative(ROOT, script)} ${scriptArgs.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...scriptArgs], {
      cwd: ROOT, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
    });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal) reject(new Error(`${path.relative(ROOT, script)} killed by ${signal}`));
      else resolve({ code: code ?? 1, out });
    });
  });
}

async function mustRun(script: string, scriptArgs: string[]): Promise<void> {
  const { code } = await run(script, scriptArgs);
  if (code !== 0) throw new Error(`${path.relative(ROOT, script)} exited with code ${code}`);
}

/** The value of the last `--name V` or `--name=V` in argv (the one parseArgs keeps). */
function flag(argv: string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) value = argv[i + 1];
    else if (argv[i]?.startsWith(`--${name}=`)) value = argv[i]?.slice(name.length + 3);
  }
  return value;
}

// bench/engine.ts calls DenseNet-BC-100 by a short name.
const ENGINE_ALIASES: Record<string, string> = { 'densenet-bc-100': 'densenet-bc-100-k12' };

/**
 * images/s of our engine path ('ours') alone for this model at this batch size, from the newest
 * engine-*.json that bench/engine.ts wrote, for the sweep's "÷ engine" ratio.
 */
async function engineRate(model: string, batch: number): Promise<number | undefined> {
  const dir = resultsDir;
  const newest = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^engine-.*\.json$/.test(n)).sort().at(-1);
  if (!newest) return undefined;
  const data = JSON.parse(await readFile(path.join(dir, newest), 'utf8')) as { rows?: { model: string; batch: number; candidate: string; imagesPerSec: number }[] };
  const row = data.rows?.find((r) => (ENGINE_ALIASES[r.model] ?? r.model) === model && r.batch === batch && r.candidate === 'ours');
  return row?.imagesPerSec;
}

const failures: string[] = [];

if (!args['skip-engine']) {
  const present = await access(ENGINE).then(() => true, () => false);
  let section: string;
  if (!present) {
    const message = 'bench/engine.ts does not exist (yet): no engine table. The service sweep runs regardless.';
    console.log(`\n${message}`);
    section = `_${message}_`;
  } else {
    // engine.ts exits non-zero when an engine could not be measured; its table is still valid.
    const { code, out } = await run(ENGINE, args.smoke ? smokeEngine : [], true).catch((err: Error) => ({ code: -1, out: err.message }));
    if (code !== 0) failures.push(`bench/engine.ts exited with code ${code}`);
    section = out.trim()
      ? [`Run ${new Date().toISOString().slice(0, 16)}, \`npm run bench:engine${args.smoke ? ` -- ${smokeEngine.join(' ')}` : ''}\`` +
        `${code !== 0 ? ` (exit code ${code})` : ''}:`, '', out.trim().replace(/^## /gm, '### ')].join('\n')
      : `_bench/engine.ts printed nothing (exit code ${code})._`;
  }
  await writeFile(doc, replaceSection(await readDoc(doc), 'engine', section));
}

if (!args['skip-load']) {
  const sweepArgs = [...(args.smoke ? smokeSweep : []), ...(args.peers !== undefined ? ['--peers', args.peers] : []), ...docArgs, ...extra];
  if (!flag(sweepArgs, 'engine-rate')) {
    const model = flag(sweepArgs, 'model') ?? 'densenet-bc-100-k12';
    const batch = Number(flag(sweepArgs, 'max-batch') ?? 8);
    const rate = await engineRate(model, batch);
    if (rate) sweepArgs.push('--engine-rate', String(rate));
    else console.log(`\nno engine result for ${model} at batch ${batch} in ${path.relative(ROOT, resultsDir)}/engine-*.json: the "÷ engine" ratio stays empty`);
  }
  await mustRun(LOAD, sweepArgs).catch((err: Error) => failures.push(err.message));
}
if (!args['skip-memory']) {
  await mustRun(LOAD, ['--memory', ...(args.smoke ? smokeMemory : []), ...docArgs]).catch((err: Error) => failures.push(err.message));
}

if (!args['skip-overload']) {
  await mustRun(OVERLOAD, [...(args.smoke ? smokeOverload : []), '--doc', doc]).catch((err: Error) => failures.push(err.message));
}

if (!args['skip-engine'] || !args['skip-load'] || !args['skip-memory'] || !args['skip-overload']) console.log(`\n${doc} and ${svgDir}/ rewritten.`);
if (failures.length) {
  console.error(`failed: ${failures.join('; ')}`);
  process.exit(1);
}
