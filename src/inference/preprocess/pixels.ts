// The JavaScript side of preprocessing, on small 8-bit HWC buffers that are already at (or
// inside) the model's size: colour → grey, padding onto the canvas, polarity, and the final
// (x/255 - mean) / std. Each is O(pixels of the model input), well under a millisecond at 224².
import type { PreprocessSpec } from './spec.ts';

/** An 8-bit image, rows top to bottom, channels interleaved. */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * RGB → grey with ITU-R 601-2 luma in integer arithmetic: the formula and rounding of PIL's
 * `convert('L')`, which torchvision's Grayscale uses. (libvips' own b-w conversion weighs
 * linear-light luminance and gives 127 for pure red where PIL gives 76.)
 */
export function rgbToGrey(rgb: Pixels): Pixels {
  if (rgb.channels !== 3) throw new Error(`rgbToGrey: expected 3 channels, got ${rgb.channels}`);
  const n = rgb.width * rgb.height;
  const out = new Uint8Array(n);
  const src = rgb.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = (src[j]! * 19595 + src[j + 1]! * 38470 + src[j + 2]! * 7471 + 0x8000) >>> 16;
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 1 };
}

/** Places `content` at (left, top) on a width×height canvas filled with `background`. */
export function padOnto(content: Pixels, width: number, height: number, left: number, top: number, background: number): Pixels {
  if (content.width === width && content.height === height) return content;
  const c = content.channels;
  const out = new Uint8Array(width * height * c).fill(background);
  const rowBytes = content.width * c;
  for (let y = 0; y < content.height; y++) {
    const from = y * rowBytes;
    out.set(content.data.subarray(from, from + rowBytes), ((top + y) * width + left) * c);
  }
  return { data: out, width, height, channels: c };
}

/**
 * 'dark-background' decision: is the outer ring (a tenth of the shorter side, at least one
 * pixel) brighter on average than the central half of the image?
 */
export function hasLightBackground(img: Pixels): boolean {
  const { width: w, height: h, channels: c, data } = img;
  const ring = Math.max(1, Math.round(Math.min(w, h) / 10));
  const cx0 = Math.floor(w / 4);
  const cx1 = Math.max(cx0 + 1, Math.ceil((3 * w) / 4));
  const cy0 = Math.floor(h / 4);
  const cy1 = Math.max(cy0 + 1, Math.ceil((3 * h) / 4));
  let borderSum = 0;
  let borderCount = 0;
  let centreSum = 0;
  let centreCount = 0;
  for (let y = 0; y < h; y++) {
    const inRingRow = y < ring || y >= h - ring;
    const inCentreRow = y >= cy0 && y < cy1;
    if (!inRingRow && !inCentreRow) continue;
    for (let x = 0; x < w; x++) {
      const inRing = inRingRow || x < ring || x >= w - ring;
      const inCentre = inCentreRow && x >= cx0 && x < cx1;
      if (!inRing && !inCentre) continue;
      let s = 0;
      const p = (y * w + x) * c;
      for (let k = 0; k < c; k++) s += data[p + k]!;
      if (inRing) {
        borderSum += s;
        borderCount += c;
      }
      if (inCentre) {
        centreSum += s;
        centreCount += c;
      }
    }
  }
  return borderSum / borderCount > centreSum / centreCount;
}

/** Whether to invert, decided on the image content (before any padding). */
export function shouldInvert(content: Pixels, polarity: PreprocessSpec['polarity']): boolean {
  if (polarity === 'invert') return true;
  if (polarity === 'dark-background') return hasLightBackground(content);
  return false;
}

/**
 * (x/255 - mean[c]) / std[c] as float32, optionally on 255 - x. A 256-entry table per channel
 * computed in float64, so every value is the correctly rounded float32 of the exact formula.
 */
export function normalise(img: Pixels, mean: readonly number[], std: readonly number[], invert: boolean): Float32Array {
  const c = img.channels;
  const tables: Float64Array[] = [];
  for (let k = 0; k < c; k++) {
    const m = mean.length === 1 ? mean[0]! : mean[k]!;
    const s = std.length === 1 ? std[0]! : std[k]!;
    const t = new Float64Array(256);
    for (let v = 0; v < 256; v++) t[v] = ((invert ? 255 - v : v) / 255 - m) / s;
    tables.push(t);
  }
  const src = img.data;
  const out = new Float32Array(src.length);
  if (c === 1) {
    const t = tables[0]!;
    for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  } else {
    for (let i = 0; i < src.length; i += c) {
      for (let k = 0; k < c; k++) out[i + k] = tables[k]![src[i + k]!]!;
    }
  }
  return out;
}
