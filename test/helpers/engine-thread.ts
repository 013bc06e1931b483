// Worker-thread body for the engine thread test: loads native TensorFlow in this thread and
// runs a real conv, posting back the backend name and the result.
import { parentPort, workerData } from 'node:worker_threads';
import { initEngine, tf, type Tensor4D } from '../../src/densenet/tf-runtime.ts';

const { seed } = workerData as { seed: number };
const info = await initEngine({ backend: 'tensorflow', intraOpThreads: 1, interOpThreads: 1, oneDnn: false });
const values = tf.tidy(() => {
  const x = tf.randomUniform([2, 16, 16, 8], -1, 1, 'float32', seed);
  const w = tf.randomUniform([3, 3, 8, 4], -1, 1, 'float32', seed + 1);
  return tf.conv2d(x as Tensor4D, w as Tensor4D, 1, 'same').relu().sum([1, 2]).dataSync() as Float32Array;
});
parentPort?.postMessage({ backend: tf.getBackend(), tensorflowVersion: info.tensorflowVersion, values: Array.from(values) });
