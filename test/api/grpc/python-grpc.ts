// Python grpcio + grpcio-tools for the interop test, installed once with pip into a cache
// (~/.cache/densenet-serve/python-grpc/py<major.minor>) so the test works on a fresh machine
// after `npm ci` with no manual step, and takes seconds afterwards.
import { execFile } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PYTHON = 'python3';
const PACKAGES = ['grpcio', 'grpcio-tools'];

export interface PythonGrpc {
  python: string;
  /** PYTHONPATH entry holding grpc and grpc_tools. */
  sitePackages: string;
}

async function attempt(args: string[], env?: NodeJS.ProcessEnv): Promise<{ ok: true } | { ok: false; output: string }> {
  try {
    await run(PYTHON, args, { env: env ?? process.env, maxBuffer: 16 * 1024 * 1024 });
    return { ok: true };
  } catch (err) {
    const e = err as { code?: string; stdout?: string; stderr?: string; message: string };
    return { ok: false, output: e.code === 'ENOENT' ? `${PYTHON} not found on PATH` : `${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || e.message };
  }
}

async function usable(sitePackages: string): Promise<boolean> {
  const env = { ...process.env, PYTHONPATH: sitePackages };
  return (await attempt(['-c', 'import grpc, grpc_tools.protoc'], env)).ok;
}

/** Returns a cache with grpcio and grpcio-tools, installing it with pip when missing or broken. */
export async function ensurePythonGrpc(): Promise<PythonGrpc> {
  let version: string;
  try {
    version = (await run(PYTHON, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'])).stdout.trim();
  } catch {
    throw new Error(`the Python interop test needs ${PYTHON} (3.8 or newer) on PATH; install Python 3 with pip`);
  }
  const cacheRoot = path.join(homedir(), '.cache', 'densenet-serve', 'python-grpc');
  const sitePackages = path.join(cacheRoot, `py${version}`);
  if (await usable(sitePackages)) return { python: PYTHON, sitePackages };

  const pip = await attempt(['-m', 'pip', '--version']);
  if (!pip.ok) {
    throw new Error(
      `pip is missing: the Python interop test installs ${PACKAGES.join(' and ')} with \`${PYTHON} -m pip\` into ${sitePackages}. ` +
      `Install pip (e.g. \`apt-get install python3-pip\` or \`${PYTHON} -m ensurepip\`) and run the tests again. (${pip.output})`,
    );
  }
  await mkdir(cacheRoot, { recursive: true });
  const staging = `${sitePackages}.partial-${process.pid}`;
  const install = (extra: string[]) => attempt([
    '-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', ...extra, '--target', staging, ...PACKAGES,
  ]);
  try {
    await rm(staging, { recursive: true, force: true });
    // No retries first: where the configured index is offline but a local one has the wheels,
    // pip's default retries only add minutes. Then once more with pip's defaults.
    let result = await install(['--retries', '0']);
    if (!result.ok) {
      await rm(staging, { recursive: true, force: true });
      result = await install([]);
    }
    if (!result.ok) throw new Error(`\`${PYTHON} -m pip install ${PACKAGES.join(' ')}\` failed; the Python interop test needs them:\n${result.output}`);
    // Publish the finished install in one step, so a broken half-install is never "the cache".
    await rm(sitePackages, { recursive: true, force: true });
    await rename(staging, sitePackages);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  if (!(await usable(sitePackages))) throw new Error(`${PACKAGES.join(' and ')} were installed into ${sitePackages} but cannot be imported`);
  return { python: PYTHON, sitePackages };
}
