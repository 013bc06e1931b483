import sharp from 'sharp';
import { expect, it } from 'vitest';
import { DEFAULT_IMAGE_LIMITS, IMAGENET_PREPROCESS, preprocessImage, type ImageLimits, type ModelInputSpec } from '../../../src/inference/preprocess/index.ts';

const IN224: ModelInputSpec = { height: 224, width: 224, channels: 3 };
/** A decode this long dwarfs the loop's own hiccups (a scavenge, a missed time slice). */
const TARGET_DECODE_MS = 150;
/** 48 MP: a 144 MB raw buffer to encode from; the largest the sizing below may go. */
const MAX_PIXELS = 48_000_000;

/**
 * A progressive JPEG (slow to decode: several scans) of a photo-sized picture. Sized from a
 * measured decode so that one decode takes TARGET_DECODE_MS or more here, however fast the
 * machine: the test then needs no absolute bound on the decode.
 */
async function slowJpeg(): Promise<{ jpeg: Buffer; limits: ImageLimits }> {
  let [w, h] = [4000, 3000];
  for (;;) {
    const px = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0, i = y * w * 3; x < w; x++, i += 3) {
        px[i] = x & 255;
        px[i + 1] = y & 255;
        px[i + 2] = (x ^ y) & 255;
      }
    }
    const jpeg = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 95, progressive: true, chromaSubsampling: '4:4:4' }).toBuffer();
    const limits = { ...DEFAULT_IMAGE_LIMITS, maxPixels: Math.max(DEFAULT_IMAGE_LIMITS.maxPixels, w * h), maxEncodedBytes: Math.max(DEFAULT_IMAGE_LIMITS.maxEncodedBytes, jpeg.length) };
    await preprocessImage(jpeg, IN224, IMAGENET_PREPROCESS, limits); // warm-up
    const started = performance.now();
    await preprocessImage(jpeg, IN224, IMAGENET_PREPROCESS, limits);
    const ms = performance.now() - started;
    if (ms >= TARGET_DECODE_MS || w * h >= MAX_PIXELS) return { jpeg, limits };
    const scale = Math.min(Math.sqrt((1.5 * TARGET_DECODE_MS) / ms), Math.sqrt(MAX_PIXELS / (w * h)));
    [w, h] = [Math.floor(w * scale), Math.floor(h * scale)];
  }
}

interface Round { decodeMs: number; longestStallMs: number; ticks: number }

/** One decode with a 2 ms interval timer running: the longest gap between its ticks. */
async function decodeWatchingTheLoop(jpeg: Buffer, limits: ImageLimits): Promise<Round> {
  const ticks: number[] = [];
  const timer = setInterval(() => ticks.push(performance.now()), 2);
  const started = performance.now();
  const out = await preprocessImage(jpeg, IN224, IMAGENET_PREPROCESS, limits);
  const ended = performance.now();
  clearInterval(timer);
  expect(out.length).toBe(224 * 224 * 3);
  const times = [started, ...ticks, ended];
  const longestStallMs = Math.max(...times.slice(1).map((t, i) => t - times[i]!));
  return { decodeMs: ended - started, longestStallMs, ticks: ticks.length };
}

it('decoding a large JPEG leaves the event loop free (sharp runs on the libuv pool)', async () => {
  const { jpeg, limits } = await slowJpeg();
  const rounds: Round[] = [];
  for (let i = 0; i < 5; i++) rounds.push(await decodeWatchingTheLoop(jpeg, limits));
  // A decode on the main thread stalls the loop for the whole decode, in every round: no round
  // would pass. A free loop ticks throughout; one pause of the loop (a GC, a time slice lost on
  // a busy machine) spoils the round it falls in; the majority must be free.
  const free = rounds.filter((r) => r.longestStallMs < r.decodeMs / 2 && r.ticks >= 5);
  expect(free.length, JSON.stringify(rounds.map((r) => ({ decodeMs: Math.round(r.decodeMs), stallMs: Math.round(r.longestStallMs), ticks: r.ticks })))).toBeGreaterThanOrEqual(3);
});
