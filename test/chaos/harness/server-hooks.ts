// Preloaded into the server process by the chaos runner only:
//   node --import tsx --import ./test/chaos/harness/server-hooks.mjs src/main.ts
// src/main.ts runs unchanged; this module, loaded first in the same process, keeps a list of
// the inference workers the pool starts (replacements included) and answers the runner over
// the IPC channel the runner opened. Nothing in src/ can reach it: a production start never
// loads this file, so the fault hooks below cannot be triggered there.
//
// Workers are threads, not processes (see src/inference/worker/inference-worker.ts), so an OS
// SIGKILL of one is impossible without killing the server. The closest honest equivalents:
//   kill 'terminate' — Worker.terminate() on the thread from outside, without telling the pool
//                      first: V8 stops the thread wherever it is (mid-batch included) and the
//                      pool learns of it only from the thread's 'exit' event, as after a crash;
//   kill 'crash'     — the existing test hook: the thread calls process.exit(70) itself (which
//                      ends only that thread), i.e. a fatal error inside the worker;
//   hang             — the thread is made to spin (the existing 'stall' message, posted straight
//                      to the thread so the main-thread handle does not know): the next batch it
//                      is given sits behind the spin, and the per-batch watchdog must notice.
import type { Worker } from 'node:worker_threads';
import { InferenceWorker } from '../../../src/inference/worker/inference-worker.ts';
import type { ChaosReply, ChaosRequest, WorkerSnapshot } from './ipc.ts';

if (typeof process.send !== 'function') {
  throw new Error('test/chaos/harness/server-hooks.ts is for chaos runs only (it needs the runner\'s IPC channel)');
}

const started: InferenceWorker[] = [];
const originalStart = InferenceWorker.start.bind(InferenceWorker);
InferenceWorker.start = async (options) => {
  const worker = await originalStart(options);
  started.push(worker);
  return worker;
};

/** The Worker behind the handle: private in src/, reached here on purpose. */
function threadOf(worker: InferenceWorker): Worker {
  return (worker as unknown as { thread: Worker }).thread;
}

function live(): InferenceWorker[] {
  return started.filter((w) => w.isAlive);
}

/** A busy worker if there is one (so a batch is caught in the fault), else the first live one. */
function victim(): InferenceWorker | undefined {
  const workers = live();
  return workers.find((w) => !w.isIdle) ?? workers[0];
}

function snapshot(): WorkerSnapshot[] {
  return live().map((w) => ({ id: w.id, busy: !w.isIdle, models: [...w.models.keys()], tensors: w.lastTensorCount }));
}

/** Open handles, sockets by local port (the HTTP or the gRPC listener's) and remote port. */
function openHandles(): string[] {
  // Undocumented but long-standing; process.getActiveResourcesInfo() names kinds only.
  const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
  const counts = new Map<string, number>();
  for (const h of handles) {
    const socket = h as { localPort?: number; remotePort?: number; _httpMessage?: unknown };
    const label = socket.localPort !== undefined
      ? `${h.constructor.name} :${socket.localPort}${socket._httpMessage ? ' (response pending)' : ''}`
      : h.constructor.name;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([label, n]) => `${n}× ${label}`);
}

function handle(request: ChaosRequest): ChaosReply {
  switch (request.cmd) {
    case 'stats': {
      const memory = process.memoryUsage();
      return { id: request.id, ok: true, rss: memory.rss, heapUsed: memory.heapUsed, workers: snapshot(), started: started.length };
    }
    case 'kill': {
      const targets = request.all ? live() : [victim()].filter((w): w is InferenceWorker => w !== undefined);
      for (const w of targets) {
        if (request.mode === 'crash') w.crash();
        else void threadOf(w).terminate();
      }
      return { id: request.id, ok: true, workers: targets.map((w) => w.id) };
    }
    case 'handles':
      return { id: request.id, ok: true, handles: openHandles() };
    case 'hang': {
      const w = victim();
      // requestId 0 matches no pending request: the handle never hears of this message.
      if (w) threadOf(w).postMessage({ type: 'stall', requestId: 0, ms: request.ms });
      return { id: request.id, ok: true, workers: w ? [w.id] : [] };
    }
  }
}

process.on('message', (message: ChaosRequest) => {
  let reply: ChaosReply;
  try {
    reply = handle(message);
  } catch (err) {
    reply = { id: message.id, ok: false, error: (err as Error).message };
  }
  process.send?.(reply);
});
// If the runner goes away, so does its server: no orphans holding ports and cores.
process.on('disconnect', () => process.exit(3));
