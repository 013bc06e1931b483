// The inference core's facade, what the transports call: request paths (decode or convert,
// admit, queue, batch, run on a worker) and the model lifecycle, wired over the worker pool, the
// batcher and the model registry. Nothing in this file knows about HTTP, gRPC or the Open
// Inference Protocol's vocabulary (src/api/oip owns that).
import { ServeError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { Dispatcher, type BatchObserver } from './batching/index.ts';
import type { EnginePlan } from './engine-plan.ts';
import { InflightTracker } from './inflight.ts';
import { ModelRegistry, type ModelDescription, type ModelVersion, type ModelVersionStatus } from './model-registry.ts';
import { preprocessImages, tensorToImages, type ImageLimits, type TensorLayout } from './preprocess/index.ts';
import { ModelRepository, type RepositoryEntry } from './repository/model-repository.ts';
import { softmax, topK, type Prediction } from './top-k.ts';
import { WorkerPool } from './worker/worker-pool.ts';

export interface InferenceServiceOptions {
  repositoryRoot: string;
  /** Workers, isolation, executor and threads: engine-plan.ts planEngine. */
  engine: EnginePlan;
  hangTimeoutMs: number;
  loadTimeoutMs: number;
  imageLimits: ImageLimits;
  logger: Logger;
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

/** Minimum pause between two replacements of one worker slot, so a crash loop cannot spin. */
const RESTART_BACKOFF_MS = 1000;

export class InferenceService {
  private readonly repository: ModelRepository;
  private readonly pool: WorkerPool;
  private readonly dispatcher = new Dispatcher<Float32Array, Float32Array>();
  private readonly inflight = new InflightTracker();
  private readonly models: ModelRegistry;
  private closed = false;

  private constructor(private readonly options: InferenceServiceOptions) {
    this.repository = new ModelRepository(options.repositoryRoot);
    const log = options.logger.child({ component: 'inference' });
    this.pool = new WorkerPool(
      { plan: options.engine, hangTimeoutMs: options.hangTimeoutMs, loadTimeoutMs: options.loadTimeoutMs, restartBackoffMs: RESTART_BACKOFF_MS, logger: log },
      {
        onWorkerReady: (worker) => this.dispatcher.addExecutor(worker),
        onWorkerLost: (worker) => this.dispatcher.removeExecutor(worker.id),
      },
    );
    this.models = new ModelRegistry({ repository: this.repository, pool: this.pool, dispatcher: this.dispatcher, inflight: this.inflight, log });
  }

  /** Starts the workers and loads every usable model in the repository. */
  static async start(options: InferenceServiceOptions): Promise<InferenceService> {
    const service = new InferenceService(options);
    await service.pool.start();
    await service.models.loadAll();
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
    return this.models.list();
  }

  /** Ready = loaded and held by at least one live worker; without a name, the server can take work. */
  isReady(name?: string, version?: string): boolean {
    if (name === undefined) return !this.closed && this.pool.workers.length > 0;
    return this.models.isReady(name, version);
  }

  /** The requested (or newest) version; MODEL_NOT_FOUND names what is missing. */
  describe(name: string, version?: string): ModelDescription {
    return this.models.describe(name, version);
  }

  /** Whether a model of this name is loaded (any version, any state). */
  hasModel(name: string): boolean {
    return this.models.has(name);
  }

  /** (Re)loads a model's versions from the repository, warming every batch size. */
  load(name: string): Promise<void> {
    return this.models.load(name);
  }

  /** Stops taking requests for a model, waits for its queued and running batches, frees it. */
  unload(name: string): Promise<void> {
    return this.models.unload(name);
  }

  /**
   * Throws what a request for this model would be refused with right now (QUEUE_FULL,
   * MODEL_NOT_READY, MODEL_NOT_FOUND, SHUTTING_DOWN), so a transport can refuse it before
   * reading its body. The request is checked again when it is queued.
   */
  admit(name: string, version?: string): void {
    this.dispatcher.admit(this.servable(name, version).key);
  }

  /**
   * What any request would be refused with right now, whatever model it names: SHUTTING_DOWN,
   * or QUEUE_FULL when every model's queue is full; else undefined. For transports that cannot
   * see the model before reading the whole request.
   */
  refusalForAny(): ServeError | undefined {
    if (this.closed) return new ServeError('SHUTTING_DOWN', 'the server is shutting down');
    return this.dispatcher.refusalForAny();
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
        predictions: logits.map((row) => topK(softmax(row), topKCount, v.labels)),
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
      model: name, version: v.version, logits: await this.run(v, inputs, options), labels: v.labels,
    }));
  }

  /** Decodes encoded images (BYTES inputs of the Open Inference Protocol); logits per image. */
  async inferImages(name: string, images: Uint8Array[], options: RequestOptions = {}): Promise<InferResult> {
    const v = this.servable(name, options.version);
    return this.inflight.track(v.key, async () => {
      const { logits } = await this.decodeAndRun(v, images, options);
      return { model: name, version: v.version, logits, labels: v.labels };
    });
  }

  /** Rejects queued work and stops the workers. Callers drain their own requests first. */
  async close(): Promise<void> {
    this.closed = true;
    this.dispatcher.close(new ServeError('SHUTTING_DOWN', 'the server is shutting down'));
    await this.pool.close();
  }

  private servable(name: string, version?: string): ModelVersion {
    if (this.closed) throw new ServeError('SHUTTING_DOWN', 'the server is shutting down');
    return this.models.servable(name, version);
  }

  /**
   * Decodes a request's images, then queues them. A full queue refuses the request (QUEUE_FULL)
   * before decoding: under overload, excess requests cost no decode CPU.
   */
  private async decodeAndRun(v: ModelVersion, images: Uint8Array[], options: RequestOptions): Promise<{ logits: Float32Array[]; preprocessMs: number }> {
    const started = performance.now();
    this.dispatcher.admit(v.key);
    const inputs = await preprocessImages(images, v.input, v.preprocess, this.options.imageLimits, { signal: options.signal });
    const preprocessMs = performance.now() - started;
    return { logits: await this.run(v, inputs, options), preprocessMs };
  }

  private run(v: ModelVersion, inputs: Float32Array[], options: RequestOptions): Promise<Float32Array[]> {
    const item = { deadline: options.deadline, priority: options.priority, signal: options.signal };
    return Promise.all(inputs.map((input) => this.dispatcher.enqueue(v.key, input, item)));
  }
}
