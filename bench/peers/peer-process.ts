// A peer server in a child process: started on 127.0.0.1 and a free port in its own process
// group, ready when it answers the bench's own request (a real classify, which also warms it),
// stopped with SIGTERM (Ray's driver shuts Serve and its cluster down), then SIGKILL to its
// process group and to whatever of its process tree is left. Its output goes to bench/.cache/peers/<name>.log.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { descendantsOf, isRunning } from '../../test/helpers/child-processes.ts';
import type { ProcessTreeMemory } from '../../test/helpers/process-memory.ts';
import type { HttpRequestSpec } from '../load/requests.ts';
import type { PeerPython } from './python-env.ts';

const PEERS_DIR = fileURLToPath(new URL('.', import.meta.url));

export const PEER_NAMES = ['ray', 'fastapi'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export function isPeerName(s: string): s is PeerName {
  return (PEER_NAMES as readonly string[]).includes(s);
}

export const PEER_LABELS: Record<PeerName, string> = {
  ray: 'Ray Serve',
  fastapi: 'FastAPI + uvicorn',
};

export interface PeerOptions {
  env: PeerPython;
  onnx: string;
  manifest: string;
  model: string;
  /** num_cpus of the Ray cluster (Ray only) and intra-op threads of the ORT session. */
  cpus: number;
  threads: number;
  /** Ray: @serve.batch max_batch_size and batch_wait_timeout_s, max_ongoing_requests. */
  maxBatch: number;
  batchWaitMs: number;
  maxOngoing: number;
  /** The request that proves readiness; its first 200 answer is kept. */
  probe: HttpRequestSpec;
  logFile: string;
  readyTimeoutMs: number;
  /** `taskset -c` list, as for our server. */
  pinCpus?: string;
}

export interface PeerHandle {
  name: PeerName;
  pid: number;
  baseUrl: string;
  /** What runs, with versions and settings, for the report. */
  description: string;
  settings: Record<string, string | number>;
  /** Seconds from spawn to the first 200 answer. */
  startSeconds: number;
  /** The body of that first answer (parsed JSON). */
  firstAnswer: unknown;
  memory(): Promise<ProcessTreeMemory>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function logTail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-20).join('\n');
}

function treeOf(pid: number): number[] {
  try {
    return descendantsOf(pid);
  } catch {
    return []; // a process of the tree exited while it was read
  }
}

/**
 * RSS of the peer and everything below it. Not test/helpers/process-memory.ts's reader: that
 * follows the main thread's children only, and Ray's raylet starts its workers from other threads.
 */
async function treeMemory(pid: number): Promise<ProcessTreeMemory> {
  let rssKiB = 0;
  let peakKiB = 0;
  for (const id of [pid, ...treeOf(pid)]) {
    const status = await readFile(`/proc/${id}/status`, 'utf8').catch(() => '');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    rssKiB += field('VmRSS');
    peakKiB += field('VmHWM');
  }
  return { rssKiB: rssKiB || Number.NaN, peakKiB: peakKiB || Number.NaN };
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function commandFor(name: PeerName, o: PeerOptions, port: number): { args: string[]; description: string; settings: Record<string, string | number> } {
  const common = ['--onnx', o.onnx, '--manifest', o.manifest, '--model', o.model, '--port', String(port), '--threads', String(o.threads)];
  const v = o.env.versions;
  const ort = `onnxruntime ${v.onnxruntime ?? '?'} (1 session, ${o.threads} intra-op threads)`;
  if (name === 'ray') {
    const settings = { num_cpus: o.cpus, max_batch_size: o.maxBatch, batch_wait_timeout_s: o.batchWaitMs / 1000, max_ongoing_requests: o.maxOngoing, replicas: 1, threads: o.threads };
    return {
      args: [path.join(PEERS_DIR, 'ray_serve_app.py'), ...common, '--cpus', String(o.cpus), '--max-batch', String(o.maxBatch),
        '--batch-wait-s', String(o.batchWaitMs / 1000), '--max-ongoing', String(o.maxOngoing)],
      description: `Ray Serve ${v.ray ?? '?'}: 1 replica, @serve.batch(max_batch_size=${o.maxBatch}, batch_wait_timeout_s=${o.batchWaitMs / 1000}), ` +
        `max_ongoing_requests ${o.maxOngoing}, ray.init(num_cpus=${o.cpus}, include_dashboard=False); ${ort}; Pillow ${v.pillow ?? '?'} preprocessing`,
      settings,
    };
  }
  return {
    args: [path.join(PEERS_DIR, 'fastapi_app.py'), ...common],
    description: `FastAPI ${v.fastapi ?? '?'} + uvicorn ${v.uvicorn ?? '?'} (1 worker, async handler, no batching); ${ort}; Pillow ${v.pillow ?? '?'} preprocessing`,
    settings: { workers: 1, threads: o.threads },
  };
}

export async function startPeer(name: PeerName, options: PeerOptions): Promise<PeerHandle> {
  const port = await freePort();
  const { args, description, settings } = commandFor(name, options, port);
  const command = [options.env.python, ...args];
  if (options.pinCpus) command.unshift('taskset', '-c', options.pinCpus);
  const log = openSync(options.logFile, 'w');
  const t0 = performance.now();
  const child: ChildProcess = spawn(command[0] as string, command.slice(1), {
    cwd: PEERS_DIR,
    // Its own process group, so stop() reaches everything it started; densenet_peer.py is
    // imported by Ray's replica processes too, which inherit this environment.
    detached: true,
    env: { ...process.env, PYTHONPATH: PEERS_DIR, PYTHONUNBUFFERED: '1', RAY_USAGE_STATS_ENABLED: '0' },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited: string | undefined;
  const exit = once(child, 'exit').then(([code, signal]) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the ${name} peer`);
  const baseUrl = `http://127.0.0.1:${port}`;
  let tree: number[] = [];

  const stop = async () => {
    tree = [...new Set([...tree, ...treeOf(pid)])];
    if (!exited) {
      // The driver first: Ray's shuts Serve and the cluster down in order (signalling the whole
      // group at once kills the controller under its graceful shutdown).
      kill(pid, 'SIGTERM');
      const timer = setTimeout(() => kill(-pid, 'SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
    }
    // Ray puts its actors in process groups of their own: whatever of the tree is left goes now.
    kill(-pid, 'SIGKILL');
    for (const p of tree) if (isRunning(p)) kill(p, 'SIGKILL');
  };

  const deadline = t0 + options.readyTimeoutMs;
  let firstAnswer: unknown;
  for (;;) {
    if (exited) throw new Error(`${name} peer ${exited} before it was ready; ${options.logFile}:\n${await logTail(options.logFile)}`);
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`${name} peer not ready after ${options.readyTimeoutMs} ms; ${options.logFile}:\n${await logTail(options.logFile)}`);
    }
    const { probe } = options;
    const res = await fetch(baseUrl + probe.path, { method: probe.method, headers: probe.headers, body: probe.body, signal: AbortSignal.timeout(60_000) })
      .catch(() => undefined);
    if (res?.ok) {
      firstAnswer = await res.json();
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const startSeconds = (performance.now() - t0) / 1000;
  tree = treeOf(pid);

  return { name, pid, baseUrl, description, settings, startSeconds, firstAnswer, memory: () => treeMemory(pid), stop };
}
