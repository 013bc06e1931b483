// Messages between the chaos runner and the hooks preloaded into its server (server-hooks.ts).
export type ChaosRequest =
  | { id: number; cmd: 'stats' }
  /** Kill the busiest worker (or all of them): 'terminate' from outside, or 'crash' from inside. */
  | { id: number; cmd: 'kill'; mode: 'terminate' | 'crash'; all?: boolean }
  /** Make the busiest worker's thread spin for ms, as a hung native kernel would. */
  | { id: number; cmd: 'hang'; ms: number }
  /** What keeps the process alive (for a drain that takes too long): handles by kind and port. */
  | { id: number; cmd: 'handles' };

export interface WorkerSnapshot {
  id: string;
  busy: boolean;
  /** Model keys the worker holds (a replacement holds none until it has reloaded them). */
  models: string[];
  /** Engine tensors in the worker after its last batch. */
  tensors: number;
  isolation: 'thread' | 'process';
}

export type ChaosReply =
  /** rss: the server process plus its worker processes, i.e. the whole service. */
  | { id: number; ok: true; rss: number; heapUsed: number; workers: WorkerSnapshot[]; started: number }
  | { id: number; ok: true; workers: string[] }
  | { id: number; ok: true; handles: string[] }
  | { id: number; ok: false; error: string };
