import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { presetConfig, PRESET_NAMES, parseDenseNetConfig, type DenseNetConfig, type PresetName } from '../../src/densenet/index.ts';
import { countParameters, planDenseNet } from '../../src/densenet/architecture.ts';
import { featureMapSize } from '../../src/densenet/config.ts';
import { ServeError } from '../../src/errors.ts';

/**
 * Trainable parameters of every preset, and where each number comes from:
 * - torchvision: the num_params its model docs publish for the pretrained weights
 *   (DenseNet121_Weights.IMAGENET1K_V1 etc.);
 * - paper: Huang et al. 2017 (arXiv:1608.06993) Table 2, in millions, rounded to 0.1M;
 * - PyTorch: scripts/make-reference-fixtures.py builds each net in PyTorch
 *   (scripts/reference_densenet.py) from the paper's definitions and writes the exact count to
 *   test/fixtures/reference/parameter-counts.json. For densenet264 and the CIFAR nets it is the
 *   only exact source (torchvision has no DenseNet-264 and no CIFAR nets; the paper rounds).
 */
const EXPECTED_PARAMS: Record<PresetName, { params: number; torchvision?: true; paperMillions?: number }> = {
  densenet121: { params: 7_978_856, torchvision: true },
  densenet169: { params: 14_149_480, torchvision: true },
  densenet201: { params: 20_013_928, torchvision: true },
  densenet264: { params: 33_337_704 }, // PyTorch only
  densenet161: { params: 28_681_000, torchvision: true },
  'densenet-40-k12': { params: 1_019_722, paperMillions: 1.0 },
  'densenet-100-k12': { params: 6_979_642, paperMillions: 7.0 },
  'densenet-100-k24': { params: 27_249_082, paperMillions: 27.2 },
  'densenet-bc-100-k12': { params: 769_162, paperMillions: 0.8 },
  'densenet-bc-250-k24': { params: 15_324_406, paperMillions: 15.3 },
  'densenet-bc-190-k40': { params: 25_624_430, paperMillions: 25.6 },
};

/** Variants the docs quote; their only source is the PyTorch build (keys in parameter-counts.json). */
const VARIANTS = {
  'densenet-bc-100-k12/100-classes': { params: 800_032, config: () => presetConfig('densenet-bc-100-k12', { numClasses: 100 }) },
  'densenet-bc-100-k12/1x28x28': {
    params: 768_730, config: () => presetConfig('densenet-bc-100-k12', { inputChannels: 1, inputHeight: 28, inputWidth: 28 }),
  },
  'densenet-bc-40-k12/1x28x28': {
    params: 175_690,
    config: () => parseDenseNetConfig({
      growthRate: 12, blockLayers: [6, 6, 6], bottleneck: true, compression: 0.5, stem: 'cifar',
      stemChannels: 24, inputHeight: 28, inputWidth: 28, inputChannels: 1, numClasses: 10,
    }),
  },
} as const satisfies Record<string, { params: number; config: () => DenseNetConfig }>;

interface PytorchCount { config: Record<string, unknown>; trainable: number; bnRunningStats: number }
const PYTORCH = JSON.parse(readFileSync(new URL('../fixtures/reference/parameter-counts.json', import.meta.url), 'utf8')) as {
  torch: string; counts: Record<string, PytorchCount>;
};

describe('DenseNet presets', () => {
  it('covers every documented model', () => {
    expect([...PRESET_NAMES].sort()).toEqual(Object.keys(EXPECTED_PARAMS).sort());
  });

  it.each(Object.entries(EXPECTED_PARAMS))('%s has exactly the expected trainable parameters', (name, { params }) => {
    expect(countParameters(planDenseNet(presetConfig(name as PresetName))).trainable).toBe(params);
  });

  it.each(Object.entries(EXPECTED_PARAMS))('%s: the expected count is what the PyTorch build of the same config has', (name, { params }) => {
    const reference = PYTORCH.counts[name]!;
    // The configs agree (the PyTorch one is written from the paper, not from presets.ts) ...
    expect({ ...presetConfig(name as PresetName) }).toEqual(reference.config);
    // ... and so do the counts.
    expect(reference.trainable).toBe(params);
  });

  it('agrees with the outside sources: torchvision exactly, the paper to its 0.1M rounding', () => {
    const rows = Object.entries(EXPECTED_PARAMS);
    expect(rows.filter(([, e]) => e.torchvision).map(([n]) => n).sort()).toEqual(['densenet121', 'densenet161', 'densenet169', 'densenet201']);
    for (const [name, { params, paperMillions }] of rows) {
      if (paperMillions !== undefined) expect(Math.round(params / 100_000) / 10, name).toBe(paperMillions);
    }
  });

  it('counts BN running statistics separately, as Keras does (DenseNet-121: 83,648)', () => {
    const counts = countParameters(planDenseNet(presetConfig('densenet121')));
    expect(counts.nonTrainable).toBe(83_648);
    expect(PYTORCH.counts.densenet121!.bnRunningStats).toBe(83_648);
    expect(counts.trainable + counts.nonTrainable).toBe(8_062_504);
  });

  it.each(Object.entries(VARIANTS))('matches the documented variant %s (PyTorch build)', (name, { params, config }) => {
    const cfg = config();
    expect(countParameters(planDenseNet(cfg)).trainable).toBe(params);
    expect({ ...cfg }).toEqual(PYTORCH.counts[name]!.config);
    expect(PYTORCH.counts[name]!.trainable).toBe(params);
  });

  it('plans DenseNet-121 channels as torchvision does', () => {
    const plan = planDenseNet(presetConfig('densenet121'));
    expect(plan.blocks.map((b) => b.outChannels)).toEqual([256, 512, 1024, 1024]);
    expect(plan.blocks.map((b) => b.transition?.conv.outChannels)).toEqual([128, 256, 512, undefined]);
    expect(plan.finalNorm.channels).toBe(1024);
    expect(plan.blocks[1]?.layers[0]?.norm1.name).toBe('features.denseblock2.denselayer1.norm1');
    expect(featureMapSize(plan.config)).toEqual({ height: 7, width: 7 });
  });

  it('rounds compression down: ⌊θ·m⌋', () => {
    const cfg = parseDenseNetConfig({
      growthRate: 5, blockLayers: [3, 3], bottleneck: false, compression: 0.5, stem: 'cifar',
      stemChannels: 16, inputHeight: 8, inputWidth: 8, inputChannels: 3, numClasses: 2,
    });
    expect(planDenseNet(cfg).blocks[0]?.transition?.conv.outChannels).toBe(15); // ⌊0.5 · 31⌋
  });
});

describe('DenseNet config validation', () => {
  const valid = {
    growthRate: 12, blockLayers: [4, 4], bottleneck: true, compression: 0.5, stem: 'cifar',
    stemChannels: 24, inputHeight: 32, inputWidth: 32, inputChannels: 3, numClasses: 10,
  };

  it('fills named defaults', () => {
    const cfg = parseDenseNetConfig(valid);
    expect(cfg.bottleneckWidth).toBe(4);
    expect(cfg.bnEpsilon).toBe(1e-5);
    expect(cfg.dropRate).toBe(0);
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it.each([
    [{ growthRate: 0 }, 'growthRate'],
    [{ compression: 0 }, 'compression'],
    [{ compression: 1.5 }, 'compression'],
    [{ blockLayers: [] }, 'blockLayers'],
    [{ blockLayers: [4, 2.5] }, 'blockLayers.1'],
    [{ stem: 'resnet' }, 'stem'],
    [{ inputChannels: 7 }, 'inputChannels'],
    [{ dropRate: 1 }, 'dropRate'],
    [{ colour: 'rgb' }, '(config)'],
    [{ stem: 'imagenet', inputHeight: 4 }, 'inputHeight'],
  ])('rejects %j naming %s', (patch, field) => {
    let error: unknown;
    try {
      parseDenseNetConfig({ ...valid, ...patch });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ServeError);
    expect((error as ServeError).code).toBe('INVALID_CONFIG');
    expect((error as ServeError).message).toContain(field);
  });
});
