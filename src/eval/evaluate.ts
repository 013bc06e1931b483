// Accuracy of a served model on a labelled image set, measured through the service's own
// pipeline: each test image is encoded as a PNG and classified exactly as an upload would be
// (decode, polarity, resize, normalisation, batching, worker threads).
import sharp from 'sharp';
import type { InferenceService } from '../inference/index.ts';
import type { LabelledImages } from './idx.ts';

export interface EvaluationResult {
  count: number;
  correct: number;
  accuracy: number;
  /** confusion[true][predicted] */
  confusion: number[][];
  perClassAccuracy: number[];
  imagesPerSecond: number;
}

export interface EvaluateOptions {
  /** Evaluate only the first n images. */
  limit?: number;
  /** Requests in flight at once (keeps the batcher's batches full). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function evaluate(service: InferenceService, model: string, set: LabelledImages, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const total = Math.min(set.count, options.limit ?? set.count);
  const classes = Math.max(...set.labels.subarray(0, total)) + 1;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const pixels = set.height * set.width;
  let next = 0;
  let done = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const png = await sharp(set.images.subarray(i * pixels, (i + 1) * pixels), {
        raw: { width: set.width, height: set.height, channels: 1 },
      }).png().toBuffer();
      const result = await service.classify(model, [png], 1);
      const predicted = result.predictions[0]?.[0]?.index ?? -1;
      const row = confusion[set.labels[i] as number] as number[];
      row[predicted] = (row[predicted] ?? 0) + 1;
      done++;
      if (done % 500 === 0) options.onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 32 }, worker));
  const correct = confusion.reduce((sum, row, c) => sum + (row[c] ?? 0), 0);
  return {
    count: total,
    correct,
    accuracy: correct / total,
    confusion,
    perClassAccuracy: confusion.map((row, c) => (row[c] ?? 0) / Math.max(1, row.reduce((a, b) => a + b, 0))),
    imagesPerSecond: (total * 1000) / (performance.now() - started),
  };
}
