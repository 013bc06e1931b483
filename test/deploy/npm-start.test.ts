// `npm start` runs compiled JavaScript (conventions, rule 18): npm runs package.json's start script
// on the output of the project's build, and neither the server nor its worker processes run
// through tsx. The server must come up with the default model and classify a photo, with worker
// processes (the default: WORKER_ISOLATION=auto with the onnxruntime executor) and with worker
// threads, which load the compiled worker body another way.
//
// It builds first, with the build script (`npm run build`, which `npm ci` runs through `prepare`),
// into a temporary folder laid out as the project is (package.json, dist/, and links to proto/ and
// node_modules/), and runs `npm start` there: what it tests is always the current sources, never
// a dist/ of this checkout left from an older build.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './dockerfile.ts';
import { childrenOf, commandLine, descendantsOf } from '../helpers/child-processes.ts';
import { hostEnvironment } from './run-dockerfile.ts';

const DEFAULT_MODEL = 'fashion-mnist-densenet';
const PHOTO = path.join(REPO_ROOT, 'test/fixtures/images/coffee.jpg');
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

interface Prediction { label: string; index: number; score: number }

interface Started {
  npm: ChildProcess;
  httpPort: number;
  /** stdout and stderr, for the failure messages. */
  output: string[];
  closed: Promise<number | null>;
}

function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: hostEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** `npm start` in `dir`; resolves on the server's ready line. */
function npmStart(dir: string, env: Record<string, string>): Promise<Started> {
  const npm = spawn('npm', ['start'], { cwd: dir, env: { ...hostEnvironment(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const closed = new Promise<number | null>((resolve) => npm.once('close', resolve));
  return new Promise((resolve, reject) => {
    let buffer = '';
    npm.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        output.push(line);
        let entry: { msg?: string; httpPort?: number };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue; // npm's own lines
        }
        if (entry.msg === 'densenet-serve ready') resolve({ npm, httpPort: entry.httpPort!, output, closed });
      }
    });
    npm.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    npm.once('error', reject);
    void closed.then((code) => reject(new Error(`npm start exited with ${code} before the server was ready:\n${output.slice(-30).join('\n')}`)));
  });
}

/** The process running the start script's command, below npm (npm runs it through sh). */
function serverOf(started: Started): number {
  const command = packageJson.scripts.start!.split(' ');
  const matching = descendantsOf(started.npm.pid!).filter((pid) => commandLine(pid).join('\0') === command.join('\0'));
  expect(matching, `a process running '${packageJson.scripts.start}' below npm`).toHaveLength(1);
  return matching[0]!;
}

/** SIGTERM to the server (it drains and exits 0, then npm exits); SIGKILL to whatever is left. */
async function stop(started: Started | undefined): Promise<void> {
  if (!started || started.npm.exitCode !== null || started.npm.signalCode !== null) return;
  const tree = descendantsOf(started.npm.pid!);
  const server = tree.find((pid) => commandLine(pid)[1] === 'dist/main.js');
  if (server) process.kill(server, 'SIGTERM');
  const timer = setTimeout(() => {
    for (const pid of [started.npm.pid!, ...tree]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 60_000);
  await started.closed;
  clearTimeout(timer);
}

async function classify(port: number): Promise<{ model: string; predictions: Prediction[][] }> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/classify`, {
    method: 'PUT', body: readFileSync(PHOTO), headers: { 'content-type': 'image/jpeg' },
  });
  expect(response.status).toBe(200);
  return await response.json() as { model: string; predictions: Prediction[][] };
}

describe('npm start: compiled JavaScript, no tsx', () => {
  let work: string;
  let processes: Started | undefined;
  let threads: Started | undefined;
  const env = {
    HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', LOG_LEVEL: 'info', WORKERS: '2',
    // The repository's own models/, the default (a relative 'models') resolved from this checkout.
    MODEL_REPOSITORY: path.join(REPO_ROOT, 'models'),
  };

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'densenet-npm-start-'));
    copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(work, 'package.json'));
    for (const dir of ['node_modules', 'proto']) symlinkSync(path.join(REPO_ROOT, dir), path.join(work, dir));
    const build = await run('npm', ['run', 'build', '--', '--outDir', path.join(work, 'dist')], REPO_ROOT);
    expect(build.code, build.output).toBe(0);
    processes = await npmStart(work, env);
  }, 300_000);

  afterAll(async () => {
    await Promise.all([stop(processes), stop(threads)]);
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('npm ci builds: `prepare` runs the build script, whose output `start` runs', () => {
    expect(packageJson.scripts.prepare).toBe('npm run build');
    expect(packageJson.scripts.start).toMatch(/^node dist\/\S+\.js$/);
  });

  it('runs the server and its worker processes on plain node, with no tsx in any command line', () => {
    const started = processes!;
    const server = serverOf(started);
    const everything = [started.npm.pid!, ...descendantsOf(started.npm.pid!)].map((pid) => ({ pid, argv: commandLine(pid) }));
    expect(everything.filter((p) => p.argv.some((arg) => /tsx/.test(arg)))).toEqual([]);
    // The workers: child processes of the server started on the compiled worker body itself.
    const workers = childrenOf(server).map(commandLine);
    expect(workers).toHaveLength(Number(env.WORKERS));
    for (const argv of workers) {
      expect(argv).toHaveLength(2);
      expect(path.basename(argv[0]!)).toMatch(/^node/);
      expect(argv[1]).toBe(path.join(work, 'dist/inference/worker/worker-main.js'));
    }
  });

  it('classifies a photo with the default model; worker threads, started from dist/ too, give the same answer', async () => {
    const fromProcesses = await classify(processes!.httpPort);
    expect(fromProcesses.model).toBe(DEFAULT_MODEL);
    const labels = readFileSync(path.join(REPO_ROOT, 'models', DEFAULT_MODEL, 'labels.txt'), 'utf8').trim().split('\n');
    const top = fromProcesses.predictions[0]!;
    expect(fromProcesses.predictions).toHaveLength(1);
    expect(top).toHaveLength(5);
    for (const p of top) expect(p.label).toBe(labels[p.index]);

    // Worker threads, running ONNX Runtime as the processes do (WORKER_ISOLATION=thread is allowed
    // for it; only stopping a thread mid-run is unsafe): what is under test is the compiled thread
    // entry. Native TensorFlow in threads is tested elsewhere (test/densenet/tf-runtime.test.ts);
    // here it once crashed at start (SIGSEGV, 1 of ~120 starts), and the pure-JS backend was too
    // slow to warm the model up under load.
    threads = await npmStart(work, { ...env, WORKER_ISOLATION: 'thread' });
    const server = serverOf(threads);
    expect(childrenOf(server)).toEqual([]);
    expect(commandLine(server).some((arg) => /tsx/.test(arg))).toBe(false);
    const fromThreads = (await classify(threads.httpPort)).predictions[0]!;
    expect(fromThreads[0]!.index).toBe(top[0]!.index);
    // Class by class; one that is in only one top 5 must be a near tie at its edge.
    for (const [these, those] of [[fromThreads, top], [top, fromThreads]] as const) {
      for (const p of these) {
        const same = those.find((q) => q.index === p.index);
        if (same) expect(Math.abs(p.score - same.score), p.label).toBeLessThan(1e-4);
        else expect(p.score, p.label).toBeLessThan(those.at(-1)!.score + 1e-4);
      }
    }
  }, 180_000);
});
