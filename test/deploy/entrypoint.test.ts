// docker/entrypoint.sh: TF_INTRA_OP_THREADS from the container's CPU quota (cgroup v2 and v1,
// faked in a temporary folder), never above the cores the process may run on, never overriding
// a value that is set; server flags and commands passed through with exec.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { REPO_ROOT } from './dockerfile.ts';

const ENTRYPOINT = path.join(REPO_ROOT, 'docker/entrypoint.sh');
const work = mkdtempSync(path.join(tmpdir(), 'entrypoint-'));
// `nproc`: the cores this process may be scheduled on.
const cores = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
let n = 0;

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fake cgroup filesystem with the given files. */
function cgroup(files: Record<string, string>): string {
  const root = path.join(work, `cgroup-${n++}`);
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), `${content}\n`);
  }
  mkdirSync(root, { recursive: true });
  return root;
}

function run(args: string[], env: Record<string, string>): string {
  return execFileSync(ENTRYPOINT, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
}

/** The TF_INTRA_OP_THREADS the server would get. */
function threads(root: string, env: Record<string, string> = {}): string {
  return run(['sh', '-c', 'printf %s "${TF_INTRA_OP_THREADS-unset}"'], { DENSENET_CGROUP_ROOT: root, ...env });
}

describe('docker/entrypoint.sh', () => {
  it('uses the cgroup v2 quota in whole cores, rounded up, at most the schedulable cores', () => {
    expect(threads(cgroup({ 'cpu.max': '100000 100000' }))).toBe('1');
    expect(threads(cgroup({ 'cpu.max': '50000 100000' }))).toBe('1');
    expect(threads(cgroup({ 'cpu.max': '150000 100000' }))).toBe(String(Math.min(2, cores)));
    expect(threads(cgroup({ 'cpu.max': '6400000 100000' }))).toBe(String(Math.min(64, cores)));
    expect(threads(cgroup({ 'cpu.max': 'max 100000' }))).toBe(String(cores));
  });

  it('uses the cgroup v1 CFS quota (cpu or cpu,cpuacct), and the core count without a quota or cgroup files', () => {
    expect(threads(cgroup({ 'cpu/cpu.cfs_quota_us': '50000', 'cpu/cpu.cfs_period_us': '100000' }))).toBe('1');
    expect(threads(cgroup({ 'cpu,cpuacct/cpu.cfs_quota_us': '100000', 'cpu,cpuacct/cpu.cfs_period_us': '100000' }))).toBe('1');
    expect(threads(cgroup({ 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' }))).toBe(String(cores));
    expect(threads(cgroup({}))).toBe(String(cores));
    expect(cores).toBeLessThanOrEqual(availableParallelism());
  });

  it('leaves a TF_INTRA_OP_THREADS that is set alone, 0 included', () => {
    const root = cgroup({ 'cpu.max': '100000 100000' });
    expect(threads(root, { TF_INTRA_OP_THREADS: '7' })).toBe('7');
    expect(threads(root, { TF_INTRA_OP_THREADS: '0' })).toBe('0');
  });

  it('produces a value the server accepts', () => {
    const value = threads(cgroup({ 'cpu.max': '200000 100000' }));
    expect(loadConfig({ TF_INTRA_OP_THREADS: value }).TF_INTRA_OP_THREADS).toBe(Number(value));
  });

  it('passes flags to the server command and runs any other command instead, with exec', () => {
    // A stand-in `node` that prints what it was started with.
    const bin = path.join(work, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'node'), '#!/bin/sh\necho "node $*"\n');
    chmodSync(path.join(bin, 'node'), 0o755);
    const env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, DENSENET_CGROUP_ROOT: cgroup({}) };
    expect(run(['--workers', '3'], env).trim()).toBe('node dist/main.js --workers 3');
    expect(run([], env).trim()).toBe('node dist/main.js');
    expect(run(['echo', 'hello'], env).trim()).toBe('hello');
    // exec: the command replaces the entrypoint's shell, keeping its process id, so it is the
    // process tini signals.
    const replaced = spawnSync(ENTRYPOINT, ['sh', '-c', 'echo $$'], { env, encoding: 'utf8' });
    expect(Number(replaced.stdout.trim())).toBe(replaced.pid);
  });
});
