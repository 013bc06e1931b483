import { readFileSync } from 'node:fs';
import { parseIdxDataset } from '../../../src/eval/idx.ts';
import { shouldInvert } from '../../../src/inference/preprocess/pixels.ts';
import { describe, expect, it } from 'vitest';
import {
  checkPreprocessSetup,
  DEFAULT_IMAGE_LIMITS,
  IMAGENET_PREPROCESS,
  preprocessImage,
  type PreprocessSpec,
} from '../../../src/inference/preprocess/index.ts';
import { at, encodePng, expectServeError, pixels, pixelSpec, raw, solidPng } from './images.ts';

const L = DEFAULT_IMAGE_LIMITS;

describe('normalisation', () => {
  it('a solid colour gives (c/255 - mean)/std in every value, within 1e-6 (ImageNet spec)', async () => {
    const rgb: [number, number, number] = [123, 45, 210];
    const out = await preprocessImage(await solidPng(300, 200, rgb), { height: 224, width: 224, channels: 3 }, IMAGENET_PREPROCESS, L);
    expect(out.length).toBe(224 * 224 * 3);
    const want = rgb.map((c, k) => (c / 255 - IMAGENET_PREPROCESS.mean[k]!) / IMAGENET_PREPROCESS.std[k]!);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - want[i % 3]!));
    expect(worst).toBeLessThan(1e-6);
  });

  it('a grey model with one mean/std: the luma of the colour, normalised', async () => {
    const spec: PreprocessSpec = { ...pixelSpec(), mean: [0.286], std: [0.353] };
    const out = await preprocessImage(await solidPng(40, 30, [200, 30, 40]), { height: 28, width: 28, channels: 1 }, spec, L);
    expect(out.length).toBe(28 * 28);
    const want = (82 / 255 - 0.286) / 0.353; // PIL luma of (200, 30, 40) is 82
    for (const v of out) expect(v).toBeCloseTo(want, 6);
  });

  it('the named defaults', () => {
    expect(IMAGENET_PREPROCESS).toEqual({
      resizeMode: 'resize-crop',
      resizeShorterTo: 256,
      interpolation: 'bilinear',
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      polarity: 'as-is',
      background: 255,
    });
    expect(DEFAULT_IMAGE_LIMITS).toEqual({ maxEncodedBytes: 20 * 1024 * 1024, maxPixels: 40_000_000, maxImagesPerRequest: 64, maxDimension: 16_384 });
    expect(Object.isFrozen(IMAGENET_PREPROCESS)).toBe(true);
  });
});

describe('polarity', () => {
  const size = { height: 20, width: 20, channels: 1 } as const;
  // A 20×20 canvas of `bg` with a 10×10 square of `fg` in the middle.
  const squareOn = (bg: number, fg: number) =>
    encodePng(20, 20, 1, Array.from({ length: 400 }, (_, i) => (i % 20 >= 5 && i % 20 < 15 && i / 20 >= 5 && i / 20 < 15 ? fg : bg)));

  it("'as-is' keeps pixels, 'invert' always inverts", async () => {
    const png = squareOn(200, 10);
    const asIs = await preprocessImage(png, size, pixelSpec({ polarity: 'as-is' }), L);
    const inverted = await preprocessImage(png, size, pixelSpec({ polarity: 'invert' }), L);
    expect([at(asIs, 20, 1, 0, 0), at(asIs, 20, 1, 10, 10)]).toEqual([200, 10]);
    expect([at(inverted, 20, 1, 0, 0), at(inverted, 20, 1, 10, 10)]).toEqual([55, 245]);
  });

  it("'dark-background' inverts a dark garment on a light background", async () => {
    const out = await preprocessImage(squareOn(240, 30), size, pixelSpec({ polarity: 'dark-background' }), L);
    expect([at(out, 20, 1, 0, 0), at(out, 20, 1, 10, 10)]).toEqual([15, 225]);
  });

  it("'dark-background' keeps a light garment on a dark background", async () => {
    const out = await preprocessImage(squareOn(15, 230), size, pixelSpec({ polarity: 'dark-background' }), L);
    expect([at(out, 20, 1, 0, 0), at(out, 20, 1, 10, 10)]).toEqual([15, 230]);
  });

  it("'dark-background' keeps a dark-bordered image whose middle is darker still (a sandal, a bag's handle)", async () => {
    const out = await preprocessImage(squareOn(40, 5), size, pixelSpec({ polarity: 'dark-background' }), L);
    expect([at(out, 20, 1, 0, 0), at(out, 20, 1, 10, 10)]).toEqual([40, 5]);
  });

  it("'dark-background' keeps every one of the 10,000 Fashion-MNIST test images as it is", () => {
    const set = parseIdxDataset(
      readFileSync(new URL('../../fixtures/fashion-mnist/t10k-images-idx3-ubyte.gz', import.meta.url)),
      readFileSync(new URL('../../fixtures/fashion-mnist/t10k-labels-idx1-ubyte.gz', import.meta.url)),
    );
    let inverted = 0;
    for (let i = 0; i < set.count; i++) {
      const data = set.images.subarray(i * 784, (i + 1) * 784);
      if (shouldInvert({ data, width: 28, height: 28, channels: 1 }, 'dark-background')) inverted++;
    }
    expect(inverted).toBe(0);
  });

  it("'dark-background' with mean/std: inversion happens before normalisation", async () => {
    const spec = pixelSpec({ polarity: 'dark-background', mean: [0.5], std: [0.25] });
    const out = await preprocessImage(squareOn(240, 30), size, spec, L);
    expect(at(out, 20, 1, 0, 0)).toBeCloseTo((15 / 255 - 0.5) / 0.25, 6);
    expect(at(out, 20, 1, 10, 10)).toBeCloseTo((225 / 255 - 0.5) / 0.25, 6);
  });

  it('letterbox padding is background in the upload’s terms, so it flips with the picture', async () => {
    // A 40×20 white photo with a dark blob, letterboxed into 20×20 on a white (255) canvas:
    // judged a light background → inverted, and the padding turns dark with it.
    const photo = pixels(40, 20, 3, (x, y) => (Math.abs(x - 20) < 6 && Math.abs(y - 10) < 6 ? [20, 20, 20] : [250, 250, 250]));
    const png = await raw(photo, 40, 20, 3).png().toBuffer();
    const out = await preprocessImage(png, size, pixelSpec({ resizeMode: 'letterbox', polarity: 'dark-background', background: 255 }), L);
    expect(at(out, 20, 1, 10, 0)).toBe(0); // padding row: 255 inverted
    expect(at(out, 20, 1, 10, 19)).toBe(0);
    expect(at(out, 20, 1, 0, 10)).toBe(5); // photo's light border: 250 inverted
    expect(at(out, 20, 1, 10, 10)).toBeGreaterThan(200); // the blob, now light
  });
});

describe('setup checks (INVALID_CONFIG, naming the field)', () => {
  const input = { height: 8, width: 8, channels: 3 } as const;
  it.each([
    [{ mean: [0.5, 0.5] }, 'preprocessing.mean'],
    [{ std: [0.2, 0, 0.2] }, 'preprocessing.std'],
    [{ background: 300 }, 'preprocessing.background'],
    [{ resizeShorterTo: 0 }, 'preprocessing.resizeShorterTo'],
    [{ interpolation: 'lanczos' }, 'preprocessing.interpolation'],
  ] as [Partial<PreprocessSpec>, string][])('%o → %s', async (override, field) => {
    await expectServeError(() => checkPreprocessSetup(input, pixelSpec(override), L), 'INVALID_CONFIG', { field });
  });

  it('channels other than 1 or 3', async () => {
    await expectServeError(() => checkPreprocessSetup({ height: 8, width: 8, channels: 4 as 3 }, pixelSpec(), L), 'INVALID_CONFIG', {
      field: 'input.channels',
    });
  });
});
