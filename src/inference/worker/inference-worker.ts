// Main-thread handle of one inference worker (a thread or a child process, worker-channel.ts):
// request/response over typed messages, a watchdog on every batch, and a clean failure of
// everything in flight if the worker dies. To the dispatcher it is one executor.
//
// Threads or processes is the engine plan's choice (engine-plan.ts): processes for onnxruntime,
// the default executor (a worker thread stopped mid ONNX Runtime run crashes the server), threads
// for the tfjs executors. Threads are safe there: the engine test (test/densenet/tf-runtime.test.ts)
// shows native TensorFlow loads in several threads of one process and again after a thread is
// replaced, contrary to tfjs#8388, and threads move pixel and logit buffers zero-copy.
import { ServeError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { Executor } from '../batching/index.ts';
import type { WorkerIsolation } from '../engine-plan.ts';
import { openWorkerChannel, type WorkerChannel } from './worker-channel.ts';
import type { FromWorker, LoadSpec, LoadedModelInfo, ToWorker, WorkerInit } from './wire.ts';

type Pending = { resolve: (m: FromWorker) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout };

export interface InferenceWorkerOptions {
  init: WorkerInit;
  isolation: WorkerIsolation;
  /** A batch that runs longer than this means the worker hung: it is terminated and replaced. */
  hangTimeoutMs: number;
  logger: Logger;
  /** Called once when the worker is gone for any reason (crash, hang, terminate). */
  onLost: (worker: InferenceWorker, reason: string) => void;
  /** Aborted: a worker still starting is killed and start() rejects (the pool is closing). */
  signal?: AbortSignal;
}

export function workerLost(workerId: string, reason: string): ServeError {
  return new ServeError('WORKER_FAILED', `inference worker ${workerId} ${reason}`, { retryable: true });
}

export class InferenceWorker implements Executor<Float32Array, Float32Array> {
  readonly id: string;
  readonly models = new Map<string, LoadedModelInfo>();
  private readonly channel: WorkerChannel;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private alive = true;
  private busy = false;
  /** Engine tensor count after the last batch: a leak shows up as growth here. */
  lastTensorCount = 0;

  private constructor(private readonly options: InferenceWorkerOptions, readonly ready: Promise<void>, channel: WorkerChannel) {
    this.id = options.init.workerId;
    this.channel = channel;
  }

  static async start(options: InferenceWorkerOptions): Promise<InferenceWorker> {
    const channel = openWorkerChannel(options.isolation, options.init);
    let markReady!: () => void;
    let failStart!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    const worker = new InferenceWorker(options, ready, channel);
    channel.onMessage((message) => {
      if (message.type === 'ready') {
        if ('error' in message.priority) {
          options.logger.warn({ workerId: options.init.workerId, err: message.priority.error }, 'could not lower the worker\'s CPU priority');
        }
        markReady();
      }
      else worker.settle(message);
    });
    channel.onError((err) => {
      failStart(err);
      worker.lose(`crashed: ${err.message}`);
      // A child process's 'error' can also be a failed send while it still runs: make sure the
      // worker given up on is gone (for a thread that already ended this is a no-op).
      void channel.kill();
    });
    channel.onExit((how) => {
      failStart(new Error(`${how} while starting`));
      worker.lose(how);
    });
    const abort = () => {
      failStart(new Error('the pool closed while the worker was starting'));
      void worker.terminate();
    };
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      await ready;
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    return worker;
  }

  get isAlive(): boolean {
    return this.alive;
  }

  get isolation(): WorkerIsolation {
    return this.channel.isolation;
  }

  /** The OS process the worker runs in (the server's own for a thread). */
  get pid(): number | undefined {
    return this.channel.pid;
  }

  get isIdle(): boolean {
    return this.alive && !this.busy;
  }

  /** Holds the model and is alive. Busy or not: the dispatcher gives each worker one batch at a time. */
  canRun(key: string): boolean {
    return this.alive && this.models.has(key);
  }

  async load(spec: LoadSpec, timeoutMs: number): Promise<LoadedModelInfo> {
    const reply = await this.request({ type: 'load', requestId: 0, spec }, timeoutMs, [], false);
    if (reply.type !== 'loaded') throw new Error(`unexpected reply ${reply.type} to load`);
    this.models.set(spec.key, reply.info);
    return reply.info;
  }

  async unload(key: string): Promise<void> {
    this.models.delete(key);
    if (this.alive) await this.request({ type: 'unload', requestId: 0, key }, this.options.hangTimeoutMs, [], false);
  }

  /** Runs one batch (one image per input): one row of logits per image. One batch at a time per worker. */
  async run(key: string, inputs: Float32Array[]): Promise<Float32Array[]> {
    if (this.busy) throw new ServeError('INTERNAL', `worker ${this.id} is already running a batch`);
    const info = this.models.get(key);
    if (!info) throw new ServeError('MODEL_NOT_READY', `model ${key} is not loaded in worker ${this.id}`, { retryable: true });
    const perImage = info.inputShape[0] * info.inputShape[1] * info.inputShape[2];
    const batch = new Float32Array(perImage * inputs.length);
    inputs.forEach((input, i) => {
      if (input.length !== perImage) throw new ServeError('INVALID_INPUT', `image ${i} has ${input.length} values, the model takes ${perImage}`);
      batch.set(input, i * perImage);
    });
    this.busy = true;
    try {
      const reply = await this.request(
        { type: 'infer', requestId: 0, key, batch: inputs.length, input: batch },
        this.options.hangTimeoutMs, [batch.buffer], true,
      );
      if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type} to infer`);
      this.lastTensorCount = reply.numTensors;
      const classes = info.numClasses;
      return inputs.map((_, i) => reply.output.slice(i * classes, (i + 1) * classes));
    } finally {
      this.busy = false;
    }
  }

  /** Test hook: blocks the worker for ms, as a hung native kernel would. */
  async stall(ms: number): Promise<void> {
    this.busy = true;
    await this.request({ type: 'stall', requestId: 0, ms }, this.options.hangTimeoutMs, [], true).finally(() => {
      this.busy = false;
    });
  }

  /** Test hook: makes the worker exit abruptly, as a crash would. */
  crash(): void {
    this.channel.post({ type: 'crash', requestId: 0 }, []);
  }

  async terminate(): Promise<void> {
    this.lose('terminated');
    await this.channel.kill();
  }

  private request(message: ToWorker, timeoutMs: number, transfer: ArrayBuffer[], watchdog: boolean): Promise<FromWorker> {
    if (!this.alive) return Promise.reject(workerLost(this.id, 'is gone'));
    const requestId = this.nextRequestId++;
    return new Promise<FromWorker>((resolve, reject) => {
      const entry: Pending = { resolve, reject };
      entry.timer = setTimeout(() => {
        if (watchdog) {
          // The worker is stuck in a kernel (or a loop): it cannot be asked to stop. Give it
          // up; the pool replaces it and the batch is retried elsewhere.
          this.options.logger.error({ workerId: this.id, timeoutMs }, 'worker hung; terminating it');
          this.lose(`hung (no answer within ${timeoutMs} ms)`);
          void this.channel.kill();
        } else {
          this.pending.delete(requestId);
          reject(new ServeError('INTERNAL', `worker ${this.id} did not answer ${message.type} within ${timeoutMs} ms`));
        }
      }, timeoutMs);
      this.pending.set(requestId, entry);
      this.channel.post({ ...message, requestId }, transfer);
    });
  }

  private settle(message: Exclude<FromWorker, { type: 'ready' }>): void {
    const entry = this.pending.get(message.requestId);
    if (!entry) return;
    this.pending.delete(message.requestId);
    clearTimeout(entry.timer);
    if (message.type === 'error') {
      const code = message.code === 'INVALID_MODEL_FILE' || message.code === 'INVALID_INPUT' ? message.code : 'INTERNAL';
      entry.reject(new ServeError(code, message.message));
    } else {
      entry.resolve(message);
    }
  }

  private lose(reason: string): void {
    if (!this.alive) return;
    this.alive = false;
    const error = workerLost(this.id, reason);
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
    this.pending.clear();
    this.options.onLost(this, reason);
  }
}
