// Processes below a process, read from /proc (Linux): how tests find the worker processes of a
// server they started (in-process or as a child), to signal them from outside as an operator or
// the OOM killer would, or to read what they really run.
import { readFileSync, readdirSync } from 'node:fs';

/** Pids of `pid`'s children (every thread's: worker processes may be forked from any thread). */
export function childrenOf(pid: number): number[] {
  const pids = new Set<number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    for (const child of list ? list.split(' ') : []) pids.add(Number(child));
  }
  return [...pids];
}

/** Pids of this process's children. */
export function childPids(): Set<number> {
  return new Set(childrenOf(process.pid));
}

/** Every process below `pid`, parents before their children. */
export function descendantsOf(pid: number): number[] {
  return childrenOf(pid).flatMap((child) => [child, ...descendantsOf(child)]);
}

/** argv of a process, as the kernel has it. */
export function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

/** Children that appear while `start` runs (e.g. the worker processes of a server it starts). */
export async function newChildren<T>(start: () => Promise<T>): Promise<{ result: T; pids: number[] }> {
  const before = childPids();
  const result = await start();
  return { result, pids: [...childPids()].filter((pid) => !before.has(pid)) };
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The state letter of /proc/<pid>/stat: R running, S sleeping, T stopped, Z zombie … */
export function processState(pid: number): string {
  return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';
}
