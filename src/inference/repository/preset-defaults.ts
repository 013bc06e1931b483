// What a manifest may leave out when it names a preset: the preprocessing its weights were
// trained with. ImageNet presets get torchvision's evaluation transform (Resize 256,
// CenterCrop 224, ImageNet mean/std) — which is also Keras's `densenet.preprocess_input`
// ('torch' mode: x/255, minus the ImageNet mean, over the std, RGB). CIFAR presets get the
// CIFAR-10 training set's per-channel statistics at the network's 32×32, stretched.
import { PRESETS, type PresetName } from '../../densenet/index.ts';
import { IMAGENET_PREPROCESS, type PreprocessSpec } from '../preprocess/spec.ts';

/**
 * CIFAR-10 training-set per-channel mean and standard deviation over all pixels, as commonly
 * quoted (not recomputed here: no CIFAR copy ships with the project). The other often-seen std,
 * (0.2023, 0.1994, 0.2010), is the std of per-image means and is not used.
 */
export const CIFAR10_PREPROCESS: Readonly<PreprocessSpec> = Object.freeze({
  resizeMode: 'stretch',
  interpolation: 'bilinear',
  mean: Object.freeze([0.4914, 0.4822, 0.4465]) as number[],
  std: Object.freeze([0.2470, 0.2435, 0.2616]) as number[],
  polarity: 'as-is',
  background: 255,
});

/**
 * The standard preprocessing for a network's stem (a fresh, mutable copy): ImageNet nets get
 * torchvision's, keeping its 256:224 ratio of resize to crop at another input size; CIFAR nets
 * CIFAR-10's statistics, stretched to the input.
 */
export function standardPreprocessing(net: { stem: 'imagenet' | 'cifar'; inputHeight?: number; inputWidth?: number }): PreprocessSpec {
  const imagenet = net.stem === 'imagenet';
  const spec = imagenet ? IMAGENET_PREPROCESS : CIFAR10_PREPROCESS;
  const out: PreprocessSpec = { ...spec, mean: [...spec.mean], std: [...spec.std] };
  const side = Math.max(net.inputHeight ?? 224, net.inputWidth ?? 224);
  if (imagenet && side !== 224) out.resizeShorterTo = Math.round((side * 256) / 224);
  return out;
}

/** The standard preprocessing of a preset (with the manifest's input-size overrides). */
export function presetPreprocessing(preset: PresetName, input: { inputHeight?: number; inputWidth?: number } = {}): PreprocessSpec {
  return standardPreprocessing({ stem: PRESETS[preset].stem, ...input });
}
