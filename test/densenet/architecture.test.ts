import { describe, expect, it } from 'vitest';
import { presetConfig, PRESET_NAMES, parseDenseNetConfig, type PresetName } from '../../src/densenet/index.ts';
import { countParameters, planDenseNet } from '../../src/densenet/architecture.ts';
import { featureMapSize } from '../../src/densenet/config.ts';
import { ServeError } from '../../src/errors.ts';

// Every row of shared/docs/densenet.md: torchvision's counts for the ImageNet nets, exact
// 10-class counts for the paper's CIFAR nets.
const EXPECTED_PARAMS: Record<PresetName, number> = {
  densenet121: 7_978_856,
  densenet169: 14_149_480,
  densenet201: 20_013_928,
  densenet264: 33_337_704,
  densenet161: 28_681_000,
  'densenet-40-k12': 1_019_722,
  'densenet-100-k12': 6_979_642,
  'densenet-100-k24': 27_249_082,
  'densenet-bc-100-k12': 769_162,
  'densenet-bc-250-k24': 15_324_406,
  'densenet-bc-190-k40': 25_624_430,
};

describe('DenseNet presets', () => {
  it('covers every documented model', () => {
    expect([...PRESET_NAMES].sort()).toEqual(Object.keys(EXPECTED_PARAMS).sort());
  });

  it.each(Object.entries(EXPECTED_PARAMS))('%s has exactly %i trainable parameters', (name, expected) => {
    expect(countParameters(planDenseNet(presetConfig(name as PresetName))).trainable).toBe(expected);
  });

  it('counts BN running statistics separately, as Keras does (DenseNet-121: 83,648)', () => {
    const counts = countParameters(planDenseNet(presetConfig('densenet121')));
    expect(counts.nonTrainable).toBe(83_648);
    expect(counts.trainable + counts.nonTrainable).toBe(8_062_504);
  });

  it('matches the documented variants: 100 classes and 1-channel 28×28 input', () => {
    expect(countParameters(planDenseNet(presetConfig('densenet-bc-100-k12', { numClasses: 100 }))).trainable).toBe(800_032);
    const fashion = presetConfig('densenet-bc-100-k12', { inputChannels: 1, inputHeight: 28, inputWidth: 28 });
    expect(countParameters(planDenseNet(fashion)).trainable).toBe(768_730);
    const bc40 = parseDenseNetConfig({
      growthRate: 12, blockLayers: [6, 6, 6], bottleneck: true, compression: 0.5, stem: 'cifar',
      stemChannels: 24, inputHeight: 28, inputWidth: 28, inputChannels: 1, numClasses: 10,
    });
    expect(countParameters(planDenseNet(bc40)).trainable).toBe(175_690);
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
