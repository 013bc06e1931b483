// Open Inference Protocol tensors on the gRPC wire ↔ typed arrays, for the datatypes our models
// take (FP32, UINT8, BYTES) and give (FP32, BYTES for classification). Raw contents are
// flattened row-major little-endian elements; a BYTES element is a little-endian uint32 length
// followed by that many bytes. Every check names the field it is about.
import { endianness } from 'node:os';
import { ServeError } from '../../errors.ts';
import type { InferTensorContents, InferTensorContents__Output } from './generated/inference/InferTensorContents.ts';

export const INPUT_DATATYPES = ['FP32', 'UINT8', 'BYTES'] as const;
export type InputDatatype = (typeof INPUT_DATATYPES)[number];

export type DecodedTensor =
  | { datatype: 'FP32'; shape: number[]; data: Float32Array }
  | { datatype: 'UINT8'; shape: number[]; data: Uint8Array }
  | { datatype: 'BYTES'; shape: number[]; elements: Uint8Array[] };

/** Larger dimensions than any tensor we take; keeps shape arithmetic exact. */
export const MAX_DIM = 2 ** 31 - 1;
const MAX_RANK = 8;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';
const BYTES_LENGTH_PREFIX = 4;
/** The typed field that carries each datatype's elements. */
const TYPED_FIELD = { FP32: 'fp32_contents', UINT8: 'uint_contents', BYTES: 'bytes_contents' } as const;
const ALL_TYPED_FIELDS = [
  'bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents',
] as const;

export function invalid(field: string, message: string, details: Record<string, unknown> = {}): ServeError {
  return new ServeError('INVALID_INPUT', `${field}: ${message}`, { field, ...details });
}

function fmt(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

export function parseDatatype(datatype: string, field: string): InputDatatype {
  if ((INPUT_DATATYPES as readonly string[]).includes(datatype)) return datatype as InputDatatype;
  throw invalid(field, `${datatype ? `'${datatype.slice(0, 20)}'` : 'an empty datatype'} is not supported; use ${INPUT_DATATYPES.join(', ')}`);
}

/** int64 dims (decimal strings on our wire) → numbers, each within 0…MAX_DIM. */
export function parseShape(dims: readonly (string | number)[], field: string): number[] {
  if (dims.length > MAX_RANK) throw invalid(field, `${dims.length} dimensions; at most ${MAX_RANK}`);
  return dims.map((d, i) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n)) throw invalid(`${field}[${i}]`, `${String(d).slice(0, 24)} is not a dimension`);
    if (n < 0) throw invalid(`${field}[${i}]`, `${n} is negative; a request's dimensions are all known`);
    if (n > MAX_DIM) throw invalid(`${field}[${i}]`, `${n} exceeds ${MAX_DIM}`);
    return n;
  });
}

/** The element count of a checked shape; exact (BigInt) so huge products cannot wrap. */
export function elementCount(shape: readonly number[]): bigint {
  return shape.reduce((n, d) => n * BigInt(d), 1n);
}

function bytesPerElement(datatype: 'FP32' | 'UINT8'): number {
  return datatype === 'FP32' ? 4 : 1;
}

/** One input's raw_input_contents entry, checked against its datatype and shape. */
export function decodeRaw(datatype: InputDatatype, shape: number[], raw: Buffer, field: string): DecodedTensor {
  const count = elementCount(shape);
  if (datatype === 'BYTES') return { datatype, shape, elements: decodeBytesElements(raw, count, field) };
  const expected = count * BigInt(bytesPerElement(datatype));
  if (BigInt(raw.byteLength) !== expected) {
    throw invalid(field, `shape ${fmt(shape)} of ${datatype} needs ${expected} bytes, got ${raw.byteLength}`, {
      expected: expected.toString(), got: raw.byteLength,
    });
  }
  return datatype === 'FP32'
    ? { datatype, shape, data: float32FromLE(raw) }
    : { datatype, shape, data: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}

/** One input's typed contents: only the field of its datatype may hold elements. */
export function decodeTyped(datatype: InputDatatype, shape: number[], contents: InferTensorContents__Output | null, field: string): DecodedTensor {
  const own = TYPED_FIELD[datatype];
  for (const name of ALL_TYPED_FIELDS) {
    if (name !== own && (contents?.[name]?.length ?? 0) > 0) {
      throw invalid(`${field}.${name}`, `a ${datatype} tensor takes its elements in ${field}.${own}`);
    }
  }
  const count = elementCount(shape);
  const values: readonly unknown[] = contents?.[own] ?? [];
  if (BigInt(values.length) !== count) {
    throw invalid(`${field}.${own}`, `shape ${fmt(shape)} needs ${count} elements, got ${values.length}`, {
      expected: count.toString(), got: values.length,
    });
  }
  if (datatype === 'FP32') return { datatype, shape, data: Float32Array.from(contents?.fp32_contents ?? []) };
  if (datatype === 'BYTES') return { datatype, shape, elements: (contents?.bytes_contents ?? []).map(asUint8Array) };
  const data = new Uint8Array(values.length);
  (contents?.uint_contents ?? []).forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw invalid(`${field}.${own}[${i}]`, `${v} is not a UINT8 value (0…255)`);
    data[i] = v;
  });
  return { datatype, shape, data };
}

/** Whether a contents message holds any element (an empty message counts as absent). */
export function hasTypedContents(contents: InferTensorContents__Output | null): boolean {
  return contents !== null && ALL_TYPED_FIELDS.some((name) => (contents[name]?.length ?? 0) > 0);
}

/** Splits length-prefixed BYTES elements, which must fill `raw` exactly and number `count`. */
export function decodeBytesElements(raw: Buffer, count: bigint, field: string): Uint8Array[] {
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset < raw.byteLength) {
    if (BigInt(elements.length) >= count) {
      throw invalid(field, `holds more than the ${count} elements its shape declares (${raw.byteLength - offset} bytes left over)`);
    }
    if (raw.byteLength - offset < BYTES_LENGTH_PREFIX) {
      throw invalid(field, `element ${elements.length} is truncated: a BYTES element starts with a 4-byte little-endian length`);
    }
    const length = raw.readUInt32LE(offset);
    offset += BYTES_LENGTH_PREFIX;
    if (length > raw.byteLength - offset) {
      throw invalid(field, `element ${elements.length} declares ${length} bytes but only ${raw.byteLength - offset} remain`);
    }
    elements.push(new Uint8Array(raw.buffer, raw.byteOffset + offset, length));
    offset += length;
  }
  if (BigInt(elements.length) !== count) throw invalid(field, `its shape declares ${count} BYTES elements, got ${elements.length}`);
  return elements;
}

export function encodeBytesElements(elements: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(elements.reduce((n, e) => n + BYTES_LENGTH_PREFIX + e.byteLength, 0));
  let offset = 0;
  for (const e of elements) {
    out.writeUInt32LE(e.byteLength, offset);
    out.set(e, offset + BYTES_LENGTH_PREFIX);
    offset += BYTES_LENGTH_PREFIX + e.byteLength;
  }
  return out;
}

export function float32FromLE(raw: Buffer): Float32Array {
  const n = raw.byteLength / 4;
  if (!LITTLE_ENDIAN_HOST) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = raw.readFloatLE(i * 4);
    return out;
  }
  // A view when aligned (no copy of a large batch); received buffers often are not.
  if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, n);
  return new Float32Array(new Uint8Array(raw).buffer);
}

export function float32ToLE(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN_HOST) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

export function fp32Contents(values: Float32Array): InferTensorContents {
  return { fp32_contents: Array.from(values) };
}

export function bytesContents(elements: readonly Uint8Array[]): InferTensorContents {
  return { bytes_contents: elements.map((e) => Buffer.from(e.buffer, e.byteOffset, e.byteLength)) };
}

function asUint8Array(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
