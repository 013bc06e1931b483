// Worker thread of the onnxruntime-node-Nx1 candidate: one single-threaded ONNX Runtime
// session; runs the part of a batch it is sent. Plain JS: it needs no TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const session = await ort.InferenceSession.create(workerData.modelPath, { ...workerData.options, intraOpNumThreads: 1 });
parentPort.on('message', async ({ id, input, dims }) => {
  try {
    const out = await session.run({ input: new ort.Tensor('float32', input, dims) });
    const logits = Float32Array.from(out.logits.data);
    parentPort.postMessage({ id, logits }, [logits.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err?.message ?? err) });
  }
});
parentPort.postMessage({ ready: true });
