// Resident memory of a process and its descendants, from /proc (Linux). The server's
// onnxruntime workers are child processes, so "the service's memory" is the whole tree; used by
// the load generator's memory check (bench/load) and the chaos soak (test/chaos).
import { readFile } from 'node:fs/promises';

export interface ProcessTreeMemory {
  /** Resident set size now, KiB, summed over the tree. */
  rssKiB: number;
  /** Each process's own peak resident set size (VmHWM), KiB, summed. */
  peakKiB: number;
}

export async function readTreeMemory(pid: number): Promise<ProcessTreeMemory> {
  let rssKiB = 0;
  let peakKiB = 0;
  for (const id of await processTree(pid)) {
    const status = await readFile(`/proc/${id}/status`, 'utf8').catch(() => '');
    if (!status) continue; // exited between the listing and the read
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    rssKiB += field('VmRSS');
    peakKiB += field('VmHWM');
  }
  return { rssKiB: rssKiB || Number.NaN, peakKiB: peakKiB || Number.NaN };
}

/** pid and all its descendants, from the kernel's per-thread children lists. */
async function processTree(pid: number): Promise<number[]> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const ids = children.split(' ').filter((s) => s.trim() !== '').map(Number);
  const below = await Promise.all(ids.map(processTree));
  return [pid, ...below.flat()];
}
