// Starts a one-worker pool (onnxruntime executor, isolation from argv), runs a long batch and
// stops the worker halfway through it, as the hang watchdog or a SIGKILL would. Prints one JSON
// line per step; exits 0 if this process survived. Run by worker-isolation.test.ts as a child
// process, because the failure it looks for (an abort of the whole process) would kill vitest.
//
// "Halfway" is by construction, not by a sleep: the batch is sized from the CPU time a measured
// batch took, and the stop comes when the worker has spent half the batch's expected CPU time on
// it. CPU time, not wall time: a busy machine slows the run and the wait alike.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDenseNetConfig } from '../../../../src/densenet/index.ts';
import { silentLogger } from '../../../../src/logger.ts';
import { WorkerPool } from '../../../../src/inference/worker/worker-pool.ts';
import { planEngine, type WorkerIsolation } from '../../../../src/inference/engine-plan.ts';
import { CPU_TICK_MS, cpuMs as cpuMsOf } from '../../../helpers/process-cpu.ts';
import { TINY_ARCHITECTURE, writeTinyModelFolder } from '../../../helpers/tiny-model.ts';

const isolation = process.argv[2] as WorkerIsolation;
const how = process.argv[3] as 'terminate' | 'sigkill';
const report = (step: Record<string, unknown>) => console.log(JSON.stringify(step));
/** CPU time the stopped batch is sized to need: long next to a stop's latency (a poll, a signal). */
const RUN_CPU_MS = 1200;
const MAX_BATCH = 512;
/** CPU milliseconds (all threads) of the process running the worker: this one for a thread. */
const cpuMs = (pid: number): number => cpuMsOf(pid)!;

// A tiny network on large images: compute grows with the batch.
const architecture = { ...TINY_ARCHITECTURE, inputHeight: 192, inputWidth: 192 };
const root = await mkdtemp(path.join(tmpdir(), 'kill-mid-run-'));
const pool = new WorkerPool(
  {
    hangTimeoutMs: 600_000, loadTimeoutMs: 600_000, restartBackoffMs: 50, logger: silentLogger,
    plan: planEngine({ ENGINE_EXECUTOR: 'onnxruntime', WORKER_ISOLATION: isolation, WORKERS: 1, TF_INTRA_OP_THREADS: 1 }, { cores: 1 }),
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
  await pool.load(spec);
  const worker = pool.workers[0]!;
  const image = new Float32Array(192 * 192 * 3).fill(0.25);
  const images = (n: number) => Array.from({ length: n }, () => image);

  // Measure: the CPU time one warm batch of 16 costs the worker's process (inputs in, logits out).
  const measuring = worker.run('big:1', images(16)); // the batch is copied and posted before this returns
  let before = cpuMs(worker.pid!);
  await measuring;
  const cpuPer16 = Math.max(cpuMs(worker.pid!) - before, CPU_TICK_MS);
  const batch = Math.min(MAX_BATCH, Math.max(16, Math.ceil((16 * RUN_CPU_MS) / cpuPer16)));
  const expectedCpuMs = (cpuPer16 * batch) / 16;
  report({ step: 'loaded', cpuPer16, batch, expectedCpuMs });

  let settled = false;
  const running = worker.run('big:1', images(batch)).finally(() => {
    settled = true;
  });
  before = cpuMs(worker.pid!);
  let spent = 0;
  while (!settled && (spent = cpuMs(worker.pid!) - before) < expectedCpuMs / 2) await new Promise((resolve) => setTimeout(resolve, 5));
  // The test checks this: the batch was still running when the worker was stopped.
  report({ step: 'stopping', spentCpuMs: spent, settled });
  if (how === 'sigkill') process.kill(worker.pid!, 'SIGKILL');
  else void worker.terminate();
  const outcome = await running.then(() => 'completed', (err: Error) => `rejected: ${err.message}`);
  report({ step: 'batch', outcome });
  // An abort from a stopped worker thread would land here, when its orphaned run (still
  // computing in this process) completes: wait until this process is idle, then a while more.
  for (let last = cpuMs(process.pid), idle = false; !idle; ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = cpuMs(process.pid);
    idle = now - last < 25;
    last = now;
  }
  await new Promise((resolve) => setTimeout(resolve, 1500));
  report({ step: 'survived' });
} finally {
  await pool.close();
  await rm(root, { recursive: true, force: true });
}
