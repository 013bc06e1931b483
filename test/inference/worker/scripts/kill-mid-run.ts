// Starts a one-worker pool (onnxruntime executor, isolation from argv), runs a long batch and
// stops the worker 100 ms into it, as the hang watchdog or a SIGKILL would. Prints one JSON
// line per step; exits 0 if this process survived. Run by worker-isolation.test.ts as a child
// process, because the failure it looks for (an abort of the whole process) would kill vitest.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDenseNetConfig } from '../../../../src/densenet/index.ts';
import { silentLogger } from '../../../../src/logger.ts';
import { WorkerPool } from '../../../../src/inference/worker/worker-pool.ts';
import type { WorkerIsolation } from '../../../../src/inference/worker/worker-channel.ts';
import { TINY_ARCHITECTURE, writeTinyModelFolder } from '../../../helpers/tiny-model.ts';

const isolation = process.argv[2] as WorkerIsolation;
const how = process.argv[3] as 'terminate' | 'sigkill';
const report = (step: Record<string, unknown>) => console.log(JSON.stringify(step));
// A tiny network on large images: one batch of 16 runs for hundreds of milliseconds.
const architecture = { ...TINY_ARCHITECTURE, inputHeight: 192, inputWidth: 192 };
const root = await mkdtemp(path.join(tmpdir(), 'kill-mid-run-'));
const pool = new WorkerPool(
  {
    size: 1, isolation, hangTimeoutMs: 60_000, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger,
    engine: { backend: 'tensorflow', intraOpThreads: 1, interOpThreads: 1, executor: 'onnxruntime', sessionThreads: 1 },
  },
  { onWorkerReady: () => undefined, onWorkerLost: (_w, reason) => report({ step: 'lost', reason }) },
);
try {
  await writeTinyModelFolder(root, 'big', { architecture });
  await pool.start();
  const spec = {
    key: 'big:1', format: 'safetensors' as const, weightsPath: path.join(root, 'big', 'weights.safetensors'),
    architecture: parseDenseNetConfig(architecture), warmupBatchSizes: [16],
  };
  const info = await pool.load(spec);
  report({ step: 'loaded', warmBatchMs: Math.round(info.warmLatencyMs[16]!) });
  const worker = pool.workers[0]!;
  const image = new Float32Array(192 * 192 * 3).fill(0.25);
  const running = worker.run('big:1', Array.from({ length: 16 }, () => image));
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (how === 'sigkill') process.kill(worker.pid!, 'SIGKILL');
  else void worker.terminate();
  const outcome = await running.then(() => 'completed', (err: Error) => `rejected: ${err.message}`);
  report({ step: 'batch', outcome });
  // An abort from the stopped worker would land here, after its run's completion callback.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  report({ step: 'survived' });
} finally {
  await pool.close();
  await rm(root, { recursive: true, force: true });
}
