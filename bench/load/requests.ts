// The five request kinds the load generator sends, one image per request, built once per run
// for the model under test (its input size comes from the server's V2 metadata):
//
//   rest-raw        POST /v1/models/{m}/classify, the image as the raw body (TorchServe style)
//   rest-v2-json    POST /v2/models/{m}/infer, FP32 pixels as JSON numbers, logits as JSON
//   rest-v2-binary  POST /v2/models/{m}/infer, binary data extension (Inference-Header-Content-Length),
//                   FP32 pixels raw after the JSON header, logits back binary (what tritonclient sends)
//   grpc-infer      inference.GRPCInferenceService/ModelInfer, FP32 in raw_input_contents
//   grpc-classify   densenet.v1.Classifier/Classify, the image in images
//
// FP32 pixels are already normalised (no resize, no decode on the server). The image (`--image`)
// is by default a photo of a cat as a JPEG (what issue 15 measures: the server decodes, resizes
// and crops it), or `synthetic`: a PNG of the model's own size and channels (decoded, not
// resized), or any image file.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { seededRandom } from '../../test/helpers/random.ts';

const CAT_PNG = fileURLToPath(new URL('../../test/fixtures/images/chelsea.png', import.meta.url));

export const KINDS = ['rest-raw', 'rest-v2-json', 'rest-v2-binary', 'grpc-infer', 'grpc-classify'] as const;
export type Kind = (typeof KINDS)[number];

export function isKind(s: string): s is Kind {
  return (KINDS as readonly string[]).includes(s);
}

export const KIND_LABELS: Record<Kind, string> = {
  'rest-raw': 'REST /v1 raw image',
  'rest-v2-json': 'REST V2 JSON (FP32)',
  'rest-v2-binary': 'REST V2 binary (FP32)',
  'grpc-infer': 'gRPC ModelInfer raw (FP32)',
  'grpc-classify': 'gRPC Classify (image)',
};

export interface ModelShape {
  name: string;
  height: number;
  width: number;
  channels: number;
}

export interface HttpRequestSpec {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface ImageChoice {
  data: Buffer;
  contentType: string;
  /** For the report: what it is, its size and bytes. */
  description: string;
}

export const IMAGE_CHOICES = ['cat', 'synthetic'] as const;

export interface Payloads {
  model: ModelShape;
  image: Buffer;
  imageDescription: string;
  pixels: Float32Array;
  http: Record<'rest-raw' | 'rest-v2-json' | 'rest-v2-binary', HttpRequestSpec>;
}

/** Reads input size and channels from GET /v2/models/{m}. */
export async function fetchModelShape(baseUrl: string, name: string): Promise<ModelShape> {
  const res = await fetch(`${baseUrl}/v2/models/${encodeURIComponent(name)}`);
  if (!res.ok) throw new Error(`GET /v2/models/${name}: ${res.status} ${await res.text()}`);
  const meta = (await res.json()) as { inputs: { shape: number[] }[] };
  const [, height, width, channels] = meta.inputs[0]?.shape ?? [];
  if (!height || !width || !channels) throw new Error(`unexpected metadata for ${name}: ${JSON.stringify(meta)}`);
  return { name, height, width, channels };
}

/** A smooth pattern with some noise, PNG-encoded at the model's size (seeded). */
export async function makeImage(shape: ModelShape, seed = 1): Promise<Buffer> {
  const { height, width, channels } = shape;
  const random = seededRandom(seed);
  const raw = Buffer.alloc(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const base = 128 + 100 * Math.sin((x + 2 * c) / 5) * Math.cos(y / 7);
        raw[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(base + 20 * (random() - 0.5))));
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels: channels as 1 | 3 } }).png().toBuffer();
}

/**
 * `cat`: test/fixtures/images/chelsea.png (Chelsea the cat, 385×256, CC0) encoded as a JPEG,
 * quality 90; `synthetic`: makeImage() for the model; anything else: an image file.
 */
export async function chooseImage(choice: string, shape: ModelShape): Promise<ImageChoice> {
  const kb = (b: Buffer) => `${(b.length / 1024).toFixed(1)} KB`;
  if (choice === 'synthetic') {
    const data = await makeImage(shape);
    return { data, contentType: 'image/png', description: `a synthetic ${shape.width}×${shape.height}×${shape.channels} PNG (${kb(data)})` };
  }
  const file = choice === 'cat' ? CAT_PNG : path.resolve(choice);
  const source = await readFile(file).catch((err: Error) => {
    throw new Error(`--image: '${choice}' is neither ${IMAGE_CHOICES.join(' nor ')} nor a readable file (${err.message})`);
  });
  const data = choice === 'cat' ? await sharp(source).jpeg({ quality: 90 }).toBuffer() : source;
  const meta = await sharp(data).metadata();
  const what = choice === 'cat' ? 'a photo of a cat (test/fixtures/images/chelsea.png as JPEG, quality 90)' : path.basename(file);
  return { data, contentType: meta.format ? `image/${meta.format}` : 'application/octet-stream', description: `${what}, ${meta.width}×${meta.height}, ${kb(data)}` };
}

export async function buildPayloads(shape: ModelShape, chosen?: ImageChoice): Promise<Payloads> {
  const { name, height, width, channels } = shape;
  const random = seededRandom(7);
  const pixels = new Float32Array(height * width * channels).map(() => random() * 2 - 1);
  const picked = chosen ?? await chooseImage('synthetic', shape);
  const image = picked.data;
  const raw = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const inferPath = `/v2/models/${encodeURIComponent(name)}/infer`;
  const tensorShape = [1, height, width, channels];

  const json = Buffer.from(JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: tensorShape, data: Array.from(pixels) }],
    outputs: [{ name: 'logits' }],
  }));
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: tensorShape, parameters: { binary_data_size: raw.length } }],
    outputs: [{ name: 'logits', parameters: { binary_data: true } }],
  }));
  return {
    model: shape,
    image,
    imageDescription: picked.description,
    pixels,
    http: {
      'rest-raw': {
        method: 'POST',
        path: `/v1/models/${encodeURIComponent(name)}/classify`,
        headers: { 'content-type': picked.contentType },
        body: image,
      },
      'rest-v2-json': { method: 'POST', path: inferPath, headers: { 'content-type': 'application/json' }, body: json },
      'rest-v2-binary': {
        method: 'POST',
        path: inferPath,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        body: Buffer.concat([header, raw]),
      },
    },
  };
}
