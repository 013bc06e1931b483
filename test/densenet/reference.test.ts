// Numerical equivalence with PyTorch: checkpoints and logits written by
// scripts/make-reference-fixtures.py (torchvision's module layout, seeded weights, BN
// statistics from real forward passes) must come out of our importer and tfjs model within
// max |Δlogit| ≤ 1e-4 · max(1, max |logit|).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildDenseNet, loadTorchvisionWeights, parseSafetensors, presetConfig, tensorToFloat32, type PresetName } from '../../src/densenet/index.ts';
import type { Tensor } from '../../src/densenet/tf-runtime.ts';
import { useNativeEngine } from '../helpers/engine.ts';

const tf = await useNativeEngine();

const FIXTURES: [string, PresetName][] = [
  ['densenet121', 'densenet121'],
  ['densenet_bc_100_k12', 'densenet-bc-100-k12'],
  ['densenet_40_k12', 'densenet-40-k12'],
];

function fixture(name: string, kind: 'weights' | 'io'): Uint8Array {
  return readFileSync(new URL(`../fixtures/reference/${name}.${kind}.safetensors`, import.meta.url));
}

describe('logits equal PyTorch (torchvision layout)', () => {
  it.each(FIXTURES)('%s', (name, preset) => {
    const io = parseSafetensors(fixture(name, 'io'));
    const input = io.tensors.get('input');
    const logits = io.tensors.get('logits');
    if (!input || !logits) throw new Error(`${name}.io.safetensors lacks input or logits`);
    const model = buildDenseNet(presetConfig(preset));
    try {
      loadTorchvisionWeights(model, fixture(name, 'weights'));
      const expected = tensorToFloat32(logits, 'logits');
      const actual = tf.tidy(() => {
        const x = tf.tensor4d(tensorToFloat32(input, 'input'), input.shape as [number, number, number, number]);
        return (model.layersModel.predict(x) as Tensor).dataSync() as Float32Array;
      });
      expect(actual.length).toBe(expected.length);
      let maxLogit = 0;
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) {
        maxLogit = Math.max(maxLogit, Math.abs(expected[i]!));
        maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
      }
      // A fixture whose logits are all ~0 would prove nothing.
      expect(maxLogit).toBeGreaterThan(0.1);
      expect(maxDiff).toBeLessThanOrEqual(1e-4 * Math.max(1, maxLogit));
    } finally {
      model.layersModel.dispose();
    }
  }, 120_000);
});
