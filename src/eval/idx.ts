// The idx format of MNIST / Fashion-MNIST: a big-endian header (magic 0x0000080N, where N is
// the number of dimensions, then N u32 sizes) and unsigned bytes. Gzipped files are inflated.
import { gunzipSync } from 'node:zlib';
import { ServeError } from '../errors.ts';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

export function parseIdx(file: Uint8Array, expectedDims: number, what: string): IdxArray {
  const bytes = file[0] === 0x1f && file[1] === 0x8b ? gunzipSync(file) : file;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = 4 + 4 * expectedDims;
  if (bytes.byteLength < 4) throw new ServeError('INVALID_INPUT', `${what}: shorter than an idx header`);
  const magic = view.getUint32(0, false);
  const expectedMagic = (UBYTE << 8) | expectedDims;
  if (magic !== expectedMagic) {
    throw new ServeError('INVALID_INPUT', `${what}: magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${expectedMagic.toString(16).padStart(8, '0')}`);
  }
  if (bytes.byteLength < headerBytes) throw new ServeError('INVALID_INPUT', `${what}: shorter than an idx header`);
  const shape = Array.from({ length: expectedDims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== headerBytes + size) {
    throw new ServeError('INVALID_INPUT', `${what}: header says ${size} values, file holds ${bytes.byteLength - headerBytes}`);
  }
  return { shape, data: bytes.subarray(headerBytes) };
}

export interface LabelledImages {
  count: number;
  height: number;
  width: number;
  /** count × height × width grey bytes, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
}

export function parseIdxDataset(imagesFile: Uint8Array, labelsFile: Uint8Array): LabelledImages {
  const images = parseIdx(imagesFile, 3, 'images');
  const labels = parseIdx(labelsFile, 1, 'labels');
  const [count, height, width] = images.shape as [number, number, number];
  if (labels.shape[0] !== count) throw new ServeError('INVALID_INPUT', `${count} images but ${labels.shape[0]} labels`);
  return { count, height, width, images: images.data, labels: labels.data };
}
