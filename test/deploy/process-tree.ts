// The processes below a process, read from /proc (Linux), and their command lines: how the deploy
// tests see what a started server (and the worker processes it forks) really runs.
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

/** Every process below `pid`, parents before their children. */
export function descendantsOf(pid: number): number[] {
  return childrenOf(pid).flatMap((child) => [child, ...descendantsOf(child)]);
}

/** argv of a process, as the kernel has it. */
export function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}
