// Properties of the Open Inference Protocol's binary data extension on the REST side
// (src/api/http/binary-data.ts, v2-wire.ts, and the shared src/api/oip), on inputs fast-check makes up: tensors sent
// binary or as JSON come out bit for bit; any Inference-Header-Content-Length with any body,
// and any near-valid request, end in a decoded input or a coded error (INVALID_INPUT,
// LIMIT_EXCEEDED) — never a TypeError, a RangeError or an allocation the shape alone asked for.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../src/errors.ts';
import { BinaryReader, splitBody } from '../../src/api/http/binary-data.ts';
import { parseJson } from '../../src/api/http/body-reader.ts';
import { DATATYPES, InferRequest } from '../../src/api/http/schemas.ts';
import { toInferRequest } from '../../src/api/http/v2-wire.ts';
import { parseInput } from '../../src/api/http/validation.ts';
import { decodeModelInput, planOutputs, type InferLimits } from '../../src/api/oip/infer-request.ts';
import { decodeTensor, float32ToLE, joinBytesElements, splitBytesElements } from '../../src/api/oip/tensor-data.ts';
import type { ModelDescription } from '../../src/inference/index.ts';

const SEED = 0xb1a7;
const H = 4;
const W = 3;
const C = 2;
const PER_IMAGE = H * W * C;
const MAX_ELEMENTS = 4096;
const MODEL: ModelDescription = {
  name: 'm', version: '1', versions: ['1'], labels: ['a', 'b'], maxBatchSize: 4, maxQueueDelayMs: 0, preferredBatchSizes: [],
  instances: 1, executor: 'fused',
  // Two channels: the protocol layer takes the model's shape as it is (image models have 1 or 3).
  input: { height: H, width: W, channels: C as 1 | 3 },
};
const LIMITS: InferLimits = { maxTensorElements: MAX_ELEMENTS, maxImagesPerRequest: 64 };

function codedOnly<T>(run: () => T, codes: readonly string[] = ['INVALID_INPUT']): T | ServeError {
  try {
    return run();
  } catch (err) {
    if (err instanceof ServeError && codes.includes(err.code)) return err;
    throw err;
  }
}

/** The request path of POST /v2/models/m/infer after the body is read (routes/v2-inference.ts). */
function decodeBody(body: Buffer, header: string | string[] | undefined, limits = LIMITS) {
  const { json, binary } = splitBody(body, header);
  const request = toInferRequest(parseInput(InferRequest, parseJson(json), 'body'), binary, { model: 'm' });
  const input = decodeModelInput(request, MODEL, limits);
  return { request, input, plans: planOutputs(request.outputs) };
}

const rawFp32 = (bytes: Buffer, count: number) => decodeTensor('FP32', [count], { kind: 'raw', bytes, field: 'x' });

const bits = (f: Float32Array): number[] => [...new Uint32Array(f.buffer, f.byteOffset, f.length)];

interface SentInput {
  n: number;
  layout: 'NHWC' | 'NCHW' | 'HWC';
  binary: boolean;
  datatype: 'FP32' | 'UINT8' | 'BYTES';
  values: Float32Array | Uint8Array | Uint8Array[];
  shape: number[];
  /** The request's JSON (and, sent binary, the tensor bytes that follow it). */
  json: Buffer;
  raw: Buffer;
}

/** A valid request with one input: 1–3 images as FP32 / UINT8 pixels or BYTES, binary or JSON. */
const sentInput: fc.Arbitrary<SentInput> = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    layout: fc.constantFrom('NHWC' as const, 'NCHW' as const, 'HWC' as const),
    binary: fc.boolean(),
    datatype: fc.constantFrom('FP32' as const, 'UINT8' as const, 'BYTES' as const),
  })
  .map((r) => ({ ...r, n: r.layout === 'HWC' && r.datatype !== 'BYTES' ? 1 : r.n })) // [H, W, C] holds one image
  .chain((r) => {
    const count = r.n * PER_IMAGE;
    const values: fc.Arbitrary<Float32Array | Uint8Array | Uint8Array[]> = r.datatype === 'FP32'
      ? fc.float32Array({ minLength: count, maxLength: count, noDefaultInfinity: true, noNaN: !r.binary }) // JSON has no NaN
      : r.datatype === 'UINT8' ? fc.uint8Array({ minLength: count, maxLength: count })
        : fc.array(fc.uint8Array({ minLength: 1, maxLength: 12 }), { minLength: r.n, maxLength: r.n });
    return values.map((v) => ({ ...r, values: v }));
  })
  .map((r) => {
    const { n, layout, binary, datatype, values } = r;
    const shape = datatype === 'BYTES' ? [n] : layout === 'HWC' ? [H, W, C] : layout === 'NHWC' ? [n, H, W, C] : [n, C, H, W];
    const raw = datatype === 'FP32' ? float32ToLE(values as Float32Array)
      : datatype === 'UINT8' ? Buffer.from(values as Uint8Array) : joinBytesElements(values as Uint8Array[]);
    const data = datatype === 'BYTES' ? (values as Uint8Array[]).map((e) => Buffer.from(e).toString('base64')) : [...(values as Float32Array | Uint8Array)];
    const input = binary ? { name: 'input', datatype, shape, parameters: { binary_data_size: raw.length } } : { name: 'input', datatype, shape, data };
    return { ...r, shape, raw, json: Buffer.from(JSON.stringify({ inputs: [input] })) };
  });

describe('binary data extension properties', () => {
  it('splits a body exactly where the header says, or refuses the header naming it', () => {
    const header = fc.oneof(
      fc.constant(undefined),
      fc.integer({ min: -3, max: 80 }).map(String),
      fc.string({ maxLength: 14 }),
      fc.integer({ min: 0, max: 80 }).map((n) => ` ${n}\t`),
      fc.array(fc.integer({ min: 0, max: 80 }).map(String), { minLength: 1, maxLength: 3 }),
      fc.constantFrom('1e2', '0x10', '9'.repeat(13), '+5', '5.0', ''),
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), header, (bytes, value) => {
      const body = Buffer.from(bytes);
      const result = codedOnly(() => splitBody(body, value));
      if (result instanceof ServeError) {
        expect(result.details.field).toBe('Inference-Header-Content-Length');
        expect(result.message).toMatch(/^Inference-Header-Content-Length: /);
        return;
      }
      expect(Buffer.concat([result.json, result.binary]).equals(body)).toBe(true);
      if (value === undefined) {
        expect(result.binary.length).toBe(0);
      } else {
        const n = Number(String(value).trim());
        expect(result.json.length).toBe(n);
        expect(n).toBeGreaterThanOrEqual(1);
      }
    }), { seed: SEED, numRuns: 500 });
  });

  it('hands out consecutive slices and accounts for every byte', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 5 }), (bytes, sizes) => {
      const reader = new BinaryReader(Buffer.from(bytes));
      let at = 0;
      for (const size of sizes) {
        const slice = codedOnly(() => reader.take(size, 'x'));
        if (slice instanceof ServeError) {
          expect(at + size).toBeGreaterThan(bytes.length);
          return;
        }
        expect(Buffer.from(slice).equals(Buffer.from(bytes.subarray(at, at + size)))).toBe(true);
        at += size;
      }
      const finished = codedOnly(() => reader.finish());
      expect(finished instanceof ServeError).toBe(at !== bytes.length);
    }), { seed: SEED, numRuns: 300 });
  });

  it('round-trips FP32 bit patterns and BYTES elements; splits any bytes into elements or refuses them', () => {
    fc.assert(fc.property(fc.float32Array({ maxLength: 50 }), fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 6 }), (floats, elements) => {
      const decoded = rawFp32(float32ToLE(floats), floats.length);
      expect(decoded.datatype === 'FP32' && bits(decoded.data)).toEqual(bits(floats));
      const wire = joinBytesElements(elements);
      expect(splitBytesElements(wire, elements.length, 'x').map((e) => [...e])).toEqual(elements.map((e) => [...e]));
    }), { seed: SEED, numRuns: 300 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), fc.integer({ min: 0, max: 6 }), (bytes, count) => {
      const result = codedOnly(() => splitBytesElements(Buffer.from(bytes), count, 'x'));
      if (!(result instanceof ServeError)) expect(joinBytesElements(result).equals(Buffer.from(bytes))).toBe(true);
      expect(codedOnly(() => rawFp32(Buffer.from(bytes), count)) instanceof ServeError).toBe(bytes.length !== count * 4);
    }), { seed: SEED, numRuns: 300 });
  });

  it('decodes an FP32, UINT8 or BYTES input sent binary or as JSON to exactly what was sent', () => {
    fc.assert(fc.property(sentInput, ({ n, layout, binary, datatype, values, shape, json, raw }) => {
      const { input: decoded } = binary ? decodeBody(Buffer.concat([json, raw]), String(json.length)) : decodeBody(json, undefined);
      if (datatype === 'BYTES') {
        expect(decoded.kind).toBe('images');
        if (decoded.kind === 'images') expect(decoded.images.map((e) => [...e])).toEqual((values as Uint8Array[]).map((e) => [...e]));
        return;
      }
      expect(decoded.kind).toBe('tensor');
      if (decoded.kind !== 'tensor') return;
      expect(decoded.shape).toEqual(shape);
      expect(decoded.layout).toBe(layout === 'NCHW' ? 'NCHW' : 'NHWC');
      expect(decoded.data.length).toBe(n * PER_IMAGE);
      // Binary keeps every bit; JSON numbers keep every finite value but not the sign of zero.
      const noSignedZero = (f: Float32Array) => [...f].map((v) => (v === 0 ? 0 : v));
      if (datatype === 'FP32' && binary) expect(bits(decoded.data as Float32Array)).toEqual(bits(values as Float32Array));
      else if (datatype === 'FP32') expect(noSignedZero(decoded.data as Float32Array)).toEqual(noSignedZero(values as Float32Array));
      else expect([...decoded.data]).toEqual([...(values as Uint8Array)]);
    }), { seed: SEED, numRuns: 200 });
  });

  it('answers a valid request with up to three things wrong with it with a decoded input or a coded error', () => {
    const dim = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(H, W, C, -1, 1.5, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e300, '2', null));
    const scalar = fc.oneof(fc.double(), fc.integer({ min: -2, max: 300 }), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null));
    const anything = fc.oneof(scalar, fc.array(scalar, { maxLength: 30 }), fc.array(fc.array(scalar, { maxLength: 6 }), { maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }));
    /** One thing wrong: a field of the input or the request replaced or removed, the header off, bytes added or lost. */
    const corruption = fc.oneof(
      fc.record({ at: fc.constantFrom('name', 'datatype', 'shape', 'data', 'parameters'), value: fc.oneof(anything, fc.constantFrom(...DATATYPES), fc.constantFrom('input', 'data_0', 'fp32', undefined)) })
        .map((c) => ({ kind: 'input' as const, ...c })),
      fc.record({ value: fc.oneof(fc.array(dim, { maxLength: 5 }), fc.constantFrom([1, H, W, C], [2, C, H, W], [H, W, C], [1], [3], [200, H, W, C], [2 ** 31 - 1], [MAX_ELEMENTS + 1])) }).map((c) => ({ kind: 'input' as const, at: 'shape', ...c })),
      fc.record({ value: fc.oneof(fc.integer({ min: -2, max: 200 }), fc.constantFrom(2 ** 40, 1.5, '8')) }).map((c) => ({ kind: 'binary-size' as const, ...c })),
      fc.record({ at: fc.constantFrom('id', 'parameters', 'outputs', 'inputs'), value: fc.oneof(anything, fc.constant(undefined)) }).map((c) => ({ kind: 'request' as const, ...c })),
      fc.record({ value: fc.array(fc.record({ name: fc.constantFrom('logits', 'probabilities', 'x'), parameters: fc.record({ classification: fc.oneof(fc.integer({ min: -1, max: 5 }), fc.constant('3')), binary_data: fc.oneof(fc.boolean(), fc.constant(1)) }, { requiredKeys: [] }) }, { requiredKeys: ['name'] }), { maxLength: 3 }) })
        .map((c) => ({ kind: 'request' as const, at: 'outputs', ...c })),
      fc.record({ value: fc.dictionary(fc.constantFrom('timeout', 'priority', 'binary_data_output', 'x'), scalar, { maxKeys: 2 }) }).map((c) => ({ kind: 'request' as const, at: 'parameters', ...c })),
      fc.integer({ min: -6, max: 6 }).filter((d) => d !== 0).map((delta) => ({ kind: 'header' as const, delta })),
      fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: 16 })).map((bytes) => ({ kind: 'tail' as const, bytes })),
    );
    const seen = { decoded: 0, refused: 0, limit: 0 };
    fc.assert(fc.property(sentInput, fc.array(corruption, { maxLength: 3 }), (sent, corruptions) => {
      const input: Record<string, unknown> = { ...(JSON.parse(sent.json.toString()) as { inputs: Record<string, unknown>[] }).inputs[0] };
      const request: Record<string, unknown> = { inputs: [input] };
      let raw = sent.raw;
      let delta = 0;
      for (const c of corruptions) {
        if (c.kind === 'input') input[c.at] = c.value;
        if (c.kind === 'binary-size') input.parameters = { binary_data_size: c.value };
        if (c.kind === 'request') request[c.at] = c.value;
        if (c.kind === 'header') delta += c.delta;
        if (c.kind === 'tail') raw = typeof c.bytes === 'number' ? raw.subarray(0, Math.max(0, raw.length - c.bytes)) : Buffer.concat([raw, c.bytes]);
      }
      const json = Buffer.from(JSON.stringify(request));
      const header = sent.binary || delta !== 0 ? String(json.length + delta) : undefined;
      const result = codedOnly(() => decodeBody(sent.binary ? Buffer.concat([json, raw]) : json, header), ['INVALID_INPUT', 'LIMIT_EXCEEDED']);
      if (result instanceof ServeError) {
        // Every refusal names what it is about.
        expect(result.message).toMatch(/^[A-Za-z][\w-]*(\[(\d+|".*")\]|\.\w+)*: /);
        seen[result.code === 'LIMIT_EXCEEDED' ? 'limit' : 'refused']++;
        return;
      }
      seen.decoded++;
      const { input: decoded } = result;
      if (decoded.kind === 'tensor') {
        expect(decoded.data.length).toBeLessThanOrEqual(MAX_ELEMENTS);
        expect(decoded.data.length).toBe(decoded.shape.reduce((a, b) => a * b, 1));
      } else {
        expect(decoded.images.length).toBeLessThanOrEqual(MAX_ELEMENTS);
      }
    }), { seed: SEED, numRuns: 1500 });
    // The generator reaches all three outcomes, or the property would prove little.
    for (const [outcome, count] of Object.entries(seen)) expect(count, outcome).toBeGreaterThan(10);
  });

  it('allocates nothing for JSON data until its element count matches the shape', () => {
    // 307 MB if the shape alone were allocated for; the data holds one element.
    const body = { inputs: [{ name: 'input', datatype: 'FP32', shape: [3_200_000, H, W, C], data: [0] }] };
    const before = process.memoryUsage().arrayBuffers;
    const json = Buffer.from(JSON.stringify(body));
    const err = codedOnly(() => decodeBody(json, undefined, { maxTensorElements: 2 ** 31 - 1, maxImagesPerRequest: 2 ** 31 - 1 }));
    expect((err as ServeError).message).toMatch(/^inputs\[0\]\.data: shape \[3200000, 4, 3, 2\] needs 76800000 elements, got 1/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
  });

  it('refuses a shape above MAX_TENSOR_ELEMENTS before looking at (or allocating for) its data', () => {
    const big = fc.tuple(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 64 }))
      .filter(([a, b]) => a * b * PER_IMAGE > MAX_ELEMENTS && a * b <= 2 ** 31 - 1); // each dimension within the schema's 2^31 - 1
    fc.assert(fc.property(big, fc.constantFrom('FP32', 'UINT8'), fc.boolean(), ([a, b], datatype, binary) => {
      const shape = [a * b, H, W, C];
      const input = binary ? { name: 'input', datatype, shape, parameters: { binary_data_size: 0 } } : { name: 'input', datatype, shape, data: [] };
      const json = Buffer.from(JSON.stringify({ inputs: [input] }));
      const err = codedOnly(() => decodeBody(json, binary ? String(json.length) : undefined), ['INVALID_INPUT', 'LIMIT_EXCEEDED']);
      expect(err).toBeInstanceOf(ServeError);
      expect((err as ServeError).code).toBe('LIMIT_EXCEEDED');
      expect((err as ServeError).details.limit).toBe('MAX_TENSOR_ELEMENTS');
    }), { seed: SEED, numRuns: 200 });
  });
});
