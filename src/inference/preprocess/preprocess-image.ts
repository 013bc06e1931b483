// Encoded upload → the network's input for one image: [height, width, channels] float32,
// normalised. Decode and resize happen in sharp (off the event loop); the rest is O(model input).
import { availableParallelism } from 'node:os';
import { ServeError, invalidInput } from '../../errors.ts';
import { decodeResized, readHeader } from './decode.ts';
import { planResize } from './geometry.ts';
import { normalise, padOnto, rgbToGrey, shouldInvert } from './pixels.ts';
import { checkPreprocessSetup, type ImageLimits, type ModelInputSpec, type PreprocessSpec } from './spec.ts';

export interface PreprocessImagesOptions {
  /** Images decoded at once (default: min(4, cores)); the rest wait without holding pixels. */
  concurrency?: number;
  /** Stops starting new decodes once aborted; the call then rejects with CANCELLED (or the signal's ServeError reason). */
  signal?: AbortSignal;
}

export async function preprocessImage(
  bytes: Uint8Array,
  input: ModelInputSpec,
  spec: PreprocessSpec,
  limits: ImageLimits,
  field = 'image',
): Promise<Float32Array> {
  checkPreprocessSetup(input, spec, limits);
  return preprocessChecked(bytes, input, spec, limits, field);
}

async function preprocessChecked(bytes: Uint8Array, input: ModelInputSpec, spec: PreprocessSpec, limits: ImageLimits, field: string): Promise<Float32Array> {
  const header = await readHeader(bytes, limits, field);
  const plan = planResize(header.orientedWidth, header.orientedHeight, input, spec);
  const rgb = await decodeResized(bytes, header, plan, spec, limits, field);
  const content = input.channels === 1 ? rgbToGrey(rgb) : rgb;
  // Polarity is judged on the picture itself; the padding is background and follows the flip.
  const invert = shouldInvert(content, spec.polarity);
  const canvas = padOnto(content, input.width, input.height, plan.padLeft, plan.padTop, spec.background);
  return normalise(canvas, spec.mean, spec.std, invert);
}

function abortError(signal: AbortSignal): ServeError {
  return signal.reason instanceof ServeError ? signal.reason : new ServeError('CANCELLED', 'the request was cancelled during image preprocessing');
}

/**
 * Preprocesses a request's images, a few at a time. Fails with the error of the lowest-indexed
 * image that fails (fields are named 'images[i]'), so the answer does not depend on timing.
 */
export async function preprocessImages(
  images: Uint8Array[],
  input: ModelInputSpec,
  spec: PreprocessSpec,
  limits: ImageLimits,
  options: PreprocessImagesOptions = {},
): Promise<Float32Array[]> {
  checkPreprocessSetup(input, spec, limits);
  if (!Array.isArray(images) || images.length === 0) {
    throw invalidInput('images', 'at least one image is required');
  }
  if (images.length > limits.maxImagesPerRequest) {
    throw new ServeError('LIMIT_EXCEEDED', `images: ${images.length} images exceed maxImagesPerRequest ${limits.maxImagesPerRequest}`, {
      field: 'images',
      limit: 'maxImagesPerRequest',
      value: images.length,
      max: limits.maxImagesPerRequest,
    });
  }
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const wanted = options.concurrency ?? Math.min(4, availableParallelism());
  if (!Number.isSafeInteger(wanted) || wanted < 1) {
    throw new ServeError('INVALID_CONFIG', `preprocessImages: concurrency must be a positive integer, got ${wanted}`, { field: 'concurrency', value: wanted });
  }
  const concurrency = Math.min(wanted, images.length);
  const results = new Array<Float32Array>(images.length);
  const failures = new Map<number, unknown>();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < images.length && failures.size === 0 && !signal?.aborted) {
      const i = next++;
      try {
        results[i] = await preprocessChecked(images[i]!, input, spec, limits, `images[${i}]`);
      } catch (err) {
        failures.set(i, err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
  if (signal?.aborted) throw abortError(signal);
  return results;
}
