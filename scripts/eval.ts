// `npm run eval`: the full Fashion-MNIST test set through the service's own pipeline (PNG
// decode, batching, workers) on the engine plan the server would run (executor, workers,
// threads: src/inference/engine-plan.ts) unless --executor or --workers say otherwise, printing
// accuracy, per-class accuracy and the confusion matrix, ending with `accuracy: 0.XXXX`.
//   npm run eval -- [--repository models] [--model fashion-mnist-densenet] [--data test/fixtures/fashion-mnist] [--limit N]
//                   [--executor fused|layers|onnxruntime] [--workers N]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceService, DEFAULT_IMAGE_LIMITS, planEngine } from '../src/inference/index.ts';
import { parseIdxDataset } from '../src/eval/idx.ts';
import { evaluate } from '../src/eval/evaluate.ts';
import { silentLogger } from '../src/logger.ts';
import { availableCores } from '../src/config.ts';
import { parseExecutorName } from '../src/densenet/index.ts';

const { values: args } = parseArgs({
  options: {
    repository: { type: 'string', default: 'models' },
    model: { type: 'string', default: 'fashion-mnist-densenet' },
    data: { type: 'string', default: 'test/fixtures/fashion-mnist' },
    executor: { type: 'string' },
    limit: { type: 'string' },
    workers: { type: 'string' },
  },
});

const set = parseIdxDataset(
  readFileSync(path.join(args.data, 't10k-images-idx3-ubyte.gz')),
  readFileSync(path.join(args.data, 't10k-labels-idx1-ubyte.gz')),
);
const engine = planEngine({
  ENGINE_EXECUTOR: args.executor === undefined ? undefined : parseExecutorName(args.executor),
  WORKERS: args.workers === undefined ? undefined : Number(args.workers),
}, { cores: availableCores() });
process.stderr.write(`engine: ${engine.executor} on ${engine.workers} ${engine.isolation} workers, ${engine.threadsPerWorker} threads each\n`);
const service = await InferenceService.start({
  repositoryRoot: args.repository, engine,
  hangTimeoutMs: 600_000, loadTimeoutMs: 600_000, imageLimits: DEFAULT_IMAGE_LIMITS, logger: silentLogger,
});
try {
  const labels = service.describe(args.model).labels;
  const result = await evaluate(service, args.model, set, {
    limit: args.limit ? Number(args.limit) : undefined,
    onProgress: (done, total) => process.stderr.write(`\r${done}/${total}`),
  });
  process.stderr.write('\n');
  const width = Math.max(...labels.map((l) => l.length));
  console.log(`${args.model} on ${result.count} Fashion-MNIST test images (${result.imagesPerSecond.toFixed(0)} img/s through the pipeline)\n`);
  console.log('per-class accuracy');
  result.perClassAccuracy.forEach((a, c) => console.log(`  ${String(c).padStart(2)} ${(labels[c] ?? '').padEnd(width)}  ${(a * 100).toFixed(1)}%`));
  console.log('\nconfusion matrix (rows: true class, columns: predicted)');
  console.log(`     ${result.confusion.map((_, c) => String(c).padStart(5)).join('')}`);
  result.confusion.forEach((row, c) => console.log(`  ${String(c).padStart(2)} ${row.map((n) => String(n).padStart(5)).join('')}`));
  console.log(`\naccuracy: ${result.accuracy.toFixed(4)}`);
} finally {
  await service.close();
}
