// Numbers of the engine bench: logits agreement with the reference, and timing statistics.

export interface Agreement {
  /** max |Δlogit| against the reference. */
  maxAbsDiff: number;
  /** The allowed max |Δlogit|: tolerance · max(1, max |reference logit|). */
  allowed: number;
  ok: boolean;
}

export function compareLogits(actual: Float32Array, reference: Float32Array, tolerance: number): Agreement {
  if (actual.length !== reference.length) {
    return { maxAbsDiff: Infinity, allowed: 0, ok: false };
  }
  let maxAbsDiff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(actual[i]! - reference[i]!);
    // A NaN logit is a disagreement, never a pass.
    maxAbsDiff = Number.isNaN(d) ? Infinity : Math.max(maxAbsDiff, d);
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  const allowed = tolerance * Math.max(1, scale);
  return { maxAbsDiff, allowed, ok: maxAbsDiff <= allowed };
}

/** `count` rows taken cyclically from `rows` (each `width` values long). */
export function tileRows(rows: Float32Array, width: number, count: number): Float32Array {
  const available = rows.length / width;
  const out = new Float32Array(count * width);
  for (let i = 0; i < count; i++) out.set(rows.subarray((i % available) * width, (i % available + 1) * width), i * width);
  return out;
}

export interface Summary {
  runs: number;
  median: number;
  min: number;
  p10: number;
  p90: number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => {
    if (sorted.length === 0) return NaN;
    const pos = q * (sorted.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
  };
  return { runs: sorted.length, median: at(0.5), min: sorted[0] ?? NaN, p10: at(0.1), p90: at(0.9) };
}
