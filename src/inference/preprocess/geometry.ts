// Pure arithmetic of the three resize modes: which size to resize an (already EXIF-oriented)
// image to, which window of the result to keep, and where that window lands in the model's
// height×width canvas. 'resize-crop' reproduces torchvision's integer rounding exactly so the
// same crop window is chosen as in training.
import type { ModelInputSpec, PreprocessSpec } from './spec.ts';

export interface ResizePlan {
  /** Size to resize the whole source image to. */
  resizeWidth: number;
  resizeHeight: number;
  /** Window of the resized image to keep (the whole of it unless cropping). */
  cropLeft: number;
  cropTop: number;
  cropWidth: number;
  cropHeight: number;
  /** Where the kept window's top-left lands on the output canvas; the rest is background. */
  padLeft: number;
  padTop: number;
}

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop uses it). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * torchvision `Resize(size)` with an int size: the shorter side becomes `size`, the longer
 * `int(size * long / short)` (truncated, not rounded).
 */
export function shorterSideSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.max(1, Math.floor((size * height) / width))];
  return [Math.max(1, Math.floor((size * width) / height)), size];
}

/**
 * torchvision `CenterCrop`: crop offset `int(round((size - crop) / 2))`; where the image is
 * smaller than the crop it is padded first, `(crop - size) // 2` before it.
 */
function centreWindow(size: number, crop: number): { offset: number; length: number; pad: number } {
  if (size >= crop) return { offset: roundHalfEven((size - crop) / 2), length: crop, pad: 0 };
  return { offset: 0, length: size, pad: Math.floor((crop - size) / 2) };
}

export function planResize(sourceWidth: number, sourceHeight: number, input: ModelInputSpec, spec: PreprocessSpec): ResizePlan {
  const { width, height } = input;
  switch (spec.resizeMode) {
    case 'stretch':
      return { resizeWidth: width, resizeHeight: height, cropLeft: 0, cropTop: 0, cropWidth: width, cropHeight: height, padLeft: 0, padTop: 0 };
    case 'letterbox': {
      // The largest size that fits inside, aspect kept; the limiting side is exact.
      const scale = Math.min(width / sourceWidth, height / sourceHeight);
      const w = Math.min(width, Math.max(1, Math.round(sourceWidth * scale)));
      const h = Math.min(height, Math.max(1, Math.round(sourceHeight * scale)));
      return {
        resizeWidth: w,
        resizeHeight: h,
        cropLeft: 0,
        cropTop: 0,
        cropWidth: w,
        cropHeight: h,
        padLeft: Math.floor((width - w) / 2),
        padTop: Math.floor((height - h) / 2),
      };
    }
    case 'resize-crop': {
      const shorter = spec.resizeShorterTo ?? Math.max(width, height);
      const [rw, rh] = shorterSideSize(sourceWidth, sourceHeight, shorter);
      const x = centreWindow(rw, width);
      const y = centreWindow(rh, height);
      return {
        resizeWidth: rw,
        resizeHeight: rh,
        cropLeft: x.offset,
        cropTop: y.offset,
        cropWidth: x.length,
        cropHeight: y.length,
        padLeft: x.pad,
        padTop: y.pad,
      };
    }
  }
}
