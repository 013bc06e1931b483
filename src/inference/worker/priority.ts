// Lowers the CPU priority of an inference worker, so that on a saturated machine the server's
// event loop (reading requests, refusing excess with 429, answering health probes) is scheduled
// ahead of batch compute instead of waiting out compute time slices. Compute gets whatever CPU the
// event loop leaves, which under overload is less than before: the measured trade is in the
// docs/engine.md ("Worker priority"), and why WORKER_NICE defaults to 0.
//
// Linux nice values belong to threads, and a new thread inherits its creator's. A worker process
// renices every thread it has at start (the later ONNX Runtime / TensorFlow pools inherit from
// them); a worker thread renices itself only, so the server's own threads keep their priority.
import os from 'node:os';
import { readdirSync, readlinkSync } from 'node:fs';

export type PriorityResult = { nice: number; threads: number } | { error: string };

export function lowerWorkerPriority(nice: number, scope: 'process' | 'thread'): PriorityResult {
  if (nice === 0) return { nice, threads: 0 };
  try {
    const tids = scope === 'process'
      ? readdirSync('/proc/self/task').map(Number)
      : [Number(readlinkSync('/proc/thread-self').split('/').pop())]; // "<pid>/task/<tid>"
    // os.setPriority(pid) is setpriority(PRIO_PROCESS, pid), which Linux applies to that thread id.
    for (const tid of tids) os.setPriority(tid, nice);
    return { nice, threads: tids.length };
  } catch (err) {
    return { error: (err as Error).message }; // not Linux, or not permitted: run at normal priority
  }
}
