// The model versions the service holds and their lifecycle: loaded from the repository onto the
// worker pool (every batch size warmed first), registered with the batcher, and unloaded only
// once the requests already accepted for them are done. Loads and unloads of one model never
// interleave. Which version a request means, and whether it can be served now, is decided here.
import { ServeError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ExecutorName } from '../densenet/index.ts';
import type { Dispatcher } from './batching/index.ts';
import type { InflightTracker } from './inflight.ts';
import type { ModelInputSpec, PreprocessSpec } from './preprocess/index.ts';
import { batchSizesToWarm } from './repository/manifest.ts';
import { assertModelName, assertVersion, type ModelDescriptor, type ModelRepository } from './repository/model-repository.ts';
import type { WorkerPool } from './worker/worker-pool.ts';

export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

export interface ModelVersionStatus {
  name: string;
  version: string;
  state: ModelState;
  reason?: string;
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

/** One model version as a request needs it: its batch queue key, input and preprocessing. */
export interface ModelVersion {
  /** `${name}:${version}`: the batcher's queue and the workers' unit. */
  readonly key: string;
  readonly name: string;
  readonly version: string;
  readonly labels: readonly string[];
  readonly input: ModelInputSpec;
  readonly preprocess: PreprocessSpec;
}

interface Entry extends ModelVersion {
  readonly descriptor: ModelDescriptor;
  readonly executor?: ExecutorName;
  readonly state: ModelState;
  readonly reason?: string;
}

export interface ModelRegistryDeps {
  repository: ModelRepository;
  pool: WorkerPool;
  dispatcher: Dispatcher<Float32Array, Float32Array>;
  /** Requests in progress per model version: an unload waits for them. */
  inflight: InflightTracker;
  log: Logger;
}

export class ModelRegistry {
  private readonly versions = new Map<string, Entry>();
  /** Per model name, the operation (load/unload) in progress, so they never interleave. */
  private readonly operations = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: ModelRegistryDeps) {}

  /** Loads every usable model in the repository; a folder or model that fails is logged and skipped. */
  async loadAll(): Promise<void> {
    for (const entry of await this.deps.repository.index()) {
      if (entry.error) {
        this.deps.log.error({ model: entry.name, reason: entry.error }, 'skipping model folder');
        continue;
      }
      await this.load(entry.name).catch((err: Error) => {
        this.deps.log.error({ model: entry.name, err: err.message }, 'model failed to load');
      });
    }
  }

  /** Every loaded (or failed) model version with its state. */
  list(): ModelVersionStatus[] {
    return [...this.versions.values()].map((v) => ({
      name: v.name,
      version: v.version,
      state: this.stateOf(v),
      ...(v.reason ? { reason: v.reason } : {}),
    }));
  }

  /** Loaded and held by at least one live worker. */
  isReady(name: string, version?: string): boolean {
    const v = this.find(name, version);
    return v !== undefined && this.stateOf(v) === 'READY';
  }

  /** Whether a model of this name is loaded (any version, any state). */
  has(name: string): boolean {
    return [...this.versions.values()].some((v) => v.name === name);
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
      labels: v.labels,
      maxBatchSize: batching.maxBatchSize,
      maxQueueDelayMs: batching.maxQueueDelayMs,
      preferredBatchSizes: batching.preferredBatchSizes ?? [],
      instances: this.deps.pool.holders(v.key),
      executor: v.executor,
    };
  }

  /** The version a request names (or the newest), if it can serve now: else MODEL_NOT_FOUND or MODEL_NOT_READY. */
  servable(name: string, version?: string): ModelVersion {
    const v = this.get(name, version);
    const state = this.stateOf(v);
    if (state !== 'READY') {
      throw new ServeError('MODEL_NOT_READY', `model ${name} version ${v.version} is ${state.toLowerCase()}${v.reason ? `: ${v.reason}` : ''}`, { model: name, version: v.version });
    }
    return v;
  }

  /** (Re)loads a model's versions from the repository, warming every batch size. */
  load(name: string): Promise<void> {
    assertModelName(name);
    return this.exclusive(name, async () => {
      const descriptor = await this.deps.repository.describe(name);
      const wanted = new Set(descriptor.versions.map((v) => v.version));
      for (const old of this.versionsOf(name)) {
        if (!wanted.has(old.version)) await this.unloadVersion(old);
      }
      const failures: string[] = [];
      for (const files of descriptor.versions) {
        try {
          await this.loadVersion(descriptor, files.version, files.weightsPath);
        } catch (err) {
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

  private async loadVersion(descriptor: ModelDescriptor, version: string, weightsPath: string): Promise<void> {
    const { name, manifest, architecture, labels } = descriptor;
    const { pool, dispatcher, log } = this.deps;
    const key = `${name}:${version}`;
    const entry: Entry = {
      key, name, version, descriptor, labels, state: 'LOADING',
      input: { height: 0, width: 0, channels: 3 }, // known once the network is loaded
      preprocess: { ...manifest.preprocessing },
    };
    // A reload keeps serving the old weights until the new ones are loaded and warm.
    const previous = this.versions.get(key);
    if (!previous) this.versions.set(key, entry);
    try {
      const info = await pool.load({
        key, format: manifest.format, weightsPath, architecture, warmupBatchSizes: batchSizesToWarm(manifest.batching),
      }, manifest.instances);
      if (info.numClasses !== labels.length) {
        throw new ServeError('INVALID_MODEL_FILE', `${name}: the network has ${info.numClasses} classes, the manifest ${labels.length} labels`);
      }
      const [height, width, channels] = info.inputShape;
      if (channels !== 1 && channels !== 3) {
        throw new ServeError('INVALID_MODEL_FILE', `${name}: image models take 1 or 3 channels, not ${channels}`, { field: 'architecture.inputChannels' });
      }
      dispatcher.setModel(key, manifest.batching);
      for (const [size, ms] of Object.entries(info.warmLatencyMs)) dispatcher.observeLatency(key, Number(size), ms);
      this.versions.set(key, { ...entry, input: { height, width, channels }, executor: info.executor, state: 'READY' });
      log.info({ model: name, version, warmLatencyMs: info.warmLatencyMs }, 'model ready');
    } catch (err) {
      if (!previous) this.versions.set(key, { ...entry, state: 'UNAVAILABLE', reason: (err as Error).message });
      throw err;
    }
  }

  private async unloadVersion(v: Entry): Promise<void> {
    const { pool, dispatcher, inflight, log } = this.deps;
    this.versions.set(v.key, { ...v, state: 'UNLOADING' });
    // New requests are refused from here on; the ones already accepted (decoding, queued or
    // running) finish first.
    await inflight.idle(v.key);
    await dispatcher.drain(v.key);
    dispatcher.removeModel(v.key);
    await pool.unload(v.key);
    this.versions.delete(v.key);
    log.info({ model: v.name, version: v.version }, 'model unloaded');
  }

  private stateOf(v: Entry): ModelState {
    if (v.state === 'READY' && this.deps.pool.holders(v.key) === 0) return 'UNAVAILABLE';
    return v.state;
  }

  private versionsOf(name: string): Entry[] {
    return [...this.versions.values()].filter((v) => v.name === name).sort((a, b) => Number(a.version) - Number(b.version));
  }

  /** The requested version, or the newest one. */
  private find(name: string, version?: string): Entry | undefined {
    assertModelName(name);
    if (version !== undefined) assertVersion(version);
    const candidates = this.versionsOf(name);
    return version === undefined ? candidates.at(-1) : candidates.find((v) => v.version === version);
  }

  /** Like find, but MODEL_NOT_FOUND names what is missing. */
  private get(name: string, version?: string): Entry {
    const found = this.find(name, version);
    if (!found) {
      throw new ServeError('MODEL_NOT_FOUND', version === undefined ? `no model '${name}'` : `no version ${version} of model '${name}'`, { model: name, version });
    }
    return found;
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
