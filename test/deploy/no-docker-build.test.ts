// The Dockerfile, executed without a Docker engine (there is none on our machines): in a clean
// temporary folder, the build context (a fresh clone's files less .dockerignore), every COPY and
// the project's RUN steps (docker/build.sh: production install from the lockfile, native
// TensorFlow provisioning, trimming), then the container's start: ENTRYPOINT + CMD with the
// image's environment, as its USER when the tests run as root. The running server must pass the
// image's HEALTHCHECK, classify a photo with the baked-in model, report gRPC health, and on SIGTERM
// drain and exit 0. It runs compiled JavaScript: the server and its worker processes are plain
// node on dist/, with no TypeScript runner in the image. A file the image needs but the context
// lacks, a step that fails, or a start command that does not start fails here.
//
// What it cannot run: the base image and its apt-get step (the packages are checked against what
// the scripts need), and tini, which the test runner stands in for (it delivers SIGTERM to the
// server, as tini forwards it). The npm and provisioning caches under $HOME make the install take
// about half a minute.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProtos } from '../../src/api/grpc/proto.ts';
import { writeContext } from './build-context.ts';
import { readDockerfile, REPO_ROOT } from './dockerfile.ts';
import { childrenOf, commandLine } from '../helpers/child-processes.ts';
import { buildWithoutDocker, containerCommand, mapArgument, startContainer, type BuiltImage } from './run-dockerfile.ts';

const DEFAULT_MODEL = 'fashion-mnist-densenet';
const PHOTO = path.join(REPO_ROOT, 'test/fixtures/images/coffee.jpg');

interface LogLine { msg?: string; httpPort?: number; grpcPort?: number; level?: number }

interface Running {
  child: ChildProcess;
  httpPort: number;
  grpcPort: number;
  lines: LogLine[];
  exited: Promise<number | null>;
  ready: Promise<void>;
}

function waitForReady(child: ChildProcess, timeoutMs: number): Running {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  // 'close': the process has exited and its output has been read to the end.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let buffer = '';
  const running = { child, lines, exited } as Running;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms:\n${raw.slice(-30).join('\n')}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        raw.push(line);
        let entry: LogLine;
        try {
          entry = JSON.parse(line) as LogLine;
        } catch {
          continue;
        }
        lines.push(entry);
        if (entry.msg === 'densenet-serve ready') {
          clearTimeout(timer);
          running.httpPort = entry.httpPort!;
          running.grpcPort = entry.grpcPort!;
          resolve();
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => raw.push(chunk.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before it was ready:\n${raw.slice(-30).join('\n')}`));
    });
  });
  running.ready = ready;
  return running;
}

function runCommand(command: string[], env: Record<string, string>, cwd: string, user?: { uid: number; gid: number }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}) });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('the Dockerfile, executed without Docker', () => {
  const { parsed } = readDockerfile();
  let work: string;
  let image: BuiltImage;
  let server: Running;
  let user: { uid: number; gid: number } | undefined;
  let containerEnv: Record<string, string>;
  const startedAt = performance.now();
  let builtMs = 0;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'densenet-nodocker-'));
    // The image's user must be able to reach the files, as in the container.
    chmodSync(work, 0o755);
    const contextDir = path.join(work, 'context');
    writeContext(contextDir);
    image = await buildWithoutDocker(parsed, { contextDir, workDir: work });
    builtMs = performance.now() - startedAt;

    const numeric = /^(\d+):(\d+)$/.exec(image.user ?? '');
    const asRoot = process.getuid?.() === 0;
    user = asRoot && numeric ? { uid: Number(numeric[1]), gid: Number(numeric[2]) } : undefined;
    // HOME and a writable /tmp of the image's user.
    const home = path.join(work, 'home');
    const tmp = path.join(work, 'tmp');
    for (const dir of [home, tmp]) {
      mkdirSync(dir);
      if (user) chownSync(dir, user.uid, user.gid);
    }
    containerEnv = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: home,
      TMPDIR: tmp,
      ...image.env,
      // Loopback only, and ports the kernel picks: the log line reports them.
      HOST: '127.0.0.1',
      HTTP_PORT: '0',
      GRPC_PORT: '0',
      LOG_LEVEL: 'info',
    };
    const child = startContainer(image, containerCommand(image), { env: containerEnv, ...(user ? { user } : {}) });
    server = waitForReady(child, 120_000);
    await server.ready;
  }, 300_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    // Two gigabytes of files (the build stage's node_modules and the runtime's links to it) take
    // half a minute to delete on a busy disk; nothing needs to wait for that.
    if (work) spawn('rm', ['-rf', work], { detached: true, stdio: 'ignore' }).unref();
  });

  it('builds the runtime stage: native TensorFlow in place, headers trimmed, no dev dependencies, one onnxruntime platform', () => {
    const tfjs = path.join(image.root, image.workdir, 'node_modules/@tensorflow/tfjs-node');
    const bindings = execFileSync('find', [path.join(tfjs, 'lib'), '-name', 'tfjs_binding.node'], { encoding: 'utf8' }).trim();
    expect(bindings).not.toBe('');
    expect(() => readFileSync(path.join(tfjs, 'deps/include/tensorflow/c/c_api.h'))).toThrow();
    const installed = new Set(readFileSync(path.join(image.root, image.workdir, 'node_modules/.package-lock.json'), 'utf8').match(/"node_modules\/[^"]+"/g));
    for (const dev of ['vitest', 'typescript', 'eslint', 'tsx']) expect(installed.has(`"node_modules/${dev}"`)).toBe(false);
    expect(existsSync(path.join(image.root, image.workdir, 'node_modules/tsx'))).toBe(false);
    // The compiled server, not its sources.
    for (const file of ['dist/main.js', 'dist/inference/worker/worker-main.js', 'package.json']) {
      expect(existsSync(path.join(image.root, image.workdir, file)), file).toBe(true);
    }
    expect(existsSync(path.join(image.root, image.workdir, 'src'))).toBe(false);
    // The onnxruntime executor is a production dependency; only this platform's libraries stay.
    const ortPlatforms = execFileSync('find', [path.join(image.root, image.workdir, 'node_modules/onnxruntime-node/bin/napi-v6'), '-mindepth', '2', '-maxdepth', '2', '-type', 'd'], { encoding: 'utf8' })
      .trim().split('\n').map((dir) => path.relative(path.join(image.root, image.workdir, 'node_modules/onnxruntime-node/bin/napi-v6'), dir));
    expect(ortPlatforms).toEqual([`${process.platform}/${process.arch}`]);
    const bytes = Number(execFileSync('du', ['-sb', image.root], { encoding: 'utf8' }).split('\t')[0]);
    const steps = image.timings.filter((t) => t.ms > 500).map((t) => `${t.stage}:${t.line} ${(t.ms / 1000).toFixed(1)} s`);
    console.info(`no-docker build: ${(builtMs / 1000).toFixed(1)} s (${steps.join(', ')}); ` +
      `runtime stage adds ${(bytes / 2 ** 20).toFixed(0)} MiB to the base image`);
  });

  it('runs as the image USER, with TensorFlow threads sized by the entrypoint', () => {
    const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
    if (user) expect(uid).toBe(user.uid);
    expect(uid).not.toBe(0);
    const environ = readFileSync(`/proc/${server.child.pid}/environ`, 'utf8').split('\0');
    const threads = environ.find((e) => e.startsWith('TF_INTRA_OP_THREADS='))?.split('=')[1];
    expect(threads).toMatch(/^[1-9]\d*$/);
  });

  it('runs the server and its worker processes on plain node, on dist/: no tsx in any command line', () => {
    const pid = server.child.pid!;
    // The entrypoint execs the command, so the process started is the server.
    expect(commandLine(pid)).toEqual(['node', 'dist/main.js']);
    const workers = childrenOf(pid).map(commandLine);
    // Default settings: worker processes (WORKER_ISOLATION=auto with the onnxruntime executor).
    expect(workers.length).toBeGreaterThan(0);
    for (const argv of workers) {
      expect(argv).toHaveLength(2);
      expect(argv[1]).toBe(path.join(image.root, image.workdir, 'dist/inference/worker/worker-main.js'));
    }
    for (const argv of [commandLine(pid), ...workers]) expect(argv.join(' ')).not.toMatch(/tsx/);
  });

  it('passes the image HEALTHCHECK (readiness)', async () => {
    expect(image.healthcheck).toBeDefined();
    const command = image.healthcheck!.command.map((a) => mapArgument(image, a));
    const result = await runCommand(command, { ...containerEnv, HTTP_PORT: String(server.httpPort) }, path.join(image.root, image.workdir), user);
    expect(result.output).toContain(': 200 ');
    expect(result.code).toBe(0);
  });

  it('classifies a photo with the baked-in default model', async () => {
    const response = await fetch(`http://127.0.0.1:${server.httpPort}/v1/classify`, {
      method: 'PUT', body: readFileSync(PHOTO), headers: { 'content-type': 'image/jpeg' },
    });
    expect(response.status).toBe(200);
    const body = await response.json() as { model: string; predictions: Array<Array<{ label: string; index: number; score: number }>> };
    expect(body.model).toBe(DEFAULT_MODEL);
    const labels = readFileSync(path.join(REPO_ROOT, 'models', DEFAULT_MODEL, 'labels.txt'), 'utf8').trim().split('\n');
    expect(body.predictions).toHaveLength(1);
    expect(body.predictions[0]).toHaveLength(5);
    for (const p of body.predictions[0]!) expect(p.label).toBe(labels[p.index]);
  });

  it('reports SERVING on gRPC health', async () => {
    const objects = grpc.loadPackageDefinition(loadProtos().packageDefinition) as unknown as {
      grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & { Check: (req: object, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void) => void } } } };
    };
    const client = new objects.grpc.health.v1.Health(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const status = await new Promise<string>((resolve, reject) => client.Check({ service: '' }, (err, res) => (err ? reject(err) : resolve(res!.status))));
      expect(status).toBe('SERVING');
    } finally {
      client.close();
    }
  });

  it('on SIGTERM drains and exits 0; the HEALTHCHECK then fails', async () => {
    expect(image.stopSignal).toBe('SIGTERM');
    // A container of its own: the other tests here use the shared one, in any order.
    const stopping = waitForReady(startContainer(image, containerCommand(image), { env: containerEnv, ...(user ? { user } : {}) }), 120_000);
    try {
      await stopping.ready;
      const command = image.healthcheck!.command.map((a) => mapArgument(image, a));
      const healthcheck = () => runCommand(command, { ...containerEnv, HTTP_PORT: String(stopping.httpPort) }, path.join(image.root, image.workdir), user);
      expect((await healthcheck()).code).toBe(0);
      stopping.child.kill('SIGTERM');
      expect(await stopping.exited).toBe(0);
      expect(stopping.lines.some((l) => l.msg?.startsWith('draining'))).toBe(true);
      expect(stopping.lines.at(-1)?.msg).toBe('stopped');
      expect((await healthcheck()).code).toBe(1);
    } finally {
      if (stopping.child.exitCode === null && stopping.child.signalCode === null) stopping.child.kill('SIGKILL');
    }
    console.info(`no-docker check: ${((performance.now() - startedAt) / 1000).toFixed(1)} s in all`);
  }, 180_000);

  it('gets the tools its RUN scripts need from the apt-get steps, and tini for the ENTRYPOINT', () => {
    // docker/build.sh runs npm ci, whose tools/tfjs-native step needs python3 + pip and compiles
    // with g++ and make; the trim uses strip (binutils, which g++ brings).
    expect(image.packagesByStage.get('build')).toEqual(expect.arrayContaining(['g++', 'make', 'python3', 'python3-pip', 'ca-certificates']));
    expect(image.entrypoint[0]).toBe('/usr/bin/tini');
    expect(image.packages).toContain('tini');
  });
});
