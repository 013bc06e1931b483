import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_LIMITS, tensorToImages, type ModelInputSpec } from '../../../src/inference/preprocess/index.ts';
import { expectServeError, pixelSpec, seededRandom } from './images.ts';

const L = DEFAULT_IMAGE_LIMITS;
const IN: ModelInputSpec = { height: 4, width: 5, channels: 3 };
const SIZE = 4 * 5 * 3;
const spec = pixelSpec({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });

/** NHWC → NCHW, the way a client using PyTorch's layout would send it. */
function toNchw<T extends Float32Array | Uint8Array>(nhwc: T, n: number, h: number, w: number, c: number): T {
  const out = (nhwc instanceof Float32Array ? new Float32Array(nhwc.length) : new Uint8Array(nhwc.length)) as T;
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = nhwc[((b * h + y) * w + x) * c + k]!;
  return out;
}

describe('tensorToImages', () => {
  const random = seededRandom(42);
  const floats = Float32Array.from({ length: 2 * SIZE }, () => random() * 4 - 2);
  const bytes = Uint8Array.from({ length: 2 * SIZE }, () => Math.floor(random() * 256));

  it('FP32 NHWC is taken as-is (already normalised), one copy per image', () => {
    const images = tensorToImages(floats, [2, 4, 5, 3], 'NHWC', IN, spec, L);
    expect(images).toHaveLength(2);
    expect(Array.from(images[0]!)).toEqual(Array.from(floats.subarray(0, SIZE)));
    expect(Array.from(images[1]!)).toEqual(Array.from(floats.subarray(SIZE)));
    expect(images[0]!.buffer).not.toBe(floats.buffer);
  });

  it('NCHW gives the same images as NHWC (FP32 and UINT8)', () => {
    const a = tensorToImages(floats, [2, 4, 5, 3], 'NHWC', IN, spec, L);
    const b = tensorToImages(toNchw(floats, 2, 4, 5, 3), [2, 3, 4, 5], 'NCHW', IN, spec, L);
    expect(b.map((x) => Array.from(x))).toEqual(a.map((x) => Array.from(x)));
    const c = tensorToImages(bytes, [2, 4, 5, 3], 'NHWC', IN, spec, L);
    const d = tensorToImages(toNchw(bytes, 2, 4, 5, 3), [2, 3, 4, 5], 'NCHW', IN, spec, L);
    expect(d.map((x) => Array.from(x))).toEqual(c.map((x) => Array.from(x)));
  });

  it('UINT8 is raw pixels: (x/255 - mean)/std per channel, within 1e-6', () => {
    const [first] = tensorToImages(bytes.subarray(0, SIZE), [4, 5, 3], 'NHWC', IN, spec, L);
    expect(first!.length).toBe(SIZE);
    for (let i = 0; i < SIZE; i++) {
      const k = i % 3;
      expect(Math.abs(first![i]! - (bytes[i]! / 255 - spec.mean[k]!) / spec.std[k]!)).toBeLessThan(1e-6);
    }
  });

  it('UINT8 gets the polarity; FP32 does not', () => {
    const inv = pixelSpec({ polarity: 'invert' });
    const u8 = tensorToImages(Uint8Array.from([0, 10, 255]), [1, 1, 1, 3], 'NHWC', { height: 1, width: 1, channels: 3 }, inv, L);
    expect(Array.from(u8[0]!)).toEqual([255, 245, 0]);
    const f32 = tensorToImages(Float32Array.from([0, 10, 255]), [1, 1, 1, 3], 'NHWC', { height: 1, width: 1, channels: 3 }, inv, L);
    expect(Array.from(f32[0]!)).toEqual([0, 10, 255]);
  });

  it('a single image may drop the batch dimension', () => {
    expect(tensorToImages(floats.subarray(0, SIZE), [3, 4, 5], 'NCHW', IN, spec, L)).toHaveLength(1);
  });

  it('a shape that is not the model’s names the field, what was expected and what came', async () => {
    const err = await expectServeError(() => tensorToImages(floats, [2, 3, 4, 5], 'NHWC', IN, spec, L, 'inputs[0]'), 'INVALID_INPUT', {
      field: 'inputs[0]',
      got: [2, 3, 4, 5],
    });
    expect(err.message).toBe('inputs[0]: expected shape [N, 4, 5, 3] or [4, 5, 3] (NHWC), got [2, 3, 4, 5] (that is NCHW; send layout accordingly)');
    await expectServeError(() => tensorToImages(floats, [2, 4, 5, 1], 'NHWC', IN, spec, L), 'INVALID_INPUT', { field: 'input' });
    await expectServeError(() => tensorToImages(floats, [120], 'NHWC', IN, spec, L), 'INVALID_INPUT', { field: 'input' });
    await expectServeError(() => tensorToImages(floats, [1, 2, 4, 5, 3], 'NHWC', IN, spec, L), 'INVALID_INPUT', { field: 'input' });
    await expectServeError(() => tensorToImages(floats, [2, 4.5, 5, 3], 'NHWC', IN, spec, L), 'INVALID_INPUT', { field: 'input' });
    await expectServeError(() => tensorToImages(floats, [2, 4, 5, 3], 'HWC' as 'NHWC', IN, spec, L), 'INVALID_INPUT', { field: 'input' });
  });

  it('data length must equal the product of the shape', async () => {
    const err = await expectServeError(() => tensorToImages(floats.subarray(1), [2, 4, 5, 3], 'NHWC', IN, spec, L), 'INVALID_INPUT', {
      field: 'input',
      expected: 120,
      got: 119,
    });
    expect(err.message).toContain('needs 120 elements, got 119');
  });

  it('NaN and ±Infinity in FP32 are rejected with their index', async () => {
    for (const [bad, name] of [
      [NaN, 'NaN'],
      [Infinity, 'Infinity'],
      [-Infinity, '-Infinity'],
    ] as const) {
      const data = Float32Array.from(floats);
      data[SIZE + 7] = bad;
      const err = await expectServeError(() => tensorToImages(data, [2, 4, 5, 3], 'NHWC', IN, spec, L), 'INVALID_INPUT', {
        field: 'input',
        index: SIZE + 7,
        value: name,
      });
      expect(err.message).toContain(`element ${SIZE + 7} (image 1) is ${name}`);
    }
  });

  it('batch size: over maxImagesPerRequest is LIMIT_EXCEEDED, zero is INVALID_INPUT', async () => {
    const limits = { ...L, maxImagesPerRequest: 1 };
    await expectServeError(() => tensorToImages(floats, [2, 4, 5, 3], 'NHWC', IN, spec, limits), 'LIMIT_EXCEEDED', {
      field: 'input',
      limit: 'maxImagesPerRequest',
      value: 2,
      max: 1,
    });
    await expectServeError(() => tensorToImages(new Float32Array(0), [0, 4, 5, 3], 'NHWC', IN, spec, L), 'INVALID_INPUT', { field: 'input' });
  });
});
