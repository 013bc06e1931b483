// Triton's binary data extension on the wire: a request or response body is N bytes of JSON
// (N in the Inference-Header-Content-Length header) followed by each binary tensor's raw bytes,
// in the order the tensors are listed. Numbers are little-endian, row-major; a BYTES element
// is a uint32 (LE) length followed by that many bytes.
import { ServeError } from '../../errors.ts';

export const INFERENCE_HEADER = 'inference-header-content-length';

/** Node's typed arrays use the platform's byte order; the wire is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SplitBody {
  json: Buffer;
  binary: Buffer;
}

function headerError(message: string): ServeError {
  return new ServeError('INVALID_INPUT', `Inference-Header-Content-Length: ${message}`, { field: 'Inference-Header-Content-Length' });
}

/** Splits a request body at the header's length; without the header it is all JSON. */
export function splitBody(body: Buffer, header: string | string[] | undefined): SplitBody {
  if (header === undefined) return { json: body, binary: body.subarray(body.length) };
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!/^\d{1,12}$/.test(text.trim())) throw headerError(`'${text.slice(0, 32)}' is not a byte count`);
  const length = Number(text.trim());
  if (length > body.length) throw headerError(`${length} exceeds the body's ${body.length} bytes`);
  if (length === 0) throw headerError('0; the JSON header must come first');
  return { json: body.subarray(0, length), binary: body.subarray(length) };
}

/** Hands out consecutive slices of the binary section, checking each tensor's declared size. */
export class BinaryReader {
  private offset = 0;
  constructor(private readonly binary: Buffer) {}

  take(size: number, field: string): Buffer {
    if (this.offset + size > this.binary.length) {
      throw new ServeError('INVALID_INPUT', `${field}: binary_data_size ${size} runs past the end of the body (${this.binary.length - this.offset} bytes left)`, { field });
    }
    const slice = this.binary.subarray(this.offset, this.offset + size);
    this.offset += size;
    return slice;
  }

  /** Every byte must belong to a tensor: leftovers mean the header or a size is wrong. */
  finish(): void {
    const left = this.binary.length - this.offset;
    if (left !== 0) {
      throw headerError(`${left} bytes after the JSON header belong to no input (sum of binary_data_size is ${this.offset})`);
    }
  }
}

export function float32FromBytes(bytes: Buffer, count: number, field: string): Float32Array {
  if (bytes.length !== count * 4) {
    throw new ServeError('INVALID_INPUT', `${field}: FP32 data of ${count} elements is ${count * 4} bytes, got ${bytes.length}`, { field });
  }
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes); // a copy also aligns the data
  } else {
    for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(i * 4);
  }
  return out;
}

export function float32ToBytes(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}

/** Splits a binary BYTES tensor into its `count` elements. */
export function readBytesElements(bytes: Buffer, count: number, field: string): Uint8Array[] {
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) throw new ServeError('INVALID_INPUT', `${field}: element ${elements.length} has a truncated length prefix`, { field });
    const length = bytes.readUInt32LE(offset);
    offset += 4;
    if (offset + length > bytes.length) {
      throw new ServeError('INVALID_INPUT', `${field}: element ${elements.length} declares ${length} bytes, ${bytes.length - offset} remain`, { field });
    }
    elements.push(new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length));
    offset += length;
  }
  if (elements.length !== count) {
    throw new ServeError('INVALID_INPUT', `${field}: the shape holds ${count} elements, the binary data ${elements.length}`, { field });
  }
  return elements;
}

export function bytesElementsToBuffer(elements: readonly Uint8Array[]): Buffer {
  const total = elements.reduce((sum, e) => sum + 4 + e.length, 0);
  const out = Buffer.alloc(total);
  let offset = 0;
  for (const e of elements) {
    out.writeUInt32LE(e.length, offset);
    out.set(e, offset + 4);
    offset += 4 + e.length;
  }
  return out;
}

/** The response body: the JSON header then the binary sections, and the header's length. */
export function composeBinaryResponse(header: unknown, sections: readonly Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...sections]), headerLength: json.length };
}
