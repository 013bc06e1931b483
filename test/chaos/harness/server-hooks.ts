// Preloaded into the server process by the chaos runner only:
//   node --import tsx --import ./test/chaos/harness/server-hooks.mjs src/main.ts
// src/main.ts runs unchanged; this module, loaded first in the same process, keeps a list of
// the inference workers the pool starts (replacements included) and answers the runner over
// the IPC channel the runner opened. Nothing in src/ can reach it: a production start never
// loads this file, so the fault hooks below cannot be triggered there.
//
// Workers are threads (tfjs executors) or child processes (onnxruntime; see
// src/inference/worker/worker-channel.ts). Faults, applied from outside the pool:
//   kill 'terminate' — a worker process gets a real SIGKILL; a thread, which cannot be
//                      SIGKILLed without killing the server, gets Worker.terminate(): V8 stops it
//                      wherever it is (mid-batch included). Either way the pool is not told and
//                      learns of it only from the worker's 'exit' event, as after a crash;
//   kill 'crash'     — the existing test hook: the worker calls process.exit(70) itself (which
//                      ends only that thread or worker process), i.e. a fatal error inside it;
//   hang             — the worker is made to spin (the existing 'stall' message, posted straight
//                      to it so the main-thread handle does not know): the next batch it is
//                      given sits behind the spin, and the per-batch watchdog must notice.
import { InferenceWorker } from '../../../src/inference/worker/inference-worker.ts';
import type { WorkerChannel } from '../../../src/inference/worker/worker-channel.ts';
import { readTreeMemory } from '../../helpers/process-memory.ts';
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

/** The channel behind the handle: private in src/, reached here on purpose. */
function channelOf(worker: InferenceWorker): WorkerChannel {
  return (worker as unknown as { channel: WorkerChannel }).channel;
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
  return live().map((w) => ({
    id: w.id, busy: !w.isIdle, models: [...w.models.keys()], tensors: w.lastTensorCount, isolation: w.isolation,
  }));
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

async function handle(request: ChaosRequest): Promise<ChaosReply> {
  switch (request.cmd) {
    case 'stats': {
      // The whole service: this process and its worker processes (none for worker threads).
      const { rssKiB } = await readTreeMemory(process.pid);
      return { id: request.id, ok: true, rss: rssKiB * 1024, heapUsed: process.memoryUsage().heapUsed, workers: snapshot(), started: started.length };
    }
    case 'kill': {
      const targets = request.all ? live() : [victim()].filter((w): w is InferenceWorker => w !== undefined);
      for (const w of targets) {
        if (request.mode === 'crash') w.crash();
        else void channelOf(w).kill();
      }
      return { id: request.id, ok: true, workers: targets.map((w) => w.id) };
    }
    case 'handles':
      return { id: request.id, ok: true, handles: openHandles() };
    case 'hang': {
      const w = victim();
      // requestId 0 matches no pending request: the handle never hears of this message.
      if (w) channelOf(w).post({ type: 'stall', requestId: 0, ms: request.ms }, []);
      return { id: request.id, ok: true, workers: w ? [w.id] : [] };
    }
  }
}

process.on('message', async (message: ChaosRequest) => {
  let reply: ChaosReply;
  try {
    reply = await handle(message);
  } catch (err) {
    reply = { id: message.id, ok: false, error: (err as Error).message };
  }
  process.send?.(reply);
});
// If the runner goes away, so does its server: no orphans holding ports and cores.
process.on('disconnect', () => process.exit(3));
