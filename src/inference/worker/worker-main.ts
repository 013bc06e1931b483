// Body of one inference worker thread: holds loaded models and runs batches on the native
// engine, so inference never blocks the server's event loop (tfjs-node ops are synchronous).
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { initEngine, tf, type LayersModel, type Tensor } from '../../densenet/tf-runtime.ts';
import { buildDenseNet, loadLayersModel, loadTorchvisionWeights } from '../../densenet/index.ts';
import { isServeError } from '../../errors.ts';
import type { FromWorker, LoadSpec, LoadedModelInfo, ToWorker, WorkerInit } from './wire.ts';

const port = parentPort;
if (!port) throw new Error('worker-main must run in a worker thread');
const init = workerData as WorkerInit;
const models = new Map<string, { model: LayersModel; info: LoadedModelInfo }>();

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

async function loadModel(spec: LoadSpec): Promise<{ model: LayersModel; info: LoadedModelInfo }> {
  let model: LayersModel;
  if (spec.format === 'safetensors') {
    if (!spec.architecture) throw new Error(`model ${spec.key}: a safetensors checkpoint needs an architecture`);
    const densenet = buildDenseNet(spec.architecture);
    try {
      loadTorchvisionWeights(densenet, new Uint8Array(await readFile(spec.weightsPath)));
    } catch (err) {
      densenet.layersModel.dispose();
      throw err;
    }
    model = densenet.layersModel;
  } else {
    model = (await loadLayersModel(spec.weightsPath)).layersModel;
  }
  const [, h, w, c] = model.inputs[0]?.shape ?? [];
  const classes = model.outputs[0]?.shape[1];
  if (typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number' || typeof classes !== 'number') {
    model.dispose();
    throw new Error(`model ${spec.key}: expected an NHWC image input and a [batch, classes] output`);
  }
  // The first run at a batch size pays for kernel selection and allocation: run each size
  // twice and keep the second timing as the batcher's first latency estimate.
  const warmLatencyMs: Record<number, number> = {};
  for (const batch of spec.warmupBatchSizes) {
    for (let round = 0; round < 2; round++) {
      const started = performance.now();
      tf.tidy(() => (model.predict(tf.zeros([batch, h, w, c])) as Tensor).dataSync());
      warmLatencyMs[batch] = performance.now() - started;
    }
  }
  return { model, info: { key: spec.key, inputShape: [h, w, c], numClasses: classes, warmLatencyMs } };
}

function infer(key: string, batch: number, input: Float32Array): { output: Float32Array; computeMs: number } {
  const entry = models.get(key);
  if (!entry) throw new Error(`model ${key} is not loaded in worker ${init.workerId}`);
  const [h, w, c] = entry.info.inputShape;
  if (input.length !== batch * h * w * c) {
    throw new Error(`batch of ${batch} needs ${batch * h * w * c} values, got ${input.length}`);
  }
  const started = performance.now();
  const output = tf.tidy(() => {
    const logits = entry.model.predict(tf.tensor4d(input, [batch, h, w, c])) as Tensor;
    return logits.dataSync() as Float32Array;
  });
  return { output, computeMs: performance.now() - started };
}

async function handle(message: ToWorker): Promise<void> {
  try {
    switch (message.type) {
      case 'load': {
        // A reload replaces the old weights only once the new ones are loaded and warm.
        const previous = models.get(message.spec.key);
        const loaded = await loadModel(message.spec);
        models.set(message.spec.key, loaded);
        previous?.model.dispose();
        send({ type: 'loaded', requestId: message.requestId, info: loaded.info });
        break;
      }
      case 'unload':
        models.get(message.key)?.model.dispose();
        models.delete(message.key);
        send({ type: 'unloaded', requestId: message.requestId });
        break;
      case 'infer': {
        const { output, computeMs } = infer(message.key, message.batch, message.input);
        send({ type: 'result', requestId: message.requestId, output, computeMs, numTensors: tf.memory().numTensors },
          [output.buffer as ArrayBuffer]);
        break;
      }
      case 'crash':
        process.exit(70); // in a worker thread this ends the thread only
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

const info = await initEngine({ ...init.engine });
port.on('message', (message: ToWorker) => void handle(message));
send({ type: 'ready', backend: info.backend, tensorflowVersion: info.tensorflowVersion });
