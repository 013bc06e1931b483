// Image preprocessing of the inference core: encoded uploads (JPEG, PNG, WebP, GIF, TIFF, AVIF)
// or already-decoded tensors → the network's NHWC float32 input, one [H, W, C] array per image.
// See docs/preprocessing.md for the pipeline, the limits and how it compares with torchvision.
export {
  DEFAULT_IMAGE_LIMITS,
  IMAGENET_PREPROCESS,
  checkPreprocessSetup,
  type ImageLimits,
  type ModelInputSpec,
  type PreprocessSpec,
} from './spec.ts';
export { preprocessImage, preprocessImages, type PreprocessImagesOptions } from './preprocess-image.ts';
export { tensorToImages, type TensorLayout } from './tensor-input.ts';
