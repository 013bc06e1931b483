// Same input → same answer on every transport (conventions rule 15). Each case of the table is
// one Open Inference Protocol request, rendered four ways — REST with JSON data, REST with the
// binary data extension (binary outputs too), gRPC with raw_input_contents, gRPC with typed
// contents — and sent to one server (the HTTP app and the gRPC server over one service). The
// answers, brought to a common form, must be equal: the same outputs (names, datatypes, shapes,
// values), or the same error code (each transport's status from its one table) and the same
// message. Where the message names the place the data was sent in, that place is the wire's own
// (`inputs[0].data`, `raw_input_contents[0]`, …) and is compared as `<data>`.
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpApp } from '../../../src/api/http/app.ts';
import { HTTP_ERRORS } from '../../../src/api/http/error-status.ts';
import { ERROR_CODE_METADATA_KEY, GRPC_STATUS_BY_CODE } from '../../../src/api/grpc/status-codes.ts';
import type { ModelInferResponse__Output } from '../../../src/api/grpc/generated/inference/ModelInferResponse.ts';
import { float32ToLE, joinBytesElements } from '../../../src/api/oip/index.ts';
import type { ErrorCode } from '../../../src/errors.ts';
import { fp32Batch, pngOf, startHarness, unaryCall, type Harness } from '../grpc/harness.ts';

type Values = Float32Array | Uint8Array | Uint8Array[];
type Param = number | string | boolean;

interface TableCase {
  name: string;
  /** The refusal names how the data was sent (bytes or values): messages agree per data form. */
  messageByDataForm?: boolean;
  model?: string;
  version?: string;
  parameters?: Record<string, Param>;
  /** 'images': the test's two PNGs (made once the suite starts). */
  input: { name?: string; datatype: string; shape: number[]; values: Values | 'images'; parameters?: Record<string, Param> };
  outputs?: { name: string; classification?: number }[];
}

type Answer =
  | { ok: true; version: string; outputs: { name: string; datatype: string; shape: number[]; values: (number | string)[] }[] }
  | { ok: false; code: string; message: string };

const TRANSPORTS = ['http-json', 'http-binary', 'grpc-raw', 'grpc-typed'] as const;
type Transport = (typeof TRANSPORTS)[number];

let h: Harness;
let app: FastifyInstance;
let images: Uint8Array[];

beforeAll(async () => {
  h = await startHarness({ models: { tiny: { seed: 1 } }, env: { MAX_IMAGES_PER_REQUEST: '8' } });
  app = await buildHttpApp(h.deps);
  images = [await pngOf(1), await pngOf(2, 17, 64)];
}, 120_000);

afterAll(async () => {
  await app?.close();
  await h?.close();
});

const nchw = (nhwc: Float32Array, n: number): Float32Array => {
  const out = new Float32Array(nhwc.length);
  for (let b = 0; b < n; b++) for (let p = 0; p < 256; p++) for (let c = 0; c < 3; c++) out[b * 768 + c * 256 + p] = nhwc[b * 768 + p * 3 + c]!;
  return out;
};
const uint8 = (n: number) => new Uint8Array(n * 768).map((_, i) => (i * 37) % 256);

function table(): TableCase[] {
  const one = fp32Batch(1);
  return [
    { name: 'FP32 NHWC, a batch of 2, both outputs', input: { datatype: 'FP32', shape: [2, 16, 16, 3], values: fp32Batch(2) } },
    { name: 'FP32 NCHW read from the shape', input: { datatype: 'FP32', shape: [1, 3, 16, 16], values: nchw(one, 1) } },
    { name: 'FP32 NCHW stated by the layout parameter', input: { datatype: 'FP32', shape: [1, 3, 16, 16], values: nchw(one, 1), parameters: { layout: 'NCHW' } } },
    { name: 'one image without the batch dimension', input: { datatype: 'FP32', shape: [16, 16, 3], values: one } },
    { name: 'UINT8 pixels, a batch of 2', input: { datatype: 'UINT8', shape: [2, 16, 16, 3], values: uint8(2) } },
    { name: 'BYTES images with the classification extension', input: { datatype: 'BYTES', shape: [2], values: 'images' }, outputs: [{ name: 'probabilities', classification: 2 }] },
    { name: 'BYTES [N, 1]', input: { datatype: 'BYTES', shape: [2, 1], values: 'images' }, outputs: [{ name: 'logits' }] },
    { name: 'classification K above the class count, and 0', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one },
      outputs: [{ name: 'logits', classification: 9 }, { name: 'probabilities', classification: 0 }] },
    { name: 'scheduling parameters and an explicit version', version: '1', parameters: { priority: 1, timeout: 30_000_000 }, input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one } },
    { name: 'an unknown model', model: 'absent', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one } },
    { name: 'an unknown version', version: '7', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one } },
    { name: 'an unknown input name', input: { name: 'data_0', datatype: 'FP32', shape: [1, 16, 16, 3], values: one } },
    { name: 'an unsupported datatype', input: { datatype: 'INT32', shape: [1, 16, 16, 3], values: new Uint8Array(0) } },
    { name: 'the wrong image size', input: { datatype: 'FP32', shape: [1, 15, 16, 3], values: one.subarray(0, 720) } },
    { name: 'a layout that disagrees with the shape', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one, parameters: { layout: 'NCHW' } } },
    { name: 'a layout that is no layout', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one, parameters: { layout: 'CHW' } } },
    { name: 'more images than MAX_IMAGES_PER_REQUEST', input: { datatype: 'FP32', shape: [9, 16, 16, 3], values: fp32Batch(9) } },
    { name: 'a BYTES input of rank 2 with images in columns', input: { datatype: 'BYTES', shape: [1, 2], values: 'images' } },
    { name: 'fewer elements than the shape', messageByDataForm: true, input: { datatype: 'FP32', shape: [2, 16, 16, 3], values: one } },
    { name: 'a UINT8 value out of range (JSON and typed only: raw bytes cannot hold one)', input: { datatype: 'UINT8', shape: [1, 16, 16, 3], values: uint8(1) } },
    { name: 'an unknown output', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one }, outputs: [{ name: 'fc6_1' }] },
    { name: 'an output asked twice', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one }, outputs: [{ name: 'logits' }, { name: 'logits' }] },
    { name: 'a non-finite FP32 value (binary only: JSON has no NaN)', input: { datatype: 'FP32', shape: [1, 16, 16, 3], values: one.map((v, i) => (i === 5 ? NaN : v)) } },
  ];
}

/** The UINT8 out-of-range case: a value the typed wires can carry and raw bytes cannot. */
const OUT_OF_RANGE_UINT8 = 300;

// ---- rendering -----------------------------------------------------------------------------------

const valuesOf = (c: TableCase): Values => (c.input.values === 'images' ? images : c.input.values);

function jsonValues(c: TableCase): unknown[] {
  const { datatype } = c.input;
  const values = valuesOf(c);
  if (datatype === 'BYTES') return (values as Uint8Array[]).map((e) => Buffer.from(e).toString('base64'));
  const list = Array.from(values as Float32Array | Uint8Array) as number[];
  if (c.name.startsWith('a UINT8 value out of range')) list[0] = OUT_OF_RANGE_UINT8;
  return list;
}

function rawBytes(c: TableCase): Buffer {
  const { datatype } = c.input;
  const values = valuesOf(c);
  if (datatype === 'BYTES') return joinBytesElements(values as Uint8Array[]);
  return datatype === 'FP32' ? Buffer.from(float32ToLE(values as Float32Array)) : Buffer.from(values as Uint8Array);
}

async function viaHttp(c: TableCase, binary: boolean): Promise<Answer> {
  const input = {
    name: c.input.name ?? 'input', datatype: c.input.datatype, shape: c.input.shape,
    ...(binary ? { parameters: { ...c.input.parameters, binary_data_size: rawBytes(c).length } } : { data: jsonValues(c), ...(c.input.parameters ? { parameters: c.input.parameters } : {}) }),
  };
  const header = {
    inputs: [input],
    ...(c.outputs ? { outputs: c.outputs.map((o) => ({ name: o.name, ...(o.classification !== undefined ? { parameters: { classification: o.classification } } : {}) })) } : {}),
    parameters: { ...c.parameters, ...(binary ? { binary_data_output: true } : {}) },
  };
  const json = Buffer.from(JSON.stringify(header));
  const url = `/v2/models/${c.model ?? 'tiny'}${c.version ? `/versions/${c.version}` : ''}/infer`;
  const res = await app.inject({
    method: 'POST', url,
    payload: binary ? Buffer.concat([json, rawBytes(c)]) : json,
    headers: binary ? { 'inference-header-content-length': String(json.length), 'content-type': 'application/octet-stream' } : { 'content-type': 'application/json' },
  });
  if (res.statusCode !== 200) {
    const code = (Object.keys(HTTP_ERRORS) as ErrorCode[]).filter((k) => HTTP_ERRORS[k].status === res.statusCode);
    return { ok: false, code: code.join('|'), message: (res.json() as { error: string }).error };
  }
  const headerLength = Number(res.headers['inference-header-content-length'] ?? res.rawPayload.length);
  const body = JSON.parse(res.rawPayload.subarray(0, headerLength).toString()) as {
    model_version: string; outputs: { name: string; datatype: string; shape: number[]; data?: (number | string)[]; parameters?: { binary_data_size: number } }[];
  };
  let offset = headerLength;
  const outputs = body.outputs.map((o) => {
    let values = o.data;
    if (!values) {
      const section = res.rawPayload.subarray(offset, offset + o.parameters!.binary_data_size);
      offset += section.length;
      values = o.datatype === 'FP32' ? Array.from(new Float32Array(new Uint8Array(section).buffer)) : splitStrings(section);
    }
    return { name: o.name, datatype: o.datatype, shape: o.shape, values };
  });
  return { ok: true, version: body.model_version, outputs };
}

function splitStrings(section: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < section.length;) {
    const n = section.readUInt32LE(at);
    out.push(section.subarray(at + 4, at + 4 + n).toString());
    at += 4 + n;
  }
  return out;
}

function grpcParameter(value: Param): object {
  if (typeof value === 'boolean') return { bool_param: value };
  if (typeof value === 'string') return { string_param: value };
  return { int64_param: value };
}

async function viaGrpc(c: TableCase, raw: boolean): Promise<Answer> {
  const { datatype } = c.input;
  const values = valuesOf(c);
  const typedField = datatype === 'FP32' ? 'fp32_contents' : datatype === 'UINT8' ? 'uint_contents' : datatype === 'BYTES' ? 'bytes_contents' : 'int_contents';
  const typed = datatype === 'BYTES' ? (values as Uint8Array[]).map((e) => Buffer.from(e)) : jsonValues(c);
  const request = {
    model_name: c.model ?? 'tiny', model_version: c.version ?? '',
    parameters: Object.fromEntries(Object.entries(c.parameters ?? {}).map(([k, v]) => [k, grpcParameter(v)])),
    inputs: [{
      name: c.input.name ?? 'input', datatype, shape: c.input.shape,
      parameters: Object.fromEntries(Object.entries(c.input.parameters ?? {}).map(([k, v]) => [k, grpcParameter(v)])),
      ...(raw ? {} : { contents: { [typedField]: typed } }),
    }],
    outputs: (c.outputs ?? []).map((o) => ({ name: o.name, parameters: o.classification !== undefined ? { classification: grpcParameter(o.classification) } : {} })),
    ...(raw ? { raw_input_contents: [rawBytes(c)] } : {}),
  };
  try {
    const { response } = await unaryCall<object, ModelInferResponse__Output>(h.inference, 'ModelInfer', request);
    const outputs = response.outputs.map((o, i) => {
      const section = response.raw_output_contents[i];
      const values = section
        ? (o.datatype === 'FP32' ? Array.from(new Float32Array(new Uint8Array(section).buffer)) : splitStrings(section))
        : (o.datatype === 'FP32' ? o.contents!.fp32_contents : o.contents!.bytes_contents.map((b) => b.toString()));
      return { name: o.name, datatype: o.datatype, shape: o.shape.map(Number), values };
    });
    return { ok: true, version: response.model_version, outputs };
  } catch (err) {
    const e = err as grpc.ServiceError;
    const code = e.metadata.get(ERROR_CODE_METADATA_KEY)[0] as ErrorCode;
    expect(GRPC_STATUS_BY_CODE[code], `${c.name}: gRPC status of ${code}`).toBe(e.code);
    return { ok: false, code, message: e.details };
  }
}

function answer(c: TableCase, transport: Transport): Promise<Answer> {
  switch (transport) {
    case 'http-json': return viaHttp(c, false);
    case 'http-binary': return viaHttp(c, true);
    case 'grpc-raw': return viaGrpc(c, true);
    case 'grpc-typed': return viaGrpc(c, false);
  }
}

/** Which transports can carry a case at all. */
function carriers(c: TableCase): Transport[] {
  if (c.name.startsWith('a UINT8 value out of range')) return ['http-json', 'grpc-typed'];
  if (c.name.startsWith('a non-finite FP32 value')) return ['http-binary', 'grpc-raw'];
  return [...TRANSPORTS];
}

const DATA_FIELD = /inputs\[0\]\.data|inputs\[0\]\.contents\.\w+_contents|inputs\[0\]\.parameters\.binary_data_size|raw_input_contents\[0\]/g;

function comparable(a: Answer): Answer {
  if (a.ok) return { ...a, outputs: a.outputs.map((o) => ({ ...o, values: o.values.map((v) => (typeof v === 'number' ? Math.fround(v) : v)) })) };
  return { ...a, message: a.message.replace(DATA_FIELD, '<data>') };
}

describe('one request, one answer, on every transport', () => {
  it.each(table().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const transports = carriers(c);
    // One at a time: each request is then a batch of its own, so no answer depends on what it
    // was batched with (a batch of 4 may round differently from a batch of 1 in the last bit).
    const answers: Answer[] = [];
    for (const t of transports) answers.push(comparable(await answer(c, t)));
    const [first] = answers;
    // HTTP's status can stand for several codes (503): the gRPC answers name the one code.
    const code = answers.find((a) => !a.ok && !a.code.includes('|'));
    transports.forEach((t, i) => {
      const a = answers[i]!;
      if (!a.ok && a.code.includes('|') && code && !code.ok) {
        expect(a.code.split('|'), `${t}: the HTTP status of ${code.code}`).toContain(code.code);
        answers[i] = { ...a, code: code.code };
      }
    });
    const sameForm = (t: Transport) => (t === 'http-binary' || t === 'grpc-raw' ? 'raw' : 'values');
    for (const [i, t] of transports.entries()) {
      const a = answers[i]!;
      if (c.messageByDataForm && !a.ok) {
        const j = transports.findIndex((u) => sameForm(u) === sameForm(t));
        expect(a, `${t} vs ${transports[j]}`).toEqual(answers[j]);
        expect({ ...a, message: '' }, `${t} vs ${transports[0]}`).toEqual({ ...answers[0]!, message: '' });
      } else {
        expect(a, `${t} vs ${transports[0]}`).toEqual(answers[0]);
      }
    }
    // The table is about answers, not failures of the test: every success carries outputs.
    if (first!.ok) expect(first!.outputs.length).toBeGreaterThan(0);
  });

  it('covers successes and each kind of refusal', async () => {
    const kinds = new Set<string>();
    for (const c of table()) {
      const a = await viaGrpc(c, carriers(c).includes('grpc-raw'));
      kinds.add(a.ok ? 'ok' : a.code);
    }
    expect([...kinds].sort()).toEqual(['INVALID_INPUT', 'LIMIT_EXCEEDED', 'MODEL_NOT_FOUND', 'ok']);
  });
});
