// The manifest of one model folder (`manifest.json`): what the weights are, how to turn an
// upload into the network's input, how to batch, and how many workers hold it. Strict: an
// unknown key or a bad value is an error naming the field. A manifest naming a preset may
// leave out preprocessing (the preset's standard one applies, preset-defaults.ts) and labels
// (answers then carry the class index as the label).
import { z } from 'zod';
import { DenseNetConfigSchema, KERAS_BN_EPSILON, PRESET_NAMES, presetConfig, type DenseNetConfig, type PresetName } from '../../densenet/index.ts';
import { ServeError } from '../../errors.ts';
import { presetPreprocessing } from './preset-defaults.ts';

export const MANIFEST_FILE = 'manifest.json';

/** `"labels": "imagenet"` names the 1,000 ImageNet classes shipped with the project. */
export const IMAGENET_LABELS = 'imagenet';

/** Formats whose weights are one checkpoint file, and its default name in the version folder. */
export const CHECKPOINT_FORMATS = { safetensors: 'weights.safetensors', pytorch: 'weights.pth', keras: 'model.keras' } as const;

const fileName = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => !s.includes('/') && !s.includes('\\') && s !== '.' && s !== '..', 'must be a plain file name inside the model folder');

const PresetArchitecture = z
  .object({
    preset: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]]),
    inputHeight: z.int().min(1).max(4096).optional(),
    inputWidth: z.int().min(1).max(4096).optional(),
    inputChannels: z.int().min(1).max(4).optional(),
    numClasses: z.int().min(1).max(100_000).optional(),
    bnEpsilon: z.number().positive().max(0.1).optional(),
  })
  .strict();

const Preprocessing = z
  .object({
    resizeMode: z.enum(['resize-crop', 'stretch', 'letterbox']).default('resize-crop'),
    resizeShorterTo: z.int().min(1).max(8192).optional(),
    interpolation: z.enum(['bilinear', 'bicubic', 'nearest']).default('bilinear'),
    mean: z.array(z.number().min(-1000).max(1000)).min(1).max(4),
    std: z.array(z.number().positive().max(1000)).min(1).max(4),
    polarity: z.enum(['as-is', 'invert', 'dark-background']).default('as-is'),
    background: z.int().min(0).max(255).default(255),
  })
  .strict();

const Batching = z
  .object({
    maxBatchSize: z.int().min(1).max(1024).default(8),
    maxQueueDelayMs: z.number().min(0).max(60_000).default(0),
    maxQueueSize: z.int().min(1).max(1_000_000).default(256),
    preferredBatchSizes: z.array(z.int().min(1).max(1024)).max(16).optional(),
    latencyTargetMs: z.number().positive().max(600_000).optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    for (const [i, size] of (b.preferredBatchSizes ?? []).entries()) {
      if (size > b.maxBatchSize) {
        ctx.addIssue({ code: 'custom', path: ['preferredBatchSizes', i], message: `${size} exceeds maxBatchSize ${b.maxBatchSize}` });
      }
    }
  });

export const ManifestSchema = z
  .object({
    description: z.string().max(1000).optional(),
    /** safetensors (torchvision/timm names), pytorch (torch.save .pth), keras (.keras/.h5), tfjs-layers. */
    format: z.enum(['safetensors', 'pytorch', 'keras', 'tfjs-layers']),
    /** Required for checkpoint formats; tfjs-layers models written by us carry it in model.json. */
    architecture: z.union([PresetArchitecture, DenseNetConfigSchema]).optional(),
    /** File (checkpoint formats) or folder (tfjs-layers, '.' = the version folder) of the weights. */
    weights: z.string().min(1).max(255).optional(),
    /**
     * A labels file (one per line), the labels themselves in class-index order, or "imagenet"
     * (the ImageNet classes shipped with the project). Absent: each class is labelled by its index.
     */
    labels: z.union([fileName, z.array(z.string().min(1).max(200)).min(1).max(100_000)]).optional(),
    /** Optional when architecture.preset is given: the preset's standard preprocessing. */
    preprocessing: Preprocessing.optional(),
    batching: Batching.default({ maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 256 }),
    /** Workers holding this model; default: every worker. */
    instances: z.int().min(1).max(256).optional(),
    /** Which numbered version folders to serve: the newest n, or all. */
    versionPolicy: z.union([z.literal('all'), z.object({ latest: z.int().min(1).max(100) }).strict()]).default({ latest: 1 }),
  })
  .strict()
  .superRefine((m, ctx) => {
    const checkpoint = m.format !== 'tfjs-layers';
    if (checkpoint && !m.architecture) {
      ctx.addIssue({ code: 'custom', path: ['architecture'], message: `required for ${m.format} weights` });
    }
    if (m.weights !== undefined && checkpoint && !fileName.safeParse(m.weights).success) {
      ctx.addIssue({ code: 'custom', path: ['weights'], message: 'must be a plain file name inside the model folder' });
    }
    if (m.preprocessing && m.preprocessing.mean.length !== m.preprocessing.std.length) {
      ctx.addIssue({ code: 'custom', path: ['preprocessing', 'std'], message: 'must have as many entries as mean' });
    }
    if (!m.preprocessing && !(m.architecture && 'preset' in m.architecture)) {
      ctx.addIssue({ code: 'custom', path: ['preprocessing'], message: 'required unless architecture.preset names a preset (whose standard preprocessing then applies)' });
    }
    if (m.labels === undefined && !m.architecture) {
      ctx.addIssue({ code: 'custom', path: ['labels'], message: 'required when the manifest has no architecture (the number of classes is not known before loading)' });
    }
  })
  .transform((m) => ({
    ...m,
    // superRefine guarantees a preset wherever preprocessing is absent.
    preprocessing: m.preprocessing ?? presetPreprocessing((m.architecture as { preset: PresetName }).preset, m.architecture as object),
  }));

export type Manifest = z.output<typeof ManifestSchema>;
export type BatchingConfig = Manifest['batching'];
export type PreprocessingConfig = Manifest['preprocessing'];

/** Parses manifest JSON text; every problem is reported with its field path. */
export function parseManifest(text: string, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ServeError('INVALID_MODEL_FILE', `${where}: not valid JSON (${(err as Error).message})`);
  }
  const result = ManifestSchema.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(manifest)'}: ${i.message}`);
    throw new ServeError('INVALID_MODEL_FILE', `${where}: ${issues.join('; ')}`, {
      fields: result.error.issues.map((i) => i.path.join('.')),
    });
  }
  return result.data;
}

/**
 * The full DenseNet config a manifest describes (presets expanded), if it names one. Keras's
 * DenseNets use BN epsilon 1.001e-5: a keras-format preset gets it unless the manifest says.
 */
export function manifestArchitecture(manifest: Manifest): DenseNetConfig | undefined {
  const arch = manifest.architecture;
  if (!arch) return undefined;
  if ('preset' in arch) {
    const { preset, ...overrides } = arch;
    const keras = manifest.format === 'keras' && overrides.bnEpsilon === undefined ? { bnEpsilon: KERAS_BN_EPSILON } : {};
    return presetConfig(preset, { ...keras, ...overrides });
  }
  return Object.freeze(arch);
}

/** Every batch size the batcher may form: warmed before the model reports ready. */
export function batchSizesToWarm(batching: BatchingConfig): number[] {
  return Array.from({ length: batching.maxBatchSize }, (_, i) => i + 1);
}
