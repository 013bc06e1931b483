// The server under test, in its own process, run as production runs it: compiled JavaScript
// (`node dist/main.js`, built from the current sources first), so the load generator never
// competes with it for an event loop and what is measured is what is deployed. Its log goes to a
// file; its memory is read from /proc/<pid>/status (summed over its worker processes).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTreeMemory, type ProcessTreeMemory } from '../../test/helpers/process-memory.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

let built = false;

/** Compiles src/ to dist/ once per benchmark process, so a stale build is never measured. */
function buildOnce(): void {
  if (built) return;
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  built = true;
}

export interface ServerOptions {
  repository: string;
  /** Extra settings (src/config.ts names), e.g. WORKERS, TF_INTRA_OP_THREADS, LOG_LEVEL. */
  settings: Record<string, string>;
  logFile: string;
  readyTimeoutMs: number;
  /** CPUs to pin the server to (a `taskset -c` list, e.g. "0-5"); default: not pinned. */
  cpus?: string;
  /** What to wait for: a READY model (default), or only a live process (an empty repository). */
  waitFor?: 'ready' | 'live';
}

/** Resident memory of the server and its worker processes (test/helpers/process-memory.ts). */
export type ServerMemory = ProcessTreeMemory;

export interface ServerHandle {
  pid: number;
  httpPort: number;
  grpcPort: number;
  baseUrl: string;
  grpcAddress: string;
  settings: Record<string, string>;
  memory(): Promise<ServerMemory>;
  stop(): Promise<void>;
}

/** A port the kernel says is free now (a small race, acceptable for a benchmark). */
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
  return text.split('\n').slice(-15).join('\n');
}

export async function startServerProcess(options: ServerOptions): Promise<ServerHandle> {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const settings: Record<string, string> = {
    LOG_LEVEL: 'info',
    ...options.settings,
    MODEL_REPOSITORY: path.resolve(options.repository),
    HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
  };
  const log = openSync(options.logFile, 'w');
  buildOnce();
  const command = [process.execPath, path.join(REPO_ROOT, 'dist/main.js')];
  // taskset execs the command: the pid stays the server's.
  if (options.cpus) command.unshift('taskset', '-c', options.cpus);
  const child: ChildProcess = spawn(command[0] as string, command.slice(1), {
    cwd: REPO_ROOT,
    env: { ...process.env, ...settings },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited: string | undefined;
  const exit = once(child, 'exit').then(([code, signal]) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the server process');
  const baseUrl = `http://127.0.0.1:${httpPort}`;

  const deadline = performance.now() + options.readyTimeoutMs;
  for (;;) {
    if (exited) throw new Error(`server ${exited} before it was ready; ${options.logFile}:\n${await logTail(options.logFile)}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready after ${options.readyTimeoutMs} ms; ${options.logFile}:\n${await logTail(options.logFile)}`);
    }
    const ready = await fetch(`${baseUrl}/v2/health/${options.waitFor ?? 'ready'}`).then((r) => r.ok, () => false);
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  return {
    pid,
    httpPort,
    grpcPort,
    baseUrl,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    settings,
    memory: () => readTreeMemory(pid),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
