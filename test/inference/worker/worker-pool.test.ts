import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

function waitFor(predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error('timed out waiting'));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

// The executors in the isolation each gets by default (fused: threads, onnxruntime: processes),
// plus fused in processes. The crash/hang replacement reloads the model in a fresh thread or
// process, which for tfjs-node proves the binding loads again after a thread ends.
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

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'pool-'));
    await writeTinyModelFolder(root, 'tiny', { seed: 1 });
    spec = {
      key: 'tiny:1', format: 'safetensors', weightsPath: path.join(root, 'tiny', 'weights.safetensors'),
      architecture: parseDenseNetConfig(TINY_ARCHITECTURE), warmupBatchSizes: [1, 2, 3, 4],
    };
    pool = new WorkerPool(
      { size: 2, engine: { backend: 'tensorflow', intraOpThreads: 1, interOpThreads: 1, executor }, isolation, hangTimeoutMs: 1500, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger },
      { onWorkerReady: (w) => ready.add(w), onWorkerLost: (w, reason) => { ready.delete(w); lost.push(reason); } },
    );
    await pool.start();
    expect(pool.workers.map((w) => w.isolation)).toEqual([isolation, isolation]);
  }, 120_000);

  afterAll(async () => {
    await pool.close();
    await rm(root, { recursive: true, force: true });
  });

  it('loads a model on every worker, warming each batch size', async () => {
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
    const { outputs } = await worker.run('tiny:1', images);
    expect(outputs).toHaveLength(3);
    outputs.forEach((row, i) => expectLogitsClose(row, expected[i]!));
    // The worker's engine holds the model's weights and nothing per batch.
    const after = worker.lastTensorCount;
    await worker.run('tiny:1', images);
    expect(worker.lastTensorCount).toBe(after);
  });

  it('rejects the running batch of a crashed worker as retryable, and replaces the worker with the model reloaded', async () => {
    const victim = pool.workers[0]!;
    // The worker handles messages in order: it exits before it reaches the batch.
    victim.crash();
    const running = victim.run('tiny:1', randomImages(2, 50));
    const error = await running.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServeError);
    expect((error as ServeError).code).toBe('WORKER_FAILED');
    expect((error as ServeError).details.retryable).toBe(true);
    const restartsBefore = pool.restarts;
    expect(restartsBefore).toBeGreaterThanOrEqual(1);
    await waitFor(() => pool.workers.length === 2 && pool.holders('tiny:1') === 2);
    const replacement = pool.workers.find((w) => w !== victim)!;
    expect(ready.has(replacement)).toBe(true);
    const { outputs } = await pool.workers[0]!.run('tiny:1', randomImages(1, 60));
    expect(outputs[0]).toHaveLength(3);
  }, 60_000);

  it('detects a hung worker with the watchdog and replaces it', async () => {
    const victim = pool.workers[1]!;
    const lostBefore = lost.length;
    const stalled = victim.stall(10_000).catch((e: unknown) => e);
    const error = await stalled;
    expect((error as ServeError).code).toBe('WORKER_FAILED');
    expect((error as ServeError).message).toContain('hung');
    expect(lost.length).toBe(lostBefore + 1);
    await waitFor(() => pool.workers.length === 2 && pool.holders('tiny:1') === 2);
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
