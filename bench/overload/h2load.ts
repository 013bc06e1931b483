// gRPC load with h2load (HTTP/2): unary calls with a prepared, length-prefixed request body
// (`--data`) and `content-type: application/grpc`. Per request, its `--log-file` gives the send
// time, the HTTP status and the latency — but a gRPC answer's status is in `grpc-status` (a
// header of a trailers-only answer, or a trailer), which h2load does not read: a refusal
// (RESOURCE_EXHAUSTED) and a completion are both HTTP 200 to it. Who was refused is therefore
// counted by the server (/metrics) and timed by a sampler that reads grpc-status (grpc-sampler.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runGenerator, type GeneratorRun } from './generator-process.ts';

export interface H2Sample {
  /** Send time, µs since the epoch. */
  sentUs: number;
  /** HTTP status; -1 for a stream that failed (reset, connection lost). */
  status: number;
  latencyMs: number;
}

export interface H2Summary {
  total: number;
  started: number;
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
}

export interface H2Run {
  samples: H2Sample[];
  summary: H2Summary;
  process: GeneratorRun;
  args: string[];
}

export interface H2Options {
  url: string;
  bodyFile: string;
  /** Connections (h2load "clients"). */
  connections: number;
  /** Streams in flight per connection at most. */
  streams: number;
  seconds: number;
  /** Requests per second over all connections; 0 = closed loop (each connection keeps `streams` calls in flight). */
  rate: number;
  cpus?: string | undefined;
}

export function parseLog(text: string): H2Sample[] {
  const samples: H2Sample[] = [];
  for (const line of text.split('\n')) {
    const [start, status, duration] = line.split('\t');
    if (start === undefined || status === undefined || duration === undefined) continue;
    samples.push({ sentUs: Number(start), status: Number(status), latencyMs: Number(duration) / 1000 });
  }
  return samples;
}

export function parseSummary(stdout: string): H2Summary | undefined {
  const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  if (!m) return undefined;
  const [total, started, done, succeeded, failed, errored, timeout] = m.slice(1).map(Number) as number[];
  return { total: total ?? 0, started: started ?? 0, done: done ?? 0, succeeded: succeeded ?? 0, failed: failed ?? 0, errored: errored ?? 0, timeout: timeout ?? 0 };
}

export async function runH2load(options: H2Options): Promise<H2Run> {
  const dir = await mkdtemp(path.join(tmpdir(), 'overload-h2load-'));
  const log = path.join(dir, 'requests.log');
  const args = [
    '-c', String(options.connections), '-m', String(options.streams), '-D', String(Math.ceil(options.seconds)),
    ...(options.rate > 0 ? ['--rps', String(options.rate / options.connections)] : []),
    '--log-file', log, '-d', options.bodyFile,
    '-H', 'content-type: application/grpc', '-H', 'te: trailers',
    options.url,
  ];
  try {
    const proc = await runGenerator('h2load', args, { cpus: options.cpus });
    const summary = parseSummary(proc.stdout);
    if (proc.code !== 0 || !summary) {
      throw new Error(`h2load ${args.join(' ')} failed (exit ${proc.code}): ${proc.stderr.trim() || proc.stdout.trim()}`);
    }
    return { samples: parseLog(await readFile(log, 'utf8').catch(() => '')), summary, process: proc, args };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
