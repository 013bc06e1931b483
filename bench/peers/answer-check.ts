// Same network, same weights, same preprocessing recipe: a peer should name the same top class
// as our server for the same image, with nearly the same scores (sharp's resize is not PIL's),
// so the check reports the largest score difference rather than requiring equality. On the
// bench's random weights the top class hardly depends on the image (the scores are all near
// 1/classes), so the score difference, relative to the top score, is the telling number.
import type { AnswerCheck } from '../load/sweep.ts';

type Top = { index: number; score: number };

/** The first image's top-k from a classify answer ({predictions: [[{index, score}, …]]}). */
export function topOf(answer: unknown): Top[] {
  const predictions = (answer as { predictions?: unknown } | undefined)?.predictions;
  const first = Array.isArray(predictions) ? (predictions[0] as unknown) : undefined;
  if (!Array.isArray(first)) throw new Error(`not a classify answer: ${JSON.stringify(answer).slice(0, 200)}`);
  return first.map((p: { index?: unknown; score?: unknown }) => {
    if (typeof p.index !== 'number' || typeof p.score !== 'number') throw new Error(`not a prediction: ${JSON.stringify(p)}`);
    return { index: p.index, score: p.score };
  });
}

export function compareAnswers(ours: unknown, peer: unknown): AnswerCheck {
  const oursTop5 = topOf(ours).slice(0, 5);
  const peerTop5 = topOf(peer).slice(0, 5);
  let maxScoreDiff = 0;
  for (const p of peerTop5) {
    const o = oursTop5.find((x) => x.index === p.index);
    if (o) maxScoreDiff = Math.max(maxScoreDiff, Math.abs(o.score - p.score));
  }
  const top = oursTop5[0]?.score ?? Number.NaN;
  return { oursTop5, peerTop5, sameTop1: oursTop5[0]?.index === peerTop5[0]?.index, maxScoreDiff, maxRelativeScoreDiff: maxScoreDiff / top };
}
