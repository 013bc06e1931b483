// Writes what our image preprocessing makes of image files as raw 8-bit HWC RGB bytes, for
// scripts/compare-resize-with-pil.py. Run from the repository root:
//
//   npx tsx scripts/preprocess-dump.ts [--variant ours] [--interpolation bilinear]
//       [--size 224] [--shorter 256] IN.png OUT.raw [IN2.jpg OUT2.raw ...]
//
// --variant ours          the served pipeline (preprocessImage, resize-crop), with mean 0 and
//                         std 1/255 so the float output is the 0..255 pixel values
// --variant decode        the full-size decode only (sharp as we use it: EXIF-oriented,
//                         ICC profile ignored, no resize)
// --variant sharp:OPTS    the same geometry through sharp with other resize options, to measure
//                         alternatives: OPTS is comma-separated kernel=NAME, fastShrinkOnLoad=BOOL,
//                         noShrinkOnLoad (a no-op pre-resize extract that turns JPEG
//                         shrink-on-load off entirely), ignoreIcc (raw code values, as
//                         PIL gives them, instead of converting ICC-tagged inputs to sRGB)
import { readFile, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { planResize } from '../src/inference/preprocess/geometry.ts';
import { DEFAULT_IMAGE_LIMITS, preprocessImage, type PreprocessSpec } from '../src/inference/preprocess/index.ts';

interface Args {
  variant: string;
  interpolation: PreprocessSpec['interpolation'];
  size: number;
  shorter: number;
  pairs: [string, string][];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { variant: 'ours', interpolation: 'bilinear', size: 224, shorter: 256, pairs: [] };
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--variant') args.variant = value();
    else if (a === '--interpolation') args.interpolation = value() as PreprocessSpec['interpolation'];
    else if (a === '--size') args.size = Number(value());
    else if (a === '--shorter') args.shorter = Number(value());
    else files.push(a);
  }
  if (files.length === 0 || files.length % 2 !== 0) throw new Error('expected pairs of IN OUT paths');
  for (let i = 0; i < files.length; i += 2) args.pairs.push([files[i]!, files[i + 1]!]);
  return args;
}

async function ours(bytes: Uint8Array, args: Args): Promise<Uint8Array> {
  const spec: PreprocessSpec = {
    resizeMode: 'resize-crop',
    resizeShorterTo: args.shorter,
    interpolation: args.interpolation,
    mean: [0],
    std: [1 / 255],
    polarity: 'as-is',
    background: 255,
  };
  const out = await preprocessImage(bytes, { height: args.size, width: args.size, channels: 3 }, spec, DEFAULT_IMAGE_LIMITS, 'image');
  return Uint8Array.from(out, (v) => Math.min(255, Math.max(0, Math.round(v))));
}

async function sharpVariant(bytes: Uint8Array, args: Args, opts: string): Promise<Uint8Array> {
  const options = new Map(
    opts
      .split(',')
      .filter(Boolean)
      .map((kv): [string, string] => [kv.split('=')[0]!, kv.split('=')[1] ?? 'true']),
  );
  const kernels = { bilinear: 'linear', bicubic: 'cubic', nearest: 'nearest' } as const;
  const kernel = (options.get('kernel') ?? kernels[args.interpolation]) as keyof sharp.KernelEnum;
  const meta = await sharp(bytes).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const [w, h] = swap ? [meta.height, meta.width] : [meta.width, meta.height];
  const plan = planResize(w, h, { height: args.size, width: args.size, channels: 3 }, { resizeMode: 'resize-crop', resizeShorterTo: args.shorter } as PreprocessSpec);
  let img = sharp(bytes, { ignoreIcc: options.has('ignoreIcc') }).autoOrient();
  if (options.has('noShrinkOnLoad')) img = img.extract({ left: 0, top: 0, width: w, height: h });
  img = img
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .resize(plan.resizeWidth, plan.resizeHeight, { fit: 'fill', kernel, fastShrinkOnLoad: options.get('fastShrinkOnLoad') !== 'false' })
    .extract({ left: plan.cropLeft, top: plan.cropTop, width: plan.cropWidth, height: plan.cropHeight });
  return new Uint8Array(await img.removeAlpha().raw().toBuffer());
}

async function decodeOnly(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await sharp(bytes, { ignoreIcc: true }).autoOrient().flatten({ background: '#ffffff' }).toColourspace('srgb').removeAlpha().raw().toBuffer());
}

const args = parseArgs(process.argv.slice(2));
for (const [input, output] of args.pairs) {
  const bytes = new Uint8Array(await readFile(input));
  let pixels: Uint8Array;
  if (args.variant === 'ours') pixels = await ours(bytes, args);
  else if (args.variant === 'decode') pixels = await decodeOnly(bytes);
  else if (args.variant.startsWith('sharp:')) pixels = await sharpVariant(bytes, args, args.variant.slice('sharp:'.length));
  else throw new Error(`unknown variant ${args.variant}`);
  await writeFile(output, pixels);
}
