// The bad-input corpus: a seeded, deterministic list of named requests — REST and gRPC — that
// a well-behaved client would never send, each with exactly what the service must answer.
// bad-images.ts makes the hostile uploads; this file carries each of them over every way an
// image reaches the service; corpus-http.ts and corpus-grpc.ts add the protocol-level cases.
import { status } from '@grpc/grpc-js';
import { buildImagePayloads, type ImageOutcome, type ImagePayload } from './bad-images.ts';
import {
  bytesElements, binaryBody, imageRefusal, json, MODELS, multipart,
  type Case, type GrpcCase, type GrpcExpect, type HttpCase, type HttpExpect, type ModelName,
} from './cases.ts';
import { grpcProtocolCases } from './corpus-grpc.ts';
import { httpProtocolCases } from './corpus-http.ts';

/** The seed of the corpus bad-input.test.ts fires (and of the images pil-verdicts.py judged). */
export const CORPUS_SEED = 0x5eed_0007;

// ---- every image payload over every way an image reaches the service -------------------------

type Carrier = {
  name: string;
  model: ModelName;
  /** A case sending `images` (in order); `expectFor` maps the outcome to the answer. */
  build(images: Buffer[]): Omit<HttpCase, 'name' | 'category' | 'expect'> | Omit<GrpcCase, 'name' | 'category' | 'expect'>;
  transport: 'http' | 'grpc';
  /** What an empty image (at `index`) gets where the carrier itself refuses it before decoding. */
  emptyImage?: (index: number) => HttpExpect | GrpcExpect;
};

const CARRIERS: Carrier[] = [
  {
    name: 'rest-v1-raw', model: MODELS.rgb, transport: 'http',
    build: ([image]) => ({ kind: 'http', request: { method: 'POST', path: `/v1/models/${MODELS.rgb}/classify`, headers: [['content-type', 'application/octet-stream']], body: image } }),
    emptyImage: () => ({ status: 400, code: 'INVALID_INPUT', message: /^body: empty/ }),
  },
  {
    name: 'rest-v1-multipart', model: MODELS.grey, transport: 'http',
    build: (images) => {
      const form = multipart(images.map((data, i) => ({ data, filename: `image-${i}.bin` })));
      return { kind: 'http', request: { method: 'PUT', path: `/v1/models/${MODELS.grey}/classify`, headers: [['content-type', form.type]], body: form.body } };
    },
  },
  {
    name: 'rest-v1-json', model: MODELS.crop, transport: 'http',
    build: (images) => ({ kind: 'http', request: {
      method: 'POST', path: `/v1/models/${MODELS.crop}/classify`, headers: [['content-type', 'application/json']],
      body: json({ images: images.map((b) => b.toString('base64')) }),
    } }),
    emptyImage: (i) => ({ status: 400, code: 'INVALID_INPUT', message: new RegExp(`^images\\[${i}\\]: empty`) }),
  },
  {
    name: 'rest-v2-json-bytes', model: MODELS.grey, transport: 'http',
    build: (images) => ({ kind: 'http', request: {
      method: 'POST', path: `/v2/models/${MODELS.grey}/infer`, headers: [['content-type', 'application/json']],
      body: json({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [images.length], data: images.map((b) => b.toString('base64')) }] }),
    } }),
    emptyImage: (i) => ({ status: 400, code: 'INVALID_INPUT', message: new RegExp(`^inputs\\[0\\]\\.data\\[${i}\\]: empty`) }),
  },
  {
    name: 'rest-v2-binary-bytes', model: MODELS.rgb, transport: 'http',
    build: (images) => {
      const tensor = bytesElements(images);
      const { body, headerLength } = binaryBody({
        inputs: [{ name: 'input', datatype: 'BYTES', shape: [images.length, 1], parameters: { binary_data_size: tensor.length } }],
        outputs: [{ name: 'probabilities', parameters: { classification: 2 } }],
      }, tensor);
      return { kind: 'http', request: { method: 'POST', path: `/v2/models/${MODELS.rgb}/versions/1/infer`, headers: [['inference-header-content-length', String(headerLength)]], body } };
    },
  },
  {
    name: 'grpc-classify', model: MODELS.crop, transport: 'grpc',
    build: (images) => ({ kind: 'grpc', service: 'classifier', method: 'Classify', request: { model_name: MODELS.crop, images, top_k: 2 } }),
  },
  {
    name: 'grpc-infer-raw', model: MODELS.rgb, transport: 'grpc',
    build: (images) => ({ kind: 'grpc', service: 'inference', method: 'ModelInfer', request: {
      model_name: MODELS.rgb, model_version: '2', inputs: [{ name: 'input', datatype: 'BYTES', shape: [images.length] }], raw_input_contents: [bytesElements(images)],
    } }),
  },
  {
    name: 'grpc-infer-typed', model: MODELS.grey, transport: 'grpc',
    build: (images) => ({ kind: 'grpc', service: 'inference', method: 'ModelInfer', request: {
      model_name: MODELS.grey, inputs: [{ name: 'input', datatype: 'BYTES', shape: [images.length, 1], contents: { bytes_contents: images } }],
      outputs: [{ name: 'logits' }],
    } }),
  },
];

function expectationFor(carrier: Carrier, outcome: Exclude<ImageOutcome, 'decoder'>, index: number, count: number, empty: boolean): HttpExpect | GrpcExpect {
  if (empty && carrier.emptyImage) return carrier.emptyImage(index);
  if (outcome === 'accepted') return carrier.transport === 'http' ? { status: 200, code: null, images: count } : { status: status.OK, code: null, images: count };
  return imageRefusal(outcome, index, carrier.transport);
}

/**
 * Which carriers take a payload: all eight, except for the two large seeded families (truncated
 * and bit-flipped: 48 payloads each, all decoded by the same code whatever carries them), which
 * take two REST and two gRPC carriers in rotation, and the costly bombs (hundreds of ms of
 * inflating each), which take one of each.
 */
function carriersFor(payload: ImagePayload, p: number): Carrier[] {
  const rest = CARRIERS.filter((c) => c.transport === 'http');
  const grpc = CARRIERS.filter((c) => c.transport === 'grpc');
  if (payload.name.includes('64MiB')) return [rest[0]!, grpc[0]!];
  if (payload.category !== 'truncated' && payload.category !== 'bit-flipped') return CARRIERS;
  return [rest[p % rest.length]!, rest[(p + 2) % rest.length]!, grpc[p % grpc.length]!, grpc[(p + 1) % grpc.length]!];
}

function imageCases(payloads: ImagePayload[], good: Buffer): Case[] {
  const cases: Case[] = [];
  payloads.forEach((payload, p) => {
    const carriers = carriersFor(payload, p);
    for (const carrier of carriers) {
      // Every fourth payload also travels between two good images: the error must name images[1].
      const shapes = p % 4 === 0 && carrier.name !== 'rest-v1-raw' ? [[payload.bytes], [good, payload.bytes, good]] : [[payload.bytes]];
      for (const images of shapes) {
        const index = images.length === 1 ? 0 : 1;
        const base = { ...carrier.build(images), name: `${payload.name}/${carrier.name}${images.length > 1 ? '/between-good' : ''}`, category: payload.category };
        const empty = payload.bytes.length === 0;
        if (payload.outcome === 'decoder') {
          const resolve = (outcome: Exclude<ImageOutcome, 'decoder'>) => expectationFor(carrier, outcome, index, images.length, empty);
          cases.push({ ...base, expect: resolve('undecodable'), decoder: { bytes: payload.bytes, model: carrier.model, resolve } } as Case);
        } else {
          cases.push({ ...base, expect: expectationFor(carrier, payload.outcome, index, images.length, empty) } as Case);
        }
      }
    }
  });
  return cases;
}

/** The whole corpus for `seed`: the same cases, names and bytes on every run. */
export async function buildCorpus(seed: number): Promise<Case[]> {
  const payloads = await buildImagePayloads(seed);
  const good = payloads.find((p) => p.name === 'channels-depth/png-rgb-original')!.bytes;
  const cases = [...imageCases(payloads, good), ...httpProtocolCases(seed, good), ...grpcProtocolCases(seed, good)];
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`duplicate corpus case name ${c.name}`);
    names.add(c.name);
  }
  return cases;
}
