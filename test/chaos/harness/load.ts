// Load over real sockets: an open loop (requests at a fixed rate whatever the answers, as real
// clients arrive) and a closed loop (N callers back to back, to measure capacity). Transports
// alternate request by request, so half the load is HTTP and half gRPC.
import type { Clients, RequestOptions, RequestResult, Transport } from './clients.ts';

export interface OpenLoopOptions extends RequestOptions {
  ratePerS: number;
  durationMs: number;
  transports?: readonly Transport[];
  /** Per-request changes to the options (by index in the run): deadlines, cancellation. */
  vary?: (index: number) => Partial<RequestOptions>;
  /** Called with every result as it arrives. */
  onResult?: (result: RequestResult) => void;
  /** Stops offering new requests early (the ones sent still settle). */
  signal?: AbortSignal;
}

export interface OpenLoopRun {
  /** Resolves when offering has stopped. */
  offered: Promise<void>;
  /** Resolves with every result once all requests have settled (each within lostAfterMs). */
  settled: Promise<RequestResult[]>;
}

const TICK_MS = 2;

export function openLoop(clients: Clients, options: OpenLoopOptions): OpenLoopRun {
  const transports = options.transports ?? ['http', 'grpc'];
  const inFlight: Array<Promise<RequestResult>> = [];
  const start = performance.now();
  const offered = (async () => {
    let issued = 0;
    for (;;) {
      const elapsed = performance.now() - start;
      if (elapsed >= options.durationMs || options.signal?.aborted) break;
      // Catch up by the schedule, not by the ticks: a late tick sends what was due meanwhile.
      const due = Math.floor((elapsed * options.ratePerS) / 1000);
      for (; issued < due; issued++) {
        const transport = transports[issued % transports.length] as Transport;
        const p = clients.send(transport, options.vary ? { ...options, ...options.vary(issued) } : options);
        if (options.onResult) void p.then(options.onResult);
        inFlight.push(p);
      }
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  })();
  return { offered, settled: offered.then(() => Promise.all(inFlight)) };
}

/** Completed requests per second with `concurrency` callers back to back for durationMs. */
export async function closedLoop(
  clients: Clients,
  concurrency: number,
  durationMs: number,
  transports: readonly Transport[] = ['http', 'grpc'],
): Promise<{ completedPerS: number; results: RequestResult[] }> {
  const end = performance.now() + durationMs;
  const results: RequestResult[] = [];
  await Promise.all(Array.from({ length: concurrency }, async (_, caller) => {
    let n = caller;
    while (performance.now() < end) {
      const r = await clients.send(transports[n++ % transports.length] as Transport, { lostAfterMs: 30_000 });
      results.push(r);
    }
  }));
  const completed = results.filter((r) => r.outcome === 'completed').length;
  return { completedPerS: (completed * 1000) / durationMs, results };
}
