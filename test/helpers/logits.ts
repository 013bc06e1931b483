// The project's tolerance for logits computed two ways (different kernels, folded BN, another
// engine): max |Δ| ≤ 1e-4 · max(1, max |logit|), i.e. relative for large logits.
import { expect } from 'vitest';

export const LOGIT_TOLERANCE = 1e-4;

export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
  return diff;
}

export function expectLogitsClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = LOGIT_TOLERANCE): void {
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  expect(maxAbsDiff(actual, expected)).toBeLessThanOrEqual(tolerance * scale);
}
