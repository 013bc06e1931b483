// Open Inference Protocol tensors on the gRPC wire: raw and typed decoding, BYTES framing.
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import {
  decodeBytesElements,
  decodeRaw,
  decodeTyped,
  encodeBytesElements,
  float32FromLE,
  float32ToLE,
  hasTypedContents,
  parseShape,
} from '../../../src/api/grpc/tensor-codec.ts';
import type { InferTensorContents__Output } from '../../../src/api/grpc/generated/inference/InferTensorContents.ts';

function contents(fields: Partial<InferTensorContents__Output>): InferTensorContents__Output {
  return {
    bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [],
    fp32_contents: [], fp64_contents: [], bytes_contents: [], ...fields,
  };
}

function failure(fn: () => unknown): ServeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServeError) return err;
    throw err;
  }
  throw new Error('expected a ServeError');
}

describe('tensor codec', () => {
  it('frames BYTES elements as uint32 little-endian length + bytes, both ways', () => {
    const elements = [Buffer.from('ab'), Buffer.alloc(0), Buffer.from([0xff, 0, 1])];
    const raw = encodeBytesElements(elements);
    expect([...raw]).toEqual([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 3, 0, 0, 0, 0xff, 0, 1]);
    expect(decodeBytesElements(raw, 3n, 'f').map((e) => [...e])).toEqual([[0x61, 0x62], [], [0xff, 0, 1]]);
    expect(failure(() => decodeBytesElements(raw, 2n, 'f')).message).toMatch(/^f: holds more than the 2 elements/);
    expect(failure(() => decodeBytesElements(raw.subarray(0, 3), 1n, 'f')).message).toMatch(/^f: element 0 is truncated/);
    expect(failure(() => decodeBytesElements(raw.subarray(0, 5), 1n, 'f')).message).toBe('f: element 0 declares 2 bytes but only 1 remain');
  });

  it('reads FP32 little-endian at any byte offset, exactly', () => {
    const values = new Float32Array([1.5, -0, Math.PI, -3.4e38, 1e-45]);
    const le = float32ToLE(values);
    const unaligned = Buffer.concat([Buffer.from([9]), le]).subarray(1);
    expect(unaligned.byteOffset % 4).not.toBe(0);
    expect(Object.is(float32FromLE(unaligned)[1], -0)).toBe(true);
    expect([...float32FromLE(unaligned)]).toEqual([...values]);
    expect([...float32FromLE(le)]).toEqual([...values]);
    for (let i = 0; i < values.length; i++) expect(le.readFloatLE(i * 4)).toBe(values[i]);
  });

  it('checks shapes dimension by dimension', () => {
    expect(parseShape(['2', '16', 16, '3'], 's')).toEqual([2, 16, 16, 3]);
    expect(failure(() => parseShape(['-1'], 's')).message).toMatch(/^s\[0\]: -1 is negative/);
    expect(failure(() => parseShape(['1', '9223372036854775807'], 's')).message).toMatch(/^s\[1\]: 9223372036854775807 is not a dimension/);
    expect(failure(() => parseShape(['2147483648'], 's')).message).toMatch(/^s\[0\]: 2147483648 exceeds 2147483647/);
    expect(failure(() => parseShape(new Array(9).fill('1'), 's')).message).toBe('s: 9 dimensions; at most 8');
  });

  it('decodes raw contents by datatype and refuses sizes that do not match the shape', () => {
    const fp32 = decodeRaw('FP32', [1, 2], float32ToLE(new Float32Array([1, 2])), 'r');
    expect(fp32.datatype === 'FP32' && [...fp32.data]).toEqual([1, 2]);
    const u8 = decodeRaw('UINT8', [3], Buffer.from([1, 2, 3]), 'r');
    expect(u8.datatype === 'UINT8' && [...u8.data]).toEqual([1, 2, 3]);
    const huge = failure(() => decodeRaw('FP32', [2147483647, 2147483647, 2147483647], Buffer.alloc(8), 'r'));
    expect(huge.message).toContain('needs 39614081201791936601413124092 bytes, got 8');
    expect(failure(() => decodeRaw('UINT8', [2, 2], Buffer.alloc(3), 'r')).message).toBe('r: shape [2, 2] of UINT8 needs 4 bytes, got 3');
  });

  it('decodes typed contents only from the field of the datatype', () => {
    const u8 = decodeTyped('UINT8', [2], contents({ uint_contents: [0, 255] }), 'c');
    expect(u8.datatype === 'UINT8' && [...u8.data]).toEqual([0, 255]);
    const bytes = decodeTyped('BYTES', [1], contents({ bytes_contents: [Buffer.from('x')] }), 'c');
    expect(bytes.datatype === 'BYTES' && bytes.elements.length).toBe(1);
    expect(failure(() => decodeTyped('FP32', [1], contents({ fp32_contents: [1], fp64_contents: [1] }), 'c')).message)
      .toBe('c.fp64_contents: a FP32 tensor takes its elements in c.fp32_contents');
    expect(failure(() => decodeTyped('UINT8', [1], contents({ uint_contents: [256] }), 'c')).message).toMatch(/^c\.uint_contents\[0\]: 256 is not a UINT8 value/);
    expect(failure(() => decodeTyped('FP32', [2], null, 'c')).message).toBe('c.fp32_contents: shape [2] needs 2 elements, got 0');
    const empty = decodeTyped('UINT8', [0, 2], null, 'c');
    expect(empty.datatype === 'UINT8' && empty.data.length).toBe(0);
    expect(hasTypedContents(null)).toBe(false);
    expect(hasTypedContents(contents({}))).toBe(false);
    expect(hasTypedContents(contents({ bool_contents: [false] }))).toBe(true);
  });
});
