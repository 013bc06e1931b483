// `npm run check:import`: the full-size check of issue 18, kept out of `npm test` (it needs
// PyTorch and Keras installed and takes minutes on two cores). PyTorch 1.13 (Debian) writes a
// random-weight torchvision DenseNet-121 in both torch.save formats and Keras 3 / TF 2.21
// (the keras venv) a keras.applications DenseNet121 as .keras and .h5, each with the framework's
// logits for a fixed input (scripts/make-import-fixtures.py --full). Each file is imported with
// the import command's code (timed), served by the real service, and its logits compared with
// the framework's: max |Δ| ≤ 1e-4 · max(1, max |logit|). It fails — never skips — when a
// framework is missing, and says how to install it.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config.ts';
import { parseSafetensors, tensorToFloat32 } from '../src/densenet/index.ts';
import { importModel } from '../src/inference/repository/model-import.ts';
import { createLogger } from '../src/logger.ts';
import { startServer } from '../src/main.ts';
import { readFileSync } from 'node:fs';

const run = promisify(execFile);
const TORCH_PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const KERAS_PYTHON = process.env.KERAS_PYTHON ?? path.join(homedir(), '.cache/densenet-serve/keras-venv/bin/python');
const SCRIPT = path.resolve('scripts/make-import-fixtures.py');
const TOLERANCE = 1e-4;

const INSTALL = `
  PyTorch:  apt-get install python3-torch python3-torchvision   (Debian's torch 1.13 / torchvision 0.14; TORCH_PYTHON=/usr/bin/python3)
  Keras:    python3 -m venv ~/.cache/densenet-serve/keras-venv && ~/.cache/densenet-serve/keras-venv/bin/pip install \\
              --index-url file:///opt/pypi/simple --extra-index-url file:///opt/pypi-more/simple --find-links /opt/wheels \\
              tensorflow-cpu==2.21.0 keras h5py                 (KERAS_PYTHON=that venv's python)`;

async function hasModules(python: string, modules: string): Promise<boolean> {
  if (!existsSync(python)) return false;
  return run(python, ['-c', `import ${modules}`], { timeout: 300_000 }).then(() => true, () => false);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, (performance.now() - started) / 1000];
}

async function main(): Promise<void> {
  const missing = [];
  if (!(await hasModules(TORCH_PYTHON, 'torch, torchvision'))) missing.push(`torch + torchvision for ${TORCH_PYTHON}`);
  if (!(await hasModules(KERAS_PYTHON, 'keras, h5py'))) missing.push(`keras + h5py for ${KERAS_PYTHON}`);
  if (missing.length) {
    process.stderr.write(`check:import needs ${missing.join(' and ')}; install them:${INSTALL}\n`);
    process.exit(1);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'check-import-'));
  try {
    const [, torchSeconds] = await timed(() => run(TORCH_PYTHON, [SCRIPT, 'pytorch', '--full', dir], { timeout: 1_800_000 }));
    const [, kerasSeconds] = await timed(() => run(KERAS_PYTHON, [SCRIPT, 'keras', '--full', dir], { timeout: 1_800_000, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } }));
    process.stdout.write(`fixtures written in ${dir} (PyTorch ${torchSeconds.toFixed(0)} s, Keras ${kerasSeconds.toFixed(0)} s)\n`);

    // h5wasm compiles its WebAssembly HDF5 once per process, on the first Keras file: timed
    // apart, so the import times below are the files' own.
    const [, h5Seconds] = await timed(async () => {
      const h5 = await import('h5wasm/node');
      await h5.ready;
    });
    process.stdout.write(`h5wasm start-up (once per process, first Keras file): ${h5Seconds.toFixed(2)} s\n`);
    const repo = path.join(dir, 'repo');
    const files = [
      { file: 'densenet121.zip.pth', io: 'densenet121.zip', framework: 'pytorch' },
      { file: 'densenet121.legacy.pth', io: 'densenet121.legacy', framework: 'pytorch' },
      { file: 'densenet121.keras', io: 'densenet121.keras', framework: 'keras' },
      { file: 'densenet121.h5', io: 'densenet121.h5', framework: 'keras' },
    ];
    const rows: { file: string; mb: string; importS: string; source: string; model: string; io: string }[] = [];
    for (const [i, f] of files.entries()) {
      const model = `densenet121-${i}`;
      const [result, seconds] = await timed(() => importModel({ source: path.join(dir, f.file), preset: 'densenet121', name: model, repository: repo, labels: 'imagenet' }));
      rows.push({ file: f.file, mb: (statSync(path.join(dir, f.file)).size / 2 ** 20).toFixed(1), importS: seconds.toFixed(2), source: result.source, model, io: f.io });
    }

    const config = loadConfig({ MODEL_REPOSITORY: repo, HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', WORKERS: '1', SHUTDOWN_TIMEOUT_MS: '5000' });
    const server = await startServer(config, createLogger('warn', new Writable({ write(_c, _e, done) { done(); } })));
    let failed = false;
    const worst: Record<string, number> = {};
    try {
      process.stdout.write('\n| file | MB | import s | read as | max |Δlogit| | bound | ok |\n|---|---|---|---|---|---|---|\n');
      for (const [i, row] of rows.entries()) {
        const io = parseSafetensors(readFileSync(path.join(dir, `${row.io}.io.safetensors`)));
        const input = tensorToFloat32(io.tensors.get('input')!, 'input');
        const expected = tensorToFloat32(io.tensors.get('logits')!, 'logits');
        const res = await fetch(`http://127.0.0.1:${server.httpPort}/v2/models/${row.model}/infer`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: io.tensors.get('input')!.shape, data: [...input] }] }),
        });
        const body = (await res.json()) as { outputs?: { name: string; data: number[] }[]; error?: string };
        const logits = body.outputs?.find((o) => o.name === 'logits')?.data;
        let diff = Infinity;
        let scale = 1;
        if (logits && logits.length === expected.length) {
          diff = 0;
          for (let j = 0; j < expected.length; j++) {
            diff = Math.max(diff, Math.abs(logits[j]! - expected[j]!));
            scale = Math.max(scale, Math.abs(expected[j]!));
          }
        }
        const ok = diff <= TOLERANCE * scale;
        failed ||= !ok;
        const framework = files[i]!.framework;
        worst[framework] = Math.max(worst[framework] ?? 0, diff);
        process.stdout.write(`| ${row.file} | ${row.mb} | ${row.importS} | ${row.source} | ${diff.toExponential(2)} | ${(TOLERANCE * scale).toExponential(2)} | ${ok ? 'yes' : `NO ${body.error ?? ''}`} |\n`);
      }
    } finally {
      await server.shutdown('check over');
    }
    process.stdout.write(`\nmax |Δlogit| per framework: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}\n`);
    if (failed) {
      process.stderr.write('check:import FAILED\n');
      process.exitCode = 1;
    }
  } finally {
    if (!process.env.KEEP_CHECK_DIR) await rm(dir, { recursive: true, force: true });
  }
}

await main();
