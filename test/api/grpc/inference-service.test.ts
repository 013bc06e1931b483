// inference.GRPCInferenceService over real sockets: a grpc-js client against the server on
// 127.0.0.1:0, backed by a real InferenceService running a tiny DenseNet in a worker thread.
import * as grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { softmax } from '../../../src/inference/index.ts';
import { ERROR_CODE_METADATA_KEY } from '../../../src/api/grpc/status-codes.ts';
import { float32ToLE, joinBytesElements as encodeBytesElements } from '../../../src/api/oip/index.ts';
import type { ModelInferRequest } from '../../../src/api/grpc/generated/inference/ModelInferRequest.ts';
import type { ModelInferResponse__Output } from '../../../src/api/grpc/generated/inference/ModelInferResponse.ts';
import type { ModelMetadataResponse__Output } from '../../../src/api/grpc/generated/inference/ModelMetadataResponse.ts';
import { TINY_LABELS } from '../../helpers/tiny-model.ts';
import { PIXELS, callError, fp32Batch, pngOf, rawFp32Request, startHarness, unaryCall, type Harness } from './harness.ts';

const MiB = 1024 * 1024;
const LABEL = TINY_LABELS.join('|');

function parseFp32(raw: Buffer): Float32Array {
  expect(raw.byteLength % 4).toBe(0);
  const out = new Float32Array(raw.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = raw.readFloatLE(i * 4);
  return out;
}

function parseBytes(raw: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < raw.byteLength;) {
    const length = raw.readUInt32LE(offset);
    out.push(raw.subarray(offset + 4, offset + 4 + length).toString('utf8'));
    offset += 4 + length;
  }
  return out;
}

describe('inference.GRPCInferenceService', () => {
  let h: Harness;
  const infer = (request: ModelInferRequest, options?: Parameters<typeof unaryCall>[3]) =>
    unaryCall<ModelInferRequest, ModelInferResponse__Output>(h.inference, 'ModelInfer', request, options);
  /** The model's logits for FP32 NHWC images, straight from the inference core. */
  const reference = async (data: Float32Array, n: number) =>
    (await h.service.inferTensor('tiny', { data, shape: [n, 16, 16, 3], layout: 'NHWC' })).logits;

  beforeAll(async () => {
    h = await startHarness({
      models: { tiny: { seed: 1 } },
      env: { MAX_GRPC_MESSAGE_BYTES: String(6 * MiB), MAX_IMAGES_PER_REQUEST: '8' },
    });
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  describe('server and model metadata', () => {
    it('answers ServerLive, ServerReady and ServerMetadata', async () => {
      expect((await unaryCall(h.inference, 'ServerLive', {})).response).toEqual({ live: true });
      expect((await unaryCall(h.inference, 'ServerReady', {})).response).toEqual({ ready: true });
      const require = createRequire(import.meta.url);
      const { version } = require('../../../package.json') as { version: string };
      // One list of extensions for both transports (GET /v2 answers the same).
      expect((await unaryCall(h.inference, 'ServerMetadata', {})).response).toEqual({
        name: 'densenet-serve', version,
        extensions: ['binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'schedule_policy', 'parameters'],
      });
    });

    it('answers ModelReady for loaded names, NOT_FOUND for absent ones (as Triton), INVALID_ARGUMENT for malformed ones', async () => {
      expect((await unaryCall(h.inference, 'ModelReady', { name: 'tiny' })).response).toEqual({ ready: true });
      expect((await unaryCall(h.inference, 'ModelReady', { name: 'tiny', version: '1' })).response).toEqual({ ready: true });
      expect((await callError(unaryCall(h.inference, 'ModelReady', { name: 'tiny', version: '7' }))).code).toBe(grpc.status.NOT_FOUND);
      const absent = await callError(unaryCall(h.inference, 'ModelReady', { name: 'absent' }));
      expect(absent.code).toBe(grpc.status.NOT_FOUND);
      expect(absent.details).toContain("no model 'absent'");
      const empty = await callError(unaryCall(h.inference, 'ModelReady', { name: '' }));
      expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(empty.details).toMatch(/^name: required/);
      expect((await callError(unaryCall(h.inference, 'ModelReady', { name: '../etc' }))).code).toBe(grpc.status.INVALID_ARGUMENT);
    });

    it('describes a model in Open Inference Protocol terms (int64 shapes as strings), NOT_FOUND for an absent one', async () => {
      const { response } = await unaryCall<object, ModelMetadataResponse__Output>(h.inference, 'ModelMetadata', { name: 'tiny' });
      expect(response).toEqual({
        // What runs the batches: the harness serves with the fused tfjs executor.
        name: 'tiny', versions: ['1'], platform: 'tfjs_fused',
        inputs: [{ name: 'input', datatype: 'FP32', shape: ['-1', '16', '16', '3'] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: ['-1', '3'] }, { name: 'probabilities', datatype: 'FP32', shape: ['-1', '3'] }],
      });
      const err = await callError(unaryCall(h.inference, 'ModelMetadata', { name: 'absent' }));
      expect(err.code).toBe(grpc.status.NOT_FOUND);
      expect(err.details).toContain("no model 'absent'");
      expect(err.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['MODEL_NOT_FOUND']);
    });
  });

  describe('ModelInfer', () => {
    it('takes raw_input_contents and answers raw_output_contents, byte-exact little-endian FP32', async () => {
      const data = fp32Batch(2);
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', 'raw-fp32-1');
      const { response, metadata: head } = await infer(rawFp32Request('tiny', data, [2, 16, 16, 3], { id: 'req-7' }), { metadata });
      expect(response.model_name).toBe('tiny');
      expect(response.model_version).toBe('1');
      expect(response.id).toBe('req-7');
      expect(response.outputs).toEqual([
        { name: 'logits', datatype: 'FP32', shape: ['2', '3'], parameters: {}, contents: null },
        { name: 'probabilities', datatype: 'FP32', shape: ['2', '3'], parameters: {}, contents: null },
      ]);
      expect(response.raw_output_contents).toHaveLength(2);
      const [rawLogits, rawProbabilities] = response.raw_output_contents as [Buffer, Buffer];
      expect(rawLogits.byteLength).toBe(2 * 3 * 4);
      const logits = parseFp32(rawLogits);
      const expected = await reference(data, 2);
      expected.forEach((row, i) => row.forEach((v, j) => expect(logits[i * 3 + j]).toBeCloseTo(v, 5)));
      // The probabilities are the softmax of exactly those logits, to the bit.
      const probabilities = Buffer.concat([0, 1].map((i) => float32ToLE(softmax(logits.subarray(i * 3, i * 3 + 3)))));
      expect(rawProbabilities.equals(probabilities)).toBe(true);

      expect(head.get('x-request-id')).toEqual(['raw-fp32-1']);
      const line = h.logs.find((l) => l.reqId === 'raw-fp32-1' && l.msg === 'grpc call');
      expect(line).toMatchObject({ method: 'ModelInfer', model: 'tiny', status: 'OK', level: 30 });
      expect(line!.latencyMs).toBeGreaterThan(0);
    });

    it('takes typed fp32_contents and answers typed contents with the same numbers', async () => {
      const data = fp32Batch(2);
      const { response } = await infer({
        model_name: 'tiny',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 16, 16, 3], contents: { fp32_contents: Array.from(data) } }],
        outputs: [{ name: 'logits' }],
      });
      expect(response.raw_output_contents).toEqual([]);
      expect(response.outputs).toHaveLength(1);
      const out = response.outputs[0]!;
      expect(out).toMatchObject({ name: 'logits', datatype: 'FP32', shape: ['2', '3'] });
      expect(out.contents!.fp32_contents).toHaveLength(6);
      const expected = await reference(data, 2);
      expected.forEach((row, i) => row.forEach((v, j) => expect(out.contents!.fp32_contents[i * 3 + j]).toBeCloseTo(v, 5)));
    });

    it('takes UINT8 pixels raw and typed, normalised with the model mean/std, and an unbatched [H,W,C] shape', async () => {
      const pixels = new Uint8Array(PIXELS).map((_, i) => (i * 37) % 256);
      const normalised = Float32Array.from(pixels, (p) => (p / 255 - 0.5) / 0.25);
      const [expected] = await reference(normalised, 1);
      const raw = await infer({
        model_name: 'tiny', inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3] }], raw_input_contents: [Buffer.from(pixels)],
        outputs: [{ name: 'logits' }],
      });
      const typed = await infer({
        model_name: 'tiny', inputs: [{ name: 'input', datatype: 'UINT8', shape: [16, 16, 3], contents: { uint_contents: Array.from(pixels) } }],
        outputs: [{ name: 'logits' }],
      });
      expect(raw.response.outputs[0]!.shape).toEqual(['1', '3']);
      expect(typed.response.outputs[0]!.shape).toEqual(['3']); // no batch dimension in, none out
      const fromRaw = parseFp32(raw.response.raw_output_contents[0]!);
      const fromTyped = typed.response.outputs[0]!.contents!.fp32_contents;
      expected!.forEach((v, j) => {
        expect(fromRaw[j]).toBeCloseTo(v, 4);
        expect(fromTyped[j]).toBeCloseTo(v, 4);
      });
    });

    it('takes NCHW with the layout input parameter', async () => {
      const nhwc = fp32Batch(1, 5);
      const nchw = new Float32Array(PIXELS);
      for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) nchw[(c * 16 + y) * 16 + x] = nhwc[(y * 16 + x) * 3 + c]!;
      const { response } = await infer({
        model_name: 'tiny',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 16, 16], parameters: { layout: { string_param: 'NCHW' } } }],
        raw_input_contents: [float32ToLE(nchw)],
        outputs: [{ name: 'logits' }],
      });
      const [expected] = await reference(nhwc, 1);
      const logits = parseFp32(response.raw_output_contents[0]!);
      expected!.forEach((v, j) => expect(logits[j]).toBeCloseTo(v, 5));
    });

    it('takes BYTES inputs (encoded PNGs) raw and typed, scoring like Classify', async () => {
      const images = await Promise.all([pngOf(1), pngOf(2, 17, 64)]);
      const classified = await h.service.classify('tiny', images, 3);
      const raw = await infer({
        model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [2] }], raw_input_contents: [encodeBytesElements(images)],
        outputs: [{ name: 'probabilities' }],
      });
      const typed = await infer({
        model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [2, 1], contents: { bytes_contents: images } }],
        outputs: [{ name: 'probabilities' }],
      });
      expect(raw.response.outputs[0]!.shape).toEqual(['2', '3']);
      const fromRaw = parseFp32(raw.response.raw_output_contents[0]!);
      const fromTyped = typed.response.outputs[0]!.contents!.fp32_contents;
      classified.predictions.forEach((predictions, i) => {
        for (const p of predictions) {
          expect(fromRaw[i * 3 + p.index]).toBeCloseTo(p.score, 5);
          expect(fromTyped[i * 3 + p.index]).toBeCloseTo(p.score, 5);
        }
      });
    });

    it('answers the classification parameter with BYTES "score:index:label" rows (raw and typed; int64 and uint64)', async () => {
      const data = fp32Batch(2, 3);
      const expected = (await reference(data, 2)).map(softmax);
      const raw = await infer(rawFp32Request('tiny', data, [2, 16, 16, 3], {
        outputs: [{ name: 'probabilities', parameters: { classification: { int64_param: 2 } } }, { name: 'logits' }],
      }));
      expect(raw.response.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
        ['probabilities', 'BYTES', ['2', '2']], ['logits', 'FP32', ['2', '3']],
      ]);
      const strings = parseBytes(raw.response.raw_output_contents[0]!);
      expect(strings).toHaveLength(4);
      strings.forEach((s, k) => {
        const match = new RegExp(`^(\\d\\.\\d{6}):(\\d):(${LABEL})$`).exec(s);
        expect(match, s).not.toBeNull();
        const [, score, index, label] = match!;
        const row = expected[Math.floor(k / 2)]!;
        const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]!);
        expect(Number(index)).toBe(order[k % 2]);
        expect(label).toBe(TINY_LABELS[Number(index)]);
        expect(score).toBe(row[Number(index)]!.toFixed(6));
      });

      // Typed, as tritonclient sends it (uint64), and K above the class count is clipped.
      const typed = await infer({
        model_name: 'tiny',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 16, 16, 3], contents: { fp32_contents: Array.from(data) } }],
        outputs: [{ name: 'logits', parameters: { classification: { uint64_param: 10 } } }],
      });
      const out = typed.response.outputs[0]!;
      expect(out).toMatchObject({ datatype: 'BYTES', shape: ['2', '3'] });
      expect(out.contents!.bytes_contents.map((b) => b.toString())).toHaveLength(6);
      expect(out.contents!.bytes_contents[0]!.toString()).toMatch(new RegExp(`^-?\\d+\\.\\d{6}:\\d:(${LABEL})$`));
    });

    it('honours the priority parameter and validates it in the batcher', async () => {
      const data = fp32Batch(1);
      const ok = await infer(rawFp32Request('tiny', data, [1, 16, 16, 3], { parameters: { priority: { uint64_param: 1 } } }));
      expect(ok.response.outputs).toHaveLength(2);
      const err = await callError(infer(rawFp32Request('tiny', data, [1, 16, 16, 3], { parameters: { priority: { int64_param: 11 } } })));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toContain('priority');
    });

    const bad: Array<[string, () => Promise<ModelInferRequest>, string]> = [
      ['no model name', async () => rawFp32Request('', fp32Batch(1), [1, 16, 16, 3]), 'model_name: required'],
      ['raw bytes that do not fill the shape', async () => ({ ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), raw_input_contents: [Buffer.alloc(100)] }),
        'raw_input_contents[0]: shape [1, 16, 16, 3] of FP32 needs 3072 bytes, got 100'],
      ['a negative dimension', async () => rawFp32Request('tiny', fp32Batch(1), [-1, 16, 16, 3]), 'inputs[0].shape[0]: -1 is negative'],
      ['a dimension above 2^31-1', async () => rawFp32Request('tiny', fp32Batch(1), [2147483648, 16, 16, 3]), 'inputs[0].shape[0]: 2147483648 exceeds'],
      ['a shape of 2^64 elements', async () => rawFp32Request('tiny', fp32Batch(1), [2147483647, 2147483647, 2147483647, 3]), 'inputs[0].shape: [2147483647, 2147483647, 2147483647, 3] is 29710560901343952451059843069 elements, more than MAX_TENSOR_ELEMENTS'],
      ['the wrong image size', async () => rawFp32Request('tiny', fp32Batch(1).subarray(0, 15 * 16 * 3), [1, 15, 16, 3]), 'inputs[0].shape: expected [-1, 16, 16, 3] (NHWC) or [-1, 3, 16, 16] (NCHW), got [1, 15, 16, 3]'],
      ['an unsupported datatype', async () => ({ ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), inputs: [{ name: 'input', datatype: 'INT32', shape: [1, 16, 16, 3] }] }),
        "inputs[0].datatype: 'INT32' is not supported"],
      ['an unknown input name', async () => ({ ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), inputs: [{ name: 'data_0', datatype: 'FP32', shape: [1, 16, 16, 3] }] }),
        "inputs[0].name: unknown input 'data_0'"],
      ['two inputs', async () => ({ model_name: 'tiny', inputs: [{ name: 'input' }, { name: 'input' }] }), 'inputs: the model takes exactly one input'],
      ['raw and typed contents mixed', async () => ({
        ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]),
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { fp32_contents: [1] } }],
      }), 'inputs[0].contents: must be empty when raw_input_contents is used'],
      ['more raw entries than inputs', async () => ({ ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), raw_input_contents: [Buffer.alloc(4), Buffer.alloc(4)] }),
        'raw_input_contents: 2 entries for 1 input(s)'],
      ['the wrong typed field', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { int_contents: [1] } }] }),
        'inputs[0].contents.int_contents: a FP32 tensor takes its elements in inputs[0].contents.fp32_contents'],
      ['too few typed elements', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { fp32_contents: [1, 2] } }] }),
        'inputs[0].contents.fp32_contents: shape [1, 16, 16, 3] needs 768 elements, got 2'],
      ['no data at all', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3] }] }),
        'inputs[0].contents.fp32_contents: shape [1, 16, 16, 3] needs 768 elements, got 0'],
      ['an empty batch', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: [0, 16, 16, 3] }] }), 'input: the batch is empty'],
      ['a UINT8 value above 255', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], contents: { uint_contents: [300, ...new Array<number>(PIXELS - 1).fill(0)] } }] }),
        'inputs[0].contents.uint_contents[0]: expected an integer in 0…255, got 300'],
      ['a truncated BYTES element', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }], raw_input_contents: [encodeBytesElements([await pngOf(1)]).subarray(0, 20)] }),
        'raw_input_contents[0]: element 0 declares'],
      ['BYTES elements fewer than the shape says', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [2] }], raw_input_contents: [encodeBytesElements([await pngOf(1)])] }),
        'raw_input_contents[0]: its shape declares 2 BYTES elements, got 1'],
      ['a BYTES input that is not an image', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }], raw_input_contents: [encodeBytesElements([Buffer.from('not an image')])] }),
        'images[0]'],
      ['a BYTES input of rank 2 with images in columns', async () => ({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 2] }], raw_input_contents: [encodeBytesElements([Buffer.from('a'), Buffer.from('b')])] }),
        'inputs[0].shape: a BYTES input holds encoded images: [N] or [N, 1], got [1, 2]'],
      ['an unknown output', async () => rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { outputs: [{ name: 'fc6_1' }] }), "outputs[0].name: unknown output 'fc6_1'"],
      ['an output asked twice', async () => rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { outputs: [{ name: 'logits' }, { name: 'logits' }] }), "outputs[1].name: 'logits' is requested twice"],
      ['a negative classification', async () => rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { outputs: [{ name: 'logits', parameters: { classification: { int64_param: -1 } } }] }),
        'outputs[0].parameters.classification: -1 is not an integer in 0…1000000'],
      ['a string timeout', async () => rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { parameters: { timeout: { string_param: '10s' } } }),
        'parameters.timeout: "10s" is not an integer in 0…86400000000'],
      ['a layout that is not NHWC or NCHW', async () => ({ ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], parameters: { layout: { string_param: 'CHW' } } }] }),
        'inputs[0].parameters.layout'],
    ];
    it.each(bad)('refuses %s with INVALID_ARGUMENT naming the field', async (_what, request, message) => {
      const err = await callError(infer(await request()));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toContain(message);
    });

    it('refuses more images than MAX_IMAGES_PER_REQUEST (LIMIT_EXCEEDED → INVALID_ARGUMENT) before decoding any', async () => {
      const images = new Array<Buffer>(9).fill(Buffer.from('x'));
      const err = await callError(infer({ model_name: 'tiny', inputs: [{ name: 'input', datatype: 'BYTES', shape: [9] }], raw_input_contents: [encodeBytesElements(images)] }));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toContain('9 images exceed MAX_IMAGES_PER_REQUEST 8');
      expect(err.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['LIMIT_EXCEEDED']);
    });

    it('answers an unknown model with NOT_FOUND', async () => {
      const err = await callError(infer(rawFp32Request('absent', fp32Batch(1), [1, 16, 16, 3])));
      expect(err.code).toBe(grpc.status.NOT_FOUND);
      expect(err.details).toContain("no model 'absent'");
      const version = await callError(infer(rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3], { model_version: '4' })));
      expect(version.code).toBe(grpc.status.NOT_FOUND);
      expect(version.details).toContain('no version 4');
    });

    it('accepts messages above grpc-js\'s 4 MiB default up to MAX_GRPC_MESSAGE_BYTES, RESOURCE_EXHAUSTED above', async () => {
      const request = (bytes: number) => ({ ...rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), raw_input_contents: [Buffer.alloc(bytes)] });
      // 5 MiB reaches the handler (which then finds it does not fit the shape)…
      const within = await callError(infer(request(5 * MiB)));
      expect(within.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(within.details).toContain(`got ${5 * MiB}`);
      // …7 MiB is refused by the transport.
      const above = await callError(infer(request(7 * MiB)));
      expect(above.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    });
  });
});
