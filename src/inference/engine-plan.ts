// The engine plan: what runs a model's batches, in how many workers, as threads or processes,
// on which backend, and how the machine's cores are split between them — derived here, once,
// from the settings and the machine. main.ts logs it at start; the worker pool, the workers and
// the TF runtime take it as it is and have no defaults of their own. Every engine default is
// named in ENGINE_DEFAULTS below and nowhere else (config.ts leaves these settings unset when
// the environment does not set them, so the plan can tell a choice from a default).
import type { EngineBackend, EngineOptions } from '../densenet/tf-runtime.ts';
import type { ExecutorName } from '../densenet/index.ts';

export type WorkerIsolation = 'thread' | 'process';

/** The settings the plan reads (src/config.ts names; unset = the default below). */
export interface EngineSettings {
  readonly ENGINE_EXECUTOR?: ExecutorName;
  readonly ENGINE_BACKEND?: EngineBackend;
  readonly WORKERS?: number;
  readonly WORKER_ISOLATION?: WorkerIsolation | 'auto';
  readonly WORKER_NICE?: number;
  /** 0 = TensorFlow's own default (one thread per core). */
  readonly TF_INTRA_OP_THREADS?: number;
  readonly TF_INTER_OP_THREADS?: number;
  /** 'auto': on where the oneDNN probe says it is safe (src/densenet/onednn-probe.ts). */
  readonly TF_ENABLE_ONEDNN?: boolean | 'auto';
}

/** What the plan knows of the machine: its cores, and the oneDNN probe's verdict if one ran. */
export interface Machine {
  readonly cores: number;
  readonly oneDnnProbe?: { readonly safe: boolean; readonly detail: string };
}

export const ENGINE_DEFAULTS = Object.freeze({
  /**
   * onnxruntime is 2.3× the fused tfjs executor on DenseNet-121 batch 8 and 3.4× on batch 1
   * here (docs/benchmarks.md).
   */
  ENGINE_EXECUTOR: 'onnxruntime',
  /** Native TensorFlow for the tfjs executors and tfjs models; wasm and cpu are for development (tf-runtime.ts). */
  ENGINE_BACKEND: 'tensorflow',
  /**
   * Two workers: one batch's hand-over, decoding and bookkeeping overlap the other's compute,
   * and the cores are split between them (docs/deployment.md).
   */
  WORKERS: 2,
  /** auto: processes for onnxruntime, threads for the tfjs executors (see planEngine). */
  WORKER_ISOLATION: 'auto',
  /**
   * 0: batch compute does not yield to the event loop. Above 0, refusals under 10× overload came
   * back faster but goodput fell from 19.7 to 11.8 img/s (docs/engine.md, "Worker priority").
   */
  WORKER_NICE: 0,
  /** 0: TensorFlow sizes the server process's intra-op pool itself, one thread per core. */
  TF_INTRA_OP_THREADS: 0,
  /** DenseNet inference is a chain of dependent ops: a second inter-op thread buys nothing. */
  TF_INTER_OP_THREADS: 1,
  /**
   * auto: TF 2.21's oneDNN kernels died with SIGFPE on DenseNet-121 on one AVX-512 CPU and ran
   * (14 % faster for `fused`) on another, so a child process probes it (oneDnnProbeNeeded).
   */
  TF_ENABLE_ONEDNN: 'auto',
} as const satisfies Required<EngineSettings>);

export interface EnginePlan {
  /** What runs a model's batches in a worker (a model only tfjs can run falls back to layers). */
  readonly executor: ExecutorName;
  /** The tfjs backend: what tfjs models run on, in the workers. */
  readonly backend: EngineBackend;
  /**
   * The backend a worker starts on: 'cpu' for onnxruntime workers of a native server (they build
   * networks only to export them; native TensorFlow is loaded for a model only tfjs can run).
   */
  readonly workerStartBackend: EngineBackend;
  readonly workers: number;
  readonly isolation: WorkerIsolation;
  /** Nice value of the workers' threads (0: the server's priority); see worker/priority.ts. */
  readonly nice: number;
  /** Cores the plan was sized for. */
  readonly cores: number;
  /**
   * TensorFlow's intra-op pool in the server process, which worker threads share (0: one thread
   * per core). TF reads it once, when it first loads.
   */
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  readonly oneDnn: boolean;
  /**
   * Each worker's share of the thread budget (TF_INTRA_OP_THREADS, or every core): its
   * onnxruntime session's threads and, for a worker process, its own TF intra-op pool.
   */
  readonly threadsPerWorker: number;
  /** Why each derived value is what it is, in words, for the start-up log. */
  readonly reasons: Readonly<Record<'executor' | 'backend' | 'workers' | 'isolation' | 'threads' | 'oneDnn', string>>;
}

/** What one worker is started with: its slice of the plan. */
export interface WorkerEngine {
  readonly executor: ExecutorName;
  /** The backend it starts on (EnginePlan.workerStartBackend). */
  readonly startBackend: EngineBackend;
  /** initEngine's options in the worker: the backend tfjs models run on, and TF's pools. */
  readonly tf: EngineOptions;
  /** Threads of one onnxruntime session. */
  readonly sessionThreads: number;
}

const setOr = (name: string, value: unknown, otherwise: string): string =>
  value === undefined ? otherwise : `${name}=${String(value)}`;

/**
 * Whether the plan for these settings wants the oneDNN probe: TF_ENABLE_ONEDNN=auto and batches
 * served by tfjs on native TensorFlow. (onnxruntime servers load TF only for a model only tfjs
 * can run; they keep oneDNN off rather than spend a probe at every start.)
 */
export function oneDnnProbeNeeded(settings: EngineSettings): boolean {
  const executor = settings.ENGINE_EXECUTOR ?? ENGINE_DEFAULTS.ENGINE_EXECUTOR;
  return (settings.TF_ENABLE_ONEDNN ?? ENGINE_DEFAULTS.TF_ENABLE_ONEDNN) === 'auto'
    && executor !== 'onnxruntime' && (settings.ENGINE_BACKEND ?? ENGINE_DEFAULTS.ENGINE_BACKEND) === 'tensorflow';
}

function oneDnnOf(setting: boolean | 'auto', machine: Machine): { oneDnn: boolean; reason: string } {
  if (setting !== 'auto') return { oneDnn: setting, reason: `TF_ENABLE_ONEDNN=${setting}` };
  if (!machine.oneDnnProbe) return { oneDnn: false, reason: 'auto: off (not probed: no batch runs on native TensorFlow)' };
  return { oneDnn: machine.oneDnnProbe.safe, reason: `auto: ${machine.oneDnnProbe.safe ? 'on' : 'off'} (${machine.oneDnnProbe.detail})` };
}

/** The whole engine plan from the settings and the machine. Pure: reads nothing else. */
export function planEngine(settings: EngineSettings, machine: Machine): EnginePlan {
  const d = ENGINE_DEFAULTS;
  const cores = Math.max(1, Math.floor(machine.cores));
  const executor = settings.ENGINE_EXECUTOR ?? d.ENGINE_EXECUTOR;
  const backend = settings.ENGINE_BACKEND ?? d.ENGINE_BACKEND;
  const workers = settings.WORKERS ?? d.WORKERS;
  const intraOpThreads = settings.TF_INTRA_OP_THREADS ?? d.TF_INTRA_OP_THREADS;

  // A worker thread stopped while an ONNX Runtime run is in flight takes the whole server down
  // (test/inference/worker/worker-isolation.test.ts); a killed worker process does not. Threads
  // move batches zero-copy and are safe for the tfjs executors.
  const isolationSetting = settings.WORKER_ISOLATION ?? d.WORKER_ISOLATION;
  const isolation: WorkerIsolation = isolationSetting !== 'auto' ? isolationSetting : executor === 'onnxruntime' ? 'process' : 'thread';
  const isolationReason = isolationSetting !== 'auto'
    ? `WORKER_ISOLATION=${isolationSetting}`
    : executor === 'onnxruntime'
      ? 'auto: processes for onnxruntime (a worker thread stopped mid-run crashes the server)'
      : `auto: threads for ${executor} (batches move zero-copy)`;

  // onnxruntime sessions and worker processes own private thread pools (TF's is shared by worker
  // threads), so the budget is divided between the workers: N workers × every core oversubscribes.
  const budget = intraOpThreads || cores;
  const threadsPerWorker = Math.max(1, Math.floor(budget / workers));
  const budgetSource = intraOpThreads ? `TF_INTRA_OP_THREADS=${intraOpThreads}` : `${cores} cores`;
  const oversubscribed = workers > budget ? `; ${workers} workers > ${budget} threads: oversubscribed` : '';

  // An onnxruntime worker builds each network only to export it to ONNX: the pure-JS backend is
  // enough and spares loading native TensorFlow, 75 vs 365 MiB RSS per worker process, measured.
  const workerStartBackend: EngineBackend = executor === 'onnxruntime' && backend === 'tensorflow' ? 'cpu' : backend;
  const { oneDnn, reason: oneDnnReason } = oneDnnOf(settings.TF_ENABLE_ONEDNN ?? d.TF_ENABLE_ONEDNN, machine);

  return Object.freeze({
    executor,
    backend,
    workerStartBackend,
    workers,
    isolation,
    nice: settings.WORKER_NICE ?? d.WORKER_NICE,
    cores,
    intraOpThreads,
    interOpThreads: settings.TF_INTER_OP_THREADS ?? d.TF_INTER_OP_THREADS,
    oneDnn,
    threadsPerWorker,
    reasons: Object.freeze({
      executor: setOr('ENGINE_EXECUTOR', settings.ENGINE_EXECUTOR, `default (${d.ENGINE_EXECUTOR}: 2.3-3.4× fused, docs/benchmarks.md)`),
      backend: setOr('ENGINE_BACKEND', settings.ENGINE_BACKEND, `default (${d.ENGINE_BACKEND})`) +
        (workerStartBackend === backend ? '' : `; ${executor} workers start on '${workerStartBackend}' and load '${backend}' only for a model only tfjs can run`),
      workers: setOr('WORKERS', settings.WORKERS, `default (${d.WORKERS})`),
      isolation: isolationReason,
      threads: `${budgetSource} ÷ ${workers} worker${workers === 1 ? '' : 's'} = ${threadsPerWorker} each${oversubscribed}`,
      oneDnn: oneDnnReason,
    }),
  });
}

/**
 * One worker's engine. A worker thread runs in the server process's TF pools (set once, before
 * any worker loads TF: tf-runtime.ts applyEngineEnvironment); a worker process has its own,
 * sized like an onnxruntime session: its share of the budget.
 */
export function workerEngine(plan: EnginePlan): WorkerEngine {
  return {
    executor: plan.executor,
    startBackend: plan.workerStartBackend,
    tf: {
      backend: plan.backend,
      intraOpThreads: plan.isolation === 'process' ? plan.threadsPerWorker : plan.intraOpThreads,
      interOpThreads: plan.interOpThreads,
      oneDnn: plan.oneDnn,
    },
    sessionThreads: plan.threadsPerWorker,
  };
}
