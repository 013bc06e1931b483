// ONNX Runtime (onnxruntime-node, CPU execution provider) on our ONNX export of the network:
// the engine Triton users pick on CPU. Two ways to use the cores:
//   onnxruntime-node       one session, intra-op threads = cores (latency-oriented)
//   onnxruntime-node-Nx1   N = cores sessions of one thread each, in worker threads, the batch
//                          split across them (throughput-oriented, as Triton's instance groups)
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { Candidate } from '../candidate.ts';

export const ORT_SESSION_OPTIONS = {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  interOpNumThreads: 1,
} as const satisfies ort.InferenceSession.SessionOptions;

export function onnxruntime(): Candidate {
  let session: ort.InferenceSession | undefined;
  let shape: [number, number, number] = [0, 0, 0];
  let threads = 0;
  return {
    name: 'onnxruntime-node',
    describe: () => `onnxruntime-node ${ort.env.versions.node}, CPU EP, 1 session, intraOpNumThreads ${threads}, graph optimisation 'all'`,
    versions: () => ({ onnxruntime: ort.env.versions.node ?? 'unknown' }),
    async setup(config, _weightsPath, env) {
      threads = env.threads;
      session = await ort.InferenceSession.create(await env.artifacts.onnx(), { ...ORT_SESSION_OPTIONS, intraOpNumThreads: threads });
      shape = [config.inputHeight, config.inputWidth, config.inputChannels];
    },
    async run(batch, n) {
      const out = await (session as ort.InferenceSession).run({ input: new ort.Tensor('float32', batch, [n, ...shape]) });
      return out.logits!.data as Float32Array;
    },
    async dispose() {
      await session?.release();
    },
  };
}

type Reply = { id: number; logits: Float32Array } | { id: number; error: string };

/** One single-threaded session per core, each in its own worker thread. */
export function onnxruntimePerCore(): Candidate {
  let workers: Worker[] = [];
  let shape: [number, number, number] = [0, 0, 0];
  let classes = 0;
  let nextId = 1;
  const pending = new Map<number, { resolve: (l: Float32Array) => void; reject: (e: Error) => void }>();

  const call = (worker: Worker, input: Float32Array, n: number) => new Promise<Float32Array>((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, input, dims: [n, ...shape] }, [input.buffer as ArrayBuffer]);
  });

  return {
    get name() {
      return `onnxruntime-node-${workers.length || 'N'}x1`;
    },
    describe: () => `onnxruntime-node, ${workers.length} sessions × 1 thread in worker threads, batch split across them (batch 1 uses one)`,
    async setup(config, _weightsPath, env) {
      const modelPath = await env.artifacts.onnx();
      shape = [config.inputHeight, config.inputWidth, config.inputChannels];
      classes = config.numClasses;
      workers = await Promise.all(Array.from({ length: env.threads }, () => new Promise<Worker>((resolve, reject) => {
        const w = new Worker(new URL('./ort-session-thread.mjs', import.meta.url), { workerData: { modelPath, options: ORT_SESSION_OPTIONS } });
        w.on('error', (err) => {
          reject(err);
          for (const p of pending.values()) p.reject(err);
          pending.clear();
        });
        w.on('message', (m: Reply | { ready: true }) => {
          if ('ready' in m) return resolve(w);
          const p = pending.get(m.id);
          pending.delete(m.id);
          if ('error' in m) p?.reject(new Error(m.error));
          else p?.resolve(m.logits);
        });
      })));
    },
    async run(batch, n) {
      const per = batch.length / n;
      const parts = Math.min(n, workers.length);
      const jobs: Promise<Float32Array>[] = [];
      for (let i = 0, start = 0; i < parts; i++) {
        const count = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
        jobs.push(call(workers[i]!, batch.slice(start * per, (start + count) * per), count));
        start += count;
      }
      const outs = await Promise.all(jobs);
      const logits = new Float32Array(n * classes);
      let offset = 0;
      for (const o of outs) {
        logits.set(o, offset);
        offset += o.length;
      }
      return logits;
    },
    async dispose() {
      await Promise.all(workers.map((w) => w.terminate()));
      workers = [];
    },
  };
}
