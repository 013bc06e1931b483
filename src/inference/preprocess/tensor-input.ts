// Already-decoded tensors (Open Inference Protocol inputs) → the network's per-image input.
// FP32 is taken as already normalised and only checked; UINT8 is raw 0..255 pixels and gets the
// spec's polarity and (x/255 - mean)/std. Neither is resized: the shape must be the model's.
import { ServeError, invalidInput } from '../../errors.ts';
import { normalise, shouldInvert } from './pixels.ts';
import { checkPreprocessSetup, type ImageLimits, type ModelInputSpec, type PreprocessSpec } from './spec.ts';

export type TensorLayout = 'NHWC' | 'NCHW';

function fmt(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

export function tensorToImages(
  data: Float32Array | Uint8Array,
  shape: number[],
  layout: TensorLayout,
  input: ModelInputSpec,
  spec: PreprocessSpec,
  limits: ImageLimits,
  field = 'input',
): Float32Array[] {
  checkPreprocessSetup(input, spec, limits);
  if (layout !== 'NHWC' && layout !== 'NCHW') throw invalidInput(field, `layout must be NHWC or NCHW, got ${String(layout)}`, { layout });
  const isFloat = data instanceof Float32Array;
  if (!isFloat && !(data instanceof Uint8Array)) throw invalidInput(field, 'data must be FP32 or UINT8');
  const { height: H, width: W, channels: C } = input;
  const perImage = layout === 'NHWC' ? [H, W, C] : [C, H, W];
  const expected = `${fmt(['N', ...perImage])} or ${fmt(perImage)} (${layout})`;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw invalidInput(field, `shape must be non-negative integers, got ${Array.isArray(shape) ? fmt(shape) : String(shape)}`, { expected, got: shape });
  }
  if (shape.length !== 3 && shape.length !== 4) {
    throw invalidInput(field, `expected shape ${expected}, got ${fmt(shape)}`, { expected, got: shape });
  }
  const dims = shape.length === 4 ? shape.slice(1) : shape;
  if (dims.some((d, i) => d !== perImage[i])) {
    const other = layout === 'NHWC' ? [C, H, W] : [H, W, C];
    const hint = C !== H && dims.every((d, i) => d === other[i]) ? ` (that is ${layout === 'NHWC' ? 'NCHW' : 'NHWC'}; send layout accordingly)` : '';
    throw invalidInput(field, `expected shape ${expected}, got ${fmt(shape)}${hint}`, { expected, got: shape });
  }
  const n = shape.length === 4 ? shape[0]! : 1;
  if (n === 0) throw invalidInput(field, 'the batch is empty (N = 0)', { got: shape });
  if (n > limits.maxImagesPerRequest) {
    throw new ServeError('LIMIT_EXCEEDED', `${field}: ${n} images exceed maxImagesPerRequest ${limits.maxImagesPerRequest}`, {
      field,
      limit: 'maxImagesPerRequest',
      value: n,
      max: limits.maxImagesPerRequest,
    });
  }
  const size = H * W * C;
  if (data.length !== n * size) {
    throw invalidInput(field, `shape ${fmt(shape)} needs ${n * size} elements, got ${data.length}`, { expected: n * size, got: data.length });
  }
  if (isFloat) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) {
        throw invalidInput(field, `element ${i} (image ${Math.floor(i / size)}) is ${v}; FP32 input must be finite`, { index: i, value: String(v) });
      }
    }
  }
  const images: Float32Array[] = [];
  for (let b = 0; b < n; b++) {
    const chunk = data.subarray(b * size, (b + 1) * size);
    const hwc = layout === 'NHWC' ? chunk.slice() : chwToHwc(chunk, H, W, C);
    if (hwc instanceof Float32Array) {
      images.push(hwc);
    } else {
      const pixels = { data: hwc, width: W, height: H, channels: C };
      images.push(normalise(pixels, spec.mean, spec.std, shouldInvert(pixels, spec.polarity)));
    }
  }
  return images;
}

function chwToHwc<T extends Float32Array | Uint8Array>(chw: T, h: number, w: number, c: number): T {
  const out = (chw instanceof Float32Array ? new Float32Array(chw.length) : new Uint8Array(chw.length)) as T;
  const plane = h * w;
  for (let k = 0; k < c; k++) {
    const base = k * plane;
    for (let p = 0; p < plane; p++) out[p * c + k] = chw[base + p]!;
  }
  return out;
}
