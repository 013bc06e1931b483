// The native TensorFlow provisioner's failure paths and its idempotence. Each run is a real
// `node provision.cjs` in a child process, as npm runs it; none of these cases touches the
// installed binding (they fail, or find it already in place, before changing anything).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;
const SCRIPT = path.join(ROOT, 'tools/tfjs-native/provision.cjs');

function provision(env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DENSENET_TF_')));
  return spawnSync(process.execPath, [SCRIPT], { cwd: ROOT, env: { ...clean, INIT_CWD: ROOT, ...env }, encoding: 'utf8' });
}

describe('tfjs-native provisioner', () => {
  it('is a no-op when the binding is already provisioned', () => {
    const run = provision({});
    expect(run.status).toBe(0);
    expect(run.stderr).toContain('already provisioned');
  });

  it('says what is wrong and how to fix it when the given wheel does not exist', () => {
    const run = provision({ DENSENET_TF_WHEEL: '/nonexistent/tensorflow_cpu.whl' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('DENSENET_TF_WHEEL=/nonexistent/tensorflow_cpu.whl does not exist');
    expect(run.stderr).toContain('How to fix');
    expect(run.stderr).toContain('DENSENET_TF_PROVISION=upstream');
  });

  it('rejects a library folder that is not an unpacked libtensorflow', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'libtf-'));
    const run = provision({ DENSENET_TF_LIB_DIR: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('is not an unpacked libtensorflow');
  });

  it('rejects a file that is not a wheel, without touching the installed binding', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wheel-'));
    const wheel = path.join(dir, 'tensorflow_cpu-0-py3-none-any.whl');
    writeFileSync(wheel, 'not a zip file');
    const run = provision({ DENSENET_TF_WHEEL: wheel, DENSENET_TF_CACHE_DIR: path.join(dir, 'cache') });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('could not unpack');
    expect(provision({}).stderr).toContain('already provisioned');
  });

  it('steps aside for the upstream download when asked', () => {
    const run = provision({ DENSENET_TF_PROVISION: 'upstream' });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain("leaving libtensorflow to tfjs-node's own installer");
  });
});
