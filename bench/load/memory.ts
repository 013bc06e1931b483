// Memory of the server process (`--memory`): resident set size with an empty repository, with
// the model loaded on 1 worker and on every worker (→ RSS per loaded instance), then the RSS
// every `sampleEvery` requests over `requests` requests that cycle through every request kind
// (→ growth after warm-up, and its least-squares slope per 1000 requests).
import { setMaxListeners } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { grpcSender } from './grpc-driver.ts';
import { httpSender } from './http-driver.ts';
import type { Send } from './loops.ts';
import { CACHE_DIR, EMBEDDED_MODEL, modelRepository, type GeneratedModelOptions } from './model-repo.ts';
import { buildPayloads, fetchModelShape, type Kind } from './requests.ts';
import { startServerProcess, type ServerHandle, type ServerOptions } from './server-process.ts';
import { ErrorCounts } from './stats.ts';
import type { HostInfo } from './sweep.ts';

export interface MemorySample {
  requests: number;
  rssKiB: number;
}

export interface MemoryRun {
  type: 'memory';
  model: string;
  modelDescription: string;
  workers: number;
  requests: number;
  concurrency: number;
  kinds: Kind[];
  /** Server with an empty model repository, idle. Absent if it would not start that way. */
  emptyRssKiB?: number;
  /** Idle, model loaded (and warmed) on this many workers. */
  loaded: { instances: number; rssKiB: number }[];
  /** (RSS with every worker holding the model − RSS with one) / (workers − 1). */
  perInstanceKiB?: number;
  samples: MemorySample[];
  warmupRequests: number;
  rssAfterWarmupKiB: number;
  rssEndKiB: number;
  growthKiB: number;
  slopeKiBPer1000: number;
  peakKiB: number;
  errors: number;
  errorsByCause: Record<string, number>;
  /** Filled in by the CLI when it writes the JSON. */
  host?: HostInfo;
  command?: string;
  finishedAt?: string;
}

export interface MemoryOptions {
  model: string;
  repo: GeneratedModelOptions;
  workers: number;
  settings: Record<string, string>;
  requests: number;
  concurrency: number;
  sampleEvery: number;
  kinds: Kind[];
  logFile: string;
  readyTimeoutMs: number;
  cpus?: string;
  log(line: string): void;
}

function serverOptions(repository: string, options: MemoryOptions, waitFor: 'ready' | 'live'): ServerOptions {
  return {
    repository, settings: options.settings, logFile: options.logFile, readyTimeoutMs: options.readyTimeoutMs, waitFor,
    ...(options.cpus ? { cpus: options.cpus } : {}),
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 2000));

async function idleRss(repository: string, options: MemoryOptions, waitFor: 'ready' | 'live'): Promise<number> {
  const server = await startServerProcess(serverOptions(repository, options, waitFor));
  try {
    await settle();
    return (await server.memory()).rssKiB;
  } finally {
    await server.stop();
  }
}

export async function runMemory(options: MemoryOptions): Promise<MemoryRun> {
  const { log } = options;
  const empty = path.join(CACHE_DIR, 'models', 'empty');
  await mkdir(empty, { recursive: true });
  const emptyRssKiB = await idleRss(empty, options, 'live').catch((err: Error) => {
    log(`server with an empty repository: ${err.message.split('\n')[0]}`);
    return undefined;
  });
  if (emptyRssKiB !== undefined) log(`idle, empty repository: RSS ${mib(emptyRssKiB)}`);

  const loaded: MemoryRun['loaded'] = [];
  // The embedded model's manifest cannot be changed to load on one worker only.
  if (options.workers > 1 && options.model !== EMBEDDED_MODEL) {
    const one = await modelRepository(options.model, { ...options.repo, instances: 1 });
    const rssKiB = await idleRss(one.root, options, 'ready');
    loaded.push({ instances: 1, rssKiB });
    log(`idle, ${one.name} on 1 worker: RSS ${mib(rssKiB)}`);
  }
  const repo = await modelRepository(options.model, options.repo);
  const server = await startServerProcess(serverOptions(repo.root, options, 'ready'));
  try {
    await settle();
    const rssLoaded = (await server.memory()).rssKiB;
    loaded.push({ instances: options.workers, rssKiB: rssLoaded });
    log(`idle, ${repo.name} on ${options.workers} worker(s): RSS ${mib(rssLoaded)}`);
    const first = loaded[0];
    const perInstanceKiB = first && first.instances !== options.workers
      ? (rssLoaded - first.rssKiB) / (options.workers - first.instances)
      : undefined;

    const traffic = await drive(server, repo.name, options);
    const warmupRequests = traffic.samples.find((s) => s.requests >= Math.max(options.sampleEvery, options.requests * 0.1))?.requests ?? 0;
    const afterWarmup = traffic.samples.find((s) => s.requests === warmupRequests)?.rssKiB ?? rssLoaded;
    const rssEndKiB = traffic.samples.at(-1)?.rssKiB ?? rssLoaded;
    const steady = traffic.samples.filter((s) => s.requests >= warmupRequests);
    const { peakKiB } = await server.memory();
    return {
      type: 'memory',
      model: options.model,
      modelDescription: repo.description,
      workers: options.workers,
      requests: options.requests,
      concurrency: options.concurrency,
      kinds: options.kinds,
      ...(emptyRssKiB !== undefined ? { emptyRssKiB } : {}),
      loaded,
      ...(perInstanceKiB !== undefined ? { perInstanceKiB } : {}),
      samples: traffic.samples,
      warmupRequests,
      rssAfterWarmupKiB: afterWarmup,
      rssEndKiB,
      growthKiB: rssEndKiB - afterWarmup,
      slopeKiBPer1000: slope(steady) * 1000,
      peakKiB,
      errors: traffic.errors.total,
      errorsByCause: traffic.errors.byCause,
    };
  } finally {
    await server.stop();
  }
}

async function drive(server: ServerHandle, model: string, options: MemoryOptions): Promise<{ samples: MemorySample[]; errors: ErrorCounts }> {
  const payloads = await buildPayloads(await fetchModelShape(server.baseUrl, model));
  const senders: { send: Send; close(): void }[] = options.kinds.map((kind) =>
    kind === 'grpc-infer' || kind === 'grpc-classify'
      ? grpcSender(kind, server.grpcAddress, payloads, 120_000)
      : httpSender(server.baseUrl, payloads.http[kind], 120_000));
  const samples: MemorySample[] = [{ requests: 0, rssKiB: (await server.memory()).rssKiB }];
  const errors = new ErrorCounts();
  const signal = new AbortController().signal;
  setMaxListeners(0, signal);
  let issued = 0;
  let completed = 0;
  const sampling: Promise<void>[] = [];
  const caller = async () => {
    while (issued < options.requests) {
      const sender = senders[issued++ % senders.length]!;
      const outcome = await sender.send(signal);
      if (!outcome.ok) errors.add(outcome.cause);
      completed++;
      if (completed % options.sampleEvery === 0 || completed === options.requests) {
        const at = completed;
        sampling.push(server.memory().then((m) => {
          samples.push({ requests: at, rssKiB: m.rssKiB });
          if (at % (options.sampleEvery * 4) === 0 || at === options.requests) options.log(`  ${at} requests: RSS ${mib(m.rssKiB)}`);
        }));
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, caller));
  await Promise.all(sampling);
  for (const s of senders) s.close();
  samples.sort((a, b) => a.requests - b.requests);
  return { samples, errors };
}

/** Least-squares slope of RSS (KiB) per request. */
function slope(samples: MemorySample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((a, s) => a + s.requests, 0) / n;
  const my = samples.reduce((a, s) => a + s.rssKiB, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.requests - mx) * (s.rssKiB - my);
    den += (s.requests - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}
