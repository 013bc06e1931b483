// Runs a C load generator (wrk, h2load) as a child process and measures the CPU it used: it runs
// under `sh -c`, and once the generator has exited and been waited for, the shell reads its own
// /proc/<pid>/stat, whose cutime + cstime are exactly the generator's user + system time (all
// its threads). Reading the generator's own /proc entry would race with its exit.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CPU_TICK_MS } from '../../test/helpers/process-cpu.ts';

export interface GeneratorRun {
  code: number;
  stdout: string;
  stderr: string;
  /** User + system CPU of the generator, ms. */
  cpuMs: number;
  /** From spawn to exit, ms. */
  wallMs: number;
}

export interface GeneratorOptions {
  /** `taskset -c` CPU list for the generator; default: not pinned. */
  cpus?: string | undefined;
  env?: Record<string, string>;
}

const WRAPPER = '"$@"; rc=$?; read -r line < /proc/$$/stat; printf "%s\\n" "$line" > "$OVERLOAD_STAT_FILE"; exit $rc';

export async function runGenerator(command: string, args: string[], options: GeneratorOptions = {}): Promise<GeneratorRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'overload-gen-'));
  const statFile = path.join(dir, 'stat');
  const argv = options.cpus ? ['taskset', '-c', options.cpus, command, ...args] : [command, ...args];
  const started = performance.now();
  try {
    const child = spawn('sh', ['-c', WRAPPER, 'sh', ...argv], {
      env: { ...process.env, ...options.env, OVERLOAD_STAT_FILE: statFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    const wallMs = performance.now() - started;
    const stat = await readFile(statFile, 'utf8').catch(() => '');
    // Fields after the parenthesised command name: state is field 3, cutime 16 and cstime 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = stat ? (Number(fields[13]) + Number(fields[14])) * CPU_TICK_MS : Number.NaN;
    return { code, stdout, stderr, cpuMs, wallMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
