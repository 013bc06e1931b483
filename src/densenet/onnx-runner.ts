// The onnxruntime executor: our DenseNet exported to ONNX in memory (onnx-export.ts) and run by
// onnxruntime-node's CPU provider. ONNX Runtime folds BN into the preceding convs, fuses
// conv+ReLU and, at the 'all' optimisation level, rewrites convolutions into its blocked NCHWc
// layout for the CPU's vector width — the reason it outruns TensorFlow's Eigen kernels on CPU
// (docs/benchmarks.md has the numbers). The graph takes the NHWC tensors the service produces.
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import { ServeError } from '../errors.ts';
import type { DenseNetModel } from './model.ts';
import { exportOnnx } from './onnx-export.ts';
import type { DenseNetRunner } from './runner.ts';

export interface OnnxRunnerOptions {
  /** Threads one session may use for one op; size workers × this to the cores you have. */
  intraOpThreads: number;
}

const require = createRequire(import.meta.url);

function loadOrt(): typeof Ort {
  try {
    return require('onnxruntime-node') as typeof Ort;
  } catch (err) {
    throw new ServeError('ENGINE_UNAVAILABLE',
      `ENGINE_EXECUTOR=onnxruntime needs the onnxruntime-node package: ${(err as Error).message.split('\n')[0]}`,
      {}, { cause: err });
  }
}

/** Exports the (weight-loaded) model and opens an ONNX Runtime session on it. */
export async function onnxRunner(model: DenseNetModel, options: OnnxRunnerOptions): Promise<DenseNetRunner> {
  const ort = loadOrt();
  const { config } = model;
  const bytes = exportOnnx(model, { inputLayout: 'nhwc' });
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // 0 would mean "one thread per core" to ORT; our pool sizes threads explicitly.
    intraOpNumThreads: Math.max(1, options.intraOpThreads),
    interOpNumThreads: 1,
    // The CPU arena stays on (ORT's default): without it a 1-thread DenseNet-121 session ran
    // batch 8 at 15 img/s instead of 29, to save ~110 MiB (measured 2026-11-28).
    enableCpuMemArena: true,
  });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  if (!inputName || !outputName) throw new Error('ONNX export has no input or output');
  const inputShape: [number, number, number] = [config.inputHeight, config.inputWidth, config.inputChannels];
  return {
    executor: 'onnxruntime',
    inputShape,
    numClasses: config.numClasses,
    async run(input, batch) {
      const feeds = { [inputName]: new ort.Tensor('float32', input, [batch, ...inputShape]) };
      const results = await session.run(feeds);
      const logits = results[outputName];
      if (!logits) throw new Error(`ONNX Runtime returned no '${outputName}'`);
      const data = logits.data as Float32Array;
      // ORT's output buffer belongs to the session's result: copy so it can be transferred.
      const copy = new Float32Array(data);
      logits.dispose();
      return copy;
    },
    dispose: () => void session.release(),
  };
}
