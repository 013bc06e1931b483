// Tensor elements as both wires carry them, for the datatypes our models take (FP32, UINT8,
// BYTES) and give (FP32, BYTES): raw little-endian row-major bytes (HTTP's binary data
// extension, gRPC's raw_input_contents) or a list of values (JSON `data`, flat or nested; gRPC's
// typed contents). A BYTES element is a little-endian uint32 length and that many bytes raw, a
// base64 string in JSON, a bytes field in protobuf. Every check names the field it is about.
import { LITTLE_ENDIAN_HOST } from '../../byte-order.ts';
import { invalidInput, ServeError } from '../../errors.ts';
import { decodeBase64 } from './base64.ts';

export const INPUT_DATATYPES = ['FP32', 'UINT8', 'BYTES'] as const;
export type InputDatatype = (typeof INPUT_DATATYPES)[number];

/** Where a tensor's elements are, and the field to name when they are wrong. */
export type TensorData =
  | { kind: 'raw'; bytes: Uint8Array; field: string }
  | { kind: 'values'; values: readonly unknown[]; field: string };

export type DecodedTensor =
  | { datatype: 'FP32'; shape: number[]; data: Float32Array }
  | { datatype: 'UINT8'; shape: number[]; data: Uint8Array }
  | { datatype: 'BYTES'; shape: number[]; elements: Uint8Array[] };

/** Larger dimensions than any tensor we take; keeps shape arithmetic exact. */
export const MAX_DIM = 2 ** 31 - 1;
const MAX_RANK = 8;
/** JSON `data` may nest one array per dimension; deeper is not a tensor. */
const MAX_NESTING = MAX_RANK;
const BYTES_LENGTH_PREFIX = 4;

export const fmtShape = (shape: readonly (number | string)[]): string => `[${shape.join(', ')}]`;

export function parseDatatype(datatype: string, field: string): InputDatatype {
  if ((INPUT_DATATYPES as readonly string[]).includes(datatype)) return datatype as InputDatatype;
  throw invalidInput(field, `${datatype ? `'${datatype.slice(0, 20)}'` : 'an empty datatype'} is not supported; send FP32 or UINT8 (decoded pixels) or BYTES (encoded images)`);
}

/** Dimensions as either wire gives them (numbers; int64 as decimal strings) → checked numbers. */
export function parseShape(dims: readonly (string | number)[], field: string): number[] {
  if (dims.length === 0) throw invalidInput(field, 'needs at least one dimension');
  if (dims.length > MAX_RANK) throw invalidInput(field, `${dims.length} dimensions; at most ${MAX_RANK}`);
  return dims.map((d, i) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n)) throw invalidInput(`${field}[${i}]`, `${String(d).slice(0, 24)} is not a dimension`);
    if (n < 0) throw invalidInput(`${field}[${i}]`, `${n} is negative; a request's dimensions are all known`);
    if (n > MAX_DIM) throw invalidInput(`${field}[${i}]`, `${n} exceeds ${MAX_DIM}`);
    return n;
  });
}

/** The element count of a checked shape; exact (BigInt) so huge products cannot wrap. */
export function elementCount(shape: readonly number[]): bigint {
  return shape.reduce((n, d) => n * BigInt(d), 1n);
}

/**
 * Decodes one input's elements. The caller has checked the element count against
 * MAX_TENSOR_ELEMENTS, so what is allocated here is bounded by the settings, not by the shape.
 */
export function decodeTensor(datatype: InputDatatype, shape: number[], source: TensorData): DecodedTensor {
  const count = Number(elementCount(shape));
  if (source.kind === 'raw') return decodeRaw(datatype, shape, count, source.bytes, source.field);
  const { values, field } = source;
  switch (datatype) {
    case 'FP32': {
      const data = new Float32Array(checkedCount(values, field, count, shape));
      walk(values, field, count, (v, i) => {
        if (typeof v !== 'number') throw invalidInput(`${field}[${i}]`, `expected a number, got ${typeof v}`);
        data[i] = v;
      });
      return { datatype, shape, data };
    }
    case 'UINT8': {
      const data = new Uint8Array(checkedCount(values, field, count, shape));
      walk(values, field, count, (v, i) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
          throw invalidInput(`${field}[${i}]`, `expected an integer in 0…255, got ${JSON.stringify(v)?.slice(0, 32)}`);
        }
        data[i] = v;
      });
      return { datatype, shape, data };
    }
    case 'BYTES': {
      const elements: Uint8Array[] = [];
      const got = walk(values, field, count, (v, i) => {
        if (typeof v === 'string') elements.push(decodeBase64(v, `${field}[${i}]`));
        else if (v instanceof Uint8Array) elements.push(v);
        else throw invalidInput(`${field}[${i}]`, 'expected an encoded image (a base64 string in JSON)');
      });
      checkCount(got, count, field, shape);
      return { datatype, shape, elements };
    }
  }
}

function decodeRaw(datatype: InputDatatype, shape: number[], count: number, bytes: Uint8Array, field: string): DecodedTensor {
  if (datatype === 'BYTES') return { datatype, shape, elements: splitBytesElements(bytes, count, field) };
  const expected = count * (datatype === 'FP32' ? 4 : 1);
  if (bytes.byteLength !== expected) {
    throw invalidInput(field, `shape ${fmtShape(shape)} of ${datatype} needs ${expected} bytes, got ${bytes.byteLength}`, {
      expected, got: bytes.byteLength,
    });
  }
  return datatype === 'FP32' ? { datatype, shape, data: float32FromLE(bytes) } : { datatype, shape, data: bytes };
}

function checkCount(got: number, expected: number, field: string, shape: readonly number[]): void {
  if (got !== expected) throw invalidInput(field, `shape ${fmtShape(shape)} needs ${expected} elements, got ${got}`, { expected, got });
}

/**
 * Counts the values before anything is allocated for them: a shape alone (`[20000, 16, 16, 3]`
 * with `"data": []`) must not make the server allocate what it names. A second walk is cheap
 * next to parsing the values.
 */
function checkedCount(values: readonly unknown[], field: string, count: number, shape: readonly number[]): number {
  checkCount(walk(values, field, count, () => undefined), count, field, shape);
  return count;
}

/** Visits flat or nested values in row-major order, at most `max` of them; returns their count. */
function walk(values: readonly unknown[], field: string, max: number, visit: (value: unknown, index: number) => void): number {
  let index = 0;
  const descend = (array: readonly unknown[], depth: number): void => {
    if (depth > MAX_NESTING) throw invalidInput(field, `nested deeper than ${MAX_NESTING} levels`);
    for (const value of array) {
      if (Array.isArray(value)) {
        descend(value, depth + 1);
      } else {
        if (index >= max) throw invalidInput(field, `more elements than the shape's ${max}`);
        visit(value, index++);
      }
    }
  };
  descend(values, 0);
  return index;
}

/** Splits length-prefixed BYTES elements, which must fill `raw` exactly and number `count`. */
export function splitBytesElements(raw: Uint8Array, count: number, field: string): Uint8Array[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset < raw.byteLength) {
    if (elements.length >= count) {
      throw invalidInput(field, `holds more than the ${count} elements its shape declares (${raw.byteLength - offset} bytes left over)`);
    }
    if (raw.byteLength - offset < BYTES_LENGTH_PREFIX) {
      throw invalidInput(field, `element ${elements.length} is truncated: a BYTES element starts with a 4-byte little-endian length`);
    }
    const length = view.getUint32(offset, true);
    offset += BYTES_LENGTH_PREFIX;
    if (length > raw.byteLength - offset) {
      throw invalidInput(field, `element ${elements.length} declares ${length} bytes but only ${raw.byteLength - offset} remain`);
    }
    elements.push(raw.subarray(offset, offset + length));
    offset += length;
  }
  if (elements.length !== count) throw invalidInput(field, `its shape declares ${count} BYTES elements, got ${elements.length}`);
  return elements;
}

export function joinBytesElements(elements: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(elements.reduce((n, e) => n + BYTES_LENGTH_PREFIX + e.byteLength, 0));
  let offset = 0;
  for (const e of elements) {
    out.writeUInt32LE(e.byteLength, offset);
    out.set(e, offset + BYTES_LENGTH_PREFIX);
    offset += BYTES_LENGTH_PREFIX + e.byteLength;
  }
  return out;
}

export function float32FromLE(raw: Uint8Array): Float32Array {
  const n = raw.byteLength / 4;
  if (!LITTLE_ENDIAN_HOST) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Float32Array.from({ length: n }, (_, i) => view.getFloat32(i * 4, true));
  }
  // A view when aligned (no copy of a large batch); received buffers often are not.
  if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, n);
  return new Float32Array(Uint8Array.prototype.slice.call(raw).buffer); // a copy: Buffer#slice would be a view
}

export function float32ToLE(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN_HOST) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

/** A MAX_TENSOR_ELEMENTS refusal, before anything is allocated for the tensor. */
export function tooManyElements(field: string, shape: readonly number[], max: number): ServeError {
  return new ServeError('LIMIT_EXCEEDED', `${field}: ${fmtShape(shape)} is ${elementCount(shape)} elements, more than MAX_TENSOR_ELEMENTS ${max}`, {
    field, limit: 'MAX_TENSOR_ELEMENTS', max,
  });
}
