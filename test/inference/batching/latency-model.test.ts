import { describe, expect, it } from 'vitest';
import { LatencyModel } from '../../../src/inference/batching/index.ts';

describe('LatencyModel', () => {
  it('knows nothing before the first observation', () => {
    const model = new LatencyModel();
    expect(model.estimate(1)).toBe(Infinity);
    expect(model.estimate(8)).toBe(Infinity);
    expect(model.fit()).toBeUndefined();
  });

  it('plans with an EWMA of the mean plus twice an EWMA of the deviation, per observed size', () => {
    const model = new LatencyModel();
    model.observe(4, 40);
    expect(model.estimate(4)).toBe(40);
    model.observe(4, 60);
    // mean 40 + 0.3·20 = 46; deviation 0 + 0.3·(|60 − 40| − 0) = 6; 46 + 2·6 = 58.
    expect(model.estimate(4)).toBeCloseTo(58, 10);
    expect(model.observations()).toEqual([{ size: 4, ms: 58, mean: 46, deviation: 6 }]);
    const steady = new LatencyModel();
    for (let k = 0; k < 5; k++) steady.observe(4, 40);
    expect(steady.estimate(4)).toBe(40);
  });

  it('with one observed size: flat below it, proportional above it (never optimistic for a + b·size)', () => {
    const model = new LatencyModel();
    model.observe(4, 40);
    expect(model.estimate(1)).toBe(40);
    expect(model.estimate(8)).toBe(80);
  });

  it('interpolates between observed sizes and extrapolates with the least-squares slope', () => {
    const model = new LatencyModel();
    // latency = 10 + 5·size, observed at 1, 2 and 4.
    model.observe(1, 15);
    model.observe(2, 20);
    model.observe(4, 30);
    expect(model.fit()?.fixedMs).toBeCloseTo(10, 10);
    expect(model.fit()?.perItemMs).toBeCloseTo(5, 10);
    expect(model.estimate(3)).toBeCloseTo(25, 10);
    expect(model.estimate(8)).toBeCloseTo(50, 10);
    expect(model.estimate(32)).toBeCloseTo(170, 10);
  });

  it('extends below the smallest observed size along the fitted line, clamped at zero', () => {
    const model = new LatencyModel();
    model.observe(4, 30);
    model.observe(8, 50);
    expect(model.estimate(2)).toBeCloseTo(20, 10);
    const steep = new LatencyModel();
    steep.observe(4, 10);
    steep.observe(8, 50); // fitted intercept −30 → clamped to 0
    expect(steep.estimate(2)).toBeCloseTo(5, 10);
  });

  it('never estimates a larger batch faster than a smaller one', () => {
    const model = new LatencyModel();
    model.observe(2, 30);
    model.observe(3, 20); // a noisy sample
    expect(model.estimate(3)).toBe(30);
    expect(model.estimate(2)).toBe(30);
  });

  it('ignores nonsense samples', () => {
    const model = new LatencyModel();
    model.observe(0, 10);
    model.observe(2.5, 10);
    model.observe(2, Number.NaN);
    model.observe(2, -1);
    expect(model.observations()).toEqual([]);
  });
});
