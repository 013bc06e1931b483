// What the server itself counted in a window, from its log: one line per request as production
// logs it (LOG_LEVEL=info; `msg` "request" for HTTP, "grpc call" for gRPC), stamped when the
// request ended (pino's `time`, ms since the epoch, the same clock as ours). Unlike /metrics
// scraped at the window's edges — which under overload took up to 13 s to answer, so its counts
// had no precise window — every line has its own time, and reading a file costs the server nothing.
import { readFile } from 'node:fs/promises';
import { latency, type Latency } from './latency.ts';

export interface ServerLine {
  /** ms since the epoch, when the request ended. */
  time: number;
  transport: 'http' | 'grpc';
  /** HTTP status as a string ("200", "429"), or the gRPC status name ("OK", "RESOURCE_EXHAUSTED"). */
  status: string;
  /** From when the server's handler saw the request to its answer, as the server measured it. */
  latencyMs: number;
}

interface LogLine {
  time?: number;
  msg?: string;
  url?: string;
  method?: string;
  status?: number | string;
  latencyMs?: number;
}

/** Inference requests of the classify route (HTTP) and Classify calls (gRPC). */
export function parseServerLog(text: string, httpPath: string): ServerLine[] {
  const lines: ServerLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.includes('"msg":"request"') && !raw.includes('"msg":"grpc call"')) continue;
    let l: LogLine;
    try {
      l = JSON.parse(raw) as LogLine;
    } catch {
      continue; // a line cut by a read while the server writes
    }
    if (l.time === undefined || l.status === undefined) continue;
    const http = l.msg === 'request' && l.url?.split('?')[0] === httpPath;
    const grpc = l.msg === 'grpc call' && l.method === 'Classify';
    if (http || grpc) lines.push({ time: l.time, transport: http ? 'http' : 'grpc', status: String(l.status), latencyMs: l.latencyMs ?? Number.NaN });
  }
  return lines;
}

/** The latest `time` of any line in the log (every line is stamped, in order of writing). */
function lastTime(text: string): number {
  const times = [...text.matchAll(/"time":(\d+)/g)];
  return times.length ? Number(times.at(-1)?.[1]) : 0;
}

/**
 * The server's lines for requests that ended in [fromMs, toMs). Waits (up to timeoutMs) until
 * the log holds a line stamped at or after toMs: the server writes its log asynchronously, in
 * order, so every earlier line is in the file by then.
 */
export async function serverLines(file: string, httpPath: string, fromMs: number, toMs: number, timeoutMs = 60_000): Promise<ServerLine[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, 'utf8');
    if (lastTime(text) >= toMs) return parseServerLog(text, httpPath).filter((l) => l.time >= fromMs && l.time < toMs);
    if (performance.now() > deadline) throw new Error(`${file}: no line stamped after the window's end within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface ServerCounts {
  /** Window length, s. */
  seconds: number;
  /** Requests that ended in the window, by "<transport> <status>" ("http 429", "grpc OK" …). */
  requests: Record<string, number>;
  /** Images completed in the window (one per 200 / OK: one image per request). */
  completed: number;
  /** Refusals as the server timed them (from when its handler saw the request), per transport. */
  refusalLatency: Record<'http' | 'grpc', Latency>;
}

export function serverCounts(lines: ServerLine[], seconds: number): ServerCounts {
  const requests: Record<string, number> = {};
  for (const l of lines) requests[`${l.transport} ${l.status}`] = (requests[`${l.transport} ${l.status}`] ?? 0) + 1;
  const refused = (t: 'http' | 'grpc', status: string) => latency(lines.filter((l) => l.transport === t && l.status === status).map((l) => l.latencyMs));
  return {
    seconds,
    requests,
    completed: (requests['http 200'] ?? 0) + (requests['grpc OK'] ?? 0),
    refusalLatency: { http: refused('http', '429'), grpc: refused('grpc', 'RESOURCE_EXHAUSTED') },
  };
}
