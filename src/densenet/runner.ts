// What a worker runs a batch on. One interface over the executors a model can be served by, so
// the worker, the benchmarks and the tests treat them alike:
//   fused       — the network as tfjs-core ops with BN folded into convs (compiled-densenet.ts)
//   layers      — the tfjs LayersModel's own predict (the reference path; any LayersModel)
//   onnxruntime — onnxruntime-node on an ONNX export of the same network (onnx-runner.ts)
import { tf, type LayersModel, type Tensor } from './tf-runtime.ts';
import { compileDenseNet } from './compiled-densenet.ts';
import type { DenseNetModel } from './model.ts';

export const EXECUTORS = ['fused', 'layers', 'onnxruntime'] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

export function parseExecutorName(name: string): ExecutorName {
  if (!(EXECUTORS as readonly string[]).includes(name)) throw new Error(`executor must be one of ${EXECUTORS.join(', ')}, not '${name}'`);
  return name as ExecutorName;
}

export interface DenseNetRunner {
  readonly executor: ExecutorName;
  /** [height, width, channels] of one NHWC image. */
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  /** Logits [batch × classes] for `batch` NHWC float32 images laid end to end. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  dispose(): void;
}

/** Serves any tfjs LayersModel with an NHWC image input through its own predict. */
export function layersRunner(model: LayersModel): DenseNetRunner {
  const [, h, w, c] = model.inputs[0]?.shape ?? [];
  const classes = model.outputs[0]?.shape[1];
  if (typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number' || typeof classes !== 'number') {
    throw new Error('expected an NHWC image input and a [batch, classes] output');
  }
  return {
    executor: 'layers',
    inputShape: [h, w, c],
    numClasses: classes,
    run: async (input, batch) =>
      tf.tidy(() => (model.predict(tf.tensor4d(input, [batch, h, w, c])) as Tensor).dataSync() as Float32Array),
    dispose: () => model.dispose(),
  };
}

/** The fused tfjs-ops path; the LayersModel is only read for its weights and then released. */
export function fusedRunner(model: DenseNetModel): DenseNetRunner {
  const compiled = compileDenseNet(model);
  model.layersModel.dispose();
  const [h, w, c] = compiled.inputShape;
  return {
    executor: 'fused',
    inputShape: compiled.inputShape,
    numClasses: compiled.numClasses,
    run: async (input, batch) =>
      tf.tidy(() => compiled.predict(tf.tensor4d(input, [batch, h, w, c])).dataSync() as Float32Array),
    dispose: () => compiled.dispose(),
  };
}
