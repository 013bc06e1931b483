import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseIdx, parseIdxDataset } from '../../src/eval/idx.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/fashion-mnist/${name}`, import.meta.url));

function idx(dims: number[], data: number[]): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x0800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

describe('idx reader', () => {
  it('reads the Fashion-MNIST test set: 10,000 28×28 images, 1,000 of each class', () => {
    const set = parseIdxDataset(fixture('t10k-images-idx3-ubyte.gz'), fixture('t10k-labels-idx1-ubyte.gz'));
    expect([set.count, set.height, set.width]).toEqual([10_000, 28, 28]);
    expect(set.images.length).toBe(10_000 * 28 * 28);
    const perClass = new Array(10).fill(0);
    for (const l of set.labels) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(1000));
  });

  it('reads plain and gzipped files alike', () => {
    const raw = idx([2, 2], [1, 2, 3, 4]);
    expect(parseIdx(raw, 2, 'x')).toEqual(parseIdx(gzipSync(raw), 2, 'x'));
    expect(Array.from(parseIdx(raw, 2, 'x').data)).toEqual([1, 2, 3, 4]);
  });

  it('rejects a wrong magic, a short file and a size mismatch', () => {
    expect(() => parseIdx(idx([2], [1, 2]), 3, 'images')).toThrow(/images: magic 0x00000801, expected 0x00000803/);
    expect(() => parseIdx(new Uint8Array(3), 1, 'labels')).toThrow(/shorter than an idx header/);
    expect(() => parseIdx(idx([3], [1, 2]), 1, 'labels')).toThrow(/header says 3 values, file holds 2/);
    expect(() => parseIdxDataset(idx([2, 1, 1], [0, 0]), idx([3], [0, 1, 2]))).toThrow(/2 images but 3 labels/);
  });
});
