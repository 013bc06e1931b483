// Triton's binary data extension on the wire: a request or response body is N bytes of JSON
// (N in the Inference-Header-Content-Length header) followed by each binary tensor's raw bytes,
// in the order the tensors are listed. The bytes of one tensor are what gRPC's raw contents carry
// (../oip/tensor-data.ts decodes both); this file only frames them.
import { ServeError } from '../../errors.ts';

export const INFERENCE_HEADER = 'inference-header-content-length';

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

/** The response body: the JSON header then the binary sections, and the header's length. */
export function composeBinaryResponse(header: unknown, sections: readonly Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...sections]), headerLength: json.length };
}
