// HTTP/1.1 load with wrk (keep-alive, no pipelining) and wrk-classify.lua, which records every
// request's send time, status and latency (wrk's own histogram mixes refusals and completions).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGenerator, type GeneratorRun } from './generator-process.ts';

const SCRIPT = fileURLToPath(new URL('./wrk-classify.lua', import.meta.url));

export interface HttpSample {
  /** Send time, µs since the epoch (CLOCK_REALTIME). */
  sentUs: number;
  /** HTTP status; undefined when no answer came back before wrk stopped (or the socket broke). */
  status: number | undefined;
  latencyMs: number | undefined;
  /** Open loop: how far behind its slot in the schedule the request was sent. */
  lateMs: number | undefined;
}

export interface WrkSummary {
  durationUs: number;
  /** Answers wrk counted. */
  requests: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Answers whose x-request-id matched no request this run sent. */
  unmatched: number;
}

export interface WrkRun {
  samples: HttpSample[];
  summary: WrkSummary;
  process: GeneratorRun;
  args: string[];
}

export interface WrkOptions {
  url: string;
  bodyFile: string;
  contentType: string;
  connections: number;
  threads: number;
  seconds: number;
  /** Requests per second over all threads; 0 = closed loop. */
  rate: number;
  cpus?: string | undefined;
}

const num = (s: string | undefined): number | undefined => (s === undefined || s === '-' ? undefined : Number(s));

export function parseSamples(text: string): { samples: HttpSample[]; summary: WrkSummary | undefined } {
  const samples: HttpSample[] = [];
  let summary: WrkSummary | undefined;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'r') {
      const latencyUs = num(f[5]);
      const lateUs = num(f[6]);
      samples.push({
        sentUs: Number(f[3]),
        status: num(f[4]),
        latencyMs: latencyUs === undefined ? undefined : latencyUs / 1000,
        lateMs: lateUs === undefined ? undefined : lateUs / 1000,
      });
    } else if (f[0] === 'summary') {
      const [durationUs, requests, , connect, read, write, status, timeout, unmatched] = f.slice(1).map(Number) as number[];
      summary = {
        durationUs: durationUs ?? 0, requests: requests ?? 0,
        errors: { connect: connect ?? 0, read: read ?? 0, write: write ?? 0, status: status ?? 0, timeout: timeout ?? 0 },
        unmatched: unmatched ?? 0,
      };
    }
  }
  return { samples, summary };
}

export async function runWrk(options: WrkOptions): Promise<WrkRun> {
  const url = new URL(options.url);
  const threads = Math.max(1, Math.min(options.threads, options.connections));
  const dir = await mkdtemp(path.join(tmpdir(), 'overload-wrk-'));
  const out = path.join(dir, 'samples.tsv');
  // wrk's timeout only decides what it counts as a timeout error; answers are recorded regardless.
  const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${Math.ceil(options.seconds)}s`,
    '--timeout', '120s', '-s', SCRIPT, options.url];
  try {
    const proc = await runGenerator('wrk', args, {
      cpus: options.cpus,
      env: {
        OVERLOAD_BODY: options.bodyFile,
        OVERLOAD_PATH: url.pathname + url.search,
        OVERLOAD_CONTENT_TYPE: options.contentType,
        OVERLOAD_RATE: String(options.rate / threads),
        OVERLOAD_OUT: out,
      },
    });
    const text = await readFile(out, 'utf8').catch(() => '');
    const { samples, summary } = parseSamples(text);
    if (proc.code !== 0 || !summary) {
      throw new Error(`wrk ${args.join(' ')} failed (exit ${proc.code}): ${proc.stderr.trim() || proc.stdout.trim()}`);
    }
    return { samples, summary, process: proc, args };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
