// What every engine under test implements, and what the harness hands it.
import type { DenseNetConfig } from '../../src/densenet/index.ts';

/** Files derived from one model's weights, built on first use and cached (bench/.cache/). */
export interface ModelArtifacts {
  /** The ONNX export of the network (src/densenet/onnx-export.ts), input NHWC. */
  onnx(): Promise<string>;
  /** A TensorFlow SavedModel of the network (bench/engine/python/make-saved-model.py). */
  savedModel(): Promise<string>;
}

export interface BenchEnv {
  /** Threads an engine may use for one batch: the machine's cores unless --threads says otherwise. */
  threads: number;
  artifacts: ModelArtifacts;
  /** Python with torch (the pytorch-eager engine). */
  torchPython: string;
  /** PyTorch memory format: 'auto' measures both at setup and keeps the faster. */
  torchFormat: 'auto' | 'channels_last' | 'contiguous';
  /** Largest batch the run will time (engines that probe settings at setup use it). */
  maxBatch: number;
  log: (line: string) => void;
}

export interface Candidate {
  readonly name: string;
  /** One line on how this engine runs (threads, settings chosen at setup); shown under the table. */
  describe(): string;
  setup(config: DenseNetConfig, weightsPath: string, env: BenchEnv): Promise<void>;
  /** One batch: n images NHWC float32 in, logits n × classes out. */
  run(batch: Float32Array, n: number): Promise<Float32Array>;
  /**
   * For an engine in another process: its own time for the last run, in ms, measured inside
   * that process. The bench reports this as the engine's time and the round trip beside it.
   */
  lastEngineMs?(): number;
  /** Library versions worth recording (e.g. { torch: '2.13.0+cpu' }). */
  versions?(): Record<string, string>;
  dispose(): Promise<void>;
}
