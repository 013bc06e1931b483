import { describe, expect, it } from 'vitest';
import { softmax, topK } from '../../src/inference/top-k.ts';

describe('softmax and top-k', () => {
  it('computes softmax exactly and stably for large logits', () => {
    const p = softmax(new Float32Array([1000, 1001, 1002]));
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const sum = e[0]! + e[1]! + e[2]!;
    e.forEach((v, i) => expect(p[i]).toBeCloseTo(v / sum, 6));
  });

  it('orders by score, breaks ties by index, labels each class and clamps k', () => {
    const scores = new Float32Array([0.1, 0.4, 0.4, 0.05, 0.05]);
    expect(topK(scores, 3, ['a', 'b', 'c', 'd', 'e'])).toEqual([
      { label: 'b', index: 1, score: scores[1] },
      { label: 'c', index: 2, score: scores[2] },
      { label: 'a', index: 0, score: scores[0] },
    ]);
    expect(topK(scores, 99, [])).toHaveLength(5);
    expect(topK(scores, 1, [])[0]?.label).toBe('1');
    expect(topK(scores, 0, [])).toEqual([]);
  });
});
