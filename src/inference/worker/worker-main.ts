// Body of one inference worker (a thread or a child process, see worker-channel.ts): holds
// loaded models and runs batches on the native engine, so inference never blocks the server's
// event loop (tfjs-node ops are synchronous).
import { parentPort, workerData } from 'node:worker_threads';
import { initEngine, tf, upgradeToNative, type LayersModel } from '../../densenet/tf-runtime.ts';
import {
  buildDenseNet, fusedRunner, layersRunner, loadLayersModel, loadWeightsFile, onnxRunner,
  type DenseNetModel, type DenseNetRunner,
} from '../../densenet/index.ts';
import { isServeError } from '../../errors.ts';
import type { FromWorker, LoadSpec, LoadedModelInfo, ToWorker, WorkerInit } from './wire.ts';
import { WORKER_INIT_ENV } from './worker-channel.ts';
import { lowerWorkerPriority } from './priority.ts';

interface ParentLink {
  init: WorkerInit;
  send(message: FromWorker, transfer: ArrayBuffer[]): void;
  onMessage(listener: (message: ToWorker) => void): void;
}

/** The main thread's port when this is a worker thread, the IPC channel when a child process. */
function connectToParent(): ParentLink {
  const port = parentPort;
  if (port) {
    return {
      init: workerData as WorkerInit,
      send: (message, transfer) => port.postMessage(message, transfer),
      onMessage: (listener) => port.on('message', listener),
    };
  }
  const encoded = process.env[WORKER_INIT_ENV];
  if (!process.send || !encoded) throw new Error('worker-main must run in a worker thread or a forked worker process');
  // The server is gone (even SIGKILLed): a worker process must not outlive it.
  process.on('disconnect', () => process.exit(0));
  // The server decides when a worker stops. Ctrl-C in a terminal, or a SIGTERM sent to the
  // whole process group (systemd), reaches the workers too: they must go on serving while the
  // server drains, and exit when it disconnects or kills them.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  return {
    init: JSON.parse(encoded) as WorkerInit,
    // A send that fails means the server is gone (the channel closed under it): stop quietly.
    send: (message) => void process.send?.(message, undefined, {}, (err: Error | null) => {
      if (err) process.exit(0);
    }),
    onMessage: (listener) => process.on('message', (message) => listener(message as ToWorker)),
  };
}

const parent = connectToParent();
const init = parent.init;
// First, before the engines start their thread pools: those inherit the lowered priority.
const priority = lowerWorkerPriority(init.nice, parentPort ? 'thread' : 'process');
const models = new Map<string, { runner: DenseNetRunner; info: LoadedModelInfo }>();
const { executor } = init.engine;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  parent.send(message, transfer);
}

async function loadModel(spec: LoadSpec): Promise<{ runner: DenseNetRunner; info: LoadedModelInfo }> {
  const runner = await createRunner(spec);
  const [h, w, c] = runner.inputShape;
  // The first run at a batch size pays for kernel selection and allocation: run each size
  // twice and keep the second timing as the batcher's first latency estimate.
  const warmLatencyMs: Record<number, number> = {};
  try {
    for (const batch of spec.warmupBatchSizes) {
      const zeros = new Float32Array(batch * h * w * c);
      for (let round = 0; round < 2; round++) {
        const started = performance.now();
        await runner.run(zeros, batch);
        warmLatencyMs[batch] = performance.now() - started;
      }
    }
  } catch (err) {
    runner.dispose();
    throw err;
  }
  const info: LoadedModelInfo = {
    key: spec.key, inputShape: runner.inputShape, numClasses: runner.numClasses, warmLatencyMs, executor: runner.executor,
  };
  return { runner, info };
}

/** Builds the model and hands it to the configured executor (tfjs models of unknown origin: layers). */
async function createRunner(spec: LoadSpec): Promise<DenseNetRunner> {
  let densenet: DenseNetModel;
  if (spec.format !== 'tfjs-layers') {
    if (!spec.architecture) throw new Error(`model ${spec.key}: a ${spec.format} checkpoint needs an architecture`);
    densenet = buildDenseNet(spec.architecture);
    try {
      // safetensors, torch.save (.pth) and Keras (.keras, .h5) files: read, validated, loaded.
      await loadWeightsFile(densenet, spec.format, spec.weightsPath);
    } catch (err) {
      densenet.layersModel.dispose();
      throw err;
    }
  } else {
    const loaded = await loadLayersModel(spec.weightsPath);
    if (!loaded.densenet && tf.getBackend() !== init.engine.tf.backend) {
      // Not a network of ours, so it cannot be exported: tfjs runs it, on the plan's backend
      // (this worker started on the pure-JS one, engine-plan.ts workerStartBackend).
      loaded.layersModel.dispose();
      await upgradeToNative(init.engine.tf);
      const reloaded = await loadLayersModel(spec.weightsPath);
      return guard(() => layersRunner(reloaded.layersModel), reloaded.layersModel);
    }
    if (!loaded.densenet || executor === 'layers') return guard(() => layersRunner(loaded.layersModel), loaded.layersModel);
    densenet = loaded.densenet;
  }
  switch (executor) {
    case 'layers':
      return guard(() => layersRunner(densenet.layersModel), densenet.layersModel);
    case 'fused':
      return guard(() => fusedRunner(densenet), densenet.layersModel);
    case 'onnxruntime':
      try {
        return await onnxRunner(densenet, { intraOpThreads: init.engine.sessionThreads });
      } finally {
        densenet.layersModel.dispose();
      }
  }
}

function guard(make: () => DenseNetRunner, model: LayersModel): DenseNetRunner {
  try {
    return make();
  } catch (err) {
    model.dispose();
    throw err;
  }
}

async function infer(key: string, batch: number, input: Float32Array): Promise<Float32Array> {
  const entry = models.get(key);
  if (!entry) throw new Error(`model ${key} is not loaded in worker ${init.workerId}`);
  const [h, w, c] = entry.info.inputShape;
  if (input.length !== batch * h * w * c) {
    throw new Error(`batch of ${batch} needs ${batch * h * w * c} values, got ${input.length}`);
  }
  return entry.runner.run(input, batch);
}

async function handle(message: ToWorker): Promise<void> {
  try {
    switch (message.type) {
      case 'load': {
        // A reload replaces the old weights only once the new ones are loaded and warm.
        const previous = models.get(message.spec.key);
        const loaded = await loadModel(message.spec);
        models.set(message.spec.key, loaded);
        previous?.runner.dispose();
        send({ type: 'loaded', requestId: message.requestId, info: loaded.info });
        break;
      }
      case 'unload':
        models.get(message.key)?.runner.dispose();
        models.delete(message.key);
        send({ type: 'unloaded', requestId: message.requestId });
        break;
      case 'infer': {
        const output = await infer(message.key, message.batch, message.input);
        send({ type: 'result', requestId: message.requestId, output, numTensors: tf.memory().numTensors },
          [output.buffer as ArrayBuffer]);
        break;
      }
      case 'crash':
        process.exit(70); // in a worker thread this ends the thread only; in a process, the process
        break;
      case 'stall': {
        const until = Date.now() + message.ms;
        while (Date.now() < until) { /* deliberately blocks this thread */ }
        send({ type: 'stalled', requestId: message.requestId });
        break;
      }
    }
  } catch (err) {
    send({
      type: 'error',
      requestId: message.requestId,
      code: isServeError(err) ? err.code : 'INTERNAL',
      message: (err as Error).message,
    });
  }
}

// On the backend the plan starts it on (engine-plan.ts workerStartBackend); a model that needs
// tfjs to run switches an onnxruntime worker to the plan's backend (createRunner).
const info = await initEngine({ ...init.engine.tf, backend: init.engine.startBackend });
parent.onMessage((message) => void handle(message));
send({ type: 'ready', backend: info.backend, tensorflowVersion: info.tensorflowVersion, priority });
