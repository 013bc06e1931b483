// tfjs-format models in onnxruntime worker processes. Those workers start on the pure-JS backend
// (they only build networks to export them to ONNX) and load native TensorFlow only for a model
// that cannot be exported: a tfjs model without our DenseNet metadata, which tfjs itself runs.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveLayersModel } from '../../../src/densenet/index.ts';
import type { Tensor } from '../../../src/densenet/tf-runtime.ts';
import { silentLogger } from '../../../src/logger.ts';
import { planEngine } from '../../../src/inference/engine-plan.ts';
import { WorkerPool } from '../../../src/inference/worker/worker-pool.ts';
import type { LoadSpec } from '../../../src/inference/worker/wire.ts';
import { useNativeEngine } from '../../helpers/engine.ts';
import { expectLogitsClose } from '../../helpers/logits.ts';
import { tinyModel } from '../../helpers/tiny-model.ts';

const tf = await useNativeEngine();
let root: string;
const image = new Float32Array(16 * 16 * 3).map((_, i) => Math.sin(i / 5));
let expected: Float32Array;

const spec = (name: string): LoadSpec => ({ key: `${name}:1`, format: 'tfjs-layers', weightsPath: path.join(root, name), warmupBatchSizes: [1] });
const nativeLoaded = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libtensorflow');

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tfjs-models-'));
  const model = tinyModel(11);
  expected = tf.tidy(() => (model.layersModel.predict(tf.tensor4d(image, [1, 16, 16, 3])) as Tensor).dataSync() as Float32Array);
  await saveLayersModel(model, path.join(root, 'ours'));
  await saveLayersModel(model, path.join(root, 'foreign'));
  model.layersModel.dispose();
  // Without our metadata the file is any tfjs Layers model: nothing says it is a DenseNet.
  const json = JSON.parse(await readFile(path.join(root, 'foreign', 'model.json'), 'utf8')) as Record<string, unknown>;
  delete json.userDefinedMetadata;
  await writeFile(path.join(root, 'foreign', 'model.json'), JSON.stringify(json));
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A pool of one fresh onnxruntime worker process for one test: whether native TensorFlow is in a worker depends on what it loaded before. */
async function withPool(settings: Parameters<typeof planEngine>[0], test: (pool: WorkerPool) => Promise<void>): Promise<void> {
  const pool = new WorkerPool(
    {
      hangTimeoutMs: 60_000, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger,
      plan: planEngine({ ENGINE_EXECUTOR: 'onnxruntime', WORKERS: 1, TF_INTRA_OP_THREADS: 1, ...settings }, { cores: 1 }),
    },
    { onWorkerReady: () => undefined, onWorkerLost: () => undefined },
  );
  try {
    await pool.start();
    await test(pool);
  } finally {
    await pool.close();
  }
}

describe('tfjs models in an onnxruntime worker process', () => {
  it('exports a tfjs DenseNet of ours to ONNX without loading native TensorFlow', () => withPool({}, async (pool) => {
    const worker = pool.workers[0]!;
    expect(worker.isolation).toBe('process');
    const info = await pool.load(spec('ours'));
    expect(info.executor).toBe('onnxruntime');
    expectLogitsClose((await worker.run('ours:1', [image]))[0]!, expected);
    expect(nativeLoaded(worker.pid!)).toBe(false);
  }), 60_000);

  it('runs a tfjs model it cannot export with tfjs on native TensorFlow, loaded for it', () => withPool({}, async (pool) => {
    const worker = pool.workers[0]!;
    await pool.load(spec('ours'));
    expect(nativeLoaded(worker.pid!)).toBe(false);
    const info = await pool.load(spec('foreign'));
    expect(info.executor).toBe('layers');
    expect(nativeLoaded(worker.pid!)).toBe(true);
    expectLogitsClose((await worker.run('foreign:1', [image]))[0]!, expected);
    // The model loaded before keeps running on ONNX Runtime.
    expectLogitsClose((await worker.run('ours:1', [image]))[0]!, expected);
  }), 60_000);
});

describe('tfjs models in an onnxruntime worker process of a development backend', () => {
  it('runs a tfjs model it cannot export on the configured backend, without loading native TensorFlow', () => withPool({ ENGINE_BACKEND: 'cpu' }, async (pool) => {
    const worker = pool.workers[0]!;
    const info = await pool.load(spec('foreign'));
    expect(info.executor).toBe('layers');
    expectLogitsClose((await worker.run('foreign:1', [image]))[0]!, expected);
    expect(nativeLoaded(worker.pid!)).toBe(false);
  }), 60_000);
});
