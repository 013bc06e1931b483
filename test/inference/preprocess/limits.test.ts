import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import { decodeResized } from '../../../src/inference/preprocess/decode.ts';
import { planResize } from '../../../src/inference/preprocess/geometry.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessImage, preprocessImages, type ImageLimits, type ModelInputSpec } from '../../../src/inference/preprocess/index.ts';
import { expectServeError, jpegDeclaring, pixels, pixelSpec, pngDeclaring, raw, seededRandom, solidPng } from './images.ts';

const L = DEFAULT_IMAGE_LIMITS;
const IN: ModelInputSpec = { height: 16, width: 16, channels: 3 };
const spec = pixelSpec({ resizeMode: 'resize-crop' });

// A small photo-like picture (gradients and a disc), in the two most common upload formats.
const picture = pixels(48, 32, 3, (x, y) => {
  const disc = (x - 24) ** 2 + (y - 16) ** 2 < 100;
  return disc ? [240, 200, 40] : [x * 5, y * 7, 255 - x * 5];
});
const jpeg = await raw(picture, 48, 32, 3).jpeg({ quality: 85 }).toBuffer();
const png = await raw(picture, 48, 32, 3).png().toBuffer();

/**
 * How many times sharp produced pixels (toBuffer: every decode ends there) while `run` ran.
 * The real sharp runs; the spy only counts. "Refused at once" means refused from the header:
 * no pixel decoded, whatever the machine's speed.
 */
async function pixelOutputs(run: () => Promise<unknown>): Promise<number> {
  const toBuffer = vi.spyOn(sharp.prototype, 'toBuffer');
  try {
    await run();
    return toBuffer.mock.calls.length;
  } finally {
    toBuffer.mockRestore();
  }
}

describe('size limits, checked before decoding', () => {
  it('encoded bytes over maxEncodedBytes', async () => {
    const limits: ImageLimits = { ...L, maxEncodedBytes: png.length - 1 };
    const err = await expectServeError(preprocessImage(png, IN, spec, limits, 'images[0]'), 'LIMIT_EXCEEDED', {
      field: 'images[0]',
      limit: 'maxEncodedBytes',
      value: png.length,
      max: png.length - 1,
    });
    expect(err.message).toMatch(/^images\[0\]: /);
    // Exactly at the limit is fine.
    await expect(preprocessImage(png, IN, spec, { ...L, maxEncodedBytes: png.length })).resolves.toHaveLength(16 * 16 * 3);
  });

  it('a PNG bomb: a few hundred bytes declaring 50000×50000 is refused at once', async () => {
    const bomb = pngDeclaring(50_000, 50_000);
    expect(bomb.length).toBeLessThan(1000);
    let err!: ServeError;
    const outputs = await pixelOutputs(async () => {
      err = await expectServeError(preprocessImage(bomb, IN, spec, L, 'images[3]'), 'LIMIT_EXCEEDED', {
        field: 'images[3]',
        limit: 'maxPixels',
        value: 2_500_000_000,
        max: L.maxPixels,
      });
    });
    expect(outputs).toBe(0);
    expect(err.message).toContain('50000×50000');
    // The count does see a decode: an image within the limits goes through toBuffer.
    expect(await pixelOutputs(() => preprocessImage(png, IN, spec, L))).toBeGreaterThanOrEqual(1);
  });

  it('a real JPEG whose frame header declares 60000×40000 is refused at once', async () => {
    const bomb = await jpegDeclaring(60_000, 40_000);
    const outputs = await pixelOutputs(() =>
      expectServeError(preprocessImage(bomb, IN, spec, L), 'LIMIT_EXCEEDED', { field: 'image', limit: 'maxPixels', value: 2_400_000_000 }),
    );
    expect(outputs).toBe(0);
    // The same JPEG declaring a size within the limits is decoded (and fails on its 16×16 data).
    const honest = await jpegDeclaring(600, 400);
    expect(await pixelOutputs(() => preprocessImage(honest, IN, spec, L).catch(() => undefined))).toBeGreaterThanOrEqual(1);
  });

  it('a side over maxDimension (few pixels in total)', async () => {
    await expectServeError(preprocessImage(pngDeclaring(20_000, 2), IN, spec, L), 'LIMIT_EXCEEDED', {
      limit: 'maxDimension',
      value: 20_000,
      max: 16_384,
    });
  });

  it('maxPixels counts the declared size: exactly at the limit passes, one pixel over fails', async () => {
    await expect(preprocessImage(png, IN, spec, { ...L, maxPixels: 48 * 32 })).resolves.toHaveLength(16 * 16 * 3);
    await expectServeError(preprocessImage(png, IN, spec, { ...L, maxPixels: 48 * 32 - 1 }), 'LIMIT_EXCEEDED', { limit: 'maxPixels', value: 1536 });
  });

  it("sharp's limitInputPixels stands behind the header check", async () => {
    const plan = planResize(48, 32, IN, spec);
    const header = { format: 'png', width: 48, height: 32, orientedWidth: 48, orientedHeight: 32 };
    await expectServeError(decodeResized(png, header, plan, spec, { ...L, maxPixels: 100 }, 'image'), 'LIMIT_EXCEEDED', { limit: 'maxPixels' });
  });

  it('too many images; no images', async () => {
    const images = Array.from({ length: L.maxImagesPerRequest + 1 }, () => png);
    await expectServeError(preprocessImages(images, IN, spec, L), 'LIMIT_EXCEEDED', {
      field: 'images',
      limit: 'maxImagesPerRequest',
      value: 65,
      max: 64,
    });
    await expectServeError(preprocessImages([], IN, spec, L), 'INVALID_INPUT', { field: 'images' });
  });
});

describe('undecodable input is INVALID_INPUT, naming the image', () => {
  const cases: [string, () => Promise<Uint8Array> | Uint8Array][] = [
    ['zero bytes', () => new Uint8Array(0)],
    ['garbage', () => Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)],
    ['text', () => new TextEncoder().encode('{"image": "not really"}')],
    ['a PNG signature alone', () => png.subarray(0, 8)],
    ['JPEG cut after the header', () => jpeg.subarray(0, 300)],
    ['JPEG cut halfway through the scan', () => jpeg.subarray(0, Math.floor(jpeg.length * 0.6))],
    ['JPEG missing only its end marker and last bytes', () => jpeg.subarray(0, jpeg.length - 40)],
    ['PNG cut halfway', () => png.subarray(0, Math.floor(png.length * 0.5))],
    ['PNG with a bit flipped in the compressed data (CRC mismatch)', () => flip(png, png.indexOf('IDAT') + 20)],
    ['JPEG with its SOI marker flipped', () => flip(jpeg, 1)],
    ['PNG with its signature flipped', () => flip(png, 1)],
  ];
  for (const [name, make] of cases) {
    it(name, async () => {
      const bad = await make();
      const err = await expectServeError(preprocessImages([png, jpeg, bad], IN, spec, L), 'INVALID_INPUT', { field: 'images[2]' });
      expect(err.message).toMatch(/^images\[2\]: not a decodable image \(.+\)$/);
    });
  }

  it('a PNG missing only its IEND chunk still decodes: every pixel is there', async () => {
    await expect(preprocessImage(png.subarray(0, png.length - 12), IN, spec, L)).resolves.toHaveLength(16 * 16 * 3);
  });

  it('SVG (which sharp could render) is refused as an unsupported format', async () => {
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    expect((await sharp(svg).metadata()).format).toBe('svg');
    const err = await expectServeError(preprocessImage(svg, IN, spec, L), 'INVALID_INPUT', { field: 'image', format: 'svg' });
    expect(err.message).toContain("unsupported image format 'svg'");
  });

  it('not bytes at all', async () => {
    await expectServeError(preprocessImage('abc' as unknown as Uint8Array, IN, spec, L), 'INVALID_INPUT', { field: 'image' });
  });

  it('with several bad images, the lowest index is reported whatever finishes first', async () => {
    const big = await solidPng(1500, 1000, [10, 20, 30]);
    for (let run = 0; run < 3; run++) {
      await expectServeError(preprocessImages([big, new Uint8Array(3), big, new Uint8Array(5)], IN, spec, L, { concurrency: 4 }), 'INVALID_INPUT', {
        field: 'images[1]',
      });
    }
  });

  it('concurrency must be a positive integer', async () => {
    await expectServeError(preprocessImages([png], IN, spec, L, { concurrency: 0 }), 'INVALID_CONFIG', { field: 'concurrency' });
    await expectServeError(preprocessImages([png], IN, spec, L, { concurrency: NaN }), 'INVALID_CONFIG', { field: 'concurrency' });
  });

  it('an aborted request stops with CANCELLED', async () => {
    const controller = new AbortController();
    controller.abort();
    await expectServeError(preprocessImages([png], IN, spec, L, { signal: controller.signal }), 'CANCELLED');
  });
});

describe('seeded mutations: every outcome is a decode or a ServeError', () => {
  for (const [name, original] of [
    ['JPEG', jpeg],
    ['PNG', png],
  ] as const) {
    it(`100 mutations of a ${original.length}-byte ${name}`, async () => {
      const random = seededRandom(name === 'JPEG' ? 1234 : 5678);
      const outcomes = { decoded: 0, INVALID_INPUT: 0, LIMIT_EXCEEDED: 0 };
      for (let i = 0; i < 100; i++) {
        const bytes = mutate(original, random);
        try {
          const out = await preprocessImage(bytes, IN, spec, L, `images[${i}]`);
          expect(out.length).toBe(16 * 16 * 3);
          expect(out.every(Number.isFinite)).toBe(true);
          outcomes.decoded++;
        } catch (err) {
          expect(err, `mutation ${i}: ${String(err)}`).toBeInstanceOf(ServeError);
          const code = (err as ServeError).code;
          expect(['INVALID_INPUT', 'LIMIT_EXCEEDED'], `mutation ${i}: ${(err as Error).message}`).toContain(code);
          expect((err as ServeError).details.field).toBe(`images[${i}]`);
          outcomes[code as 'INVALID_INPUT' | 'LIMIT_EXCEEDED']++;
        }
      }
      expect(outcomes.decoded + outcomes.INVALID_INPUT + outcomes.LIMIT_EXCEEDED).toBe(100);
      // JPEG has no checksums: many damaged files still decode (to damaged pixels). PNG's CRCs
      // (checked at failOn 'error') catch nearly every change to a chunk.
      if (name === 'JPEG') expect(outcomes.decoded).toBeGreaterThan(10);
      expect(outcomes.INVALID_INPUT).toBeGreaterThan(name === 'PNG' ? 80 : 10);
    });
  }
});

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at] = out[at]! ^ 0x10;
  return out;
}

/** One of: flip 1–8 random bits, cut short, overwrite a run with random bytes, insert, duplicate a run. */
function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  const out = Uint8Array.from(bytes);
  switch (pick(5)) {
    case 0: {
      for (let k = 1 + pick(8); k > 0; k--) {
        const i = pick(out.length);
        out[i] = out[i]! ^ (1 << pick(8));
      }
      return out;
    }
    case 1:
      return out.subarray(0, pick(out.length));
    case 2: {
      const start = pick(out.length);
      for (let i = start; i < Math.min(out.length, start + 1 + pick(32)); i++) out[i] = pick(256);
      return out;
    }
    case 3: {
      const at = pick(out.length);
      const extra = Uint8Array.from({ length: 1 + pick(16) }, () => pick(256));
      return Uint8Array.from([...out.subarray(0, at), ...extra, ...out.subarray(at)]);
    }
    default: {
      const start = pick(out.length);
      const run = out.subarray(start, start + 1 + pick(64));
      return Uint8Array.from([...out.subarray(0, start), ...run, ...out.subarray(start)]);
    }
  }
}
