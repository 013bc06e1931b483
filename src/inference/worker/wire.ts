// Typed messages between the server and an inference worker (a thread or a process,
// worker-channel.ts). Pixel and logit data travel as Float32Arrays: moved to and from a worker
// thread (the transfer list), copied through the IPC pipe to and from a worker process.
import type { DenseNetConfig, ExecutorName } from '../../densenet/index.ts';
import type { WorkerEngine } from '../engine-plan.ts';
import type { PriorityResult } from './priority.ts';

export interface WorkerInit {
  workerId: string;
  /** Its slice of the engine plan (engine-plan.ts workerEngine). */
  engine: WorkerEngine;
  /** Nice value for the worker's threads (0: the server's priority); see priority.ts. */
  nice: number;
}

/** What a worker needs to load one model version; paths were validated by the repository. */
export interface LoadSpec {
  /** `${name}:${version}`: the unit a worker holds and a batch targets. */
  key: string;
  format: 'safetensors' | 'pytorch' | 'keras' | 'tfjs-layers';
  /** safetensors / pytorch (.pth) / keras (.keras, .h5): the file; tfjs-layers: the directory holding model.json. */
  weightsPath: string;
  /** Architecture for checkpoints (tfjs-layers models carry their own). */
  architecture?: DenseNetConfig;
  /** Every batch size the batcher may form, run once each before the model reports ready. */
  warmupBatchSizes: number[];
}

export type ToWorker =
  | { type: 'load'; requestId: number; spec: LoadSpec }
  | { type: 'unload'; requestId: number; key: string }
  | { type: 'infer'; requestId: number; key: string; batch: number; input: Float32Array }
  /** Test hook: block the worker's thread for ms (simulates a hung kernel). */
  | { type: 'stall'; requestId: number; ms: number }
  /** Test hook: end the thread abruptly (simulates a crash in native code). */
  | { type: 'crash'; requestId: number };

export interface LoadedModelInfo {
  key: string;
  inputShape: [number, number, number];
  numClasses: number;
  /** Milliseconds of the second (warm) run at each warmed batch size. */
  warmLatencyMs: Record<number, number>;
  /** The executor that serves this model in the worker. */
  executor: ExecutorName;
}

export type FromWorker =
  | { type: 'ready'; backend: string; tensorflowVersion?: string; priority: PriorityResult }
  | { type: 'loaded'; requestId: number; info: LoadedModelInfo }
  | { type: 'unloaded'; requestId: number }
  | { type: 'result'; requestId: number; output: Float32Array; numTensors: number }
  | { type: 'stalled'; requestId: number }
  | { type: 'error'; requestId: number; code: string; message: string };
