// Python helpers of the engine bench: one-shot scripts (weights, SavedModel) and a long-lived
// child speaking length-prefixed frames (the PyTorch engine).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PYTHON_DIR = fileURLToPath(new URL('./python/', import.meta.url));

/** Runs bench/engine/python/<script> to completion; its output goes to our stderr. */
export function runPythonScript(python: string, script: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [path.join(PYTHON_DIR, script), ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ...env },
    });
    child.on('error', (err) => reject(new Error(`cannot start ${python} for ${script}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${script} failed (${signal ?? `exit code ${code}`}); see its output above`));
    });
  });
}

export interface Frame {
  header: Record<string, unknown>;
  payload: Buffer;
}

/**
 * A child process answering one frame per request, in order. Frame, both directions:
 * u32 LE header length, JSON header, u32 LE payload length, payload.
 */
export class FramedChild {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly waiting: { resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  private exited: Error | undefined;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(python: string, script: string) {
    this.child = spawn(python, [path.join(PYTHON_DIR, script)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.pipe(process.stderr);
    this.child.stdout.on('data', (chunk: Buffer) => this.receive(chunk));
    const fail = (err: Error) => {
      this.exited = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    this.child.on('error', (err) => fail(new Error(`cannot start ${python} ${script}: ${err.message}`)));
    this.child.on('exit', (code, signal) => fail(new Error(`${script} exited (${signal ?? `code ${code}`})`)));
  }

  request(header: Record<string, unknown>, payload?: Uint8Array): Promise<Frame> {
    if (this.exited) return Promise.reject(this.exited);
    const h = Buffer.from(JSON.stringify(header));
    const headLength = Buffer.alloc(4);
    headLength.writeUInt32LE(h.length, 0);
    const payloadLength = Buffer.alloc(4);
    payloadLength.writeUInt32LE(payload?.byteLength ?? 0, 0);
    this.child.stdin.write(Buffer.concat([headLength, h, payloadLength]));
    if (payload?.byteLength) this.child.stdin.write(payload);
    return new Promise<Frame>((resolve, reject) => this.waiting.push({ resolve, reject })).then((frame) => {
      if (frame.header.ok !== true) throw new Error(`${String(frame.header.error ?? 'request failed')}`);
      return frame;
    });
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    for (;;) {
      if (this.buffered.length < 4) return;
      const hlen = this.buffered.readUInt32LE(0);
      if (this.buffered.length < 8 + hlen) return;
      const plen = this.buffered.readUInt32LE(4 + hlen);
      const end = 8 + hlen + plen;
      if (this.buffered.length < end) return;
      const header = JSON.parse(this.buffered.subarray(4, 4 + hlen).toString()) as Record<string, unknown>;
      // Copy: the payload outlives this receive buffer.
      const payload = Buffer.from(this.buffered.subarray(8 + hlen, end));
      this.buffered = this.buffered.subarray(end);
      this.waiting.shift()?.resolve({ header, payload });
    }
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end(); // the child exits at end of input
    const timer = setTimeout(() => this.child.kill(), 5000);
    await gone;
    clearTimeout(timer);
  }
}
