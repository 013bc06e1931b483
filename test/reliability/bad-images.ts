// Seeded upload payloads for the bad-input corpus: broken, hostile and merely unusual encoded
// images, each with the outcome the service must give it whatever transport carries it.
// Everything is generated from the seed (pixels, cut points, flipped bits, random bodies), so
// the corpus is the same on every run; only sharp's encoders sit between the seed and the bytes.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { seededRandom } from '../helpers/random.ts';
import { chunk as pngChunk, encodePng, jpegDeclaring, PNG_SIGNATURE, pngDeclaring } from '../inference/preprocess/images.ts';

/**
 * - undecodable: 400 INVALID_INPUT naming the image (gRPC INVALID_ARGUMENT);
 * - limit: 413 LIMIT_EXCEEDED (gRPC INVALID_ARGUMENT with code LIMIT_EXCEEDED), refused from the header;
 * - accepted: a valid image, classified (200 / OK);
 * - decoder: flipped bits (PNG's CRCs catch them; JPEG, WebP, GIF, TIFF and AVIF have no
 *   checksum): only a decoder knows whether the bytes are still an image. The test takes that
 *   answer from an independent one, Pillow, recorded by pil-verdicts.py in
 *   bit-flipped-pil-verdicts.json, and requires it from every transport (disagreements are
 *   listed, with their reasons, in bad-input.test.ts).
 */
export type ImageOutcome = 'undecodable' | 'limit' | 'accepted' | 'decoder';

export type ImageCategory =
  | 'truncated' | 'bit-flipped' | 'empty' | 'random-bytes' | 'decompression-bomb'
  | 'aspect-ratio' | 'channels-depth' | 'unsupported-format';

export interface ImagePayload {
  name: string;
  category: ImageCategory;
  bytes: Buffer;
  outcome: ImageOutcome;
}

/** A 4×4 RGB PNG with `extra` chunks between IHDR and IDAT. */
function pngWith(extra: Buffer[]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(4, 0);
  ihdr.writeUInt32BE(4, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const idat = pngChunk('IDAT', deflateSync(Buffer.alloc(4 * (1 + 4 * 3))));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...extra, idat, pngChunk('IEND', new Uint8Array(0))]);
}

/** Offset of a GIF's first image descriptor (0x2c), past the colour table and extensions. */
function gifFirstFrame(gif: Buffer): number {
  let at = 13 + (gif[10]! & 0x80 ? 3 * 2 ** ((gif[10]! & 7) + 1) : 0);
  while (gif[at] === 0x21) {
    at += 2; // introducer, label; then sub-blocks up to a zero length
    while (gif[at]! !== 0) at += gif[at]! + 1;
    at += 1;
  }
  if (gif[at] !== 0x2c) throw new Error('no GIF image descriptor');
  return at;
}

function noise(random: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** A copy of `bytes` with `bits` bits flipped at seeded positions past the first `skip` bytes. */
function flipBits(bytes: Buffer, random: () => number, bits: number, skip: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < bits; i++) {
    const at = skip + Math.floor(random() * (out.length - skip));
    out[at] = out[at]! ^ (1 << Math.floor(random() * 8));
  }
  return out;
}

/** 1×1-ish solid images of any size (libvips makes them without holding pixels). */
function solid(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png({ compressionLevel: 9 }).toBuffer();
}

export async function buildImagePayloads(seed: number): Promise<ImagePayload[]> {
  const random = seededRandom(seed);
  const out: ImagePayload[] = [];
  const add = (category: ImageCategory, name: string, bytes: Buffer, outcome: ImageOutcome): void => {
    out.push({ category, name: `${category}/${name}`, bytes, outcome });
  };

  // The valid originals: seeded noise, 24×20, in each format the service decodes.
  const pixels = noise(random, 24 * 20 * 3);
  const base = () => sharp(pixels, { raw: { width: 24, height: 20, channels: 3 } });
  const originals: Record<string, Buffer> = {
    jpeg: await base().jpeg({ quality: 90 }).toBuffer(),
    png: await base().png().toBuffer(),
    webp: await base().webp({ quality: 80 }).toBuffer(),
    gif: await base().gif().toBuffer(),
    tiff: await base().tiff().toBuffer(),
    avif: await base().avif({ quality: 50 }).toBuffer(),
  };

  // ---- truncated: cut inside the header, the pixel data, or only the trailer ----------------
  for (const [format, bytes] of Object.entries(originals)) {
    const cuts = [0.05, 0.3, 0.6, 0.9].map((f) => Math.floor(bytes.length * f));
    cuts.push(...[0, 1, 2].map(() => 16 + Math.floor(random() * (bytes.length - 32))));
    for (const cut of cuts) add('truncated', `${format}/first-${cut}-of-${bytes.length}`, bytes.subarray(0, cut), 'undecodable');
    // One byte short: PNG loses part of IEND (its pixels are all there) and GIF its trailer
    // (';'): both decode, as in every browser. JPEG (no EOI), WebP and TIFF (sizes in their
    // headers no longer match) and AVIF (box sizes) are refused.
    add('truncated', `${format}/last-byte-missing`, bytes.subarray(0, bytes.length - 1),
      format === 'png' || format === 'gif' ? 'accepted' : 'undecodable');
  }

  // ---- bit-flipped: single and multiple flips after the format's magic number --------------
  for (const [format, bytes] of Object.entries(originals)) {
    for (let i = 0; i < 8; i++) {
      const bits = i < 5 ? 1 : 8;
      add('bit-flipped', `${format}/${bits}-bit-${i}`, flipBits(bytes, random, bits, 8), 'decoder');
    }
  }

  // ---- empty and random bodies --------------------------------------------------------------
  add('empty', 'zero-bytes', Buffer.alloc(0), 'undecodable');
  for (const length of [1, 2, 7, 64, 512, 4096, 60_000]) add('random-bytes', `noise-${length}`, noise(random, length), 'undecodable');
  // Valid magic numbers followed by noise: the decoder gets past format detection.
  const magics: Record<string, Buffer> = {
    jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
    png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    gif: Buffer.from('GIF89a', 'latin1'),
    webp: Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x00, 0x10, 0, 0]), Buffer.from('WEBPVP8 ')]),
    tiff: Buffer.from([0x49, 0x49, 0x2a, 0x00]),
  };
  for (const [format, magic] of Object.entries(magics)) {
    for (const length of [16, 300]) add('random-bytes', `${format}-magic-then-noise-${length}`, Buffer.concat([magic, noise(random, length)]), 'undecodable');
  }
  add('random-bytes', 'text', Buffer.from('this is not an image\n'), 'undecodable');
  add('random-bytes', 'json', Buffer.from('{"images": ["a"]}'), 'undecodable');

  // ---- decompression bombs: tiny files declaring huge images, refused from the header --------
  add('decompression-bomb', 'png-100000x100000', pngDeclaring(100_000, 100_000), 'limit');
  add('decompression-bomb', 'png-7000x7000', pngDeclaring(7000, 7000), 'limit');
  add('decompression-bomb', 'png-16385x1-side', pngDeclaring(16_385, 1), 'limit');
  add('decompression-bomb', 'png-1x40000-side', pngDeclaring(1, 40_000), 'limit');
  add('decompression-bomb', 'jpeg-65500x65500', await jpegDeclaring(65_500, 65_500), 'limit');
  add('decompression-bomb', 'jpeg-20000x3000', await jpegDeclaring(20_000, 3000), 'limit');
  // A GIF whose first frame descriptor declares 65535×65535 (the logical screen is not what
  // libvips decodes; the frame is).
  const gif = Buffer.from(originals.gif!);
  const frame = gifFirstFrame(gif);
  gif.writeUInt16LE(65_535, frame + 5);
  gif.writeUInt16LE(65_535, frame + 7);
  add('decompression-bomb', 'gif-frame-65535x65535', gif, 'limit');
  // A real PNG bomb: 6400×6400 grey, all zero, ~40 KB deflated to 41 MB of pixels.
  const side = 6400;
  const grey = Buffer.alloc(13);
  grey.writeUInt32BE(side, 0);
  grey.writeUInt32BE(side, 4);
  grey[8] = 8;
  add('decompression-bomb', 'png-real-6400x6400-zeros', Buffer.concat([
    PNG_SIGNATURE, pngChunk('IHDR', grey), pngChunk('IDAT', deflateSync(Buffer.alloc((1 + side) * side), { level: 9 })), pngChunk('IEND', new Uint8Array(0)),
  ]), 'limit');
  // Compressed metadata: 64 MiB of zeros in a zTXt / iCCP chunk (~62 KB of file). libpng-spng's
  // chunk cache limit stops inflating it and the loader refuses the file.
  const inflated = deflateSync(Buffer.alloc(64 << 20), { level: 9 });
  add('decompression-bomb', 'png-ztxt-64MiB', pngWith([pngChunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), inflated]))]), 'undecodable');
  add('decompression-bomb', 'png-iccp-64MiB', pngWith([pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), inflated]))]), 'undecodable');
  // A 4×4 PNG whose IDAT inflates to 64 MiB: the decoder inflates the 4 rows it needs and stops.
  const header = pngWith([]).subarray(0, 33); // signature + IHDR
  add('decompression-bomb', 'png-idat-64MiB', Buffer.concat([header, pngChunk('IDAT', inflated), pngChunk('IEND', new Uint8Array(0))]), 'accepted');

  // ---- absurd aspect ratios: valid, within MAX_IMAGE_DIMENSION, classified --------------------
  for (const [w, h] of [[1, 16_384], [16_384, 1], [2, 16_384], [16_384, 3], [1, 5000], [7000, 2]] as const) {
    add('aspect-ratio', `${w}x${h}`, await solid(w, h), 'accepted');
  }

  // ---- channels and bit depths: all accepted (grey replicated, alpha flattened, 16-bit → 8) --
  const samples = (n: number, max: number) => Array.from({ length: n }, () => Math.floor(random() * (max + 1)));
  for (const channels of [1, 2, 3, 4] as const) {
    for (const depth of [8, 16] as const) {
      add('channels-depth', `png-${channels}ch-${depth}bit`, encodePng(12, 10, channels, samples(12 * 10 * channels, depth === 8 ? 255 : 65_535), depth), 'accepted');
    }
  }
  add('channels-depth', 'png-palette-1bit', await base().png({ palette: true, colours: 2 }).toBuffer(), 'accepted');
  add('channels-depth', 'jpeg-grey', await base().greyscale().jpeg().toBuffer(), 'accepted');
  add('channels-depth', 'jpeg-cmyk', await base().toColourspace('cmyk').jpeg().toBuffer(), 'accepted');
  add('channels-depth', 'webp-alpha', await base().ensureAlpha(0.4).webp({ quality: 80 }).toBuffer(), 'accepted');
  add('channels-depth', 'webp-lossless', await base().webp({ lossless: true }).toBuffer(), 'accepted');
  add('channels-depth', 'gif-transparent', await base().ensureAlpha(0).gif().toBuffer(), 'accepted');
  add('channels-depth', 'tiff-16bit', await sharp(encodePng(12, 10, 3, samples(360, 65_535), 16)).tiff().toBuffer(), 'accepted');
  add('channels-depth', 'tiff-grey-alpha', await sharp(encodePng(12, 10, 2, samples(240, 255))).tiff().toBuffer(), 'accepted');
  for (const [format, bytes] of Object.entries(originals)) add('channels-depth', `${format}-rgb-original`, bytes, 'accepted');

  // ---- formats libvips knows but the service refuses (attack surface), and ones it does not --
  add('unsupported-format', 'svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'), 'undecodable');
  add('unsupported-format', 'svg-100000px', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"/>'), 'undecodable');
  const laughs = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY l0 "lollollollol">' +
    Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('') +
    ']><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&l9;</text></svg>';
  add('unsupported-format', 'svg-billion-laughs', Buffer.from(laughs), 'undecodable');
  add('unsupported-format', 'ppm', Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 100)]), 'undecodable');
  add('unsupported-format', 'pdf', Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'), 'undecodable');
  const bmp = Buffer.alloc(70);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(70, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(2, 18);
  bmp.writeInt32LE(2, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  add('unsupported-format', 'bmp', bmp, 'undecodable');
  add('unsupported-format', 'heic-brand', Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic', 'latin1'), 'undecodable');
  add('unsupported-format', 'gzip-of-png', Buffer.from(deflateSync(originals.png!)), 'undecodable');
  return out;
}
