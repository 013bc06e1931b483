// A replacement worker is offered work only once it has reloaded its slot's models: between its
// start and the end of its reload, `pool.workers` (what readiness and the dispatcher's view of
// the pool count) must not include it, or a batch for a model it has not reloaded yet fails
// with "model … is not loaded in worker …".
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDenseNetConfig } from '../../../src/densenet/index.ts';
import { silentLogger } from '../../../src/logger.ts';
import type { InferenceWorker } from '../../../src/inference/worker/inference-worker.ts';
import { planEngine } from '../../../src/inference/engine-plan.ts';
import { WorkerPool } from '../../../src/inference/worker/worker-pool.ts';
import { TINY_ARCHITECTURE, writeTinyModelFolder } from '../../helpers/tiny-model.ts';

let root: string;
let pool: WorkerPool;
const readyEvents: InferenceWorker[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'replacement-'));
  await writeTinyModelFolder(root, 'tiny', { seed: 1 });
  pool = new WorkerPool(
    {
      hangTimeoutMs: 60_000, loadTimeoutMs: 60_000, restartBackoffMs: 0, logger: silentLogger,
      plan: planEngine({ ENGINE_EXECUTOR: 'fused', WORKER_ISOLATION: 'thread', WORKERS: 1, TF_INTRA_OP_THREADS: 1 }, { cores: 1 }),
    },
    { onWorkerReady: (w) => readyEvents.push(w), onWorkerLost: () => undefined },
  );
  await pool.start();
  await pool.load({
    key: 'tiny:1', format: 'safetensors', weightsPath: path.join(root, 'tiny', 'weights.safetensors'),
    // Warming many batch sizes makes the reload window wide enough to be seen every time.
    architecture: parseDenseNetConfig(TINY_ARCHITECTURE), warmupBatchSizes: [1, 2, 3, 4, 5, 6, 7, 8],
  });
}, 120_000);

afterAll(async () => {
  await pool?.close();
  await rm(root, { recursive: true, force: true });
});

it('a replacement worker is not among the pool\'s workers until it holds its slot\'s models again', async () => {
  const victim = pool.workers[0]!;
  const readyBefore = readyEvents.length;
  let looks = 0;
  let withoutModel = 0;
  let sawEmpty = false;
  victim.crash();
  // Look at the pool on every turn of the event loop until the replacement is announced.
  while (readyEvents.length === readyBefore) {
    const workers = pool.workers;
    if (workers.length === 0) sawEmpty = true;
    looks++;
    withoutModel += workers.filter((w) => !w.models.has('tiny:1')).length;
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(sawEmpty).toBe(true); // the pool was observed while the slot was being replaced
  expect(looks).toBeGreaterThan(1);
  expect(withoutModel).toBe(0);
  const replacement = readyEvents.at(-1)!;
  expect(pool.workers).toEqual([replacement]);
  expect(replacement.models.has('tiny:1')).toBe(true);
  expect(pool.holders('tiny:1')).toBe(1);
}, 60_000);
