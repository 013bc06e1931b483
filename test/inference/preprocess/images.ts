// Test images built in memory: a minimal PNG encoder (8/16-bit, any channel count, and headers
// that lie about their size), sharp-made files in other formats, and helpers to assert errors.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { expect } from 'vitest';
import { ServeError, type ErrorCode } from '../../../src/errors.ts';
import type { PreprocessSpec } from '../../../src/inference/preprocess/index.ts';


export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/images');

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

/** A spec whose output is the 8-bit pixel value itself: (x/255 - 0) / (1/255). */
export function pixelSpec(overrides: Partial<PreprocessSpec> = {}): PreprocessSpec {
  return { resizeMode: 'stretch', interpolation: 'bilinear', mean: [0], std: [1 / 255], polarity: 'as-is', background: 255, ...overrides };
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG chunk: length, type, data and CRC. */
export function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOUR_TYPE = { 1: 0, 2: 4, 3: 2, 4: 6 } as const;

function ihdr(width: number, height: number, channels: 1 | 2 | 3 | 4, depth: 8 | 16): Buffer {
  const h = Buffer.alloc(13);
  h.writeUInt32BE(width, 0);
  h.writeUInt32BE(height, 4);
  h[8] = depth;
  h[9] = COLOUR_TYPE[channels];
  return chunk('IHDR', h);
}

/** A PNG of the given samples (row-major, interleaved; 16-bit samples as numbers 0..65535). */
export function encodePng(width: number, height: number, channels: 1 | 2 | 3 | 4, samples: ArrayLike<number>, depth: 8 | 16 = 8): Buffer {
  const bytesPerSample = depth / 8;
  const stride = width * channels * bytesPerSample;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const v = samples[y * width * channels + i]!;
      const at = y * (stride + 1) + 1 + i * bytesPerSample;
      if (depth === 16) raw.writeUInt16BE(v, at);
      else raw[at] = v;
    }
  }
  return Buffer.concat([PNG_SIGNATURE, ihdr(width, height, channels, depth), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** A few hundred bytes that declare width×height: a decompression bomb's header. */
export function pngDeclaring(width: number, height: number): Buffer {
  const row = Buffer.alloc(1 + width * 3);
  return Buffer.concat([PNG_SIGNATURE, ihdr(width, height, 3, 8), chunk('IDAT', deflateSync(row)), chunk('IEND', new Uint8Array(0))]);
}

/** A real small JPEG whose frame header (SOF) is patched to declare width×height. */
export async function jpegDeclaring(width: number, height: number): Promise<Buffer> {
  const jpg = Buffer.from(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer());
  for (let i = 2; i < jpg.length - 9; ) {
    if (jpg[i] !== 0xff) throw new Error('unexpected JPEG layout');
    const marker = jpg[i + 1]!;
    const length = jpg.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc2) {
      jpg.writeUInt16BE(height, i + 5);
      jpg.writeUInt16BE(width, i + 7);
      return jpg;
    }
    i += 2 + length;
  }
  throw new Error('no SOF marker');
}

/** width×height RGB(A) pixels from a function of (x, y). */
export function pixels(width: number, height: number, channels: 3 | 4, at: (x: number, y: number) => number[]): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out.set(at(x, y), (y * width + x) * channels);
  return out;
}

export function raw(data: Uint8Array, width: number, height: number, channels: 3 | 4): sharp.Sharp {
  return sharp(data, { raw: { width, height, channels } });
}

export async function solidPng(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
}

/** Awaits `run` and checks it failed with a ServeError of `code` whose details contain `details`. */
export async function expectServeError(run: Promise<unknown> | (() => unknown), code: ErrorCode, details: Record<string, unknown> = {}): Promise<ServeError> {
  let error: unknown;
  try {
    await (typeof run === 'function' ? run() : run);
  } catch (err) {
    error = err;
  }
  expect(error, 'expected a ServeError').toBeInstanceOf(ServeError);
  const serveError = error as ServeError;
  expect(serveError.code, serveError.message).toBe(code);
  expect(serveError.details).toMatchObject(details);
  return serveError;
}

export { seededRandom } from '../../helpers/random.ts';

/** The value at (x, y, channel) of an HWC float image. */
export function at(img: Float32Array, width: number, channels: number, x: number, y: number, c = 0): number {
  return img[(y * width + x) * channels + c]!;
}
