// The typed, validated description of one DenseNet. Every architecture this project builds,
// imports or exports is described by a DenseNetConfig; nothing else decides a layer's shape.
import { z } from 'zod';
import { ServeError } from '../errors.ts';

export const DenseNetConfigSchema = z
  .object({
    /** k: feature maps each dense layer adds. */
    growthRate: z.int().min(1).max(512),
    /** Number of dense layers in each block; a transition sits between consecutive blocks. */
    blockLayers: z.array(z.int().min(1).max(512)).min(1).max(8),
    /** DenseNet-B: a 1×1 conv to bottleneckWidth·k channels before each 3×3 conv. */
    bottleneck: z.boolean(),
    /** torchvision's bn_size: width of the bottleneck as a multiple of k. */
    bottleneckWidth: z.int().min(1).max(32).default(4),
    /** θ: a transition maps m channels to ⌊θ·m⌋. 0.5 for DenseNet-C/BC, 1 for plain DenseNet. */
    compression: z.number().gt(0).lte(1),
    /** Dropout after each dense layer's last conv (training only; identity at inference). */
    dropRate: z.number().min(0).lt(1).default(0),
    /** 'imagenet': 7×7/2 conv + BN-ReLU + 3×3/2 max pool. 'cifar': one 3×3 conv. */
    stem: z.enum(['imagenet', 'cifar']),
    /** Filters of the first conv: 2k for ImageNet nets and DenseNet-BC, 16 for plain CIFAR nets. */
    stemChannels: z.int().min(1).max(4096),
    inputHeight: z.int().min(1).max(4096),
    inputWidth: z.int().min(1).max(4096),
    inputChannels: z.int().min(1).max(4),
    numClasses: z.int().min(1).max(100_000),
    /** torchvision uses 1e-5, Keras 1.001e-5; tfjs-layers would default to 1e-3. */
    bnEpsilon: z.number().positive().max(0.1).default(1e-5),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const { height, width } = featureMapSize(cfg);
    if (height < 1 || width < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['inputHeight'],
        message: `input ${cfg.inputHeight}×${cfg.inputWidth} is too small: it shrinks to nothing before the last block`,
      });
    }
  });

export type DenseNetConfigInput = z.input<typeof DenseNetConfigSchema>;
export type DenseNetConfig = Readonly<z.output<typeof DenseNetConfigSchema>>;

/** Validates a config; the error names every offending field. */
export function parseDenseNetConfig(input: unknown): DenseNetConfig {
  const result = DenseNetConfigSchema.safeParse(input);
  if (!result.success) {
    const fields = result.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new ServeError('INVALID_CONFIG', `invalid DenseNet config: ${fields.join('; ')}`, {
      fields: result.error.issues.map((i) => i.path.join('.')),
    });
  }
  return Object.freeze(result.data);
}

/** Spatial size of the feature maps entering the head (after the last block). */
export function featureMapSize(cfg: Pick<DenseNetConfig, 'stem' | 'inputHeight' | 'inputWidth' | 'blockLayers'>): {
  height: number;
  width: number;
} {
  const stemOut = (n: number) => (cfg.stem === 'imagenet' ? convSize(convSize(n, 7, 2, 3), 3, 2, 1) : n);
  const transitions = cfg.blockLayers.length - 1;
  const afterTransitions = (n: number) => {
    for (let i = 0; i < transitions; i++) n = Math.floor(n / 2);
    return n;
  };
  return { height: afterTransitions(stemOut(cfg.inputHeight)), width: afterTransitions(stemOut(cfg.inputWidth)) };
}

/** Output size of a conv or pool window (same formula for both, floor mode). */
function convSize(n: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((n + 2 * pad - kernel) / stride) + 1;
}
