// What a model expects as input and how an upload is turned into it: the types, their named
// defaults, and one check that a (model input, preprocessing, limits) triple is coherent.
import { ServeError } from '../../errors.ts';

export interface ModelInputSpec {
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface PreprocessSpec {
  /**
   * How to get to height×width: 'resize-crop' = resize the shorter side to `resizeShorterTo`
   * (default: max(height, width)) keeping aspect, then centre-crop (torchvision Resize +
   * CenterCrop); 'stretch' = resize both sides; 'letterbox' = fit inside keeping aspect and pad
   * with the background.
   */
  resizeMode: 'resize-crop' | 'stretch' | 'letterbox';
  resizeShorterTo?: number;
  interpolation: 'bilinear' | 'bicubic' | 'nearest';
  /** Per channel (or one value for all), applied to values scaled to [0,1]: (x - mean) / std. */
  mean: number[];
  std: number[];
  /**
   * Fashion-MNIST is a light garment on a dark background. 'as-is' keeps pixels; 'invert'
   * always inverts; 'dark-background' inverts only when at least three of the image's four
   * corners are lighter than mid-grey (a photo or scan on a light background).
   */
  polarity: 'as-is' | 'invert' | 'dark-background';
  /**
   * Grey level 0..255 that transparency is flattened onto and letterbox padding is filled with,
   * in the upload's own terms: polarity is applied after it, so a white canvas around a photo
   * that gets inverted becomes black like the rest of its background.
   */
  background: number;
}

export interface ImageLimits {
  /** Largest encoded upload, in bytes. */
  maxEncodedBytes: number;
  /** Largest declared width × height (first frame/page), checked before any pixel is decoded. */
  maxPixels: number;
  maxImagesPerRequest: number;
  /** Largest declared width or height. */
  maxDimension: number;
}

export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({
  maxEncodedBytes: 20 * 1024 * 1024,
  maxPixels: 40_000_000,
  maxImagesPerRequest: 64,
  maxDimension: 16_384,
});

/** torchvision's ImageNet evaluation transform: Resize(256) + CenterCrop(224) + Normalize. */
export const IMAGENET_PREPROCESS: Readonly<PreprocessSpec> = Object.freeze({
  resizeMode: 'resize-crop',
  resizeShorterTo: 256,
  interpolation: 'bilinear',
  mean: Object.freeze([0.485, 0.456, 0.406]) as number[],
  std: Object.freeze([0.229, 0.224, 0.225]) as number[],
  polarity: 'as-is',
  background: 255,
});

const RESIZE_MODES = new Set(['resize-crop', 'stretch', 'letterbox']);
const INTERPOLATIONS = new Set(['bilinear', 'bicubic', 'nearest']);
const POLARITIES = new Set(['as-is', 'invert', 'dark-background']);

function bad(field: string, message: string, value: unknown): never {
  throw new ServeError('INVALID_CONFIG', `preprocessing.${field}: ${message}`, { field: `preprocessing.${field}`, value });
}

function isPositiveInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
}

/**
 * Throws INVALID_CONFIG naming the field when the model input, preprocessing or limits cannot
 * work together. These come from manifests and config, not from clients.
 */
export function checkPreprocessSetup(input: ModelInputSpec, spec: PreprocessSpec, limits: ImageLimits): void {
  if (!isPositiveInt(input.height) || !isPositiveInt(input.width)) {
    throw new ServeError('INVALID_CONFIG', `model input: height and width must be positive integers, got ${input.height}×${input.width}`, {
      field: 'input',
      value: [input.height, input.width],
    });
  }
  if (input.channels !== 1 && input.channels !== 3) {
    throw new ServeError('INVALID_CONFIG', `model input: channels must be 1 or 3 for images, got ${String(input.channels)}`, {
      field: 'input.channels',
      value: input.channels,
    });
  }
  if (!RESIZE_MODES.has(spec.resizeMode)) bad('resizeMode', `must be one of ${[...RESIZE_MODES].join(', ')}`, spec.resizeMode);
  if (!INTERPOLATIONS.has(spec.interpolation)) bad('interpolation', `must be one of ${[...INTERPOLATIONS].join(', ')}`, spec.interpolation);
  if (!POLARITIES.has(spec.polarity)) bad('polarity', `must be one of ${[...POLARITIES].join(', ')}`, spec.polarity);
  if (spec.resizeShorterTo !== undefined && !isPositiveInt(spec.resizeShorterTo)) {
    bad('resizeShorterTo', 'must be a positive integer', spec.resizeShorterTo);
  }
  if (!Number.isInteger(spec.background) || spec.background < 0 || spec.background > 255) {
    bad('background', 'must be an integer grey level 0..255', spec.background);
  }
  for (const key of ['mean', 'std'] as const) {
    const values = spec[key];
    if (!Array.isArray(values) || (values.length !== 1 && values.length !== input.channels)) {
      bad(key, `must have 1 or ${input.channels} entries (the model has ${input.channels} channels)`, values);
    }
    for (const v of values) {
      if (!Number.isFinite(v) || (key === 'std' && v <= 0)) bad(key, key === 'std' ? 'entries must be finite and > 0' : 'entries must be finite', values);
    }
  }
  for (const key of ['maxEncodedBytes', 'maxPixels', 'maxImagesPerRequest', 'maxDimension'] as const) {
    if (!isPositiveInt(limits[key])) {
      throw new ServeError('INVALID_CONFIG', `image limits: ${key} must be a positive integer`, { field: `limits.${key}`, value: limits[key] });
    }
  }
}
