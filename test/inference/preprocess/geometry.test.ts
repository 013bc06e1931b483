import { describe, expect, it } from 'vitest';
import { planResize, roundHalfEven, shorterSideSize } from '../../../src/inference/preprocess/geometry.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessImage, type ModelInputSpec } from '../../../src/inference/preprocess/index.ts';
import { at, encodePng, pixels, pixelSpec, raw } from './images.ts';

const L = DEFAULT_IMAGE_LIMITS;
const IN224: ModelInputSpec = { height: 224, width: 224, channels: 3 };

describe('torchvision arithmetic', () => {
  it('Python round(): halves to even', () => {
    expect([0.5, 1.5, 2.5, 58.5, 59.5, 2.4, 2.6, 0].map(roundHalfEven)).toEqual([0, 2, 2, 58, 60, 2, 3, 0]);
  });

  it('Resize(256): shorter side 256, longer int(256·long/short)', () => {
    expect(shorterSideSize(500, 375, 256)).toEqual([341, 256]); // 341.33
    expect(shorterSideSize(375, 500, 256)).toEqual([256, 341]);
    expect(shorterSideSize(451, 300, 256)).toEqual([384, 256]); // 384.85, truncated
    expect(shorterSideSize(300, 300, 256)).toEqual([256, 256]);
  });

  it('CenterCrop(224) of 341×256: left int(round(58.5)) = 58, top 16', () => {
    const plan = planResize(500, 375, IN224, { ...pixelSpec(), resizeMode: 'resize-crop', resizeShorterTo: 256 });
    expect(plan).toEqual({ resizeWidth: 341, resizeHeight: 256, cropLeft: 58, cropTop: 16, cropWidth: 224, cropHeight: 224, padLeft: 0, padTop: 0 });
  });

  it('resizeShorterTo defaults to the larger model side', () => {
    const plan = planResize(400, 200, { height: 32, width: 48, channels: 1 }, { ...pixelSpec(), resizeMode: 'resize-crop' });
    expect([plan.resizeWidth, plan.resizeHeight, plan.cropLeft, plan.cropTop]).toEqual([96, 48, 24, 8]);
  });

  it('a crop larger than the resized image is padded like torchvision: (crop - size) // 2 before', () => {
    const plan = planResize(10, 10, { height: 10, width: 10, channels: 1 }, { ...pixelSpec(), resizeMode: 'resize-crop', resizeShorterTo: 7 });
    expect(plan).toEqual({ resizeWidth: 7, resizeHeight: 7, cropLeft: 0, cropTop: 0, cropWidth: 7, cropHeight: 7, padLeft: 1, padTop: 1 });
  });

  it('letterbox: the limiting side is exact, the other centred', () => {
    expect(planResize(400, 200, { height: 64, width: 64, channels: 3 }, { ...pixelSpec(), resizeMode: 'letterbox' })).toEqual({
      resizeWidth: 64,
      resizeHeight: 32,
      cropLeft: 0,
      cropTop: 0,
      cropWidth: 64,
      cropHeight: 32,
      padLeft: 0,
      padTop: 16,
    });
  });
});

describe('geometry on real decodes', () => {
  // 400×200 black with a 20×20 white marker centred at (200, 100).
  const marker = pixels(400, 200, 3, (x, y) => (x >= 190 && x < 210 && y >= 90 && y < 110 ? [255, 255, 255] : [0, 0, 0]));

  /** Brightness-weighted centroid and total mass of a 1-channel image. */
  function centroid(img: Float32Array, w: number, h: number) {
    let [m, sx, sy] = [0, 0, 0];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = at(img, w, 1, x, y);
        m += v;
        sx += v * (x + 0.5);
        sy += v * (y + 0.5);
      }
    }
    return { x: sx / m, y: sy / m, mass: m };
  }

  it('resize-crop: a centred marker in a 400×200 image ends up centred', async () => {
    const png = await raw(marker, 400, 200, 3).png().toBuffer();
    // 400×200 → 128×64 → centre 64×64 (left 32): the marker is 6.4 px wide at the centre.
    const out = await preprocessImage(png, { height: 64, width: 64, channels: 1 }, pixelSpec({ resizeMode: 'resize-crop' }), L);
    expect(out.length).toBe(64 * 64);
    const c = centroid(out, 64, 64);
    expect(c.x).toBeCloseTo(32, 1);
    expect(c.y).toBeCloseTo(32, 1);
    // Its area is preserved: 20² · (64/200)² ≈ 41 white pixels' worth.
    expect(c.mass / 255).toBeCloseTo(400 * (64 / 200) ** 2, -0.5);
    expect(at(out, 64, 1, 2, 32)).toBe(0);
  });

  it('stretch and letterbox of the same image', async () => {
    const png = await raw(marker, 400, 200, 3).png().toBuffer();
    const stretched = await preprocessImage(png, { height: 64, width: 64, channels: 1 }, pixelSpec({ resizeMode: 'stretch' }), L);
    const s = centroid(stretched, 64, 64);
    expect([s.x, s.y].map((v) => Math.round(v * 10) / 10)).toEqual([32, 32]);
    // Stretched 400→64 wide, 200→64 high: the marker is 3.2 × 6.4 px.
    expect(s.mass / 255).toBeCloseTo(3.2 * 6.4, -0.5);

    const boxed = await preprocessImage(png, { height: 64, width: 64, channels: 1 }, pixelSpec({ resizeMode: 'letterbox', background: 128 }), L);
    for (let x = 0; x < 64; x++) {
      expect(at(boxed, 64, 1, x, 0)).toBe(128);
      expect(at(boxed, 64, 1, x, 15)).toBe(128);
      expect(at(boxed, 64, 1, x, 48)).toBe(128);
      expect(at(boxed, 64, 1, x, 63)).toBe(128);
    }
    expect(at(boxed, 64, 1, 2, 16)).toBe(0);
    expect(at(boxed, 64, 1, 2, 47)).toBe(0);
    expect(at(boxed, 64, 1, 32, 32)).toBeGreaterThan(200);
  });

  it('an upload smaller than the model input is enlarged (nearest: exact blocks)', async () => {
    const png = encodePng(2, 2, 1, [0, 255, 255, 0]);
    const out = await preprocessImage(png, { height: 4, width: 4, channels: 1 }, pixelSpec({ resizeMode: 'stretch', interpolation: 'nearest' }), L);
    expect(Array.from(out)).toEqual([0, 0, 255, 255, 0, 0, 255, 255, 255, 255, 0, 0, 255, 255, 0, 0]);
  });

  it('an extreme aspect ratio (1×16000) is cropped without materialising the huge resize', async () => {
    const png = encodePng(1, 16000, 1, Array.from({ length: 16000 }, (_, y) => (y < 8000 ? 0 : 255)));
    const crop = pixelSpec({ resizeMode: 'resize-crop', resizeShorterTo: 256 });
    // Resize(256) would make it 256 × 4,096,000, 10⁹ pixels: tens of CPU-seconds (a sixteenth of
    // it, materialised, took 1.6 s here). Only the centre 224² may be computed, so the crop costs
    // about what a stretch of the same image to the same 224² costs. CPU time of this process
    // (sharp works on the libuv pool), not wall time: a busy machine delays both, not their work.
    const out = await preprocessImage(png, IN224, crop, L);
    expect(out.length).toBe(224 * 224 * 3);
    const cpu = { crop: 0, stretch: 0 };
    for (let i = 0; i < 5; i++) {
      let since = process.cpuUsage();
      await preprocessImage(png, IN224, crop, L);
      cpu.crop += cpuMs(since);
      since = process.cpuUsage();
      await preprocessImage(png, IN224, pixelSpec({ resizeMode: 'stretch' }), L);
      cpu.stretch += cpuMs(since);
    }
    expect(cpu.crop, JSON.stringify(cpu)).toBeLessThan(20 * cpu.stretch);
    // Bilinear enlargement by 256 ramps from source row 7999 (black) to 8000 (white) over 256
    // rows; the crop (top int(round((4096000 - 224) / 2))) sees the middle of that ramp. With
    // pixel-centre alignment, output row r samples source row (top + r + 0.5) / 256 - 0.5.
    const top = roundHalfEven((4_096_000 - 224) / 2);
    for (let r = 0; r < 224; r++) {
      const s = (top + r + 0.5) / 256 - 0.5;
      const want = 255 * Math.min(1, Math.max(0, s - 7999));
      expect(Math.abs(at(out, 224, 3, 100, r) - want)).toBeLessThanOrEqual(1);
    }
  });
});

function cpuMs(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
}
