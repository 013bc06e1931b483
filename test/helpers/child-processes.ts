// This process's child processes, read from /proc (Linux): how tests find the worker processes of
// a server they started in-process, to signal them from outside as an operator or the OOM killer
// would.
import { readFileSync, readdirSync } from 'node:fs';

/** Pids of this process's children (every thread's, as worker processes may be forked from any). */
export function childPids(): Set<number> {
  const pids = new Set<number>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    const list = readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim();
    for (const pid of list ? list.split(' ') : []) pids.add(Number(pid));
  }
  return pids;
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
