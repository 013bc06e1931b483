// The in-process inference pipeline (batcher + worker threads + transfers) against bare
// `model.predict` on the same batch size, and 32 concurrent callers against one at a time.
// Everything runs in one process, one after the other, and prints ratios.
//
//   npx tsx bench/pipeline-vs-predict.ts [--workers 2] [--threads 2] [--batch 8] [--seconds 10] [--models densenet-bc-100-k12,densenet121]
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initEngine, tf, type Tensor } from '../src/densenet/tf-runtime.ts';
import { buildDenseNet, exportTorchvisionWeights, isPresetName, presetConfig } from '../src/densenet/index.ts';
import { InferenceService, DEFAULT_IMAGE_LIMITS, planEngine } from '../src/inference/index.ts';
import { silentLogger } from '../src/logger.ts';
import { availableCores } from '../src/config.ts';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    threads: { type: 'string', default: String(availableCores()) },
    batch: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    models: { type: 'string', default: 'densenet-bc-100-k12,densenet121' },
  },
});
const workers = Number(args.workers);
const threads = Number(args.threads);
const batch = Number(args.batch);
const seconds = Number(args.seconds);

await initEngine({ backend: 'tensorflow', intraOpThreads: threads, interOpThreads: 1, oneDnn: false });
const root = await mkdtemp(path.join(tmpdir(), 'bench-pipeline-'));
const rows: string[] = [];

/** Runs `call` from `callers` closed loops for the given time; images per second. */
async function closedLoop(callers: number, imagesPerCall: number, call: () => Promise<unknown>, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let images = 0;
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < end) {
      await call();
      images += imagesPerCall;
    }
  }));
  return (images * 1000) / ms;
}

for (const name of args.models.split(',')) {
  if (!isPresetName(name)) throw new Error(`unknown preset ${name}`);
  const config = presetConfig(name);
  const model = buildDenseNet(config);
  const { inputHeight: h, inputWidth: w, inputChannels: c } = config;
  await mkdir(path.join(root, name), { recursive: true });
  await writeFile(path.join(root, name, 'weights.safetensors'), exportTorchvisionWeights(model));
  await writeFile(path.join(root, name, 'manifest.json'), JSON.stringify({
    format: 'safetensors', architecture: { preset: name },
    labels: Array.from({ length: config.numClasses }, (_, i) => `class ${i}`),
    preprocessing: { resizeMode: 'resize-crop', mean: [0.5], std: [0.25] },
    batching: { maxBatchSize: batch, maxQueueDelayMs: 0, maxQueueSize: 4096 },
  }));

  // Bare predict in this thread, at the pipeline's batch size.
  const x = tf.randomNormal([batch, h, w, c]);
  const predictOnce = async () => tf.tidy(() => (model.layersModel.predict(x) as Tensor).dataSync());
  await predictOnce();
  await predictOnce();
  const bare = await closedLoop(1, batch, predictOnce, seconds * 1000);
  x.dispose();
  model.layersModel.dispose();

  const service = await InferenceService.start({
    repositoryRoot: root, engine: planEngine({ ENGINE_EXECUTOR: 'fused', WORKERS: workers, TF_INTRA_OP_THREADS: threads }, { cores: availableCores() }),
    hangTimeoutMs: 600_000, loadTimeoutMs: 600_000, imageLimits: DEFAULT_IMAGE_LIMITS, logger: silentLogger,
  });
  const image = new Float32Array(h * w * c).map(() => Math.random());
  const one = () => service.inferTensor(name, { data: image, shape: [h, w, c], layout: 'NHWC' });
  const batchSizes: number[] = [];
  const unsubscribe = service.subscribe({ onBatch: (_key, size) => batchSizes.push(size) });
  await closedLoop(batch * workers * 2, 1, one, 2000); // warm the latency model
  batchSizes.length = 0;
  const saturated = await closedLoop(batch * workers * 2, 1, one, seconds * 1000);
  const meanBatch = batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, batchSizes.length);
  const single = await closedLoop(1, 1, one, seconds * 1000);
  const concurrent32 = await closedLoop(32, 1, one, seconds * 1000);
  unsubscribe();
  await service.close();

  rows.push(
    `${name} ${h}×${w}×${c}, batch ${batch}, ${workers} worker(s) × ${threads} TF threads`,
    `  bare model.predict, batch ${batch}:          ${bare.toFixed(1)} img/s`,
    `  pipeline at saturation (mean batch ${meanBatch.toFixed(1)}): ${saturated.toFixed(1)} img/s   ratio ${(saturated / bare).toFixed(2)}`,
    `  1 caller at a time:                   ${single.toFixed(1)} img/s`,
    `  32 concurrent callers:                ${concurrent32.toFixed(1)} img/s   ratio ${(concurrent32 / single).toFixed(2)}`,
  );
  console.log(rows.slice(-5).join('\n'));
}

await rm(root, { recursive: true, force: true });
