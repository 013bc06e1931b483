// Every executor serves the same network: the fused tfjs-ops path (BN folded into convs, Pad
// instead of PadV2) and onnxruntime must give the tfjs layers model's logits within the
// project's tolerance, on seeded networks with non-trivial BN statistics, and the fused path
// must hold no tensor beyond its weights between batches.
import { describe, expect, it } from 'vitest';
import { fusedRunner, layersRunner, onnxRunner, type DenseNetConfigInput, type DenseNetRunner } from '../../src/densenet/index.ts';
import type { Tensor } from '../../src/densenet/tf-runtime.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { expectLogitsClose } from '../helpers/logits.ts';
import { seededRandom } from '../helpers/random.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

const tf = await useNativeEngine();

const CASES: [string, Partial<DenseNetConfigInput>][] = [
  ['cifar stem, bottleneck, θ = 0.5', {}],
  // Odd height exercises the stem's explicit padding and the max pool's window alignment.
  ['imagenet stem, odd input 41×36, 3 blocks', { stem: 'imagenet', blockLayers: [2, 3, 2], inputHeight: 41, inputWidth: 36, numClasses: 7 }],
  ['plain layers, θ = 1, grey input, ε = 1e-3', { bottleneck: false, compression: 1, stemChannels: 6, inputChannels: 1, bnEpsilon: 1e-3 }],
];

function images(seed: number, length: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length }, () => next() * 4 - 2);
}

async function referenceAndRunner(overrides: Partial<DenseNetConfigInput>, make: (m: ReturnType<typeof tinyModel>) => Promise<DenseNetRunner> | DenseNetRunner) {
  const reference = tinyModel(5, overrides);
  const runner = await make(tinyModel(5, overrides)); // same seed: same weights, separate copy
  return { reference, runner };
}

describe.each([
  ['fused', (m: ReturnType<typeof tinyModel>) => fusedRunner(m)],
  ['onnxruntime', (m: ReturnType<typeof tinyModel>) => onnxRunner(m, { intraOpThreads: 1 })],
] as const)('%s executor', (executor, make) => {
  it.each(CASES)('matches the layers model: %s', async (_name, overrides) => {
    const { reference, runner } = await referenceAndRunner(overrides, make);
    try {
      expect(runner.executor).toBe(executor);
      const [h, w, c] = runner.inputShape;
      expect([h, w, c]).toEqual([reference.config.inputHeight, reference.config.inputWidth, reference.config.inputChannels]);
      for (const batch of [1, 3]) {
        const x = images(batch, batch * h * w * c);
        const expected = tf.tidy(() => (reference.layersModel.predict(tf.tensor4d(x, [batch, h, w, c])) as Tensor).dataSync());
        const actual = await runner.run(x, batch);
        expect(actual).toHaveLength(batch * reference.config.numClasses);
        expect(Math.max(...expected.map(Math.abs))).toBeGreaterThan(0.1); // zeros would prove nothing
        expectLogitsClose(actual, expected);
      }
    } finally {
      runner.dispose();
      reference.layersModel.dispose();
    }
  });
});

describe('fused executor memory', () => {
  it('keeps only its folded weights: no tensor per batch, none after dispose', async () => {
    const baseline = tf.memory().numTensors;
    const runner = fusedRunner(tinyModel(9));
    const held = tf.memory().numTensors;
    expect(held).toBeGreaterThan(baseline);
    const [h, w, c] = runner.inputShape;
    for (let i = 0; i < 5; i++) await runner.run(images(i, 2 * h * w * c), 2);
    expect(tf.memory().numTensors).toBe(held);
    runner.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('the layers runner serves any NHWC LayersModel and refuses other shapes', () => {
    const input = tf.input({ shape: [4] });
    const flat = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(input) as never });
    expect(() => layersRunner(flat)).toThrow(/NHWC image input/);
    flat.dispose();
  });
});
