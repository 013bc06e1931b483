// The yardstick for latency under load (issue 15): an ideal queue fed the same Poisson arrivals —
// c identical servers, first come first served, every request taking exactly the measured unloaded
// service time, and no overhead at all. Its p99 is what no server with c workers can beat at that
// load (waiting for a free worker is inherent); the bench reports ours over it. The M/D/c p99 has
// no simple closed form, so it is simulated: seeded, 200,000 arrivals, exact for the model.
import { seededRandom } from '../../test/helpers/random.ts';

export interface IdealQueue {
  /** Arrivals per second. */
  rate: number;
  /** Servers working in parallel (the service's workers). */
  servers: number;
  /** Each request's service time, ms. */
  serviceMs: number;
}

/** The p-th percentile (0–100) of the response time (wait + service) of the ideal queue, ms. */
export function idealQueuePercentile(q: IdealQueue, p: number, arrivals = 200_000, seed = 1): number {
  const responses = simulateIdealQueue(q, arrivals, seed);
  return responses[Math.min(arrivals - 1, Math.floor((p / 100) * arrivals))]!;
}

/** Every arrival's response time (wait + service), ms, sorted. */
export function simulateIdealQueue(q: IdealQueue, arrivals = 200_000, seed = 1): Float64Array {
  if (!(q.rate > 0) || !(q.servers >= 1) || !(q.serviceMs > 0)) throw new Error(`not a queue: ${JSON.stringify(q)}`);
  const random = seededRandom(seed);
  const freeAt = new Float64Array(Math.floor(q.servers)); // when each server is next free, ms
  const responses = new Float64Array(arrivals);
  const meanGapMs = 1000 / q.rate;
  let now = 0;
  for (let i = 0; i < arrivals; i++) {
    now += -Math.log(1 - random()) * meanGapMs;
    // The server that frees first takes it (FCFS with identical servers).
    let s = 0;
    for (let j = 1; j < freeAt.length; j++) if (freeAt[j]! < freeAt[s]!) s = j;
    const start = Math.max(now, freeAt[s]!);
    freeAt[s] = start + q.serviceMs;
    responses[i] = freeAt[s]! - now;
  }
  return responses.sort();
}
