// The service's configuration: one zod schema over the environment and the command line, parsed
// once into a frozen object. The only module that reads settings from process.env (tf-runtime.ts
// writes TensorFlow's own variables there before the library loads, and a worker process receives
// its WorkerInit through one: worker-channel.ts). The engine settings are left unset when not
// given: the engine plan (src/inference/engine-plan.ts) holds their defaults and derives the rest.
import os from 'node:os';
import { z } from 'zod';
import { ServeError } from './errors.ts';

const positiveInt = (max: number) => z.coerce.number().int().min(1).max(max);
const nonNegativeInt = (max: number) => z.coerce.number().int().min(0).max(max);

/** Defaults sized for the machine we run on; every one can be overridden by its env var. */
export const DEFAULTS = {
  LOG_LEVEL: 'info',
  HOST: '0.0.0.0',
  HTTP_PORT: 8080,
  GRPC_PORT: 8081,
  MODEL_REPOSITORY: 'models',
  /** A batch running longer than this means its worker hung; it is replaced. */
  WORKER_HANG_TIMEOUT_MS: 60_000,
  MODEL_LOAD_TIMEOUT_MS: 300_000,
  /** In-flight requests get this long to finish after SIGTERM. */
  SHUTDOWN_TIMEOUT_MS: 30_000,
  /** Triton's HTTP default. gRPC messages get the same limit unless MAX_GRPC_MESSAGE_BYTES says otherwise. */
  MAX_BODY_BYTES: 64 * 1024 * 1024,
  MAX_IMAGE_BYTES: 20 * 1024 * 1024,
  MAX_IMAGE_PIXELS: 40_000_000,
  MAX_IMAGE_DIMENSION: 16_384,
  MAX_IMAGES_PER_REQUEST: 64,
  /** Elements of one decoded tensor input: 64 MiB of FP32, what MAX_BODY_BYTES can carry raw. */
  MAX_TENSOR_ELEMENTS: 16 * 1024 * 1024,
  MAX_HEADER_BYTES: 16 * 1024,
  /** Open connections per port (HTTP and gRPC each); more are closed on accept. */
  MAX_CONNECTIONS: 1024,
  /** Concurrent calls on one gRPC connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  GRPC_MAX_CONCURRENT_STREAMS: 100,
  /** A client must send all request headers (and finish the TLS handshake) within this. */
  HEADERS_TIMEOUT_MS: 10_000,
  /**
   * A client must send the whole request (HTTP headers and body; the gRPC request message)
   * within this: 64 MiB at ~5 Mbit/s. Slow-drip clients cannot hold a connection forever.
   */
  REQUEST_TIMEOUT_MS: 120_000,
  /**
   * A connection with no request in progress is closed after this (HTTP keep-alive; gRPC
   * max_connection_idle). Fastify's keep-alive default, above common load balancers' 60 s.
   */
  IDLE_TIMEOUT_MS: 72_000,
  DEFAULT_TOP_K: 5,
} as const;

const port = z.coerce.number().int().min(0).max(65_535);
const bytes = (max: number) => z.coerce.number().int().min(1).max(max);

const ConfigObject = z
  .object({
    // Engine settings: unset = the engine plan's default (ENGINE_DEFAULTS, src/inference/engine-plan.ts).
    /** tensorflow (native, required for serving) | wasm | cpu (development only). */
    ENGINE_BACKEND: z.enum(['tensorflow', 'wasm', 'cpu']).optional(),
    /** fused (tfjs ops, BN folded) | layers (tfjs predict) | onnxruntime (ONNX export on onnxruntime-node). */
    ENGINE_EXECUTOR: z.enum(['fused', 'layers', 'onnxruntime']).optional(),
    /** Must be set to "true" to run on a non-native backend; a guard against accidents. */
    ALLOW_DEV_BACKEND: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    /** The thread budget split between the workers; 0 = one per core. */
    TF_INTRA_OP_THREADS: nonNegativeInt(1024).optional(),
    TF_INTER_OP_THREADS: positiveInt(1024).optional(),
    /** auto (default): on where a child-process probe runs the conv that crashed TF 2.21's oneDNN (src/densenet/onednn-probe.ts). */
    TF_ENABLE_ONEDNN: z.enum(['auto', 'true', 'false']).optional().transform((v) => (v === undefined || v === 'auto' ? v : v === 'true')),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.LOG_LEVEL),
    HOST: z.string().min(1).max(255).default(DEFAULTS.HOST),
    HTTP_PORT: port.default(DEFAULTS.HTTP_PORT),
    GRPC_PORT: port.default(DEFAULTS.GRPC_PORT),
    MODEL_REPOSITORY: z.string().min(1).max(4096).default(DEFAULTS.MODEL_REPOSITORY),
    /** Model answering /v1/classify; default: the only model, or the first by name. */
    DEFAULT_MODEL: z.string().min(1).max(128).optional(),
    /** Inference workers. */
    WORKERS: positiveInt(256).optional(),
    /** thread | process | auto (processes for onnxruntime, threads for the tfjs executors). */
    WORKER_ISOLATION: z.enum(['auto', 'thread', 'process']).optional(),
    /** Nice value (0–19) of the workers' threads. */
    WORKER_NICE: nonNegativeInt(19).optional(),
    WORKER_HANG_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.WORKER_HANG_TIMEOUT_MS),
    MODEL_LOAD_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.MODEL_LOAD_TIMEOUT_MS),
    SHUTDOWN_TIMEOUT_MS: nonNegativeInt(3_600_000).default(DEFAULTS.SHUTDOWN_TIMEOUT_MS),
    MAX_BODY_BYTES: bytes(2 ** 31 - 1).default(DEFAULTS.MAX_BODY_BYTES),
    MAX_IMAGE_BYTES: bytes(2 ** 31 - 1).default(DEFAULTS.MAX_IMAGE_BYTES),
    MAX_IMAGE_PIXELS: bytes(1_000_000_000).default(DEFAULTS.MAX_IMAGE_PIXELS),
    MAX_IMAGE_DIMENSION: bytes(1_000_000).default(DEFAULTS.MAX_IMAGE_DIMENSION),
    MAX_IMAGES_PER_REQUEST: positiveInt(4096).default(DEFAULTS.MAX_IMAGES_PER_REQUEST),
    MAX_TENSOR_ELEMENTS: positiveInt(2 ** 31 - 1).default(DEFAULTS.MAX_TENSOR_ELEMENTS),
    /** Default: MAX_BODY_BYTES (resolved below), so both transports accept the same request size. */
    MAX_GRPC_MESSAGE_BYTES: bytes(2 ** 31 - 1).optional(),
    MAX_HEADER_BYTES: bytes(1024 * 1024).default(DEFAULTS.MAX_HEADER_BYTES),
    MAX_CONNECTIONS: positiveInt(1_000_000).default(DEFAULTS.MAX_CONNECTIONS),
    GRPC_MAX_CONCURRENT_STREAMS: positiveInt(1_000_000).default(DEFAULTS.GRPC_MAX_CONCURRENT_STREAMS),
    HEADERS_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.HEADERS_TIMEOUT_MS),
    REQUEST_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.REQUEST_TIMEOUT_MS),
    IDLE_TIMEOUT_MS: positiveInt(3_600_000).default(DEFAULTS.IDLE_TIMEOUT_MS),
    DEFAULT_TOP_K: positiveInt(1000).default(DEFAULTS.DEFAULT_TOP_K),
    /** Bearer token required by the model management endpoints (and /metrics when METRICS_REQUIRE_TOKEN). */
    AUTH_TOKEN: z.string().min(16, 'must be at least 16 characters').max(4096).optional(),
    METRICS_REQUIRE_TOKEN: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    /** PEM certificate chain and private key: both set = HTTPS and gRPC over TLS on the same ports. */
    TLS_CERT_FILE: z.string().min(1).max(4096).optional(),
    TLS_KEY_FILE: z.string().min(1).max(4096).optional(),
    /** PEM CA bundle for client certificates: set = mutual TLS, clients without a certificate it signed are refused. */
    TLS_CA_FILE: z.string().min(1).max(4096).optional(),
  });

export const ConfigSchema = ConfigObject
  .superRefine((cfg, ctx) => {
    if (cfg.METRICS_REQUIRE_TOKEN && !cfg.AUTH_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['METRICS_REQUIRE_TOKEN'], message: 'needs AUTH_TOKEN to be set' });
    }
    // Node refuses a headers timeout longer than the request timeout it is part of. (Refinements
    // run even when a field failed; an invalid REQUEST_TIMEOUT_MS has its own message.)
    if (cfg.REQUEST_TIMEOUT_MS >= 1 && cfg.HEADERS_TIMEOUT_MS > cfg.REQUEST_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['HEADERS_TIMEOUT_MS'], message: `must not exceed REQUEST_TIMEOUT_MS (${cfg.REQUEST_TIMEOUT_MS})` });
    }
    if ((cfg.TLS_CERT_FILE === undefined) !== (cfg.TLS_KEY_FILE === undefined)) {
      const missing = cfg.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'TLS needs both TLS_CERT_FILE and TLS_KEY_FILE' });
    }
    if (cfg.TLS_CA_FILE !== undefined && cfg.TLS_CERT_FILE === undefined) {
      ctx.addIssue({ code: 'custom', path: ['TLS_CA_FILE'], message: 'mutual TLS needs TLS_CERT_FILE and TLS_KEY_FILE too' });
    }
    if ((cfg.ENGINE_BACKEND === 'wasm' || cfg.ENGINE_BACKEND === 'cpu') && !cfg.ALLOW_DEV_BACKEND) {
      ctx.addIssue({
        code: 'custom',
        path: ['ENGINE_BACKEND'],
        message: `'${cfg.ENGINE_BACKEND}' is for development only; set ALLOW_DEV_BACKEND=true to use it anyway`,
      });
    }
  })
  .transform((cfg) => ({ ...cfg, MAX_GRPC_MESSAGE_BYTES: cfg.MAX_GRPC_MESSAGE_BYTES ?? cfg.MAX_BODY_BYTES }));

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
