// A fixed number of inference workers (threads or processes) that hold loaded models. A worker
// that crashes or hangs is replaced, and the replacement reloads the models its slot held before
// it is offered work again.
//
// Why not piscina/tinypool: they run stateless tasks on whichever thread is free. Our workers
// are stateful (each holds warmed models), must all receive load/unload, and take batches that
// the dispatcher pulls for a specific worker; a task pool would hide exactly the placement and
// replacement this needs.
import { ServeError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { applyEngineEnvironment } from '../../densenet/tf-runtime.ts';
import { workerEngine, type EnginePlan, type WorkerIsolation } from '../engine-plan.ts';
import { InferenceWorker } from './inference-worker.ts';
import type { LoadSpec, LoadedModelInfo } from './wire.ts';

export interface WorkerPoolOptions {
  /** How many workers, threads or processes, and each one's engine. */
  plan: EnginePlan;
  hangTimeoutMs: number;
  loadTimeoutMs: number;
  /** Minimum pause between two replacements of the same slot, so a crash loop cannot spin. */
  restartBackoffMs: number;
  logger: Logger;
}

export interface WorkerPoolEvents {
  /** A worker can take batches (after start, or after a replacement reloaded its models). */
  onWorkerReady(worker: InferenceWorker): void;
  /** A worker is gone: stop offering it work. Its running batch has already been rejected. */
  onWorkerLost(worker: InferenceWorker, reason: string): void;
}

interface Slot {
  index: number;
  worker?: InferenceWorker;
  /** The worker has (re)loaded the slot's models and takes batches. */
  ready: boolean;
  /** Model keys this slot holds; a replacement worker reloads them. */
  keys: Set<string>;
  lastStart: number;
}

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly specs = new Map<string, LoadSpec>();
  private closed = false;
  /** Aborted by close(): kills workers still starting, which close() cannot otherwise reach. */
  private readonly closing = new AbortController();
  private generation = 0;
  restarts = 0;
  readonly isolation: WorkerIsolation;

  constructor(private readonly options: WorkerPoolOptions, private readonly events: WorkerPoolEvents) {
    this.slots = Array.from({ length: options.plan.workers }, (_, index) => ({ index, ready: false, keys: new Set<string>(), lastStart: 0 }));
    this.isolation = options.plan.isolation;
  }

  async start(): Promise<void> {
    // Before any worker thread loads TensorFlow: it reads its pool sizes once, process-wide.
    applyEngineEnvironment(this.options.plan);
    await Promise.all(this.slots.map((slot) => this.startSlot(slot)));
  }

  /**
   * Workers that take batches: alive and done reloading their slot's models. A replacement
   * still reloading is not one of them (a batch for a model it has not reloaded yet would fail).
   */
  get workers(): InferenceWorker[] {
    return this.slots.flatMap((s) => (s.ready && s.worker?.isAlive ? [s.worker] : []));
  }

  /** Live workers that hold `key`. */
  holders(key: string): number {
    return this.workers.filter((w) => w.models.has(key)).length;
  }

  /**
   * Loads a model on `instances` workers (the slots holding the fewest models), warming
   * every batch size. All or nothing: if one load fails, the others are unloaded (or, for a
   * reload, keep their previous weights).
   */
  async load(spec: LoadSpec, instances = this.slots.length): Promise<LoadedModelInfo> {
    // A reload goes to the slots already holding the model; a new model to the least loaded.
    const holds = (slot: Slot) => (slot.keys.has(spec.key) ? 0 : 1);
    const chosen = [...this.slots]
      .sort((a, b) => holds(a) - holds(b) || a.keys.size - b.keys.size || a.index - b.index)
      .slice(0, Math.max(1, Math.min(instances, this.slots.length)));
    const previous = this.specs.get(spec.key);
    this.specs.set(spec.key, spec);
    // A slot whose worker is being replaced takes the model on when its replacement starts.
    const live = chosen.filter((slot) => slot.worker?.isAlive);
    for (const slot of chosen) if (!slot.worker?.isAlive) slot.keys.add(spec.key);
    if (live.length === 0) {
      if (!previous) this.specs.delete(spec.key);
      throw new ServeError('MODEL_NOT_READY', 'no inference worker is running (all are being replaced)', { retryable: true });
    }
    const results = await Promise.allSettled(live.map(async (slot) => {
      const info = await (slot.worker as InferenceWorker).load(spec, this.options.loadTimeoutMs);
      slot.keys.add(spec.key);
      return info;
    }));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      if (previous) {
        // A failed reload: workers keep the weights they had (they swap only on success).
        this.specs.set(spec.key, previous);
      } else {
        await this.unload(spec.key);
      }
      throw failure.reason;
    }
    return (results[0] as PromiseFulfilledResult<LoadedModelInfo>).value;
  }

  async unload(key: string): Promise<void> {
    this.specs.delete(key);
    await Promise.all(this.slots.map(async (slot) => {
      slot.keys.delete(key);
      await slot.worker?.unload(key).catch(() => undefined);
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    await Promise.all(this.slots.map((slot) => slot.worker?.terminate()));
  }

  private async startSlot(slot: Slot): Promise<void> {
    const wait = slot.lastStart + this.options.restartBackoffMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (this.closed) return;
    slot.lastStart = Date.now();
    const worker = await InferenceWorker.start({
      init: { workerId: `w${slot.index}.${this.generation++}`, engine: workerEngine(this.options.plan), nice: this.options.plan.nice },
      isolation: this.isolation,
      hangTimeoutMs: this.options.hangTimeoutMs,
      logger: this.options.logger,
      onLost: (lost, reason) => this.onLost(slot, lost, reason),
      signal: this.closing.signal,
    });
    if (this.closed) {
      // close() ran just as this replacement became ready: it never saw this worker.
      await worker.terminate();
      return;
    }
    slot.worker = worker;
    for (const key of slot.keys) {
      const spec = this.specs.get(key);
      if (!spec) continue;
      await worker.load(spec, this.options.loadTimeoutMs).catch((err: Error) => {
        // The worker died while reloading: its replacement will try again.
        if (!worker.isAlive) return;
        // The model stays served by the other slots holding it; readiness counts holders.
        slot.keys.delete(key);
        this.options.logger.error({ workerId: worker.id, model: key, err: err.message }, 'replacement worker could not reload a model');
      });
    }
    if (worker.isAlive && !this.closed) {
      slot.ready = true;
      this.events.onWorkerReady(worker);
    }
  }

  private onLost(slot: Slot, worker: InferenceWorker, reason: string): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    this.events.onWorkerLost(worker, reason);
    if (this.closed) return;
    this.restarts++;
    this.options.logger.warn({ workerId: worker.id, reason, restarts: this.restarts }, 'replacing inference worker');
    const retry = (): void => {
      this.startSlot(slot).catch((err: Error) => {
        if (this.closed) return; // close() killed it while it was starting
        this.options.logger.error({ slot: slot.index, err: err.message }, 'replacement worker failed to start; retrying');
        if (!this.closed) setTimeout(retry, this.options.restartBackoffMs);
      });
    };
    retry();
  }
}
