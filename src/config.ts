// The service's configuration: one zod schema over the environment, parsed once into a frozen
// object. This is the only module that reads process.env.
import os from 'node:os';
import { z } from 'zod';
import { ServeError } from './errors.ts';

const positiveInt = (max: number) => z.coerce.number().int().min(1).max(max);
const nonNegativeInt = (max: number) => z.coerce.number().int().min(0).max(max);

/** Defaults sized for the machine we run on; every one can be overridden by its env var. */
export const DEFAULTS = {
  ENGINE_BACKEND: 'tensorflow',
  /**
   * Threads one TF op may use. With one inference worker per process the op should use every
   * core; the worker pool divides cores between workers (see src/inference).
   */
  TF_INTRA_OP_THREADS: 0,
  /** DenseNet inference is a chain of dependent ops: a second inter-op thread buys nothing. */
  TF_INTER_OP_THREADS: 1,
  LOG_LEVEL: 'info',
} as const;

export const ConfigSchema = z
  .object({
    /** tensorflow (native, required for serving) | wasm | cpu (development only). */
    ENGINE_BACKEND: z.enum(['tensorflow', 'wasm', 'cpu']).default(DEFAULTS.ENGINE_BACKEND),
    /** Must be set to "true" to run on a non-native backend; a guard against accidents. */
    ALLOW_DEV_BACKEND: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    /** 0 = one per core. */
    TF_INTRA_OP_THREADS: nonNegativeInt(1024).default(DEFAULTS.TF_INTRA_OP_THREADS),
    TF_INTER_OP_THREADS: positiveInt(1024).default(DEFAULTS.TF_INTER_OP_THREADS),
    /** oneDNN kernels crash TF 2.21 on DenseNet-121 here (see src/densenet/tf-runtime.ts). */
    TF_ENABLE_ONEDNN: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.LOG_LEVEL),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.ENGINE_BACKEND !== 'tensorflow' && !cfg.ALLOW_DEV_BACKEND) {
      ctx.addIssue({
        code: 'custom',
        path: ['ENGINE_BACKEND'],
        message: `'${cfg.ENGINE_BACKEND}' is for development only; set ALLOW_DEV_BACKEND=true to use it anyway`,
      });
    }
  });

export type Config = Readonly<z.output<typeof ConfigSchema>>;

/** Parses the given environment (default: this process's) into a frozen config. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const fields = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ServeError('INVALID_CONFIG', `invalid configuration: ${fields.join('; ')}`, {
      fields: result.error.issues.map((i) => i.path.join('.')),
    });
  }
  return Object.freeze(result.data);
}

/** Cores this process may use (respects cgroup CPU quotas where Node reports them). */
export function availableCores(): number {
  return Math.max(1, os.availableParallelism());
}
