import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { planEngine } from '../../../src/inference/engine-plan.ts';
import { WorkerPool } from '../../../src/inference/worker/worker-pool.ts';
import type { InferenceWorker } from '../../../src/inference/worker/inference-worker.ts';
import type { LoadSpec } from '../../../src/inference/worker/wire.ts';
import { parseDenseNetConfig } from '../../../src/densenet/index.ts';
import { silentLogger } from '../../../src/logger.ts';
import { ServeError } from '../../../src/errors.ts';
import type { Tensor } from '../../../src/densenet/tf-runtime.ts';
import { useNativeEngine } from '../../helpers/engine.ts';
import { expectLogitsClose } from '../../helpers/logits.ts';
import { TINY_ARCHITECTURE, tinyModel, writeTinyModelFolder } from '../../helpers/tiny-model.ts';

const tf = await useNativeEngine();

function randomImages(n: number, seed: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => tf.tidy(() => tf.randomNormal([16 * 16 * 3], 0, 1, 'float32', seed + i).dataSync() as Float32Array));
}

function expectedLogits(images: Float32Array[]): Float32Array[] {
  const model = tinyModel(1);
  try {
    return images.map((img) => tf.tidy(() => (model.layersModel.predict(tf.tensor4d(img, [1, 16, 16, 3])) as Tensor).dataSync() as Float32Array));
  } finally {
    model.layersModel.dispose();
  }
}

/** Resolves once `predicate` holds; a wait that never ends is reported by the test's timeout. */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 20));
}

// The executors in the isolation each gets by default (fused: threads, onnxruntime: processes),
// plus fused in processes. The crash/hang replacement reloads the model in a fresh thread or
// process, which for tfjs-node proves the binding loads again after a thread ends.
//
// Every test starts from the same state (beforeEach: two ready workers holding tiny:1), so each
// passes alone and in any order (--sequence.shuffle ran 'runs batches' after 'unloads' before).
describe.each([
  ['fused', 'thread'],
  ['onnxruntime', 'process'],
  ['fused', 'process'],
] as const)('worker pool (%s executor, %s workers)', (executor, isolation) => {
  let root: string;
  let pool: WorkerPool;
  const ready = new Set<InferenceWorker>();
  const lost: string[] = [];
  let spec: LoadSpec;
  const plan = (workers: number) => planEngine({ ENGINE_EXECUTOR: executor, WORKER_ISOLATION: isolation, WORKERS: workers, TF_INTRA_OP_THREADS: 1 }, { cores: 1 });

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'pool-'));
    await writeTinyModelFolder(root, 'tiny', { seed: 1 });
    spec = {
      key: 'tiny:1', format: 'safetensors', weightsPath: path.join(root, 'tiny', 'weights.safetensors'),
      architecture: parseDenseNetConfig(TINY_ARCHITECTURE), warmupBatchSizes: [1, 2, 3, 4],
    };
    pool = new WorkerPool(
      // A batch of the tiny model is never mistaken for a hang, however busy the machine; the
      // watchdog is tested on a pool of its own below.
      { plan: plan(2), hangTimeoutMs: 60_000, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger },
      { onWorkerReady: (w) => ready.add(w), onWorkerLost: (w, reason) => { ready.delete(w); lost.push(reason); } },
    );
    await pool.start();
    expect(pool.workers.map((w) => w.isolation)).toEqual([isolation, isolation]);
  }, 120_000);

  afterAll(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await until(() => pool.workers.length === 2); // a replacement is counted once it has reloaded
    if (pool.holders('tiny:1') < 2) await pool.load(spec);
  });

  it('loads a model on every worker, warming each batch size', async () => {
    await pool.unload('tiny:1');
    expect(pool.holders('tiny:1')).toBe(0);
    const info = await pool.load(spec);
    expect(info.inputShape).toEqual([16, 16, 3]);
    expect(info.numClasses).toBe(3);
    expect(info.executor).toBe(executor);
    expect(Object.keys(info.warmLatencyMs).map(Number)).toEqual([1, 2, 3, 4]);
    expect(pool.holders('tiny:1')).toBe(2);
  });

  it('runs batches in the workers with the same logits as the main thread', async () => {
    const images = randomImages(3, 40);
    const expected = expectedLogits(images);
    const worker = pool.workers[0]!;
    const outputs = await worker.run('tiny:1', images);
    expect(outputs).toHaveLength(3);
    outputs.forEach((row, i) => expectLogitsClose(row, expected[i]!));
    // The worker's engine holds the model's weights and nothing per batch.
    const after = worker.lastTensorCount;
    await worker.run('tiny:1', images);
    expect(worker.lastTensorCount).toBe(after);
  });

  it('rejects the running batch of a crashed worker as retryable, and replaces the worker with the model reloaded', async () => {
    const before = new Set(pool.workers);
    const lostBefore = lost.length;
    const victim = pool.workers[0]!;
    // The worker handles messages in order: it exits before it reaches the batch.
    victim.crash();
    const running = victim.run('tiny:1', randomImages(2, 50));
    const error = await running.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServeError);
    expect((error as ServeError).code).toBe('WORKER_FAILED');
    expect((error as ServeError).details.retryable).toBe(true);
    expect(lost.slice(lostBefore)).toEqual(['exited with code 70']);
    const restartsBefore = pool.restarts;
    expect(restartsBefore).toBeGreaterThanOrEqual(1);
    await until(() => pool.workers.length === 2 && pool.holders('tiny:1') === 2);
    const replacement = pool.workers.find((w) => !before.has(w));
    expect(replacement).toBeDefined();
    expect(ready.has(replacement!)).toBe(true);
    const outputs = await replacement!.run('tiny:1', randomImages(1, 60));
    expect(outputs[0]).toHaveLength(3);
  }, 60_000);

  it('detects a hung worker with the watchdog and replaces it', async () => {
    // A pool of its own, so that its watchdog can be short: nothing but the stall below runs
    // under it (loads have their own timeout), and the stall lasts until the worker is stopped
    // (an hour), so the watchdog fires whatever the machine's speed.
    const readyHere: InferenceWorker[] = [];
    const lostHere: string[] = [];
    const watched = new WorkerPool(
      { plan: plan(1), hangTimeoutMs: 500, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger },
      { onWorkerReady: (w) => readyHere.push(w), onWorkerLost: (_w, reason) => lostHere.push(reason) },
    );
    try {
      await watched.start();
      await watched.load(spec);
      const victim = watched.workers[0]!;
      const error = await victim.stall(3_600_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServeError);
      expect((error as ServeError).code).toBe('WORKER_FAILED');
      expect((error as ServeError).message).toContain('hung');
      expect(lostHere).toEqual(['hung (no answer within 500 ms)']);
      // Replaced, with the model reloaded before it counts as ready.
      await until(() => watched.workers.length === 1);
      const replacement = watched.workers[0]!;
      expect(replacement).not.toBe(victim);
      expect(readyHere.at(-1)).toBe(replacement);
      expect(replacement.models.has('tiny:1')).toBe(true);
      expect(watched.restarts).toBe(1);
    } finally {
      await watched.close();
    }
  }, 60_000);

  it('unloads a model from every worker', async () => {
    await pool.unload('tiny:1');
    expect(pool.holders('tiny:1')).toBe(0);
    await expect(pool.workers[0]!.run('tiny:1', randomImages(1, 70))).rejects.toThrow(/not loaded/);
  });

  it('fails a load of a corrupt checkpoint with a clear error and leaves no worker holding it', async () => {
    const bad = { ...spec, key: 'bad:1', weightsPath: path.join(root, 'tiny', 'manifest.json') };
    await expect(pool.load(bad)).rejects.toThrow(/safetensors/);
    expect(pool.holders('bad:1')).toBe(0);
  });
});
