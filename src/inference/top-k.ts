// Turning a row of logits into what clients read: softmax probabilities and the top-k
// classes with their labels.

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

/** Numerically stable softmax (subtracts the max before exponentiating). */
export function softmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/** The k highest scores, highest first; ties keep the lower class index first. */
export function topK(scores: Float32Array, k: number, labels: readonly string[]): Prediction[] {
  const order = Array.from(scores.keys()).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  return order.slice(0, Math.max(0, Math.min(k, scores.length))).map((index) => ({
    label: labels[index] ?? String(index),
    index,
    score: scores[index] as number,
  }));
}
