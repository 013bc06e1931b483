// The real server (src/main.ts) as a child process, with the chaos hooks preloaded
// (server-hooks.ts via server-hooks.mjs) and an IPC channel to drive them. Its stdout and stderr
// go to files, not pipes, so a busy runner can never hold the server up by reading its log
// slowly; the runner tails the log file and keeps warnings, errors and lifecycle lines, and a
// count of the per-request lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChaosReply, ChaosRequest, WorkerSnapshot } from './ipc.ts';

export const ROOT = new URL('../../../', import.meta.url).pathname;
const HOOKS = pathToFileURL(new URL('./server-hooks.mjs', import.meta.url).pathname).href;
const TAIL_EVERY_MS = 25;

export interface LogEntry {
  level: number;
  /** The server's timestamp (epoch ms). */
  time: number;
  msg: string;
  /** When the server wrote the line, on the runner's performance.now() clock. */
  at: number;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() in the runner. */
  at: number;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** The request id in an HTTP ('requestId') or gRPC ('reqId') request log line. */
const REQUEST_ID = /"(?:requestId|reqId)":"([^"]+)"/;

const running = new Set<ChildProcess>();
// A runner that dies takes its servers with it (they also exit when the IPC channel closes).
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class ServerProcess {
  readonly logs: LogEntry[] = [];
  /** Per-request log lines (not parsed, only counted). */
  requestLines = 0;
  /** Request ids (x-request-id) of the per-request log lines, once trackRequestIds() is called. */
  seenRequestIds: Set<string> | undefined;
  /** Resolves once the process has exited and its log has been read to the end. */
  readonly exited: Promise<Exit>;
  httpPort = 0;
  grpcPort = 0;
  private readonly pending = new Map<number, (reply: ChaosReply) => void>();
  private nextId = 1;
  private exitInfo: Exit | undefined;
  private partial = '';
  private onReady: (() => void) | undefined;

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
    private readonly stderrFile: string,
  ) {
    const processExited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        running.delete(child);
        const exit = { code, signal, at: performance.now() };
        this.exitInfo = exit;
        for (const reply of this.pending.values()) reply({ id: 0, ok: false, error: 'server exited' });
        this.pending.clear();
        resolve(exit);
      });
    });
    child.on('message', (reply: ChaosReply) => {
      const resolve = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      resolve?.(reply);
    });
    this.exited = this.tail(processExited);
  }

  /**
   * Starts `node --import tsx --import server-hooks.mjs src/main.ts`, logging to
   * `<logDir>/<label>.log` (and `.stderr.log`), and waits for its 'ready' line.
   */
  static start(label: string, env: Record<string, string>, logDir: string, cpus?: string, startTimeoutMs = 180_000): Promise<ServerProcess> {
    const logFile = path.join(logDir, `${label}.log`);
    const stderrFile = path.join(logDir, `${label}.stderr.log`);
    const out = openSync(logFile, 'w');
    const err = openSync(stderrFile, 'w');
    let child: ChildProcess;
    try {
      const node = [process.execPath, ...(process.env.CHAOS_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', '--import', HOOKS, 'src/main.ts'];
      // taskset execs node: the pid is the server's, and its worker processes inherit the CPUs.
      const command = cpus ? ['taskset', '-c', cpus, ...node] : node;
      child = spawn(command[0] as string, command.slice(1), {
        cwd: ROOT,
        stdio: ['ignore', out, err, 'ipc'],
        env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', LOG_LEVEL: 'info', ...env },
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    running.add(child);
    const server = new ServerProcess(label, child, logFile, stderrFile);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        void server.diagnostics().then((d) => reject(new Error(`${label}: server not ready within ${startTimeoutMs} ms\n${d}`)));
      }, startTimeoutMs);
      server.onReady = () => {
        clearTimeout(timer);
        resolve(server);
      };
      void server.exited.then(async (exit) => {
        clearTimeout(timer);
        reject(new Error(`${label}: server exited (${exit.code ?? exit.signal}) before it was ready\n${await server.diagnostics()}`));
      });
    });
  }

  /** Reads the log file as it grows, until the process has exited and everything is read. */
  private async tail(processExited: Promise<Exit>): Promise<Exit> {
    const file = await open(this.logFile, 'r');
    const chunk = Buffer.alloc(1 << 20);
    let position = 0;
    const drain = async (): Promise<void> => {
      for (;;) {
        const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) return;
        position += bytesRead;
        this.consume(chunk.toString('utf8', 0, bytesRead));
      }
    };
    try {
      while (!this.exitInfo) {
        await drain();
        await new Promise((resolve) => setTimeout(resolve, TAIL_EVERY_MS));
      }
      const exit = await processExited;
      await drain();
      return exit;
    } finally {
      await file.close();
    }
  }

  private consume(text: string): void {
    this.partial += text;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      // One line per request at info: counted, not parsed (thousands a second under overload).
      if (line.includes('"msg":"request"') || line.includes('"msg":"grpc call"')) {
        this.requestLines++;
        const id = this.seenRequestIds && REQUEST_ID.exec(line)?.[1];
        if (id) this.seenRequestIds?.add(id);
        continue;
      }
      let entry: LogEntry;
      try {
        entry = JSON.parse(line) as LogEntry;
        // Same machine, same wall clock: the line's own time beats when the tail read it.
        entry.at = typeof entry.time === 'number' ? entry.time - performance.timeOrigin : performance.now();
      } catch {
        continue;
      }
      this.logs.push(entry);
      if (entry.msg === 'densenet-serve ready') {
        this.httpPort = Number(entry.httpPort);
        this.grpcPort = Number(entry.grpcPort);
        this.onReady?.();
      }
    }
  }

  /** From now on, remember which requests the server logged (i.e. read and answered or dropped). */
  trackRequestIds(): void {
    this.seenRequestIds ??= new Set();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** Log entries with this message (warnings, errors and lifecycle lines). */
  logged(msg: string): LogEntry[] {
    return this.logs.filter((l) => l.msg === msg);
  }

  async diagnostics(): Promise<string> {
    const tail = this.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n');
    const stderr = await readFile(this.stderrFile, 'utf8').catch(() => '');
    return `--- last log lines (${this.logFile}) ---\n${tail}\n--- stderr tail ---\n${stderr.slice(-3000)}`;
  }

  private request(message: DistributiveOmit<ChaosRequest, 'id'>, timeoutMs = 5000): Promise<ChaosReply> {
    if (this.hasExited) return Promise.reject(new Error(`${this.label}: server has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: no IPC answer to ${message.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (reply) => {
        clearTimeout(timer);
        if (!reply.ok) reject(new Error(`${this.label}: ${message.cmd} failed: ${reply.error}`));
        else resolve(reply);
      });
      this.child.send({ ...message, id });
    });
  }

  async stats(): Promise<{ rss: number; heapUsed: number; workers: WorkerSnapshot[]; started: number }> {
    const reply = await this.request({ cmd: 'stats' });
    if (!reply.ok || !('rss' in reply)) throw new Error('unexpected stats reply');
    return reply;
  }

  async openHandles(): Promise<string[]> {
    const reply = await this.request({ cmd: 'handles' });
    if (!reply.ok || !('handles' in reply)) throw new Error('unexpected handles reply');
    return reply.handles;
  }

  async killWorker(mode: 'terminate' | 'crash', all = false): Promise<string[]> {
    const reply = await this.request({ cmd: 'kill', mode, all });
    if (!reply.ok || !('workers' in reply) || 'rss' in reply) throw new Error('unexpected kill reply');
    return reply.workers;
  }

  async hangWorker(ms: number): Promise<string[]> {
    const reply = await this.request({ cmd: 'hang', ms });
    if (!reply.ok || !('workers' in reply) || 'rss' in reply) throw new Error('unexpected hang reply');
    return reply.workers;
  }

  /** Sends SIGTERM; returns performance.now() at that moment. */
  sigterm(): number {
    const at = performance.now();
    this.child.kill('SIGTERM');
    return at;
  }

  /** Graceful stop (SIGTERM), with SIGKILL after graceMs. */
  async stop(graceMs = 30_000): Promise<Exit> {
    if (this.exitInfo) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}
