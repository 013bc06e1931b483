// An Open Inference Protocol request's input tensor → what the inference service takes:
// FP32 / UINT8 decoded pixels (NHWC, or NCHW when the shape says so) or BYTES encoded images.
// Data comes from JSON `data` (flat or nested) or from the binary data extension.
import { ServeError } from '../../errors.ts';
import type { ModelMetadata, TensorLayout } from '../../inference/index.ts';
import { decodeBase64 } from '../oip/base64.ts';
import { BinaryReader, float32FromBytes, readBytesElements } from './binary-data.ts';
import type { InferRequest } from './schemas.ts';

export type DecodedInput =
  | { kind: 'tensor'; data: Float32Array | Uint8Array; shape: number[]; layout: TensorLayout }
  | { kind: 'images'; images: Uint8Array[] };

const MAX_NESTING = 8;

function invalid(field: string, message: string): ServeError {
  return new ServeError('INVALID_INPUT', `${field}: ${message}`, { field });
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** Visits the elements of flat or nested JSON data in row-major order; returns their count. */
function walk(data: unknown[], field: string, max: number, visit: (value: unknown, index: number) => void): number {
  let index = 0;
  const descend = (array: unknown[], depth: number): void => {
    if (depth > MAX_NESTING) throw invalid(field, `nested deeper than ${MAX_NESTING} levels`);
    for (const value of array) {
      if (Array.isArray(value)) {
        descend(value, depth + 1);
      } else {
        if (index >= max) throw invalid(field, `more elements than the shape's ${max}`);
        visit(value, index++);
      }
    }
  };
  descend(data, 0);
  return index;
}

function checkCount(got: number, expected: number, field: string, shape: readonly number[]): void {
  if (got !== expected) throw invalid(field, `shape ${fmt(shape)} needs ${expected} elements, got ${got}`);
}

/**
 * Counts JSON `data` before allocating for it: a shape alone (`[20000, 16, 16, 3]` with
 * `"data": []`, 100 bytes) must not make the server allocate and zero what it names — up to
 * MAX_TENSOR_ELEMENTS × 4 bytes per request. A second walk is cheap next to JSON.parse.
 */
function allocateChecked<T>(data: unknown[], field: string, count: number, shape: readonly number[], allocate: (n: number) => T): T {
  checkCount(walk(data, field, count, () => undefined), count, field, shape);
  return allocate(count);
}

/** NHWC or NCHW, from which of the model's per-image shapes the request's trailing dims match. */
function layoutOf(shape: readonly number[], meta: ModelMetadata, field: string): TensorLayout {
  const [, height, width, channels] = meta.inputs[0]!.shape as [number, number, number, number];
  const dims = shape.length === 4 ? shape.slice(1) : shape.length === 3 ? shape : undefined;
  const is = (expected: number[]): boolean => dims !== undefined && dims.every((d, i) => d === expected[i]);
  if (is([height, width, channels])) return 'NHWC';
  if (is([channels, height, width])) return 'NCHW';
  throw invalid(field, `expected ${fmt([-1, height, width, channels])} (NHWC) or ${fmt([-1, channels, height, width])} (NCHW), got ${fmt(shape)}`);
}

export function decodeInput(request: InferRequest, binary: Buffer, meta: ModelMetadata, maxElements: number): DecodedInput {
  const expectedName = meta.inputs[0]!.name;
  if (request.inputs.length !== 1) {
    throw invalid('inputs', `the model takes exactly one input, '${expectedName}'; got ${request.inputs.length}`);
  }
  const input = request.inputs[0]!;
  const at = 'inputs[0]';
  if (input.name !== expectedName) throw invalid(`${at}.name`, `unknown input '${input.name.slice(0, 64)}'; the model's input is '${expectedName}'`);
  if (input.shape.length === 0) throw invalid(`${at}.shape`, 'needs at least one dimension');
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count)) throw invalid(`${at}.shape`, `${fmt(input.shape)} is too large`);
  // Before anything is allocated for it: the shape alone must not make the server reserve memory.
  if (count > maxElements) {
    throw new ServeError('LIMIT_EXCEEDED', `${at}.shape: ${fmt(input.shape)} is ${count} elements, more than MAX_TENSOR_ELEMENTS ${maxElements}`, {
      field: `${at}.shape`, limit: 'MAX_TENSOR_ELEMENTS', max: maxElements,
    });
  }

  const reader = new BinaryReader(binary);
  const binarySize = input.parameters?.binary_data_size;
  let raw: Buffer | undefined;
  if (binarySize !== undefined) {
    if (input.data !== undefined) throw invalid(`${at}.data`, 'must be absent when parameters.binary_data_size is set');
    raw = reader.take(binarySize, `${at}.parameters.binary_data_size`);
  } else if (input.data === undefined) {
    throw invalid(`${at}.data`, 'required (or parameters.binary_data_size with the binary data extension)');
  }
  reader.finish();
  const dataField = `${at}.data`;

  switch (input.datatype) {
    case 'FP32': {
      const layout = layoutOf(input.shape, meta, `${at}.shape`);
      let data: Float32Array;
      if (raw) {
        data = float32FromBytes(raw, count, dataField);
      } else {
        const out = allocateChecked(input.data!, dataField, count, input.shape, (n) => new Float32Array(n));
        walk(input.data!, dataField, count, (v, i) => {
          if (typeof v !== 'number') throw invalid(`${dataField}[${i}]`, `expected a number, got ${typeof v}`);
          out[i] = v;
        });
        data = out;
      }
      return { kind: 'tensor', data, shape: input.shape, layout };
    }
    case 'UINT8': {
      const layout = layoutOf(input.shape, meta, `${at}.shape`);
      let data: Uint8Array;
      if (raw) {
        if (raw.length !== count) throw invalid(dataField, `UINT8 data of ${count} elements is ${count} bytes, got ${raw.length}`);
        data = new Uint8Array(raw);
      } else {
        const out = allocateChecked(input.data!, dataField, count, input.shape, (n) => new Uint8Array(n));
        walk(input.data!, dataField, count, (v, i) => {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
            throw invalid(`${dataField}[${i}]`, `expected an integer in 0…255, got ${JSON.stringify(v)?.slice(0, 32)}`);
          }
          out[i] = v;
        });
        data = out;
      }
      return { kind: 'tensor', data, shape: input.shape, layout };
    }
    case 'BYTES': {
      if (raw) return { kind: 'images', images: readBytesElements(raw, count, dataField) };
      const images: Uint8Array[] = [];
      const got = walk(input.data!, dataField, count, (v, i) => {
        if (typeof v !== 'string') throw invalid(`${dataField}[${i}]`, 'expected a base64 string (an encoded image)');
        images.push(decodeBase64(v, `${dataField}[${i}]`));
      });
      checkCount(got, count, dataField, input.shape);
      return { kind: 'images', images };
    }
    default:
      throw invalid(`${at}.datatype`, `${input.datatype} is not supported; send FP32 or UINT8 (decoded pixels) or BYTES (encoded images)`);
  }
}
