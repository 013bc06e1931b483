// Tensor elements as both wires carry them (src/api/oip/tensor-data.ts): raw little-endian bytes
// and value lists (JSON data, gRPC typed contents), BYTES framing, shapes.
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import {
  decodeTensor,
  float32FromLE,
  float32ToLE,
  joinBytesElements,
  parseShape,
  splitBytesElements,
} from '../../../src/api/oip/tensor-data.ts';

function failure(fn: () => unknown): ServeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServeError) return err;
    throw err;
  }
  throw new Error('expected a ServeError');
}

const raw = (bytes: Uint8Array) => ({ kind: 'raw' as const, bytes, field: 'r' });
const values = (list: readonly unknown[]) => ({ kind: 'values' as const, values: list, field: 'c' });

describe('tensor data', () => {
  it('frames BYTES elements as uint32 little-endian length + bytes, both ways', () => {
    const elements = [Buffer.from('ab'), Buffer.alloc(0), Buffer.from([0xff, 0, 1])];
    const wire = joinBytesElements(elements);
    expect([...wire]).toEqual([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 3, 0, 0, 0, 0xff, 0, 1]);
    expect(splitBytesElements(wire, 3, 'f').map((e) => [...e])).toEqual([[0x61, 0x62], [], [0xff, 0, 1]]);
    expect(failure(() => splitBytesElements(wire, 2, 'f')).message).toMatch(/^f: holds more than the 2 elements/);
    expect(failure(() => splitBytesElements(wire.subarray(0, 3), 1, 'f')).message).toMatch(/^f: element 0 is truncated/);
    expect(failure(() => splitBytesElements(wire.subarray(0, 5), 1, 'f')).message).toBe('f: element 0 declares 2 bytes but only 1 remain');
    expect(failure(() => splitBytesElements(wire, 4, 'f')).message).toBe('f: its shape declares 4 BYTES elements, got 3');
  });

  it('reads FP32 little-endian at any byte offset, exactly', () => {
    const list = new Float32Array([1.5, -0, Math.PI, -3.4e38, 1e-45]);
    const le = float32ToLE(list);
    const unaligned = Buffer.concat([Buffer.from([9]), le]).subarray(1);
    expect(unaligned.byteOffset % 4).not.toBe(0);
    expect(Object.is(float32FromLE(unaligned)[1], -0)).toBe(true);
    expect([...float32FromLE(unaligned)]).toEqual([...list]);
    expect([...float32FromLE(le)]).toEqual([...list]);
    for (let i = 0; i < list.length; i++) expect(le.readFloatLE(i * 4)).toBe(list[i]);
  });

  it('checks shapes dimension by dimension', () => {
    expect(parseShape(['2', '16', 16, '3'], 's')).toEqual([2, 16, 16, 3]);
    expect(failure(() => parseShape([], 's')).message).toBe('s: needs at least one dimension');
    expect(failure(() => parseShape(['-1'], 's')).message).toMatch(/^s\[0\]: -1 is negative/);
    expect(failure(() => parseShape(['1', '9223372036854775807'], 's')).message).toMatch(/^s\[1\]: 9223372036854775807 is not a dimension/);
    expect(failure(() => parseShape(['2147483648'], 's')).message).toMatch(/^s\[0\]: 2147483648 exceeds 2147483647/);
    expect(failure(() => parseShape(new Array(9).fill('1'), 's')).message).toBe('s: 9 dimensions; at most 8');
  });

  it('decodes raw bytes by datatype and refuses sizes that do not match the shape', () => {
    const fp32 = decodeTensor('FP32', [1, 2], raw(float32ToLE(new Float32Array([1, 2]))));
    expect(fp32.datatype === 'FP32' && [...fp32.data]).toEqual([1, 2]);
    const u8 = decodeTensor('UINT8', [3], raw(Buffer.from([1, 2, 3])));
    expect(u8.datatype === 'UINT8' && [...u8.data]).toEqual([1, 2, 3]);
    expect(failure(() => decodeTensor('UINT8', [2, 2], raw(Buffer.alloc(3)))).message).toBe('r: shape [2, 2] of UINT8 needs 4 bytes, got 3');
    expect(failure(() => decodeTensor('FP32', [2], raw(Buffer.alloc(7)))).message).toBe('r: shape [2] of FP32 needs 8 bytes, got 7');
    const bytes = decodeTensor('BYTES', [2], raw(joinBytesElements([Buffer.from('x'), Buffer.from('yz')])));
    expect(bytes.datatype === 'BYTES' && bytes.elements.map((e) => Buffer.from(e).toString())).toEqual(['x', 'yz']);
  });

  it('decodes value lists, flat or nested, checking every element', () => {
    const fp32 = decodeTensor('FP32', [2, 2], values([[1, 2], [3, 4.5]]));
    expect(fp32.datatype === 'FP32' && [...fp32.data]).toEqual([1, 2, 3, 4.5]);
    const u8 = decodeTensor('UINT8', [2], values([0, 255]));
    expect(u8.datatype === 'UINT8' && [...u8.data]).toEqual([0, 255]);
    expect(failure(() => decodeTensor('UINT8', [1], values([256]))).message).toMatch(/^c\[0\]: expected an integer in 0…255, got 256/);
    expect(failure(() => decodeTensor('FP32', [2], values([1, 'x']))).message).toBe('c[1]: expected a number, got string');
    expect(failure(() => decodeTensor('FP32', [2], values([]))).message).toBe('c: shape [2] needs 2 elements, got 0');
    expect(failure(() => decodeTensor('FP32', [1], values([1, 2]))).message).toBe("c: more elements than the shape's 1");
    const nested: unknown[] = [];
    let inner = nested;
    for (let i = 0; i < 9; i++) inner.push((inner = []));
    expect(failure(() => decodeTensor('FP32', [1], values(nested))).message).toBe('c: nested deeper than 8 levels');
    const empty = decodeTensor('UINT8', [0, 2], values([]));
    expect(empty.datatype === 'UINT8' && empty.data.length).toBe(0);
  });

  it('takes BYTES elements as base64 strings (JSON) or bytes (protobuf)', () => {
    const fromJson = decodeTensor('BYTES', [2], values([Buffer.from('hi').toString('base64'), Buffer.from('yo').toString('base64')]));
    expect(fromJson.datatype === 'BYTES' && fromJson.elements.map((e) => Buffer.from(e).toString())).toEqual(['hi', 'yo']);
    const fromProto = decodeTensor('BYTES', [1], values([Buffer.from('x')]));
    expect(fromProto.datatype === 'BYTES' && fromProto.elements.length).toBe(1);
    expect(failure(() => decodeTensor('BYTES', [1], values(['not base64!']))).message).toBe('c[0]: not valid base64');
    expect(failure(() => decodeTensor('BYTES', [1], values([7]))).message).toMatch(/^c\[0\]: expected an encoded image/);
  });
});
