// The bench's latency yardstick (bench/load/ideal-queue.ts) against queueing theory it must agree
// with: M/D/1's mean response time is D + ρD / (2(1 − ρ)) (Pollaczek–Khinchine); an idle queue
// answers in D; two servers wait less than one at the same utilisation per server.
import { describe, expect, it } from 'vitest';
import { idealQueuePercentile, simulateIdealQueue } from '../../bench/load/ideal-queue.ts';

const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('the ideal queue', () => {
  it('matches the Pollaczek–Khinchine mean of M/D/1 at several loads', () => {
    for (const rho of [0.3, 0.5, 0.8]) {
      const serviceMs = 10;
      const rate = (rho / serviceMs) * 1000;
      const expected = serviceMs + (rho * serviceMs) / (2 * (1 - rho));
      expect(mean(simulateIdealQueue({ rate, servers: 1, serviceMs }, 400_000, 7)) / expected).toBeCloseTo(1, 1);
    }
  });

  it('answers in the service time when nearly idle, and never faster', () => {
    const responses = simulateIdealQueue({ rate: 0.01, servers: 2, serviceMs: 40 }, 20_000);
    expect(responses[0]).toBeCloseTo(40, 6);
    expect(idealQueuePercentile({ rate: 0.01, servers: 2, serviceMs: 40 }, 99, 20_000)).toBeCloseTo(40, 6);
  });

  it('waits less with two servers than with one at the same utilisation per server', () => {
    const one = idealQueuePercentile({ rate: 50, servers: 1, serviceMs: 10 }, 99);
    const two = idealQueuePercentile({ rate: 100, servers: 2, serviceMs: 10 }, 99);
    expect(two).toBeLessThan(one);
    expect(two).toBeGreaterThan(10);
  });

  it('refuses what is not a queue', () => {
    expect(() => idealQueuePercentile({ rate: 0, servers: 1, serviceMs: 1 }, 99)).toThrow(/not a queue/);
  });
});
