// The whole in-process pipeline: repository → worker threads → dynamic batcher → top-k,
// on real (tiny) DenseNets and real encoded images.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InferenceService } from '../../src/inference/inference-service.ts';
import { planEngine } from '../../src/inference/engine-plan.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessImage } from '../../src/inference/preprocess/index.ts';
import { softmax, type Prediction } from '../../src/inference/top-k.ts';
import { ServeError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import type { Tensor } from '../../src/densenet/tf-runtime.ts';
import { buildDenseNet, loadTorchvisionWeights, presetConfig } from '../../src/densenet/index.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { TINY_LABELS, tinyModel, writeTinyModelFolder } from '../helpers/tiny-model.ts';
import { noisePng } from '../helpers/random.ts';

const tf = await useNativeEngine();
const CIFAR_LABELS = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const CIFAR_PREPROCESS = { resizeMode: 'resize-crop', interpolation: 'bilinear', mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26], polarity: 'as-is', background: 255 } as const;
const CIFAR_MANIFEST = {
  format: 'safetensors', architecture: { preset: 'densenet-bc-100-k12' }, labels: CIFAR_LABELS,
  preprocessing: CIFAR_PREPROCESS, batching: { maxBatchSize: 2, maxQueueDelayMs: 0, maxQueueSize: 16 },
};
const SPEC = { resizeMode: 'stretch', interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], polarity: 'as-is', background: 255 } as const;

const pngOf = (seed: number, width = 40, height = 30): Promise<Uint8Array> => noisePng(seed, width, height);

/** What the tiny model (seed 1) says about an image, computed in this thread. */
async function referenceProbabilities(image: Uint8Array): Promise<Float32Array> {
  const input = await preprocessImage(image, { height: 16, width: 16, channels: 3 }, { ...SPEC, mean: [...SPEC.mean], std: [...SPEC.std] }, DEFAULT_IMAGE_LIMITS);
  const model = tinyModel(1);
  try {
    return softmax(tf.tidy(() => (model.layersModel.predict(tf.tensor4d(input, [1, 16, 16, 3])) as Tensor).dataSync() as Float32Array));
  } finally {
    model.layersModel.dispose();
  }
}

async function failure(promise: Promise<unknown>): Promise<ServeError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ServeError)) throw new Error(`expected a ServeError, got ${String(err)}`);
  return err;
}

describe('inference service', () => {
  let root: string;
  let service: InferenceService;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'service-'));
    await writeTinyModelFolder(root, 'tiny', { seed: 1 });
    await writeTinyModelFolder(root, 'versioned', { versions: [1, 2], manifest: { versionPolicy: 'all' } });
    await writeTinyModelFolder(root, 'broken', { manifest: { labels: ['only-one'] } });
    // DenseNet-BC-100 with the PyTorch reference weights, CIFAR-10 labels, for real photos.
    await mkdir(path.join(root, 'cifar'));
    await copyFile(new URL('../fixtures/reference/densenet_bc_100_k12.weights.safetensors', import.meta.url), path.join(root, 'cifar', 'weights.safetensors'));
    await writeFile(path.join(root, 'cifar', 'manifest.json'), JSON.stringify(CIFAR_MANIFEST));
    service = await InferenceService.start({
      repositoryRoot: root, engine: planEngine({ ENGINE_EXECUTOR: 'fused', WORKERS: 2, TF_INTRA_OP_THREADS: 1 }, { cores: 1 }),
      hangTimeoutMs: 20_000, loadTimeoutMs: 60_000, imageLimits: DEFAULT_IMAGE_LIMITS, logger: silentLogger,
    });
  }, 120_000);

  afterAll(async () => {
    await service.close();
    await rm(root, { recursive: true, force: true });
  });

  // Tests run in any order: one that comes after the crash test finds both workers back (a
  // replacement counts once it has reloaded its models).
  beforeEach(async () => {
    await expect.poll(() => service.workerTensorCounts().length, { timeout: 60_000 }).toBe(2);
  });

  it('loads every usable model and skips the broken one', () => {
    const states = service.listModels().map((m) => `${m.name}:${m.version}:${m.state}`).sort();
    expect(states).toEqual(['cifar:1:READY', 'tiny:1:READY', 'versioned:1:READY', 'versioned:2:READY']);
    expect(service.isReady()).toBe(true);
    expect(service.isReady('tiny')).toBe(true);
    expect(service.isReady('broken')).toBe(false);
  });

  it('describes a model: the newest version, every version, its input and what runs it', () => {
    const model = service.describe('versioned');
    expect(model.version).toBe('2');
    expect(model.versions).toEqual(['1', '2']);
    expect(model.input).toEqual({ height: 16, width: 16, channels: 3 });
    expect(model.labels).toEqual(TINY_LABELS);
    expect(model.instances).toBe(2);
    expect(model.executor).toBe('fused');
    expect(service.describe('versioned', '1').version).toBe('1');
  });

  it('classifies encoded images through the worker threads exactly as the model does in-process', async () => {
    const images = await Promise.all([pngOf(1), pngOf(2, 17, 64)]);
    const result = await service.classify('tiny', images, 3);
    expect(result.model).toBe('tiny');
    expect(result.version).toBe('1');
    for (const [i, image] of images.entries()) {
      const expected = await referenceProbabilities(image);
      const predictions = result.predictions[i]!;
      expect(predictions.map((p) => p.label).sort()).toEqual([...TINY_LABELS].sort());
      for (const p of predictions) {
        expect(p.label).toBe(TINY_LABELS[p.index]);
        expect(p.score).toBeCloseTo(expected[p.index]!, 5);
      }
      expect(predictions[0]!.score).toBeGreaterThanOrEqual(predictions[1]!.score);
    }
    expect(result.timings.totalMs).toBeGreaterThan(0);
  });

  it('classifies real photos (JPEG and PNG) into labelled top-k, as the network does on the same pixels', async () => {
    const model = buildDenseNet(presetConfig('densenet-bc-100-k12'));
    loadTorchvisionWeights(model, await readFile(new URL('../fixtures/reference/densenet_bc_100_k12.weights.safetensors', import.meta.url)));
    try {
      for (const photo of ['chelsea.png', 'coffee.jpg']) {
        const bytes = await readFile(new URL(`../fixtures/images/${photo}`, import.meta.url));
        const result = await service.classify('cifar', [bytes], 5);
        const input = await preprocessImage(bytes, { height: 32, width: 32, channels: 3 }, { ...CIFAR_PREPROCESS, mean: [...CIFAR_PREPROCESS.mean], std: [...CIFAR_PREPROCESS.std] }, DEFAULT_IMAGE_LIMITS);
        const expected = softmax(tf.tidy(() => (model.layersModel.predict(tf.tensor4d(input, [1, 32, 32, 3])) as Tensor).dataSync() as Float32Array));
        const top = result.predictions[0]!;
        expect(top).toHaveLength(5);
        for (const p of top) {
          expect(p.label).toBe(CIFAR_LABELS[p.index]);
          expect(p.score).toBeCloseTo(expected[p.index]!, 5);
        }
        expect(top[0]!.index).toBe(expected.indexOf(Math.max(...expected)));
      }
    } finally {
      model.layersModel.dispose();
    }
  });

  it('answers 40 concurrent callers with the same results as one at a time', async () => {
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => pngOf(100 + i)));
    const scoresOf = (predictions: Prediction[]) => predictions.slice().sort((a, b) => a.index - b.index).map((p) => p.score);
    const sequential: number[][] = [];
    for (const image of images) sequential.push(scoresOf((await service.classify('tiny', [image], 3)).predictions[0]!));
    const concurrent = await Promise.all(Array.from({ length: 40 }, (_, i) => service.classify('tiny', [images[i % 8]!], 3)));
    // Batches of different sizes may round differently in the last float bits: compare every
    // class's probability, not just which class came first.
    concurrent.forEach((r, i) => scoresOf(r.predictions[0]!).forEach((score, c) => expect(score).toBeCloseTo(sequential[i % 8]![c]!, 4)));
  });

  it('serves a named version and the newest by default', async () => {
    const image = await pngOf(7);
    const [v1, v2, newest] = await Promise.all([
      service.classify('versioned', [image], 3, { version: '1' }),
      service.classify('versioned', [image], 3, { version: '2' }),
      service.classify('versioned', [image], 3),
    ]);
    expect(newest.version).toBe('2');
    expect(newest.predictions).toEqual(v2.predictions);
    expect(v1.predictions).not.toEqual(v2.predictions); // different seeded weights
  });

  it('runs decoded tensors, NHWC and NCHW alike', async () => {
    const data = new Float32Array(2 * 16 * 16 * 3).map((_, i) => Math.sin(i));
    const nhwc = await service.inferTensor('tiny', { data, shape: [2, 16, 16, 3], layout: 'NHWC' });
    const nchw = new Float32Array(data.length);
    for (let n = 0; n < 2; n++) for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) {
      nchw[((n * 3 + c) * 16 + y) * 16 + x] = data[((n * 16 + y) * 16 + x) * 3 + c]!;
    }
    const fromNchw = await service.inferTensor('tiny', { data: nchw, shape: [2, 3, 16, 16], layout: 'NCHW' });
    expect(nhwc.logits).toHaveLength(2);
    nhwc.logits.forEach((row, i) => row.forEach((v, j) => expect(fromNchw.logits[i]![j]).toBeCloseTo(v, 5)));
  });

  it('rejects bad requests with coded errors that name the problem', async () => {
    expect((await failure(service.classify('absent', [await pngOf(1)], 1))).code).toBe('MODEL_NOT_FOUND');
    expect((await failure(service.classify('../etc', [await pngOf(1)], 1))).code).toBe('INVALID_INPUT');
    expect((await failure(service.classify('tiny', [await pngOf(1)], 1, { version: '9' }))).message).toContain('no version 9');
    const garbage = await failure(service.classify('tiny', [await pngOf(1), new Uint8Array([1, 2, 3])], 1));
    expect(garbage.code).toBe('INVALID_INPUT');
    expect(garbage.message).toContain('images[1]');
    const aborted = new AbortController();
    aborted.abort();
    expect((await failure(service.classify('tiny', [await pngOf(1)], 1, { signal: aborted.signal }))).code).toBe('CANCELLED');
    expect((await failure(service.classify('tiny', [await pngOf(1)], 1, { deadline: performance.now() - 1 }))).code).toBe('DEADLINE_EXCEEDED');
  });

  it('leaks no engine tensors across 1,000 mixed good and bad requests', async () => {
    const good = await pngOf(5);
    const bad = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0]);
    // The baseline once each worker has run a batch (a fresh worker reports 0 until then).
    for (let i = 0; i < 20 && service.workerTensorCounts().some((n) => n === 0); i++) {
      await Promise.all(Array.from({ length: 16 }, () => service.classify('tiny', [good], 1)));
    }
    const before = service.workerTensorCounts();
    expect(before.every((n) => n > 0), `tensor counts ${before.join(', ')}`).toBe(true);
    const outcomes: PromiseSettledResult<unknown>[] = [];
    // In waves of 25: the tiny model's queue holds 32 (a full queue is its own test).
    for (let wave = 0; wave < 40; wave++) {
      outcomes.push(...await Promise.allSettled(Array.from({ length: 25 }, (_, j) => {
        const i = wave * 25 + j;
        return i % 3 === 2 ? service.classify('tiny', [bad], 1)
          : service.inferTensor('tiny', { data: new Float32Array(16 * 16 * 3).fill(i % 7), shape: [16, 16, 3], layout: 'NHWC' });
      })));
    }
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(667);
    expect(outcomes.filter((o) => o.status === 'rejected').every((o) => (o as PromiseRejectedResult).reason instanceof ServeError)).toBe(true);
    await service.classify('tiny', [good], 1);
    expect(service.workerTensorCounts()).toEqual(before);
  }, 60_000);

  it('rejects what does not fit in the bounded queue at once with QUEUE_FULL, and serves the rest', async () => {
    const data = new Float32Array(16 * 16 * 3).fill(0.5);
    const outcomes = await Promise.allSettled(Array.from({ length: 120 }, () =>
      service.inferTensor('tiny', { data, shape: [16, 16, 3], layout: 'NHWC' })));
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.every((o) => (o.reason as ServeError).code === 'QUEUE_FULL')).toBe(true);
    // 2 workers × a batch of 4 running, plus a queue of 32.
    expect(outcomes.length - rejected.length).toBeGreaterThanOrEqual(32);
  });

  it('loses no request when a worker crashes under load: each completes or fails with a retryable error', async () => {
    const data = new Float32Array(16 * 16 * 3).fill(0.25);
    const requests = Array.from({ length: 24 }, () => service.inferTensor('tiny', { data, shape: [16, 16, 3], layout: 'NHWC' }));
    const pool = (service as unknown as { pool: { workers: Array<{ crash(): void }> } }).pool;
    pool.workers[0]!.crash();
    const outcomes = await Promise.allSettled(requests);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect((o.reason as ServeError).code).toBe('WORKER_FAILED');
    }
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThanOrEqual(20);
    await expect.poll(() => service.listModels().every((m) => m.state === 'READY'), { timeout: 30_000 }).toBe(true);
    expect(service.workerRestarts).toBeGreaterThanOrEqual(1);
    expect((await service.inferTensor('tiny', { data, shape: [16, 16, 3], layout: 'NHWC' })).logits).toHaveLength(1);
  }, 60_000);

  it('unloads a model after its in-flight requests finish, and loads it again without restart', async () => {
    const image = await pngOf(9);
    const inflight = Array.from({ length: 12 }, () => service.classify('tiny', [image], 1));
    await service.unload('tiny');
    const settled = await Promise.allSettled(inflight);
    expect(settled.every((s) => s.status === 'fulfilled')).toBe(true);
    expect((await failure(service.classify('tiny', [image], 1))).code).toBe('MODEL_NOT_FOUND');
    expect(service.isReady('tiny')).toBe(false);
    await service.load('tiny');
    expect(service.isReady('tiny')).toBe(true);
    expect((await service.classify('tiny', [image], 1)).predictions[0]).toHaveLength(1);
  }, 60_000);
});
