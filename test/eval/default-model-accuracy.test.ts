// The shipped default model must really classify: the whole Fashion-MNIST test set (10,000
// images, committed under test/fixtures) goes through the service's own pipeline — PNG encode,
// decode, polarity, resize, normalisation, batching, worker threads — exactly as `npm run eval`
// does, and the accuracy computed here must reach 93.0%. Nothing is stored: a weaker model, a
// broken preprocessing step or a wrong executor fails this test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_LIMITS, InferenceService, planEngine } from '../../src/inference/index.ts';
import { parseIdxDataset } from '../../src/eval/idx.ts';
import { evaluate } from '../../src/eval/evaluate.ts';
import { silentLogger } from '../../src/logger.ts';
import { availableCores } from '../../src/config.ts';

const MODEL = 'fashion-mnist-densenet';
const DATA = 'test/fixtures/fashion-mnist';
const REQUIRED_ACCURACY = 0.93;

describe('the default model on the full Fashion-MNIST test set', () => {
  let service: InferenceService;
  beforeAll(async () => {
    service = await InferenceService.start({
      repositoryRoot: 'models',
      engine: planEngine({ ENGINE_EXECUTOR: 'fused', WORKERS: 2, TF_INTRA_OP_THREADS: availableCores() }, { cores: availableCores() }),
      hangTimeoutMs: 120_000, loadTimeoutMs: 120_000, imageLimits: DEFAULT_IMAGE_LIMITS, logger: silentLogger,
    });
  }, 180_000);
  afterAll(async () => service?.close());

  it(`reaches ${REQUIRED_ACCURACY * 100}% top-1 through the service pipeline`, async () => {
    const set = parseIdxDataset(
      readFileSync(path.join(DATA, 't10k-images-idx3-ubyte.gz')),
      readFileSync(path.join(DATA, 't10k-labels-idx1-ubyte.gz')),
    );
    expect(set.count).toBe(10_000);
    const result = await evaluate(service, MODEL, set);
    expect(result.count).toBe(10_000);
    // Every class is learned, not just the easy ones (shirt is the hardest, ~75–80%).
    for (const accuracy of result.perClassAccuracy) expect(accuracy).toBeGreaterThan(0.7);
    expect(result.accuracy).toBeGreaterThanOrEqual(REQUIRED_ACCURACY);
  }, 600_000);
});
