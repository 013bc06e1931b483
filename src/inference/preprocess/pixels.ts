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
 * 'dark-background' decision: are at least three of the four corner patches (a tenth of the
 * shorter side, at least one pixel) lighter than mid-grey? Corners, not the whole border:
 * a frame-filling pullover in Fashion-MNIST touches the edges but not the corners (a border
 * test inverted 3 of its 10,000 test images, a border-versus-centre test 78; this one none),
 * while a photo or scan on a light background has light corners even where the garment
 * reaches one of them.
 */
export function hasLightBackground(img: Pixels): boolean {
  const { width: w, height: h, channels: c, data } = img;
  const k = Math.max(1, Math.round(Math.min(w, h) / 10));
  const cornerMean = (x0: number, y0: number): number => {
    let sum = 0;
    for (let y = y0; y < y0 + k; y++) {
      for (let x = x0; x < x0 + k; x++) {
        for (let ch = 0; ch < c; ch++) sum += data[(y * w + x) * c + ch]!;
      }
    }
    return sum / (k * k * c);
  };
  const corners = [cornerMean(0, 0), cornerMean(w - k, 0), cornerMean(0, h - k), cornerMean(w - k, h - k)];
  return corners.filter((m) => m > 127.5).length >= 3;
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
