// The Open Inference Protocol over REST: metadata, health, and inference with JSON tensors,
// the binary data extension (bodies built and parsed by hand) and the classification extension.
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { softmax } from '../../../src/inference/index.ts';
import { TINY_LABELS } from '../../helpers/tiny-model.ts';
import { pngOf, startHarness, type Harness } from './harness.ts';

interface Output { name: string; datatype: string; shape: number[]; parameters?: { binary_data_size?: number }; data?: Array<number | string> }
interface InferBody { model_name: string; model_version: string; id: string; outputs: Output[] }

let h: Harness;
const PIXELS = 16 * 16 * 3;
/** Two NHWC images of smooth values, and the service's own logits for them. */
const nhwc = new Float32Array(2 * PIXELS).map((_, i) => Math.sin(i / 7));
let logits: Float32Array[];

beforeAll(async () => {
  h = await startHarness({
    models: {
      tiny: { seed: 1 },
      multi: { seed: 3, versions: [1, 2], manifest: { versionPolicy: 'all' } },
      narrow: { seed: 5, manifest: { batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 1 } } },
      // A lone request waits up to a minute for a batch-mate that the one-place queue never
      // admits: one request fills the queue, and it stays full until that request is cancelled,
      // however fast or slow the machine.
      held: { seed: 7, manifest: { batching: { maxBatchSize: 2, maxQueueDelayMs: 60_000, maxQueueSize: 1 } } },
    },
  });
  logits = (await h.service.inferTensor('tiny', { data: nhwc, shape: [2, 16, 16, 3], layout: 'NHWC' })).logits;
});

afterAll(async () => {
  await h?.close();
});

const infer = (body: unknown, url = '/v2/models/tiny/infer') => h.app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const fp32Input = (data: ArrayLike<number>, shape: number[]) => ({ name: 'input', datatype: 'FP32', shape, data: Array.from(data) });

function expectRowsClose(data: ArrayLike<number>, rows: Float32Array[], digits = 4): void {
  expect(data).toHaveLength(rows.length * 3);
  rows.forEach((row, n) => row.forEach((v, c) => expect(data[n * 3 + c]).toBeCloseTo(v, digits)));
}

async function expectError(res: { statusCode: number; json: () => unknown }, status: number, message: string | RegExp): Promise<void> {
  expect(res.statusCode).toBe(status);
  const body = res.json() as { error: string };
  expect(Object.keys(body)).toEqual(['error']);
  if (typeof message === 'string') expect(body.error).toBe(message);
  else expect(body.error).toMatch(message);
}

describe('metadata and health', () => {
  it('describes the server', async () => {
    const res = await h.app.inject('/v2');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      name: 'densenet-serve', version: '0.1.0',
      extensions: ['binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'schedule_policy', 'parameters'],
    });
  });

  it('answers live and ready', async () => {
    expect((await h.app.inject('/v2/health/live')).json()).toEqual({ live: true });
    const ready = await h.app.inject('/v2/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true });
  });

  it('describes a model and a version with -1 for the batch dimension', async () => {
    const expected = {
      name: 'tiny', versions: ['1'], platform: 'tfjs_fused', // the harness serves with the fused tfjs executor
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 16, 16, 3] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }, { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
    };
    expect((await h.app.inject('/v2/models/tiny')).json()).toEqual(expected);
    expect((await h.app.inject('/v2/models/tiny/versions/1')).json()).toEqual(expected);
    expect((await h.app.inject('/v2/models/multi/versions/1')).json()).toMatchObject({ name: 'multi', versions: ['1', '2'] });
    await expectError(await h.app.inject('/v2/models/multi/versions/3'), 404, "no version 3 of model 'multi'");
    await expectError(await h.app.inject('/v2/models/absent'), 404, "no model 'absent'");
    await expectError(await h.app.inject('/v2/models/tiny/versions/0'), 400, /^version: /);
  });

  it("serves Triton's model configuration, dims without the batch dimension", async () => {
    const res = await h.app.inject('/v2/models/tiny/config');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      name: 'tiny', platform: 'tfjs_fused', backend: 'tfjs', max_batch_size: 4,
      input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NHWC', dims: [16, 16, 3] }],
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [3] }, { name: 'probabilities', data_type: 'TYPE_FP32', dims: [3] }],
      dynamic_batching: { preferred_batch_size: [], max_queue_delay_microseconds: '0' },
      instance_group: [{ name: 'tiny', kind: 'KIND_CPU', count: 1 }],
    });
    expect((await h.app.inject('/v2/models/narrow/versions/1/config')).json()).toMatchObject({ name: 'narrow', max_batch_size: 1 });
    expect((await h.app.inject('/v2/models/held/config')).json()).toMatchObject({ dynamic_batching: { max_queue_delay_microseconds: '60000000' } });
  });

  it('answers model readiness', async () => {
    const res = await h.app.inject('/v2/models/tiny/ready');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'tiny', ready: true });
    expect((await h.app.inject('/v2/models/multi/versions/2/ready')).statusCode).toBe(200);
    await expectError(await h.app.inject('/v2/models/multi/versions/5/ready'), 404, "no version 5 of model 'multi'");
    await expectError(await h.app.inject('/v2/models/absent/ready'), 404, "no model 'absent'");
  });
});

describe('POST /v2/models/{m}/infer with JSON tensors', () => {
  it('runs FP32 NHWC and returns logits and softmax probabilities, echoing the id', async () => {
    const res = await infer({ id: 'req-1', inputs: [fp32Input(nhwc, [2, 16, 16, 3])] });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json<InferBody>();
    expect(body).toMatchObject({ model_name: 'tiny', model_version: '1', id: 'req-1' });
    expect(body.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([['logits', 'FP32', [2, 3]], ['probabilities', 'FP32', [2, 3]]]);
    expectRowsClose(body.outputs[0]!.data as number[], logits);
    expectRowsClose(body.outputs[1]!.data as number[], logits.map((row) => softmax(row)), 6);
  });

  it('accepts nested data, a single image without N (answered without N), and only the outputs asked for', async () => {
    const image = Array.from(nhwc.subarray(0, PIXELS));
    const nested = Array.from({ length: 16 }, (_, y) => Array.from({ length: 16 }, (_, x) => image.slice((y * 16 + x) * 3, (y * 16 + x) * 3 + 3)));
    const res = await infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [16, 16, 3], data: nested }], outputs: [{ name: 'logits' }] });
    expect(res.statusCode).toBe(200);
    const body = res.json<InferBody>();
    expect(body.id).toBe(res.headers['x-request-id']); // no id sent: the request id stands in
    expect(body.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(body.outputs[0]!.shape).toEqual([3]); // outputs mirror the input: no batch dimension in, none out
    expectRowsClose(body.outputs[0]!.data as number[], [logits[0]!]);
  });

  it('takes NCHW when the shape says so', async () => {
    const nchw = new Float32Array(nhwc.length);
    for (let n = 0; n < 2; n++) for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) {
      nchw[((n * 3 + c) * 16 + y) * 16 + x] = nhwc[((n * 16 + y) * 16 + x) * 3 + c]!;
    }
    const res = await infer({ inputs: [fp32Input(nchw, [2, 3, 16, 16])], outputs: [{ name: 'logits' }] });
    expect(res.statusCode).toBe(200);
    expectRowsClose(res.json<InferBody>().outputs[0]!.data as number[], logits);
  });

  it('runs UINT8 pixels through the model preprocessing', async () => {
    const pixels = new Uint8Array(PIXELS).map((_, i) => (i * 37) % 256);
    const expected = await h.service.inferTensor('tiny', { data: pixels, shape: [1, 16, 16, 3], layout: 'NHWC' });
    const res = await infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], data: Array.from(pixels) }], outputs: [{ name: 'logits' }] });
    expect(res.statusCode).toBe(200);
    expectRowsClose(res.json<InferBody>().outputs[0]!.data as number[], expected.logits);
  });

  it('decodes BYTES inputs as encoded images (base64 in JSON)', async () => {
    const pngs = await Promise.all([pngOf(11), pngOf(12, 30, 10)]);
    const expected = await h.service.inferImages('tiny', pngs);
    const res = await infer({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2, 1], data: pngs.map((p) => p.toString('base64')) }] });
    expect(res.statusCode).toBe(200);
    expectRowsClose(res.json<InferBody>().outputs[0]!.data as number[], expected.logits);
  });

  it('returns top-K classes as BYTES "score:index:label" with the classification extension', async () => {
    const res = await infer({
      inputs: [fp32Input(nhwc, [2, 16, 16, 3])],
      outputs: [{ name: 'probabilities', parameters: { classification: 2 } }, { name: 'logits', parameters: { classification: 10 } }],
    });
    expect(res.statusCode).toBe(200);
    const [probs, raw] = res.json<InferBody>().outputs;
    expect(probs).toMatchObject({ name: 'probabilities', datatype: 'BYTES', shape: [2, 2] });
    expect(raw).toMatchObject({ name: 'logits', datatype: 'BYTES', shape: [2, 3] }); // K clamped to the classes
    const format = (row: Float32Array, k: number) => [...row.keys()].sort((a, b) => row[b]! - row[a]!).slice(0, k)
      .map((i) => `${row[i]!.toFixed(6)}:${i}:${TINY_LABELS[i]}`);
    expect(probs!.data).toEqual(logits.flatMap((row) => format(softmax(row), 2)));
    expect(raw!.data).toEqual(logits.flatMap((row) => format(row, 3)));
    for (const s of raw!.data as string[]) expect(s).toMatch(/^-?\d+\.\d{6}:\d:(circle|square|triangle)$/);
  });

  it('serves a named version of a multi-version model', async () => {
    const one = await infer({ inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])] }, '/v2/models/multi/versions/1/infer');
    const two = await infer({ inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])] }, '/v2/models/multi/infer');
    expect(one.json<InferBody>().model_version).toBe('1');
    expect(two.json<InferBody>().model_version).toBe('2');
    expect(one.json<InferBody>().outputs[0]!.data).not.toEqual(two.json<InferBody>().outputs[0]!.data);
  });
});

describe('binary data extension', () => {
  function binaryRequest(header: object, ...tensors: Buffer[]): { payload: Buffer; headers: Record<string, string> } {
    const json = Buffer.from(JSON.stringify(header));
    return { payload: Buffer.concat([json, ...tensors]), headers: { 'inference-header-content-length': String(json.length), 'content-type': 'application/octet-stream' } };
  }
  function parseBinaryResponse(res: { rawPayload: Buffer; headers: Record<string, unknown> }): { header: InferBody; sections: Map<string, Buffer> } {
    const length = Number(res.headers['inference-header-content-length']);
    const header = JSON.parse(res.rawPayload.subarray(0, length).toString()) as InferBody;
    const sections = new Map<string, Buffer>();
    let offset = length;
    for (const o of header.outputs) {
      const size = o.parameters?.binary_data_size;
      if (size === undefined) continue;
      sections.set(o.name, res.rawPayload.subarray(offset, offset + size));
      offset += size;
    }
    expect(offset).toBe(res.rawPayload.length);
    return { header, sections };
  }
  const le = (values: ArrayLike<number>) => {
    const out = Buffer.alloc(values.length * 4);
    for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
    return out;
  };

  it('reads raw little-endian FP32 after the JSON header and returns binary outputs byte for byte', async () => {
    const json = await infer({ inputs: [fp32Input(nhwc, [2, 16, 16, 3])] });
    const [jsonLogits, jsonProbs] = json.json<InferBody>().outputs;
    const { payload, headers } = binaryRequest({
      id: 'bin-1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 16, 16, 3], parameters: { binary_data_size: nhwc.length * 4 } }],
      outputs: [{ name: 'logits', parameters: { binary_data: true } }, { name: 'probabilities', parameters: { binary_data: false } }],
    }, le(nhwc));
    const res = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload, headers });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const { header, sections } = parseBinaryResponse(res);
    expect(header).toMatchObject({ model_name: 'tiny', model_version: '1', id: 'bin-1' });
    expect(header.outputs[0]).toEqual({ name: 'logits', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } });
    expect(header.outputs[1]).toEqual(jsonProbs); // JSON output in a binary response
    expect(sections.get('logits')!.equals(le(jsonLogits!.data as number[]))).toBe(true);
  });

  it('returns every output binary with binary_data_output, classification strings length-prefixed', async () => {
    const image = nhwc.subarray(0, PIXELS);
    // The same single image as JSON first: the reference, at the same batch size.
    const row = Float32Array.from((await infer({ inputs: [fp32Input(image, [1, 16, 16, 3])], outputs: [{ name: 'logits' }] })).json<InferBody>().outputs[0]!.data as number[]);
    const { payload, headers } = binaryRequest({
      parameters: { binary_data_output: true },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], parameters: { binary_data_size: PIXELS * 4 } }],
      outputs: [{ name: 'probabilities', parameters: { classification: 1 } }, { name: 'logits' }],
    }, le(image));
    const res = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload, headers });
    expect(res.statusCode).toBe(200);
    const { header, sections } = parseBinaryResponse(res);
    expect(header.outputs.map((o) => o.data)).toEqual([undefined, undefined]);
    const probs = softmax(row);
    const top = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!)[0]!;
    const text = `${probs[top]!.toFixed(6)}:${top}:${TINY_LABELS[top]}`;
    const expectedBytes = Buffer.concat([Buffer.from([text.length, 0, 0, 0]), Buffer.from(text)]);
    expect(sections.get('probabilities')!.equals(expectedBytes)).toBe(true);
    expect(header.outputs[0]).toMatchObject({ datatype: 'BYTES', shape: [1, 1], parameters: { binary_data_size: expectedBytes.length } });
    expect(sections.get('logits')!.equals(le(row))).toBe(true);
  });

  it('reads binary BYTES (uint32 length + encoded image per element) and UINT8', async () => {
    const pngs = await Promise.all([pngOf(21), pngOf(22)]);
    const expected = await h.service.inferImages('tiny', pngs);
    const wire = Buffer.concat(pngs.flatMap((p) => [Buffer.from(new Uint32Array([p.length]).buffer), p]));
    const bytes = binaryRequest({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: wire.length } }] }, wire);
    const res = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', ...bytes });
    expect(res.statusCode).toBe(200);
    expectRowsClose(res.json<InferBody>().outputs[0]!.data as number[], expected.logits);

    const pixels = Buffer.from(Uint8Array.from({ length: PIXELS }, (_, i) => (i * 13) % 256));
    const uint8 = binaryRequest({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], parameters: { binary_data_size: PIXELS } }], outputs: [{ name: 'logits' }] }, pixels);
    const viaJson = await infer({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], data: [...pixels] }], outputs: [{ name: 'logits' }] });
    const viaBinary = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', ...uint8 });
    expect(viaBinary.json<InferBody>().outputs[0]!.data).toEqual(viaJson.json<InferBody>().outputs[0]!.data);
  });

  it('refuses an inconsistent Inference-Header-Content-Length or binary_data_size', async () => {
    const header = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], parameters: { binary_data_size: PIXELS * 4 } }] };
    const good = binaryRequest(header, le(nhwc.subarray(0, PIXELS)));
    const post = (payload: Buffer, headers: Record<string, string>) => h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload, headers });
    await expectError(await post(good.payload, { ...good.headers, 'inference-header-content-length': String(good.payload.length + 1) }), 400,
      `Inference-Header-Content-Length: ${good.payload.length + 1} exceeds the body's ${good.payload.length} bytes`);
    await expectError(await post(good.payload, { ...good.headers, 'inference-header-content-length': '20' }), 400, /^body: not valid JSON/);
    await expectError(await post(good.payload, { ...good.headers, 'inference-header-content-length': 'ten' }), 400, /^Inference-Header-Content-Length: 'ten' is not a byte count/);
    const short = binaryRequest(header, le(nhwc.subarray(0, PIXELS - 1)));
    await expectError(await post(short.payload, short.headers), 400, /^inputs\[0\]\.parameters\.binary_data_size: binary_data_size 3072 runs past the end/);
    const long = binaryRequest(header, le(nhwc.subarray(0, PIXELS + 1)));
    await expectError(await post(long.payload, long.headers), 400, /^Inference-Header-Content-Length: 4 bytes after the JSON header belong to no input/);
    const noHeader = binaryRequest({ inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])] }, Buffer.from([1, 2]));
    await expectError(await post(noHeader.payload, noHeader.headers), 400, /2 bytes after the JSON header belong to no input/);
  });
});

describe('compressed requests (tritonclient request_compression_algorithm)', () => {
  it('inflates gzip and deflate bodies, binary data included, and caps the inflated size', async () => {
    const body = { inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])], outputs: [{ name: 'logits' }] };
    const plain = (await infer(body)).json<InferBody>().outputs[0]!.data;
    const json = Buffer.from(JSON.stringify(body));
    for (const [encoding, payload] of [['gzip', gzipSync(json)], ['deflate', deflateSync(json)]] as const) {
      const res = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload, headers: { 'content-encoding': encoding } });
      expect(res.statusCode, encoding).toBe(200);
      expect(res.json<InferBody>().outputs[0]!.data).toEqual(plain);
    }
    const small = await h.buildApp({ MAX_BODY_BYTES: '6000' });
    const bomb = await small.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: gzipSync(Buffer.alloc(100_000, 32)), headers: { 'content-encoding': 'gzip' } });
    await expectError(bomb, 413, 'the decompressed request body exceeds 6000 bytes (MAX_BODY_BYTES)');
    await expectError(await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: json, headers: { 'content-encoding': 'gzip' } }), 400, 'body: not valid gzip data');
    await expectError(await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: json, headers: { 'content-encoding': 'br' } }), 400, "Content-Encoding: 'br' is not supported (gzip, deflate)");
  });
});

describe('errors', () => {
  it('answers {"error"} naming the field for malformed inputs', async () => {
    const cases: Array<[unknown, number, string | RegExp]> = [
      [{ inputs: [fp32Input(nhwc.subarray(0, 16 * 16), [1, 16, 16])] }, 400, 'inputs[0].shape: expected [-1, 16, 16, 3] (NHWC) or [-1, 3, 16, 16] (NCHW), got [1, 16, 16]'],
      [{ inputs: [fp32Input([1, 2, 3, 4, 5], [1, 16, 16, 3])] }, 400, 'inputs[0].data: shape [1, 16, 16, 3] needs 768 elements, got 5'],
      [{ inputs: [{ ...fp32Input([1], [1, 16, 16, 3]), datatype: 'INT64' }] }, 400, "inputs[0].datatype: 'INT64' is not supported; send FP32 or UINT8 (decoded pixels) or BYTES (encoded images)"],
      [{ inputs: [{ ...fp32Input([1], [1, 16, 16, 3]), datatype: 'FLOAT' }] }, 400, /^inputs\[0\]\.datatype: /],
      [{ inputs: [fp32Input([1], [1, -16, 16, 3])] }, 400, /^inputs\[0\]\.shape\[1\]: /],
      [{ inputs: [{ ...fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3]), name: 'data_0' }] }, 400, "inputs[0].name: unknown input 'data_0'; the model's input is 'input'"],
      [{ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: ['x', ...new Array(767).fill(0)] }] }, 400, 'inputs[0].data[0]: expected a number, got string'],
      [{ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 16, 16, 3], data: [...new Array(767).fill(0), 256] }] }, 400, /^inputs\[0\]\.data\[767\]: expected an integer in 0…255/],
      [{ inputs: [{ name: 'input', datatype: 'BYTES', shape: [2], data: ['AAAA', '%%%'] }] }, 400, 'inputs[0].data[1]: not valid base64'],
      [{ inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])], outputs: [{ name: 'fc6_1' }] }, 400, "outputs[0].name: unknown output 'fc6_1'; the model's outputs are 'logits', 'probabilities'"],
      [{ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: 3 }] }, 400, 'inputs[0].data: expected an array'],
      [{ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3] }] }, 400, 'inputs[0].data: required (or parameters.binary_data_size with the binary data extension)'],
      [{ inputs: [] }, 400, /^inputs: /],
      [{ input: [] }, 400, /^inputs: /],
      [[1, 2], 400, /^body: /],
    ];
    for (const [body, status, message] of cases) await expectError(await infer(body), status, message);
    const notJson = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: '{"inputs": [', headers: { 'content-type': 'application/json' } });
    await expectError(notJson, 400, /^body: not valid JSON/);
  });

  it('answers 404 for an unknown model before reading the body', async () => {
    await expectError(await infer({ inputs: [] }, '/v2/models/absent/infer'), 404, "no model 'absent'");
    await expectError(await infer({ inputs: [] }, '/v2/models/tiny/versions/4/infer'), 404, "no version 4 of model 'tiny'");
    await expectError(await h.app.inject('/v3/nothing'), 404, 'no route GET /v3/nothing');
  });

  it('turns parameters.timeout (microseconds) into a deadline: 504 when it passes', async () => {
    const res = await infer({ parameters: { timeout: 1 }, inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])] });
    await expectError(res, 504, /deadline passed/);
    const roomy = await infer({ parameters: { timeout: 30_000_000, priority: 1 }, inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])] });
    expect(roomy.statusCode).toBe(200);
  });

  it('answers 429 with Retry-After when the model queue is full, and serves the rest', async () => {
    const body = { inputs: [fp32Input(nhwc.subarray(0, PIXELS), [1, 16, 16, 3])], outputs: [{ name: 'logits' }] };
    const responses = await Promise.all(Array.from({ length: 24 }, () => infer(body, '/v2/models/narrow/infer')));
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2); // one running, one queued
    const rejected = responses.filter((r) => r.statusCode === 429);
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(r.json()).toEqual({ error: "the queue of model 'narrow:1' is full (1 requests)" });
    }
  });

  it('refuses with 429 before reading the body when the queue is full (a garbage body is never parsed)', async () => {
    const garbage = () => h.app.inject({
      method: 'POST', url: '/v2/models/held/infer', payload: '{"inputs": [tru', headers: { 'content-type': 'application/json' },
    });
    // One request fills the queue and waits there (see the 'held' model) until it is cancelled.
    const cancel = new AbortController();
    const queued = h.service.inferTensor('held', { data: nhwc.subarray(0, PIXELS), shape: [1, 16, 16, 3], layout: 'NHWC' }, { signal: cancel.signal })
      .then(() => 'computed', (e: { code?: string }) => e.code);
    await expect.poll(() => h.service.queueDepth('held', '1'), { timeout: 20_000 }).toBe(1);
    await expectError(await garbage(), 429, "the queue of model 'held:1' is full (1 requests)");
    expect(h.service.queueDepth('held', '1')).toBe(1); // still full: the 429 was the queue's, not a passing state
    cancel.abort(new Error('test over'));
    expect(await queued).toBe('CANCELLED');
    expect(h.service.queueDepth('held', '1')).toBe(0);
    // With room in the queue the same body is read, and refused for what it is.
    await expectError(await garbage(), 400, /JSON/);
  });
});
