// The real entry point in a child process: starts both frontends from the environment, serves,
// and on SIGTERM under load finishes the accepted requests, refuses new ones, exits 0.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNativeEngine } from './helpers/engine.ts';
import { writeTinyModelFolder } from './helpers/tiny-model.ts';

await useNativeEngine();
const ROOT = new URL('..', import.meta.url).pathname;

interface Started { child: ChildProcessWithoutNullStreams; httpPort: number; grpcPort: number; lines: string[] }

function start(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: { ...process.env, ...env } });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        const entry = JSON.parse(line) as { msg?: string; httpPort?: number; grpcPort?: number };
        if (entry.msg === 'densenet-serve ready') resolve({ child, httpPort: entry.httpPort!, grpcPort: entry.grpcPort!, lines });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before it was ready: ${lines.join('\n')}`)));
  });
}

describe('main: start-up and graceful shutdown', () => {
  let repo: string;
  beforeAll(async () => {
    repo = await mkdtemp(path.join(tmpdir(), 'main-'));
    await writeTinyModelFolder(repo, 'tiny', { manifest: { batching: { maxBatchSize: 2, maxQueueDelayMs: 0, maxQueueSize: 512 } } });
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  it('refuses a bad setting with a message naming it, exit code 2', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--workers=zero'], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('WORKERS');
  });

  it('refuses to start with an unreadable TLS file, naming the setting, exit code 2, before any worker starts', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, MODEL_REPOSITORY: repo, HTTP_PORT: '0', GRPC_PORT: '0', TLS_CERT_FILE: path.join(repo, 'absent.crt'), TLS_KEY_FILE: path.join(repo, 'absent.key') },
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; err?: { code: string; message: string } });
    expect(lines.map((l) => l.msg)).toEqual(['failed to start']);
    expect(lines[0]!.err).toMatchObject({ code: 'INVALID_CONFIG', message: `TLS_CERT_FILE: cannot read '${path.join(repo, 'absent.crt')}' (ENOENT)` });
  });

  it('serves, then on SIGTERM finishes accepted requests, refuses new ones and exits 0', async () => {
    const server = await start({
      MODEL_REPOSITORY: repo, HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '20000',
    });
    const base = `http://127.0.0.1:${server.httpPort}`;
    expect((await fetch(`${base}/v2/health/ready`)).status).toBe(200);
    expect(server.grpcPort).toBeGreaterThan(0);
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: new Array(768).fill(0.5) }] });
    const post = () => fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    let sigtermAt = Infinity;
    const okAfterSigterm: number[] = [];
    const accepted = Array.from({ length: 200 }, () => post().then((r) => {
      if (r.status === 200 && performance.now() > sigtermAt) okAfterSigterm.push(r.status);
      return r.status;
    }, () => 'refused'));
    await Promise.race(accepted); // the server is busy with the rest
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    sigtermAt = performance.now();
    server.child.kill('SIGTERM');
    const statuses = await Promise.all(accepted);
    // Every request that reached the server before SIGTERM completed; any later one was refused
    // cleanly (503 while draining, or the connection closed) — none failed half-way.
    expect(statuses.every((s) => s === 200 || s === 503 || s === 'refused')).toBe(true);
    // Requests in flight at SIGTERM were answered after it.
    expect(okAfterSigterm.length).toBeGreaterThan(0);
    expect(await exited).toBe(0);
    const log = server.lines.map((l) => JSON.parse(l) as { msg?: string });
    expect(log.some((l) => l.msg?.startsWith('draining'))).toBe(true);
    expect(log.at(-1)?.msg).toBe('stopped');
  }, 60_000);
});
