// The in-process heart of the service: the model repository, the worker pool and the dynamic
// batcher wired together. Frontends call classify / inferTensor and the model lifecycle here;
// nothing in this file knows about HTTP or gRPC.
import { ServeError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ExecutorName } from '../densenet/index.ts';
import type { EngineOptions } from '../densenet/tf-runtime.ts';
import { Dispatcher, type BatchObserver, type Executor } from './batching/index.ts';
import {
  preprocessImages,
  tensorToImages,
  type ImageLimits,
  type ModelInputSpec,
  type PreprocessSpec,
  type TensorLayout,
} from './preprocess/index.ts';
import { ModelRepository, assertModelName, assertVersion, type ModelDescriptor, type RepositoryEntry } from './repository/model-repository.ts';
import { batchSizesToWarm } from './repository/manifest.ts';
import { InflightTracker } from './inflight.ts';
import { softmax, topK, type Prediction } from './top-k.ts';
import { WorkerPool } from './worker/worker-pool.ts';
import type { InferenceWorker } from './worker/inference-worker.ts';
import type { WorkerIsolation } from './worker/worker-channel.ts';

export interface InferenceServiceOptions {
  repositoryRoot: string;
  workers: number;
  engine: Omit<EngineOptions, 'warn'>;
  /** Workers as threads or processes; 'auto' (default) picks processes for onnxruntime. */
  isolation?: WorkerIsolation | 'auto';
  /** Nice value of the workers' threads (default 0). */
  nice?: number;
  hangTimeoutMs: number;
  loadTimeoutMs: number;
  imageLimits: ImageLimits;
  logger: Logger;
}

export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

export interface ModelVersionStatus {
  name: string;
  version: string;
  state: ModelState;
  reason?: string;
}

export interface TensorSpec {
  name: string;
  datatype: 'FP32' | 'UINT8' | 'BYTES';
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  labels: readonly string[];
  maxBatchSize: number;
}

/** A servable model version as the protocols describe it; nothing here is protocol vocabulary. */
export interface ModelDescription {
  name: string;
  version: string;
  /** Every version of the model the server holds, oldest first. */
  versions: string[];
  /** The network's input, one image (the batch dimension is free up to maxBatchSize). */
  input: ModelInputSpec;
  labels: readonly string[];
  maxBatchSize: number;
  maxQueueDelayMs: number;
  preferredBatchSizes: readonly number[];
  /** Workers holding the model. */
  instances: number;
  /** What runs its batches in the workers (known once loaded). */
  executor: ExecutorName | undefined;
}

export interface RequestOptions {
  version?: string;
  /** Absolute time on performance.now()'s clock after which the answer is useless. */
  deadline?: number;
  /** 1 = highest; absent = the model's default. */
  priority?: number;
  signal?: AbortSignal;
}

export interface ClassifyResult {
  model: string;
  version: string;
  predictions: Prediction[][];
  timings: { preprocessMs: number; inferenceMs: number; totalMs: number };
}

export interface InferResult {
  model: string;
  version: string;
  /** One row of logits per image. */
  logits: Float32Array[];
  labels: readonly string[];
}

interface LoadedVersion {
  key: string;
  name: string;
  version: string;
  descriptor: ModelDescriptor;
  input: ModelInputSpec;
  preprocess: PreprocessSpec;
  executor?: ExecutorName;
  state: ModelState;
  reason?: string;
}

/** Input tensor name of every model's Open Inference Protocol metadata. */
export const INPUT_NAME = 'input';
export const OUTPUT_LOGITS = 'logits';
export const OUTPUT_PROBABILITIES = 'probabilities';

export class InferenceService {
  readonly repository: ModelRepository;
  private readonly pool: WorkerPool;
  private readonly dispatcher = new Dispatcher<Float32Array, Float32Array>();
  private readonly versions = new Map<string, LoadedVersion>();
  private readonly inflight = new InflightTracker();
  /** Per model name, the operation (load/unload) in progress, so they never interleave. */
  private readonly operations = new Map<string, Promise<unknown>>();
  private readonly log: Logger;
  private closed = false;

  private constructor(private readonly options: InferenceServiceOptions) {
    this.repository = new ModelRepository(options.repositoryRoot);
    this.log = options.logger.child({ component: 'inference' });
    this.pool = new WorkerPool(
      {
        size: options.workers,
        engine: options.engine,
        isolation: options.isolation,
        nice: options.nice,
        hangTimeoutMs: options.hangTimeoutMs,
        loadTimeoutMs: options.loadTimeoutMs,
        restartBackoffMs: 1000,
        logger: this.log,
      },
      {
        onWorkerReady: (worker) => this.dispatcher.addExecutor(asExecutor(worker)),
        onWorkerLost: (worker) => this.dispatcher.removeExecutor(worker.id),
      },
    );
  }

  /** Starts the workers and loads every usable model in the repository. */
  static async start(options: InferenceServiceOptions): Promise<InferenceService> {
    const service = new InferenceService(options);
    await service.pool.start();
    for (const entry of await service.repository.index()) {
      if (entry.error) {
        service.log.error({ model: entry.name, reason: entry.error }, 'skipping model folder');
        continue;
      }
      await service.load(entry.name).catch((err: Error) => {
        service.log.error({ model: entry.name, err: err.message }, 'model failed to load');
      });
    }
    return service;
  }

  subscribe(observer: BatchObserver): () => void {
    return this.dispatcher.subscribe(observer);
  }

  /** Images waiting in a model version's batch queue. */
  queueDepth(name: string, version: string): number {
    return this.dispatcher.stats(`${name}:${version}`)?.queueDepth ?? 0;
  }

  get workerRestarts(): number {
    return this.pool.restarts;
  }

  /** Engine tensor counts of the live workers after their last batch (leak checks). */
  workerTensorCounts(): number[] {
    return this.pool.workers.map((w) => w.lastTensorCount);
  }

  repositoryIndex(): Promise<RepositoryEntry[]> {
    return this.repository.index();
  }

  /** Every loaded (or failed) model version with its state. */
  listModels(): ModelVersionStatus[] {
    return [...this.versions.values()].map((v) => ({
      name: v.name,
      version: v.version,
      state: this.stateOf(v),
      ...(v.reason ? { reason: v.reason } : {}),
    }));
  }

  /** Ready = loaded and held by at least one live worker. */
  isReady(name?: string, version?: string): boolean {
    if (name === undefined) return !this.closed && this.pool.workers.length > 0;
    const v = this.find(name, version);
    return v !== undefined && this.stateOf(v) === 'READY';
  }

  metadata(name: string, version?: string): ModelMetadata {
    const v = this.get(name, version);
    const { height, width, channels } = v.input;
    const classes = v.descriptor.labels.length;
    return {
      name,
      versions: this.versionsOf(name).map((x) => x.version),
      platform: 'densenet-serve_tfjs',
      inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, height, width, channels] }],
      outputs: [
        { name: OUTPUT_LOGITS, datatype: 'FP32', shape: [-1, classes] },
        { name: OUTPUT_PROBABILITIES, datatype: 'FP32', shape: [-1, classes] },
      ],
      labels: v.descriptor.labels,
      maxBatchSize: v.descriptor.manifest.batching.maxBatchSize,
    };
  }

  /** The requested (or newest) version; MODEL_NOT_FOUND names what is missing. */
  describe(name: string, version?: string): ModelDescription {
    const v = this.get(name, version);
    const { batching } = v.descriptor.manifest;
    return {
      name,
      version: v.version,
      versions: this.versionsOf(name).map((x) => x.version),
      input: { ...v.input },
      labels: v.descriptor.labels,
      maxBatchSize: batching.maxBatchSize,
      maxQueueDelayMs: batching.maxQueueDelayMs,
      preferredBatchSizes: batching.preferredBatchSizes ?? [],
      instances: this.pool.holders(v.key),
      executor: v.executor,
    };
  }

  /** Whether a model of this name is loaded (any version, any state). */
  hasModel(name: string): boolean {
    return [...this.versions.values()].some((v) => v.name === name);
  }

  /** (Re)loads a model's versions from the repository, warming every batch size. */
  load(name: string): Promise<void> {
    assertModelName(name);
    return this.exclusive(name, async () => {
      const descriptor = await this.repository.describe(name);
      const wanted = new Set(descriptor.versions.map((v) => v.version));
      for (const old of this.versionsOf(name)) {
        if (!wanted.has(old.version)) await this.unloadVersion(old);
      }
      const { manifest, architecture } = descriptor;
      const failures: string[] = [];
      for (const files of descriptor.versions) {
        const key = `${name}:${files.version}`;
        const version: LoadedVersion = {
          key, name, version: files.version, descriptor, state: 'LOADING',
          input: { height: 0, width: 0, channels: 3 }, // known once the network is loaded
          preprocess: { ...manifest.preprocessing },
        };
        // A reload keeps serving the old weights until the new ones are loaded and warm.
        const previous = this.versions.get(key);
        if (!previous) this.versions.set(key, version);
        try {
          const info = await this.pool.load({
            key, format: manifest.format, weightsPath: files.weightsPath, architecture,
            warmupBatchSizes: batchSizesToWarm(manifest.batching),
          }, manifest.instances);
          if (info.numClasses !== descriptor.labels.length) {
            throw new ServeError('INVALID_MODEL_FILE', `${name}: the network has ${info.numClasses} classes, the manifest ${descriptor.labels.length} labels`);
          }
          const [height, width, channels] = info.inputShape;
          if (channels !== 1 && channels !== 3) {
            throw new ServeError('INVALID_MODEL_FILE', `${name}: image models take 1 or 3 channels, not ${channels}`, { field: 'architecture.inputChannels' });
          }
          this.dispatcher.setModel(key, manifest.batching);
          for (const [size, ms] of Object.entries(info.warmLatencyMs)) this.dispatcher.observeLatency(key, Number(size), ms);
          this.versions.set(key, { ...version, input: { height, width, channels }, executor: info.executor, state: 'READY' });
          this.log.info({ model: name, version: files.version, warmLatencyMs: info.warmLatencyMs }, 'model ready');
        } catch (err) {
          if (!previous) this.versions.set(key, { ...version, state: 'UNAVAILABLE', reason: (err as Error).message });
          failures.push(`version ${files.version}: ${(err as Error).message}`);
        }
      }
      if (failures.length) throw new ServeError('INVALID_MODEL_FILE', `model ${name} failed to load: ${failures.join('; ')}`, { model: name });
    });
  }

  /** Stops taking requests for a model, waits for its queued and running batches, frees it. */
  unload(name: string): Promise<void> {
    assertModelName(name);
    return this.exclusive(name, async () => {
      const versions = this.versionsOf(name);
      if (versions.length === 0) throw new ServeError('MODEL_NOT_FOUND', `model ${name} is not loaded`, { model: name });
      for (const v of versions) await this.unloadVersion(v);
    });
  }

  /**
   * Throws what a request for this model would be refused with right now (QUEUE_FULL,
   * MODEL_NOT_READY, MODEL_NOT_FOUND, SHUTTING_DOWN), so a transport can refuse it before
   * reading its body. The request is checked again when it is queued.
   */
  admit(name: string, version?: string): void {
    this.dispatcher.admit(this.servable(name, version).key);
  }

  /** Decodes and classifies encoded images; one top-k list per image. */
  async classify(name: string, images: Uint8Array[], topKCount: number, options: RequestOptions = {}): Promise<ClassifyResult> {
    const started = performance.now();
    const v = this.servable(name, options.version);
    return this.inflight.track(v.key, async () => {
      const { logits, preprocessMs } = await this.decodeAndRun(v, images, options);
      const done = performance.now();
      return {
        model: name,
        version: v.version,
        predictions: logits.map((row) => topK(softmax(row), topKCount, v.descriptor.labels)),
        timings: { preprocessMs, inferenceMs: done - started - preprocessMs, totalMs: done - started },
      };
    });
  }

  /** Runs already-decoded image tensors (Open Inference Protocol inputs); logits per image. */
  async inferTensor(
    name: string,
    tensor: { data: Float32Array | Uint8Array; shape: number[]; layout: TensorLayout },
    options: RequestOptions = {},
  ): Promise<InferResult> {
    const v = this.servable(name, options.version);
    this.dispatcher.admit(v.key); // as for images: a full queue refuses before any conversion
    const inputs = tensorToImages(tensor.data, tensor.shape, tensor.layout, v.input, v.preprocess, this.options.imageLimits);
    return this.inflight.track(v.key, async () => ({
      model: name, version: v.version, logits: await this.run(v, inputs, options), labels: v.descriptor.labels,
    }));
  }

  /** Decodes encoded images (BYTES inputs of the Open Inference Protocol); logits per image. */
  async inferImages(name: string, images: Uint8Array[], options: RequestOptions = {}): Promise<InferResult> {
    const v = this.servable(name, options.version);
    return this.inflight.track(v.key, async () => {
      const { logits } = await this.decodeAndRun(v, images, options);
      return { model: name, version: v.version, logits, labels: v.descriptor.labels };
    });
  }

  /** Rejects queued work and stops the workers. Callers drain their own requests first. */
  async close(): Promise<void> {
    this.closed = true;
    this.dispatcher.close(new ServeError('SHUTTING_DOWN', 'the server is shutting down'));
    await this.pool.close();
  }

  /**
   * Decodes a request's images, then queues them. A full queue refuses the request (QUEUE_FULL)
   * before decoding: under overload, excess requests cost no decode CPU.
   */
  private async decodeAndRun(v: LoadedVersion, images: Uint8Array[], options: RequestOptions): Promise<{ logits: Float32Array[]; preprocessMs: number }> {
    const started = performance.now();
    this.dispatcher.admit(v.key);
    const inputs = await preprocessImages(images, v.input, v.preprocess, this.options.imageLimits, { signal: options.signal });
    const preprocessMs = performance.now() - started;
    return { logits: await this.run(v, inputs, options), preprocessMs };
  }

  private run(v: LoadedVersion, inputs: Float32Array[], options: RequestOptions): Promise<Float32Array[]> {
    const item = { deadline: options.deadline, priority: options.priority, signal: options.signal };
    return Promise.all(inputs.map((input) => this.dispatcher.enqueue(v.key, input, item)));
  }

  private async unloadVersion(v: LoadedVersion): Promise<void> {
    this.versions.set(v.key, { ...v, state: 'UNLOADING' });
    // New requests are refused from here on; the ones already accepted (decoding, queued or
    // running) finish first.
    await this.inflight.idle(v.key);
    await this.dispatcher.drain(v.key);
    this.dispatcher.removeModel(v.key);
    await this.pool.unload(v.key);
    this.versions.delete(v.key);
    this.log.info({ model: v.name, version: v.version }, 'model unloaded');
  }

  private stateOf(v: LoadedVersion): ModelState {
    if (v.state === 'READY' && this.pool.holders(v.key) === 0) return 'UNAVAILABLE';
    return v.state;
  }

  private versionsOf(name: string): LoadedVersion[] {
    return [...this.versions.values()].filter((v) => v.name === name).sort((a, b) => Number(a.version) - Number(b.version));
  }

  /** The requested version, or the newest one. */
  private find(name: string, version?: string): LoadedVersion | undefined {
    assertModelName(name);
    if (version !== undefined) assertVersion(version);
    const candidates = this.versionsOf(name);
    return version === undefined ? candidates.at(-1) : candidates.find((v) => v.version === version);
  }

  /** Like find, but MODEL_NOT_FOUND names what is missing. */
  private get(name: string, version?: string): LoadedVersion {
    const found = this.find(name, version);
    if (!found) {
      throw new ServeError('MODEL_NOT_FOUND', version === undefined ? `no model '${name}'` : `no version ${version} of model '${name}'`, { model: name, version });
    }
    return found;
  }

  private servable(name: string, version?: string): LoadedVersion {
    if (this.closed) throw new ServeError('SHUTTING_DOWN', 'the server is shutting down');
    const v = this.get(name, version);
    const state = this.stateOf(v);
    if (state !== 'READY') {
      throw new ServeError('MODEL_NOT_READY', `model ${name} version ${v.version} is ${state.toLowerCase()}${v.reason ? `: ${v.reason}` : ''}`, { model: name, version: v.version });
    }
    return v;
  }

  private async exclusive<T>(name: string, op: () => Promise<T>): Promise<T> {
    const previous = this.operations.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(op);
    this.operations.set(name, next);
    try {
      return await next;
    } finally {
      if (this.operations.get(name) === next) this.operations.delete(name);
    }
  }
}

function asExecutor(worker: InferenceWorker): Executor<Float32Array, Float32Array> {
  return {
    id: worker.id,
    canRun: (key) => worker.canRun(key),
    run: async (key, inputs) => (await worker.run(key, inputs)).outputs,
  };
}
