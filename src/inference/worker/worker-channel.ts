// How the main thread reaches one inference worker: a thread of this process, or a child
// process. Both carry the same typed messages (wire.ts); only isolation and copying differ.
//
// - thread: pixel and logit buffers move zero-copy; a worker that must be stopped is ended
//   with Worker.terminate(). Safe for the tfjs executors.
// - process: buffers are copied through the IPC pipe (structured clone); a worker that must
//   be stopped is SIGKILLed. Needed for onnxruntime: terminating a thread while an ONNX Runtime
//   run is in flight crashes the whole process (onnxruntime-node throws a Napi::Error on the
//   dying thread → std::terminate; or a segfault at exit), which
//   test/inference/worker/worker-isolation.test.ts shows a killed child process does not.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerIsolation } from '../engine-plan.ts';
import type { FromWorker, ToWorker, WorkerInit } from './wire.ts';

/** The environment variable that hands a child worker process its WorkerInit. */
export const WORKER_INIT_ENV = 'DENSENET_WORKER_INIT';

/**
 * The worker's entry file. Compiled (dist/, `npm start`, the image), worker-main.js itself, in
 * plain node. Run from the TypeScript sources (tsx, vitest), worker-entry.mjs, which registers
 * tsx in the new thread or process before it loads worker-main.ts.
 */
const ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('./worker-entry.mjs', import.meta.url)
  : new URL('./worker-main.js', import.meta.url);

export interface WorkerChannel {
  readonly isolation: WorkerIsolation;
  /** The OS process running the worker (this process's pid for a thread). */
  readonly pid: number | undefined;
  /** `transfer` is honoured by threads; a process copies everything. */
  post(message: ToWorker, transfer: ArrayBuffer[]): void;
  onMessage(listener: (message: FromWorker) => void): void;
  onError(listener: (err: Error) => void): void;
  /** Called once when the worker is gone, however it ended: "exited with code 70", "killed by SIGKILL". */
  onExit(listener: (how: string) => void): void;
  /** Stops the worker wherever it is (mid-batch included); resolves once it is gone. */
  kill(): Promise<void>;
}

export function openWorkerChannel(isolation: WorkerIsolation, init: WorkerInit): WorkerChannel {
  return isolation === 'thread' ? threadChannel(init) : processChannel(init);
}

function threadChannel(init: WorkerInit): WorkerChannel {
  const thread = new Worker(ENTRY, { workerData: init, stdout: false, stderr: false });
  return {
    isolation: 'thread',
    pid: process.pid,
    post: (message, transfer) => thread.postMessage(message, transfer),
    onMessage: (listener) => thread.on('message', listener),
    onError: (listener) => thread.on('error', listener),
    onExit: (listener) => thread.once('exit', (code) => listener(`exited with code ${code}`)),
    kill: async () => {
      await thread.terminate();
    },
  };
}

function processChannel(init: WorkerInit): WorkerChannel {
  const child: ChildProcess = fork(fileURLToPath(ENTRY), [], {
    // Not the parent's command-line flags (a preloaded hook, an inspector port); NODE_OPTIONS,
    // being environment, does follow.
    execArgv: [],
    env: { ...process.env, [WORKER_INIT_ENV]: JSON.stringify(init) },
    serialization: 'advanced', // structured clone: Float32Arrays arrive as Float32Arrays
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    isolation: 'process',
    pid: child.pid,
    post: (message) => {
      // A dead child's channel is closed; the 'exit' listener reports the loss.
      if (child.connected) child.send(message);
    },
    onMessage: (listener) => child.on('message', (message) => listener(message as FromWorker)),
    onError: (listener) => child.on('error', listener),
    onExit: (listener) => child.once('exit', (code, signal) => listener(signal ? `was killed by ${signal}` : `exited with code ${code}`)),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
