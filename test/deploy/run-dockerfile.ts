// Executes the Dockerfile without a Docker engine: each stage gets a folder that stands for its
// filesystem root, and the instructions are carried out in order: COPY from the build context or
// an earlier stage, WORKDIR, ARG and ENV, and every RUN that does project work (a docker/*.sh
// script), run with sh in the stage's working directory. The one other kind of RUN allowed,
// installing Debian packages, is recorded instead of run: those packages are the base image's
// business, and the tests check the tools the scripts need are among them.
//
// Then the image can be started the way a container starts: ENTRYPOINT + CMD with the image's
// environment, in its working directory, as its USER when the tests run as root.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  aptPackages, copyOperands, execForm, finalStage, healthcheck, parseEnv, splitArg, type Dockerfile, type Stage,
} from './dockerfile.ts';

export interface StepTiming {
  stage: string;
  line: number;
  step: string;
  ms: number;
}

export interface BuiltImage {
  /** The folder standing for the final stage's filesystem root. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  entrypoint: string[];
  cmd: string[];
  healthcheck: ReturnType<typeof healthcheck> | undefined;
  expose: string[];
  stopSignal: string;
  /** Debian packages the final stage installs. */
  packages: string[];
  /** Debian packages each stage installs. */
  packagesByStage: Map<string, string[]>;
  timings: StepTiming[];
}

/** What a container's processes get from the host: nothing of the test runner's own settings. */
export function hostEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    // npm's lifecycle variables (INIT_CWD would point tools/tfjs-native at this checkout's
    // node_modules), vitest's and Node's options.
    if (/^(npm_|VITEST|NODE_OPTIONS$|NODE_ENV$|INIT_CWD$|TF_)/i.test(key)) continue;
    env[key] = value;
  }
  return env;
}

const hostPath = (root: string, containerPath: string) => path.join(root, containerPath);

function copy(from: string, to: string, link: boolean): void {
  // Hard links for a stage-to-stage copy (node_modules is a gigabyte): nothing writes to them later.
  execFileSync('cp', [link ? '-al' : '-a', from, to]);
}

/** Docker's COPY: a folder's contents go into the destination; files go into it or become it. */
function copyInto(source: string, dest: string, destIsDir: boolean, link: boolean): void {
  if (statSync(source).isDirectory()) {
    mkdirSync(dest, { recursive: true });
    copy(`${source}/.`, dest, link);
    return;
  }
  const target = destIsDir ? path.join(dest, path.basename(source)) : dest;
  mkdirSync(path.dirname(target), { recursive: true });
  copy(source, target, link);
}

function runShell(command: string, cwd: string, env: Record<string, string>, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(logFile, { flags: 'a' });
    log.write(`\n$ ${command}\n`);
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once('error', reject);
    child.once('close', (code) => {
      log.end(() => {
        if (code === 0) return resolve();
        const tail = readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
        reject(new Error(`'${command}' exited with ${code}:\n${tail}`));
      });
    });
  });
}

/** Stages the final stage needs (COPY --from and FROM), as BuildKit builds only those. */
function neededStages(dockerfile: Dockerfile): Set<Stage> {
  const byName = new Map(dockerfile.stages.filter((s) => s.name).map((s) => [s.name!, s]));
  const needed = new Set<Stage>();
  const visit = (stage: Stage) => {
    if (needed.has(stage)) return;
    needed.add(stage);
    const parent = byName.get(stage.from);
    if (parent) visit(parent);
    for (const i of stage.instructions) {
      const from = i.keyword === 'COPY' ? copyOperands(i).from : undefined;
      if (from !== undefined) {
        const source = byName.get(from);
        if (!source) throw new Error(`Dockerfile line ${i.line}: COPY --from=${from} is not a stage of this file`);
        visit(source);
      }
    }
  };
  visit(finalStage(dockerfile));
  return needed;
}

export interface BuildOptions {
  contextDir: string;
  workDir: string;
  buildArgs?: Record<string, string>;
}

export async function buildWithoutDocker(dockerfile: Dockerfile, options: BuildOptions): Promise<BuiltImage> {
  const { contextDir, workDir } = options;
  const logFile = path.join(workDir, 'build.log');
  const needed = neededStages(dockerfile);
  const roots = new Map<string, string>();
  const timings: StepTiming[] = [];
  const packagesByStage = new Map<string, string[]>();
  let image: BuiltImage | undefined;

  for (const [index, stage] of dockerfile.stages.entries()) {
    if (!needed.has(stage)) continue;
    const stageName = stage.name ?? String(index);
    const root = path.join(workDir, 'stages', stageName);
    mkdirSync(root, { recursive: true });
    const parent = roots.get(stage.from);
    if (parent) copy(`${parent}/.`, root, true);
    roots.set(stageName, root);

    let workdir = '/';
    const args: Record<string, string> = {};
    const env: Record<string, string> = {};
    const packages: string[] = [];
    let user: string | undefined;
    let entrypoint: string[] = [];
    let cmd: string[] = [];
    let check: BuiltImage['healthcheck'];
    const expose: string[] = [];
    let stopSignal = 'SIGTERM';

    for (const instruction of stage.instructions) {
      const started = performance.now();
      const done = (step: string) => timings.push({ stage: stageName, line: instruction.line, step, ms: performance.now() - started });
      switch (instruction.keyword) {
        case 'WORKDIR':
          workdir = path.posix.resolve(workdir, instruction.args);
          mkdirSync(hostPath(root, workdir), { recursive: true });
          break;
        case 'ARG': {
          const [name, fallback] = splitArg(instruction.args);
          const value = options.buildArgs?.[name] ?? fallback;
          // An ARG without a value stays unset, as in docker build.
          if (value !== undefined) args[name] = value;
          break;
        }
        case 'ENV':
          Object.assign(env, parseEnv(instruction.args));
          break;
        case 'COPY': {
          const { from, sources, dest } = copyOperands(instruction);
          const destPath = hostPath(root, path.posix.resolve(workdir, dest));
          const destIsDir = dest.endsWith('/') || sources.length > 1;
          for (const source of sources) {
            const sourcePath = from === undefined
              ? path.join(contextDir, source)
              : hostPath(roots.get(from) ?? '', path.posix.resolve('/', source));
            if (!existsSync(sourcePath)) {
              throw new Error(`Dockerfile line ${instruction.line}: COPY ${from ? `--from=${from} ` : ''}${source}: ` +
                (from ? `not in stage ${from}` : 'not in the build context (missing from the repository, or excluded by .dockerignore)'));
            }
            copyInto(sourcePath, destPath, destIsDir, from !== undefined);
          }
          done(`COPY ${instruction.args}`);
          break;
        }
        case 'RUN': {
          const installs = aptPackages(instruction.args);
          if (installs) {
            packages.push(...installs);
            break;
          }
          if (!/(^|\s)(\.\/)?docker\/[\w.-]+\.sh(\s|$)/.test(instruction.args)) {
            throw new Error(`Dockerfile line ${instruction.line}: RUN '${instruction.args}' is neither the apt-get step nor a docker/*.sh script; ` +
              'put project work in a script under docker/ so that this check runs it');
          }
          for (const f of instruction.flags) {
            if (f.name !== 'mount' || !/^type=cache,target=\/root\/[\w./-]+$/.test(f.value)) {
              throw new Error(`Dockerfile line ${instruction.line}: RUN --${f.name}=${f.value}: only cache mounts under /root are understood here`);
            }
          }
          // Cache mounts under /root are this host's caches under $HOME: same content, same effect.
          await runShell(instruction.args, hostPath(root, workdir), { ...hostEnvironment(), ...args, ...env }, logFile);
          done(`RUN ${instruction.args}`);
          break;
        }
        case 'USER':
          user = instruction.args;
          break;
        case 'EXPOSE':
          expose.push(...instruction.args.split(/\s+/));
          break;
        case 'HEALTHCHECK':
          check = healthcheck(instruction);
          break;
        case 'ENTRYPOINT':
          entrypoint = execForm(instruction);
          break;
        case 'CMD':
          cmd = execForm(instruction);
          break;
        case 'STOPSIGNAL':
          stopSignal = instruction.args;
          break;
        case 'LABEL':
          break;
        default:
          throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} is not understood by this check; teach test/deploy/run-dockerfile.ts`);
      }
    }
    packagesByStage.set(stageName, packages);
    image = { root, workdir, env, user, entrypoint, cmd, healthcheck: check, expose, stopSignal, packages, packagesByStage, timings };
  }
  return image!;
}

/** A container-path argument that exists in the image, mapped to the folder standing for it. */
export function mapArgument(image: BuiltImage, arg: string): string {
  return arg.startsWith('/') && existsSync(hostPath(image.root, arg)) ? hostPath(image.root, arg) : arg;
}

/** ENTRYPOINT + CMD as the host runs them: tini's part is the test runner's (see the tests). */
export function containerCommand(image: BuiltImage): string[] {
  let command = [...image.entrypoint, ...image.cmd];
  if (command[0] !== undefined && path.basename(command[0]) === 'tini') {
    command = command.slice(command[1] === '--' ? 2 : 1);
  }
  return command.map((arg) => mapArgument(image, arg));
}

export interface ContainerOptions {
  env: Record<string, string>;
  /** Run as this uid:gid (the image's USER) when the tests run as root. */
  user?: { uid: number; gid: number };
}

export function startContainer(image: BuiltImage, command: string[], options: ContainerOptions): ChildProcess {
  return spawn(command[0]!, command.slice(1), {
    cwd: hostPath(image.root, image.workdir),
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.user ?? {}),
  });
}
