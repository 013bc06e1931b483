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
  HOST: '0.0.0.0',
  HTTP_PORT: 8080,
  GRPC_PORT: 8081,
  MODEL_REPOSITORY: 'models',
  /** Inference worker threads. TF's intra-op pool is shared by the process; see README. */
  WORKERS: 2,
  /** A batch running longer than this means its worker hung; it is replaced. */
  WORKER_HANG_TIMEOUT_MS: 60_000,
  MODEL_LOAD_TIMEOUT_MS: 300_000,
  /** In-flight requests get this long to finish after SIGTERM. */
  SHUTDOWN_TIMEOUT_MS: 30_000,
  MAX_BODY_BYTES: 64 * 1024 * 1024,
  MAX_IMAGE_BYTES: 20 * 1024 * 1024,
  MAX_IMAGE_PIXELS: 40_000_000,
  MAX_IMAGE_DIMENSION: 16_384,
  MAX_IMAGES_PER_REQUEST: 64,
  MAX_GRPC_MESSAGE_BYTES: 64 * 1024 * 1024,
  MAX_HEADER_BYTES: 16 * 1024,
  MAX_CONNECTIONS: 1024,
  DEFAULT_TOP_K: 5,
} as const;

const port = z.coerce.number().int().min(0).max(65_535);
const bytes = (max: number) => z.coerce.number().int().min(1).max(max);

const ConfigObject = z
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
    HOST: z.string().min(1).max(255).default(DEFAULTS.HOST),
    HTTP_PORT: port.default(DEFAULTS.HTTP_PORT),
    GRPC_PORT: port.default(DEFAULTS.GRPC_PORT),
    MODEL_REPOSITORY: z.string().min(1).max(4096).default(DEFAULTS.MODEL_REPOSITORY),
    /** Model answering /v1/classify; default: the only model, or the first by name. */
    DEFAULT_MODEL: z.string().min(1).max(128).optional(),
    WORKERS: positiveInt(256).default(DEFAULTS.WORKERS),
    WORKER_HANG_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.WORKER_HANG_TIMEOUT_MS),
    MODEL_LOAD_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.MODEL_LOAD_TIMEOUT_MS),
    SHUTDOWN_TIMEOUT_MS: nonNegativeInt(3_600_000).default(DEFAULTS.SHUTDOWN_TIMEOUT_MS),
    MAX_BODY_BYTES: bytes(2 ** 31 - 1).default(DEFAULTS.MAX_BODY_BYTES),
    MAX_IMAGE_BYTES: bytes(2 ** 31 - 1).default(DEFAULTS.MAX_IMAGE_BYTES),
    MAX_IMAGE_PIXELS: bytes(1_000_000_000).default(DEFAULTS.MAX_IMAGE_PIXELS),
    MAX_IMAGE_DIMENSION: bytes(1_000_000).default(DEFAULTS.MAX_IMAGE_DIMENSION),
    MAX_IMAGES_PER_REQUEST: positiveInt(4096).default(DEFAULTS.MAX_IMAGES_PER_REQUEST),
    MAX_GRPC_MESSAGE_BYTES: bytes(2 ** 31 - 1).default(DEFAULTS.MAX_GRPC_MESSAGE_BYTES),
    MAX_HEADER_BYTES: bytes(1024 * 1024).default(DEFAULTS.MAX_HEADER_BYTES),
    MAX_CONNECTIONS: positiveInt(1_000_000).default(DEFAULTS.MAX_CONNECTIONS),
    DEFAULT_TOP_K: positiveInt(1000).default(DEFAULTS.DEFAULT_TOP_K),
    /** Bearer token required by the model management endpoints (and /metrics when METRICS_REQUIRE_TOKEN). */
    AUTH_TOKEN: z.string().min(16, 'must be at least 16 characters').max(4096).optional(),
    METRICS_REQUIRE_TOKEN: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  });

export const ConfigSchema = ConfigObject
  .superRefine((cfg, ctx) => {
    if (cfg.METRICS_REQUIRE_TOKEN && !cfg.AUTH_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['METRICS_REQUIRE_TOKEN'], message: 'needs AUTH_TOKEN to be set' });
    }
    if (cfg.ENGINE_BACKEND !== 'tensorflow' && !cfg.ALLOW_DEV_BACKEND) {
      ctx.addIssue({
        code: 'custom',
        path: ['ENGINE_BACKEND'],
        message: `'${cfg.ENGINE_BACKEND}' is for development only; set ALLOW_DEV_BACKEND=true to use it anyway`,
      });
    }
  });

export type Config = Readonly<z.output<typeof ConfigSchema>>;

/**
 * Command-line flags as settings: `--http-port 9000` or `--http-port=9000` sets HTTP_PORT.
 * Flags win over the environment. An unknown flag is an error naming it.
 */
export function flagsToSettings(argv: readonly string[]): Record<string, string> {
  const known = new Set(Object.keys(ConfigObject.shape));
  const settings: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    const key = match?.[1]?.toUpperCase().replaceAll('-', '_');
    if (!match || !key || !known.has(key)) {
      throw new ServeError('INVALID_CONFIG', `unknown command-line flag '${arg}'`, { fields: [arg] });
    }
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new ServeError('INVALID_CONFIG', `flag --${match[1]} needs a value`, { fields: [key] });
    settings[key] = value;
  }
  return settings;
}

/** Parses the environment (default: this process's) and flags into a frozen config. */
export function loadConfig(env: Record<string, string | undefined> = process.env, argv: readonly string[] = []): Config {
  const result = ConfigSchema.safeParse({ ...env, ...flagsToSettings(argv) });
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
