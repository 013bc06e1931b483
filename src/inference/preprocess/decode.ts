// The one file that talks to sharp (libvips). Everything here is asynchronous: sharp runs on
// the libuv thread pool, so decoding never blocks the event loop. Limits are checked from the
// header before a single pixel is decoded; every failure leaves as a ServeError naming the field.
import sharp from 'sharp';
import { ServeError, invalidInput } from '../../errors.ts';
import type { ResizePlan } from './geometry.ts';
import type { Pixels } from './pixels.ts';
import type { ImageLimits, PreprocessSpec } from './spec.ts';

/**
 * libvips' fail-on level for pixel data. 'error' fails on truncated data (a cut-off JPEG would
 * otherwise come out with a grey lower part) and on checksum mismatches (PNG CRC/Adler-32, which
 * 'truncated' and 'none' skip, decoding corrupted data as if it were fine). It does not fail on
 * mere decoder warnings, as sharp's default 'warning' does: libjpeg warns about e.g. extraneous
 * bytes before a marker, which some camera and scanner firmware write and every browser shows.
 */
const FAIL_ON = 'error' as const;

/** Formats we decode; sharp's others (SVG, PDF, FITS, raw vips…) are extra attack surface. */
const DECODABLE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

const KERNELS = { bilinear: 'linear', bicubic: 'cubic', nearest: 'nearest' } as const;

export interface ImageHeader {
  format: string;
  /** Declared size of the first frame, as stored (before EXIF orientation). */
  width: number;
  height: number;
  /** Size after EXIF orientation: width and height swapped for orientations 5–8. */
  orientedWidth: number;
  orientedHeight: number;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** libvips messages name the loader and the problem; keep the first line, bounded. */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const line = message.split('\n').find((l) => l.trim() !== '') ?? 'unknown error';
  return line.trim().slice(0, 200);
}

function undecodable(field: string, reason: string, cause?: unknown): ServeError {
  return new ServeError('INVALID_INPUT', `${field}: not a decodable image (${reason})`, { field, reason }, cause === undefined ? undefined : { cause });
}

function limitExceeded(field: string, limit: keyof ImageLimits, value: number, max: number, what: string): ServeError {
  return new ServeError('LIMIT_EXCEEDED', `${field}: ${what} ${value} exceeds ${limit} ${max}`, { field, limit, value, max });
}

/**
 * Checks the encoded size, then reads only the header (sharp's metadata() does not decode
 * pixels) and checks the declared size against the limits.
 */
export async function readHeader(bytes: Uint8Array, limits: ImageLimits, field: string): Promise<ImageHeader> {
  if (!(bytes instanceof Uint8Array)) {
    throw invalidInput(field, 'expected the bytes of an encoded image');
  }
  if (bytes.byteLength === 0) throw undecodable(field, 'empty input');
  if (bytes.byteLength > limits.maxEncodedBytes) {
    throw limitExceeded(field, 'maxEncodedBytes', bytes.byteLength, limits.maxEncodedBytes, 'encoded size (bytes)');
  }
  let meta: sharp.Metadata;
  try {
    // No pixel limit here: metadata() reads the header only, and we want to report the size
    // ourselves with the limit named rather than sharp's generic message.
    meta = await sharp(asBuffer(bytes), { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (err) {
    throw undecodable(field, reasonOf(err), err);
  }
  const format = meta.format ?? 'unknown';
  if (!DECODABLE_FORMATS.has(format) || (format === 'heif' && meta.compression !== 'av1')) {
    const name = format === 'heif' ? `heif/${meta.compression ?? 'unknown'}` : format;
    throw invalidInput(field, `unsupported image format '${name}' (send JPEG, PNG, WebP, GIF, TIFF or AVIF)`, { format: name });
  }
  const width = meta.width;
  // Multi-page inputs: only the first frame is decoded, so only its size counts.
  const height = meta.pageHeight !== undefined && meta.pageHeight < meta.height ? meta.pageHeight : meta.height;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw undecodable(field, `header declares size ${width}×${height}`);
  }
  const pixels = width * height;
  if (pixels > limits.maxPixels) throw limitExceeded(field, 'maxPixels', pixels, limits.maxPixels, `declared size ${width}×${height} =`);
  const side = Math.max(width, height);
  if (side > limits.maxDimension) throw limitExceeded(field, 'maxDimension', side, limits.maxDimension, `declared side`);
  const transposed = (meta.orientation ?? 1) >= 5 && (meta.orientation ?? 1) <= 8;
  return {
    format,
    width,
    height,
    orientedWidth: transposed ? height : width,
    orientedHeight: transposed ? width : height,
  };
}

/**
 * Decodes the first frame, applies EXIF orientation, flattens alpha onto the background,
 * converts to 8-bit sRGB (grey is replicated, CMYK is converted, embedded ICC profiles are
 * ignored, 16-bit keeps its high byte), resizes to the plan and cuts its window. Returns
 * 3-channel pixels.
 */
export async function decodeResized(
  bytes: Uint8Array,
  header: ImageHeader,
  plan: ResizePlan,
  spec: PreprocessSpec,
  limits: ImageLimits,
  field: string,
): Promise<Pixels> {
  const bg = spec.background;
  // ignoreIcc: pixels are taken as sRGB code values whatever profile is embedded, as PIL (and so
  // torchvision training and evaluation) and TensorFlow's decoders do; converting an Adobe RGB
  // photo to sRGB would move it ~5 levels per value away from what the network was trained on.
  // CMYK is still converted, with libvips' built-in profile.
  const options = { failOn: FAIL_ON, limitInputPixels: limits.maxPixels, pages: 1, page: 0, ignoreIcc: true };
  let pipeline = sharp(asBuffer(bytes), options)
    .autoOrient()
    // A no-op crop of the whole (oriented) image. Any pre-resize extract turns off sharp's JPEG
    // shrink-on-load (decoding at 1/2, 1/4 or 1/8 scale in the DCT domain), which it would
    // otherwise use for reductions of 4x and more even with fastShrinkOnLoad: false. PIL
    // always decodes at full size; on a 1411² JPEG this takes the largest difference from
    // torchvision's pixels from 35 to 4 (docs/preprocessing.md).
    .extract({ left: 0, top: 0, width: header.orientedWidth, height: header.orientedHeight })
    .flatten({ background: { r: bg, g: bg, b: bg } })
    .toColourspace('srgb')
    .resize(plan.resizeWidth, plan.resizeHeight, { fit: 'fill', kernel: KERNELS[spec.interpolation] });
  if (plan.cropWidth !== plan.resizeWidth || plan.cropHeight !== plan.resizeHeight) {
    pipeline = pipeline.extract({ left: plan.cropLeft, top: plan.cropTop, width: plan.cropWidth, height: plan.cropHeight });
  }
  let result: { data: Buffer; info: sharp.OutputInfo };
  try {
    result = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    // Second guard behind readHeader: a header that lied about its size.
    if (/exceeds pixel limit/i.test(reasonOf(err))) {
      throw new ServeError('LIMIT_EXCEEDED', `${field}: image exceeds maxPixels ${limits.maxPixels}`, {
        field,
        limit: 'maxPixels',
        max: limits.maxPixels,
      }, { cause: err });
    }
    throw undecodable(field, reasonOf(err), err);
  }
  const { data, info } = result;
  if (info.width !== plan.cropWidth || info.height !== plan.cropHeight || info.channels !== 3) {
    throw new ServeError('INTERNAL', `${field}: decoder returned ${info.width}×${info.height}×${info.channels}, expected ${plan.cropWidth}×${plan.cropHeight}×3`, {
      field,
    });
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: 3 };
}
