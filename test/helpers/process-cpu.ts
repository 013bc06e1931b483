// CPU time of a process, read from /proc/<pid>/stat (Linux): how tests measure how far a process
// got with its work, which a busy machine does not stretch the way it stretches wall time.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** One clock tick: the resolution of cpuMs. */
export const CPU_TICK_MS = 1000 / CLOCK_TICKS;

/**
 * CPU milliseconds (user + system, all threads) process `pid` has used, this process's own
 * included when `pid` is process.pid; undefined once the process is gone (a zombie still answers).
 */
export function cpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the parenthesised command name: state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CPU_TICK_MS;
}
