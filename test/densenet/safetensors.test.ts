import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../src/errors.ts';
import {
  DTYPE_BYTES,
  parseSafetensors,
  serializeSafetensors,
  tensorToFloat32,
  type RawTensor,
  type SafetensorsDtype,
  type TensorData,
} from '../../src/densenet/safetensors.ts';
import { float32ToBfloat16, float32ToFloat16 } from '../../src/densenet/half-float.ts';
import { seededRandom } from '../helpers/random.ts';

// ---- helpers that build files by hand, independent of the writer under test ----

const enc = new TextEncoder();

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u64le(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

/** 8-byte length + header text (or raw bytes) + data. */
function rawFile(header: string | Uint8Array, data: ArrayLike<number> = []): Uint8Array {
  const h = typeof header === 'string' ? enc.encode(header) : header;
  return concat(u64le(BigInt(h.length)), h, data);
}

function fileOf(header: unknown, dataBytes: number): Uint8Array {
  return rawFile(JSON.stringify(header), new Uint8Array(dataBytes));
}

const f32x2 = (begin = 0) => ({ dtype: 'F32', shape: [2], data_offsets: [begin, begin + 8] });

function expectInvalid(fn: () => unknown, ...fragments: string[]): ServeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ServeError);
  const err = caught as ServeError;
  expect(err.code).toBe('INVALID_MODEL_FILE');
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

function bytesOfU16(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 2);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setUint16(i * 2, x, true));
  return b;
}

function bitsOf(f: Float32Array): number[] {
  return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
}



// ---- parsing well-formed files ----

describe('parseSafetensors on a hand-built file', () => {
  // "b" is listed first in the header but its data comes second; the header is padded with spaces.
  const header =
    '{"b":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},' +
    '"__metadata__":{"format":"pt","note":"ü"},' +
    '"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},' +
    '"s":{"dtype":"U8","shape":[],"data_offsets":[16,17]},' +
    '"z":{"dtype":"I64","shape":[0,5],"data_offsets":[17,17]}}   ';
  const data = [
    0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x80, 0x3e, // F32 1.5, -2, 0.25
    0x00, 0x3c, 0x00, 0xc0, // F16 1, -2
    0xfe, // U8 scalar 254
  ];
  const file = rawFile(header, data);
  const headerLen = enc.encode(header).length;

  it('reads every tensor, in data order, as views into the file', () => {
    const { tensors, metadata } = parseSafetensors(file);
    expect([...tensors.keys()]).toEqual(['a', 'b', 's', 'z']);
    expect(metadata).toEqual({ format: 'pt', note: 'ü' });

    const a = tensors.get('a')!;
    expect(a.dtype).toBe('F32');
    expect(a.shape).toEqual([3]);
    expect(a.bytes.buffer).toBe(file.buffer);
    expect(a.bytes.byteOffset).toBe(8 + headerLen);
    expect(a.bytes.length).toBe(12);
    expect(Array.from(tensorToFloat32(a, 'a'))).toEqual([1.5, -2, 0.25]);

    const b = tensors.get('b')!;
    expect(b.bytes.byteOffset).toBe(8 + headerLen + 12);
    expect(Array.from(tensorToFloat32(b, 'b'))).toEqual([1, -2]);

    const s = tensors.get('s')!;
    expect(s.shape).toEqual([]);
    expect(Array.from(tensorToFloat32(s, 's'))).toEqual([254]);

    const z = tensors.get('z')!;
    expect(z.shape).toEqual([0, 5]);
    expect(z.bytes.length).toBe(0);
    expect(tensorToFloat32(z, 'z').length).toBe(0);
  });

  it('accepts an empty file (no tensors) and a subarray with a non-zero byteOffset', () => {
    expect(parseSafetensors(rawFile('{}')).tensors.size).toBe(0);
    const shifted = concat([9, 9, 9], file).subarray(3);
    expect(Array.from(tensorToFloat32(parseSafetensors(shifted).tensors.get('a')!, 'a'))).toEqual([1.5, -2, 0.25]);
  });

  it('reads F32 data that starts at an odd offset', () => {
    const h = '{"p":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"q":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}';
    const f = rawFile(h, [7, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x40, 0xc0]);
    const q = parseSafetensors(f).tensors.get('q')!;
    expect(q.bytes.byteOffset % 4).not.toBe(0);
    expect(Array.from(tensorToFloat32(q, 'q'))).toEqual([1, -3]);
  });
});

describe('files written by the reference library (safetensors.torch.save_file)', () => {
  const dir = new URL('../fixtures/reference/', import.meta.url);
  const read = (name: string) => new Uint8Array(readFileSync(new URL(name, dir)));

  it('parses a mixed I64/F16 checkpoint and converts every tensor', () => {
    const { tensors, metadata } = parseSafetensors(read('densenet121.weights.safetensors'));
    expect(tensors.size).toBe(727);
    expect(new Set([...tensors.values()].map((t) => t.dtype))).toEqual(new Set(['I64', 'F16']));
    expect(metadata.generator).toBe('scripts/make-reference-fixtures.py');
    const w = tensors.get('features.conv0.weight')!;
    expect(w.shape).toEqual([64, 3, 7, 7]);
    expect(tensorToFloat32(w, 'features.conv0.weight').length).toBe(64 * 3 * 7 * 7);
  });

  it('single-dtype file: the writer reproduces it byte for byte', () => {
    // The reference orders tensors by dtype, then name; with one dtype that is our name order.
    const original = read('densenet_40_k12.io.safetensors');
    const { tensors, metadata } = parseSafetensors(original);
    const rewritten = serializeSafetensors(
      [...tensors].map(([name, t]) => [name, { dtype: t.dtype, shape: t.shape, data: t.bytes }] as const),
      metadata,
    );
    expect(Buffer.compare(rewritten, original)).toBe(0);
  });
});

// ---- the writer ----

describe('serializeSafetensors', () => {
  it('writes the reference byte layout: compact JSON, space padding to 8, contiguous data', () => {
    const out = serializeSafetensors([['x', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]]);
    const json = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes → padded to 56
    const expected = rawFile(json + '  ', [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    expect(Array.from(out)).toEqual(Array.from(expected));
  });

  it('sorts names by code unit, puts __metadata__ first and aligns the data to 8 bytes', () => {
    const out = serializeSafetensors(
      [
        ['b', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }],
        ['B', { dtype: 'U8', shape: [1], data: new Uint8Array([4]) }],
        ['a', { dtype: 'I32', shape: [1], data: new Int32Array([-1]) }],
      ],
      { k: 'v' },
    );
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(out.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"k":"v"},"B":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
        '"a":{"dtype":"I32","shape":[1],"data_offsets":[1,5]},"b":{"dtype":"U8","shape":[3],"data_offsets":[5,8]}}',
    );
    expect(Array.from(out.subarray(8 + n))).toEqual([4, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
  });

  it('keeps code-unit order for integer-like names, which JSON.stringify would reorder', () => {
    const u8 = (v: number) => ({ dtype: 'U8' as const, shape: [1], data: new Uint8Array([v]) });
    const out = serializeSafetensors([['9', u8(9)], ['a', u8(97)], ['10', u8(10)], ['__proto__', u8(95)]], { '2': 'two', a: 'x' });
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    const names = [...new TextDecoder().decode(out.subarray(8, 8 + n)).matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(names).toEqual(['10', '9', '__proto__', 'a']);
    expect(Array.from(out.subarray(8 + n))).toEqual([10, 9, 95, 97]);
    const parsed = parseSafetensors(out);
    expect([...parsed.tensors.keys()]).toEqual(['10', '9', '__proto__', 'a']);
    expect(parsed.metadata).toEqual({ '2': 'two', a: 'x' });
    expect(Object.getPrototypeOf(parsed.metadata)).toBe(Object.prototype);
  });

  it('round-trips every dtype, scalar and zero-size shapes, and metadata', () => {
    const inputs: [string, { dtype: SafetensorsDtype; shape: number[]; data: TensorData }][] = [
      ['f64', { dtype: 'F64', shape: [2, 2], data: new Float64Array([1.25, -0.1, 1e300, -0]) }],
      ['f32', { dtype: 'F32', shape: [3], data: new Float32Array([0.5, -7, 3.25]) }],
      ['f16', { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }],
      ['bf16', { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0x4040]) }],
      ['i64', { dtype: 'I64', shape: [2], data: new BigInt64Array([-3n, 1n << 40n]) }],
      ['i32', { dtype: 'I32', shape: [2], data: new Int32Array([-5, 2147483647]) }],
      ['i16', { dtype: 'I16', shape: [2], data: bytesOfU16([0xfffe, 300]) }],
      ['i8', { dtype: 'I8', shape: [2], data: new Uint8Array([0x80, 0x7f]) }],
      ['u8', { dtype: 'U8', shape: [], data: new Uint8Array([200]) }],
      ['bool', { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) }],
      ['empty', { dtype: 'F32', shape: [4, 0, 3], data: new Float32Array(0) }],
      ['empty2', { dtype: 'F64', shape: [0], data: new Float64Array(0) }],
    ];
    const meta = { format: 'pt', 'quote"and\\': 'ünï', empty: '' };
    const { tensors, metadata } = parseSafetensors(serializeSafetensors(inputs, meta));
    expect(metadata).toEqual(meta);
    expect([...tensors.keys()].sort()).toEqual(inputs.map(([n]) => n).sort());
    for (const [name, t] of inputs) {
      const got = tensors.get(name)!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.bytes)).toEqual(Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)));
    }
    const f = (n: string) => Array.from(tensorToFloat32(tensors.get(n)!, n));
    expect(f('f64')).toEqual([1.25, Math.fround(-0.1), Infinity, -0]);
    expect(f('f32')).toEqual([0.5, -7, 3.25]);
    expect(f('bf16')).toEqual([1, 3]);
    expect(f('i64')).toEqual([-3, 2 ** 40]);
    expect(f('i32')).toEqual([-5, 2147483648]); // float32 has no 2^31 − 1
    expect(f('i16')).toEqual([-2, 300]);
    expect(f('i8')).toEqual([-128, 127]);
    expect(f('u8')).toEqual([200]);
    expect(f('bool')).toEqual([1, 0, 1]);
    expect(f('empty')).toEqual([]);
  });

  it('names the tensor when data does not match dtype and shape', () => {
    const one = (name: string, t: { dtype: SafetensorsDtype; shape: number[]; data: TensorData }) =>
      () => serializeSafetensors([[name, t]]);
    const e = expectInvalid(one('conv.w', { dtype: 'F32', shape: [2, 3], data: new Float32Array(5) }), '"conv.w"', '20 bytes', 'needs 24');
    expect(e.details).toMatchObject({ tensor: 'conv.w', expectedBytes: 24, actualBytes: 20 });
    expectInvalid(one('h', { dtype: 'F16', shape: [4], data: new Float32Array(2) }), '"h"', 'Float32Array');
    expectInvalid(one('neg', { dtype: 'U8', shape: [-1], data: new Uint8Array(0) }), '"neg"', 'non-negative');
    expectInvalid(one('__metadata__', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }), 'reserved');
    expectInvalid(() => serializeSafetensors([
      ['d', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }],
      ['d', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }],
    ]), '"d"', 'more than once');
  });
});

// ---- float conversions ----

describe('F16 / BF16 conversion', () => {
  it('decodes F16 bit patterns exactly, including subnormals, ±0, ±inf and NaN', () => {
    const pats = [0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0x3555, 0x7e00, 0x8001];
    const out = tensorToFloat32({ dtype: 'F16', shape: [pats.length], bytes: bytesOfU16(pats) }, 'h');
    const v = Array.from(out);
    expect(v.slice(0, 10)).toEqual([1, -2, Infinity, -Infinity, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, -0, 0.333251953125]);
    expect(Object.is(v[8], -0)).toBe(true);
    expect(Number.isNaN(v[10])).toBe(true);
    expect(bitsOf(out)[10]).toBe(0x7fc00000);
    expect(v[11]).toBe(-(2 ** -24));
  });

  it('decodes BF16 bit patterns exactly', () => {
    const pats = [0x3f80, 0xc000, 0x7f80, 0xff80, 0x0001, 0x8000, 0x7fc0, 0x4049];
    const out = tensorToFloat32({ dtype: 'BF16', shape: [pats.length], bytes: bytesOfU16(pats) }, 'b');
    const v = Array.from(out);
    expect(v.slice(0, 6)).toEqual([1, -2, Infinity, -Infinity, 2 ** -133, -0]);
    expect(Number.isNaN(v[6])).toBe(true);
    expect(v[7]).toBe(3.140625);
  });

  it('encodes float32 → F16 with round-to-nearest-even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [-0, 0x8000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00],
      [1e6, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [2 ** -25 + 2 ** -40, 0x0001], [1e-9, 0x0000],
      [1021.5 * 2 ** -24, 0x03fe], [1022.5 * 2 ** -24, 0x03fe], [1023.5 * 2 ** -24, 0x0400], [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01], [2046.5, 0x67fe], [2047.5, 0x6800],
      [-(1 + 3 * 2 ** -11), 0xbc02],
    ];
    const got = Array.from(float32ToFloat16(new Float32Array(cases.map(([x]) => x))));
    expect(got.map((h) => h.toString(16))).toEqual(cases.map(([, h]) => h.toString(16)));
    const nan = float32ToFloat16(new Float32Array([NaN]))[0]!;
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('encodes float32 → BF16 with round-to-nearest-even', () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [-2, 0xc000], [-0, 0x8000], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82],
      [1 + 2 ** -8 + 2 ** -20, 0x3f81], [3.4028234663852886e38, 0x7f80], [Infinity, 0x7f80], [-Infinity, 0xff80],
      [Math.PI, 0x4049],
    ];
    const got = Array.from(float32ToBfloat16(new Float32Array(cases.map(([x]) => x))));
    expect(got.map((h) => h.toString(16))).toEqual(cases.map(([, h]) => h.toString(16)));
    const nan = float32ToBfloat16(new Float32Array([NaN]))[0]!;
    expect(nan & 0x7f80).toBe(0x7f80);
    expect(nan & 0x7f).not.toBe(0);
  });

  it('round-trips all 65536 F16 and BF16 bit patterns (NaNs stay NaN)', () => {
    const all = Array.from({ length: 65536 }, (_, i) => i);
    for (const [dtype, encode] of [['F16', float32ToFloat16], ['BF16', float32ToBfloat16]] as const) {
      const back = encode(tensorToFloat32({ dtype, shape: [65536], bytes: bytesOfU16(all) }, dtype));
      const expMask = dtype === 'F16' ? 0x7c00 : 0x7f80;
      const manMask = dtype === 'F16' ? 0x3ff : 0x7f;
      let mismatches = 0;
      for (const h of all) {
        const isNaN = (h & expMask) === expMask && (h & manMask) !== 0;
        if (isNaN ? (back[h]! & expMask) !== expMask || (back[h]! & manMask) === 0 : back[h] !== h) mismatches++;
      }
      expect(mismatches).toBe(0);
    }
  });
});

// ---- corrupted files: every one is a ServeError naming what is wrong ----

describe('parseSafetensors rejects corrupted files', () => {
  const good = serializeSafetensors([
    ['alpha', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }],
    ['beta', { dtype: 'F32', shape: [3], data: new Float32Array([3, 4, 5]) }],
  ]);
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));

  it('sanity: the base file parses', () => {
    expect([...parseSafetensors(good).tensors.keys()]).toEqual(['alpha', 'beta']);
  });

  it('truncated file, cut in the length, the header and the data', () => {
    for (const cut of [0, 1, 7]) expectInvalid(() => parseSafetensors(good.subarray(0, cut)), 'shorter than the 8-byte');
    for (const cut of [8, 9, 8 + (n >> 1), 8 + n - 1]) expectInvalid(() => parseSafetensors(good.subarray(0, cut)), 'runs past the end');
    const noData = expectInvalid(() => parseSafetensors(good.subarray(0, 8 + n)), '"alpha"', 'outside the 0-byte');
    expect(noData.details.tensor).toBe('alpha');
    expectInvalid(() => parseSafetensors(good.subarray(0, 8 + n + 4)), '"alpha"', 'outside');
    expectInvalid(() => parseSafetensors(good.subarray(0, good.length - 1)), '"beta"', '[8, 20]', 'outside the 19-byte');
  });

  it('header length huge or over the limit', () => {
    expectInvalid(() => parseSafetensors(concat(u64le(2n ** 64n - 1n), good.subarray(8))), 'exceeds the limit');
    expectInvalid(() => parseSafetensors(concat(u64le(2n ** 40n), good.subarray(8))), 'exceeds the limit');
    expectInvalid(() => parseSafetensors(concat(u64le(100_000_001n), good.subarray(8))), 'header length 100000001 exceeds');
    // Exactly at the default limit passes that check and fails on the file's end instead.
    expectInvalid(() => parseSafetensors(concat(u64le(100_000_000n), good.subarray(8))), 'runs past the end');
    expectInvalid(() => parseSafetensors(good, { maxHeaderBytes: n - 1 }), 'exceeds the limit');
    expect(parseSafetensors(good, { maxHeaderBytes: n }).tensors.size).toBe(2);
  });

  it('header not UTF-8, not JSON, or not an object', () => {
    expectInvalid(() => parseSafetensors(rawFile(new Uint8Array([0x7b, 0xff, 0x7d]))), 'not valid UTF-8');
    expectInvalid(() => parseSafetensors(rawFile('{"a":')), 'not valid JSON');
    expectInvalid(() => parseSafetensors(rawFile('')), 'not valid JSON');
    expectInvalid(() => parseSafetensors(rawFile('\ufeff{}')), 'not valid JSON');
    for (const h of ['[]', '[{"a":1}]', 'null', '"x"', '42']) expectInvalid(() => parseSafetensors(rawFile(h)), 'must be a JSON object');
  });

  it('entry not an object, with unknown or missing keys', () => {
    expectInvalid(() => parseSafetensors(fileOf({ w: [1, 2] }, 0)), '"w"', 'must be an object');
    expectInvalid(() => parseSafetensors(fileOf({ w: null }, 0)), '"w"', 'must be an object');
    expectInvalid(() => parseSafetensors(fileOf({ w: { ...f32x2(), extra: 1 } }, 8)), '"w"', 'unknown key "extra"');
    expectInvalid(() => parseSafetensors(fileOf({ w: { dtype: 'F32', shape: [2] } }, 8)), '"w"', 'data_offsets');
    expectInvalid(() => parseSafetensors(fileOf({ w: { shape: [2], data_offsets: [0, 8] } }, 8)), '"w"', 'unknown dtype');
  });

  it('unknown dtype', () => {
    expectInvalid(() => parseSafetensors(fileOf({ w: { ...f32x2(), dtype: 'F8_E4M3' } }, 8)), '"w"', 'unknown dtype "F8_E4M3"');
    expectInvalid(() => parseSafetensors(fileOf({ w: { ...f32x2(), dtype: 'f32' } }, 8)), '"w"', 'unknown dtype "f32"');
    expectInvalid(() => parseSafetensors(fileOf({ w: { ...f32x2(), dtype: 4 } }, 8)), '"w"', 'unknown dtype 4');
  });

  it('negative, fractional, non-numeric or oversized dims', () => {
    for (const shape of [[-1, 2], [1.5], ['2'], [null], [2 ** 53]]) {
      expectInvalid(() => parseSafetensors(fileOf({ 'layer.0': { ...f32x2(), shape } }, 8)), '"layer.0"', 'non-negative integer');
    }
    expectInvalid(() => parseSafetensors(fileOf({ s: { ...f32x2(), shape: 2 } }, 8)), '"s"', 'shape must be an array');
    expectInvalid(() => parseSafetensors(fileOf({ s: { ...f32x2(), shape: [2 ** 30, 2 ** 30, 2 ** 30] } }, 8)), '"s"', 'too many elements');
  });

  it('offsets malformed or out of range', () => {
    const bad = (data_offsets: unknown, frag: string) =>
      expectInvalid(() => parseSafetensors(fileOf({ off: { ...f32x2(), data_offsets } }, 8)), '"off"', frag);
    bad([0, 100], 'outside the 8-byte');
    bad([-4, 4], 'outside');
    bad([8, 0], 'outside');
    bad([0, 7.5], '[begin, end] integers');
    bad([0, 4, 8], '[begin, end] integers');
    bad(['0', '8'], '[begin, end] integers');
    bad({ begin: 0, end: 8 }, '[begin, end] integers');
  });

  it('overlapping offsets name both tensors', () => {
    const e = expectInvalid(
      () => parseSafetensors(fileOf({ a: f32x2(0), b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12)),
      'tensor "b"', 'overlap tensor "a"',
    );
    expect(e.details).toMatchObject({ tensor: 'b', other: 'a' });
    // Identical ranges are an overlap too.
    expectInvalid(() => parseSafetensors(fileOf({ a: f32x2(0), b: f32x2(0) }, 8)), 'overlap');
  });

  it('gaps: between tensors, before the first, and trailing bytes', () => {
    expectInvalid(() => parseSafetensors(fileOf({ a: f32x2(0), b: f32x2(12) }, 20)), 'tensor "b"', 'gap of 4 bytes');
    expectInvalid(() => parseSafetensors(fileOf({ a: f32x2(4) }, 12)), 'tensor "a"', 'gap of 4 bytes');
    expectInvalid(() => parseSafetensors(fileOf({ a: f32x2(0) }, 12)), '4 trailing bytes');
    expectInvalid(() => parseSafetensors(fileOf({}, 1)), '1 trailing bytes');
  });

  it('size mismatch between offsets and dtype × shape', () => {
    const e = expectInvalid(
      () => parseSafetensors(fileOf({ 'fc.bias': { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8)),
      '"fc.bias"', 'span 8 bytes', 'needs 12',
    );
    expect(e.details).toMatchObject({ tensor: 'fc.bias', expectedBytes: 12, actualBytes: 8 });
    expectInvalid(() => parseSafetensors(fileOf({ h: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 4] } }, 4)), '"h"', 'needs 8');
  });

  it('duplicate keys, however spelt and at whatever depth', () => {
    const e = f32x2();
    const t = JSON.stringify(e);
    expectInvalid(() => parseSafetensors(rawFile(`{"w":${t},"w":${t}}`, new Uint8Array(8))), 'key "w" more than once');
    expectInvalid(() => parseSafetensors(rawFile(`{"w":${t},"\\u0077":${t}}`, new Uint8Array(8))), 'key "w" more than once');
    expectInvalid(
      () => parseSafetensors(rawFile('{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(8))),
      'key "dtype" more than once',
    );
    expectInvalid(() => parseSafetensors(rawFile('{"__metadata__":{"a":"1","a":"2"}}')), 'key "a" more than once');
    expectInvalid(() => parseSafetensors(rawFile('{"__metadata__":{},"__metadata__":{}}')), 'key "__metadata__" more than once');
    // Same keys in sibling objects, and braces, commas and escaped quotes inside strings, are fine.
    const tricky = '{"a\\",{\\"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"x":"\\"},{","y":"]["}}';
    const parsed = parseSafetensors(rawFile(tricky, [5]));
    expect([...parsed.tensors.keys()]).toEqual(['a",{"b']);
    expect(parsed.metadata).toEqual({ x: '"},{', y: '][' });
  });

  it('bad __metadata__', () => {
    for (const m of [[], 'pt', null, 3]) {
      expectInvalid(() => parseSafetensors(fileOf({ __metadata__: m }, 0)), '__metadata__ must be an object');
    }
    expectInvalid(() => parseSafetensors(fileOf({ __metadata__: { a: 'x', n: 1 } }, 0)), '__metadata__ value for "n"');
    expectInvalid(() => parseSafetensors(fileOf({ __metadata__: { nested: { a: 'b' } } }, 0)), '__metadata__ value for "nested"');
  });

  it('tensorToFloat32 rejects a tensor whose bytes do not match its shape, naming it', () => {
    const t: RawTensor = { dtype: 'F32', shape: [3], bytes: new Uint8Array(8) };
    expectInvalid(() => tensorToFloat32(t, 'stem.conv'), '"stem.conv"', 'needs 12');
  });
});

// ---- property-style loops ----

describe('property: seeded random files', () => {
  const dtypes = Object.keys(DTYPE_BYTES) as SafetensorsDtype[];
  const alphabet = ['a', 'b', '.', '_', '0', '"', '\\', 'ü', '{', ',', '😀', ' '];

  it('random tensors survive serialize → parse unchanged (500 seeds)', () => {
    const rnd = seededRandom(0xc0ffee);
    const int = (n: number) => Math.floor(rnd() * n);
    for (let iter = 0; iter < 500; iter++) {
      const inputs = new Map<string, { dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }>();
      const count = int(6);
      for (let k = 0; k < count; k++) {
        let name = '';
        for (let c = 1 + int(6); c > 0; c--) name += alphabet[int(alphabet.length)];
        if (name === '__metadata__') continue;
        const dtype = dtypes[int(dtypes.length)]!;
        const shape = Array.from({ length: int(4) }, () => int(5));
        const bytes = new Uint8Array(shape.reduce((p, d) => p * d, 1) * DTYPE_BYTES[dtype]);
        for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
        inputs.set(name, { dtype, shape, data: bytes });
      }
      const meta: Record<string, string> = {};
      if (rnd() < 0.5) meta[`k${int(100)}`] = alphabet[int(alphabet.length)]!;

      const file = serializeSafetensors(inputs, meta);
      const { tensors, metadata } = parseSafetensors(file);
      expect(metadata).toEqual(meta);
      expect(tensors.size).toBe(inputs.size);
      for (const [name, t] of inputs) {
        const got = tensors.get(name);
        expect(got?.dtype).toBe(t.dtype);
        expect(got?.shape).toEqual(t.shape);
        expect(Buffer.compare(got!.bytes, t.data)).toBe(0);
      }
    }
  });

  it('random byte mutations either parse or throw ServeError, never anything else (500 seeds)', () => {
    const base = serializeSafetensors([
      ['conv0.weight', { dtype: 'F32', shape: [2, 1, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
      ['norm.var', { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0x7e00]) }],
      ['step', { dtype: 'I64', shape: [], data: new BigInt64Array([7n]) }],
      ['mask', { dtype: 'BOOL', shape: [0], data: new Uint8Array(0) }],
    ], { format: 'pt' });
    const headerEnd = 8 + Number(new DataView(base.buffer).getBigUint64(0, true));
    const rnd = seededRandom(42);
    const int = (n: number) => Math.floor(rnd() * n);
    const outcomes = { parsed: 0, rejected: 0 };
    for (let iter = 0; iter < 500; iter++) {
      let file: Uint8Array = base.slice();
      for (let m = 1 + int(3); m > 0; m--) {
        // Aim most mutations at the length prefix and the header, where the parser branches.
        const at = rnd() < 0.7 ? int(headerEnd) : int(file.length);
        const r = rnd();
        if (r < 0.6) file[at] = int(256);
        else if (r < 0.8) file[at] = '{}[],:"0123456789-.e '.charCodeAt(int(21));
        else if (r < 0.9) file = file.subarray(0, at);
        else file = concat(file.subarray(0, at), [int(256)], file.subarray(at));
      }
      try {
        const { tensors } = parseSafetensors(file);
        for (const [name, t] of tensors) expect(tensorToFloat32(t, name).length).toBe(t.shape.reduce((p, d) => p * d, 1));
        outcomes.parsed++;
      } catch (err) {
        if (!(err instanceof ServeError)) throw err;
        expect(err.code).toBe('INVALID_MODEL_FILE');
        outcomes.rejected++;
      }
    }
    // Both branches must be exercised, or the loop proves nothing.
    expect(outcomes.parsed).toBeGreaterThan(10); // 21 with this seed
    expect(outcomes.rejected).toBeGreaterThan(300); // 479 with this seed
  });
});
