// Named architectures: the ImageNet DenseNets of torchvision and the paper's CIFAR models
// (Huang et al. 2017, Table 2). Overrides (classes, input size, channels) apply on top.
import { parseDenseNetConfig, type DenseNetConfig, type DenseNetConfigInput } from './config.ts';

type Preset = Omit<DenseNetConfigInput, 'inputHeight' | 'inputWidth' | 'inputChannels' | 'numClasses'> & {
  defaults: Pick<DenseNetConfigInput, 'inputHeight' | 'inputWidth' | 'inputChannels' | 'numClasses'>;
};

const IMAGENET = { inputHeight: 224, inputWidth: 224, inputChannels: 3, numClasses: 1000 };
const CIFAR10 = { inputHeight: 32, inputWidth: 32, inputChannels: 3, numClasses: 10 };

function imagenet(growthRate: number, blockLayers: number[]): Preset {
  return {
    growthRate, blockLayers, bottleneck: true, bottleneckWidth: 4, compression: 0.5,
    stem: 'imagenet', stemChannels: 2 * growthRate, bnEpsilon: 1e-5, defaults: IMAGENET,
  };
}

/** Plain DenseNet (no bottleneck, θ = 1): (L − 4) / 3 layers per block, 16-filter stem. */
function cifarPlain(depth: number, growthRate: number): Preset {
  const n = (depth - 4) / 3;
  return {
    growthRate, blockLayers: [n, n, n], bottleneck: false, compression: 1,
    stem: 'cifar', stemChannels: 16, bnEpsilon: 1e-5, defaults: CIFAR10,
  };
}

/** DenseNet-BC: (L − 4) / 6 bottleneck layers per block, θ = 0.5, 2k-filter stem. */
function cifarBC(depth: number, growthRate: number): Preset {
  const n = (depth - 4) / 6;
  return {
    growthRate, blockLayers: [n, n, n], bottleneck: true, bottleneckWidth: 4, compression: 0.5,
    stem: 'cifar', stemChannels: 2 * growthRate, bnEpsilon: 1e-5, defaults: CIFAR10,
  };
}

export const PRESETS = {
  densenet121: imagenet(32, [6, 12, 24, 16]),
  densenet161: imagenet(48, [6, 12, 36, 24]),
  densenet169: imagenet(32, [6, 12, 32, 32]),
  densenet201: imagenet(32, [6, 12, 48, 32]),
  densenet264: imagenet(32, [6, 12, 64, 48]),
  'densenet-40-k12': cifarPlain(40, 12),
  'densenet-100-k12': cifarPlain(100, 12),
  'densenet-100-k24': cifarPlain(100, 24),
  'densenet-bc-100-k12': cifarBC(100, 12),
  'densenet-bc-250-k24': cifarBC(250, 24),
  'densenet-bc-190-k40': cifarBC(190, 40),
} as const satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;

export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export type PresetOverrides = Partial<Pick<DenseNetConfigInput,
  'inputHeight' | 'inputWidth' | 'inputChannels' | 'numClasses' | 'dropRate' | 'bnEpsilon'>>;

/** A validated config for a preset, with input/classes overridden where given. */
export function presetConfig(name: PresetName, overrides: PresetOverrides = {}): DenseNetConfig {
  const { defaults, ...architecture } = PRESETS[name];
  return parseDenseNetConfig({ ...architecture, ...defaults, ...overrides });
}

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}
