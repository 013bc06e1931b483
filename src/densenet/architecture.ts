// The layer plan of a DenseNet: every conv, batch norm and linear layer with its torchvision
// module name and channel counts. The tfjs model builder, the checkpoint importer/exporter and
// the parameter counts all read this one plan, so they cannot disagree about the network.
import type { DenseNetConfig } from './config.ts';

export interface ConvUnit {
  kind: 'conv';
  name: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  /** Symmetric zero padding on each side, as in torchvision. */
  padding: number;
}

export interface NormUnit {
  kind: 'bn';
  name: string;
  channels: number;
}

export interface LinearUnit {
  kind: 'linear';
  name: string;
  inFeatures: number;
  outFeatures: number;
}

export type Unit = ConvUnit | NormUnit | LinearUnit;

/** Bottleneck layer: norm1-relu-conv1(1×1)-norm2-relu-conv2(3×3). Plain: norm1-relu-conv1(3×3). */
export interface DenseLayerPlan {
  name: string;
  norm1: NormUnit;
  conv1: ConvUnit;
  norm2?: NormUnit;
  conv2?: ConvUnit;
}

export interface TransitionPlan {
  name: string;
  norm: NormUnit;
  conv: ConvUnit;
}

export interface BlockPlan {
  name: string;
  layers: DenseLayerPlan[];
  /** Channels leaving the block: its input plus k per layer. */
  outChannels: number;
  transition?: TransitionPlan;
}

export interface DenseNetPlan {
  config: DenseNetConfig;
  stem: { conv: ConvUnit; norm?: NormUnit; maxPool: boolean };
  blocks: BlockPlan[];
  finalNorm: NormUnit;
  classifier: LinearUnit;
}

const conv = (name: string, inChannels: number, outChannels: number, kernel: number, stride = 1): ConvUnit => ({
  kind: 'conv', name, inChannels, outChannels, kernel, stride, padding: (kernel - 1) / 2,
});
const norm = (name: string, channels: number): NormUnit => ({ kind: 'bn', name, channels });

export function planDenseNet(config: DenseNetConfig): DenseNetPlan {
  const k = config.growthRate;
  const imagenetStem = config.stem === 'imagenet';
  const stem = {
    conv: conv('features.conv0', config.inputChannels, config.stemChannels, imagenetStem ? 7 : 3, imagenetStem ? 2 : 1),
    norm: imagenetStem ? norm('features.norm0', config.stemChannels) : undefined,
    maxPool: imagenetStem,
  };

  let channels = config.stemChannels;
  const blocks: BlockPlan[] = config.blockLayers.map((count, b) => {
    const blockName = `features.denseblock${b + 1}`;
    const layers: DenseLayerPlan[] = [];
    for (let i = 0; i < count; i++) {
      const name = `${blockName}.denselayer${i + 1}`;
      const inChannels = channels + i * k;
      if (config.bottleneck) {
        const width = config.bottleneckWidth * k;
        layers.push({
          name,
          norm1: norm(`${name}.norm1`, inChannels),
          conv1: conv(`${name}.conv1`, inChannels, width, 1),
          norm2: norm(`${name}.norm2`, width),
          conv2: conv(`${name}.conv2`, width, k, 3),
        });
      } else {
        layers.push({ name, norm1: norm(`${name}.norm1`, inChannels), conv1: conv(`${name}.conv1`, inChannels, k, 3) });
      }
    }
    const outChannels = channels + count * k;
    channels = outChannels;
    let transition: TransitionPlan | undefined;
    if (b < config.blockLayers.length - 1) {
      const name = `features.transition${b + 1}`;
      const reduced = Math.floor(config.compression * outChannels);
      transition = { name, norm: norm(`${name}.norm`, outChannels), conv: conv(`${name}.conv`, outChannels, reduced, 1) };
      channels = reduced;
    }
    return { name: blockName, layers, outChannels, transition };
  });

  return {
    config,
    stem,
    blocks,
    // torchvision calls the last BN norm5 whatever the number of blocks.
    finalNorm: norm('features.norm5', channels),
    classifier: { kind: 'linear', name: 'classifier', inFeatures: channels, outFeatures: config.numClasses },
  };
}

/** Every unit with weights, in forward order. */
export function planUnits(plan: DenseNetPlan): Unit[] {
  const units: Unit[] = [plan.stem.conv];
  if (plan.stem.norm) units.push(plan.stem.norm);
  for (const block of plan.blocks) {
    for (const layer of block.layers) {
      units.push(layer.norm1, layer.conv1);
      if (layer.norm2 && layer.conv2) units.push(layer.norm2, layer.conv2);
    }
    if (block.transition) units.push(block.transition.norm, block.transition.conv);
  }
  units.push(plan.finalNorm, plan.classifier);
  return units;
}

export interface ParamTensor {
  /** torchvision state_dict key. */
  name: string;
  /** Shape in PyTorch layout (conv OIHW, linear [out, in]). */
  shape: number[];
  /** Learned by gradient descent (BN running statistics are not). */
  trainable: boolean;
  unit: Unit;
  role: 'weight' | 'bias' | 'running_mean' | 'running_var';
}

/** The state_dict a torchvision DenseNet of this plan has (num_batches_tracked excluded). */
export function paramTensors(plan: DenseNetPlan): ParamTensor[] {
  const out: ParamTensor[] = [];
  for (const unit of planUnits(plan)) {
    const add = (role: ParamTensor['role'], shape: number[], trainable: boolean) =>
      out.push({ name: `${unit.name}.${role}`, shape, trainable, unit, role });
    if (unit.kind === 'conv') {
      add('weight', [unit.outChannels, unit.inChannels, unit.kernel, unit.kernel], true);
    } else if (unit.kind === 'bn') {
      add('weight', [unit.channels], true);
      add('bias', [unit.channels], true);
      add('running_mean', [unit.channels], false);
      add('running_var', [unit.channels], false);
    } else {
      add('weight', [unit.outFeatures, unit.inFeatures], true);
      add('bias', [unit.outFeatures], true);
    }
  }
  return out;
}

export function countParameters(plan: DenseNetPlan): { trainable: number; nonTrainable: number } {
  let trainable = 0;
  let nonTrainable = 0;
  for (const p of paramTensors(plan)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.trainable) trainable += n;
    else nonTrainable += n;
  }
  return { trainable, nonTrainable };
}
