// The ONNX export must be a file ONNX Runtime loads and computes the same logits from as our
// tfjs model: max |Δlogit| ≤ 1e-4 · max(1, max |logit|), on small seeded networks that cover
// both stems, bottleneck and plain layers, compression and dropout.
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { encodeDenseNetOnnx, exportOnnx, ProtoMessage } from '../../src/densenet/onnx-export.ts';
import { paramTensors, type DenseNetConfigInput } from '../../src/densenet/index.ts';
import type { Tensor } from '../../src/densenet/tf-runtime.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { seededRandom } from '../helpers/random.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

const tf = await useNativeEngine();
const TOLERANCE = 1e-4;

const CASES: [string, Partial<DenseNetConfigInput>][] = [
  ['cifar stem, bottleneck, θ = 0.5', {}],
  ['imagenet stem (7×7/2 conv, 3×3/2 max pool), 3 blocks', {
    stem: 'imagenet', blockLayers: [2, 3, 2], inputHeight: 40, inputWidth: 36, numClasses: 7,
  }],
  ['plain layers (no bottleneck), θ = 1, grey input, dropout', {
    bottleneck: false, compression: 1, stemChannels: 6, inputChannels: 1, dropRate: 0.2, bnEpsilon: 1e-3,
  }],
];

function images(seed: number, n: number, h: number, w: number, c: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: n * h * w * c }, () => next() * 4 - 2);
}

function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let z = 0; z < w; z++) {
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + z] = x[((b * h + y) * w + z) * c + k]!;
      }
    }
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}

describe('ONNX export runs in onnxruntime-node with our logits', () => {
  it.each(CASES)('%s', async (_name, overrides) => {
    const model = tinyModel(7, overrides);
    try {
      const { inputHeight: h, inputWidth: w, inputChannels: c, numClasses } = model.config;
      const n = 3;
      const x = images(11, n, h, w, c);
      const expected = tf.tidy(() => (model.layersModel.predict(tf.tensor4d(x, [n, h, w, c])) as Tensor).dataSync() as Float32Array);

      for (const layout of ['nhwc', 'nchw'] as const) {
        const session = await ort.InferenceSession.create(exportOnnx(model, { inputLayout: layout }));
        try {
          expect(session.inputNames).toEqual(['input']);
          expect(session.outputNames).toEqual(['logits']);
          const input = layout === 'nhwc'
            ? new ort.Tensor('float32', x, [n, h, w, c])
            : new ort.Tensor('float32', nhwcToNchw(x, n, h, w, c), [n, c, h, w]);
          const logits = (await session.run({ input })).logits!;
          expect(logits.dims).toEqual([n, numClasses]);
          const { diff, scale } = maxAbsDiff(logits.data as Float32Array, expected);
          expect(scale).toBeGreaterThan(0.1); // all-zero logits would prove nothing
          expect(diff).toBeLessThanOrEqual(TOLERANCE * Math.max(1, scale));
        } finally {
          await session.release();
        }
      }
    } finally {
      model.layersModel.dispose();
    }
  });

  it('writes every state_dict tensor once as an initializer, with its PyTorch shape', () => {
    const model = tinyModel(3, { stem: 'imagenet', inputHeight: 32, inputWidth: 32 });
    try {
      const graph = fields(fields(exportOnnx(model)).get(7)![0] as Uint8Array); // ModelProto.graph
      const initializers = (graph.get(5) ?? []).map((t) => {
        const tensor = fields(t as Uint8Array);
        return {
          name: new TextDecoder().decode(tensor.get(8)![0] as Uint8Array),
          dims: (tensor.get(1) ?? []).map(Number),
          bytes: (tensor.get(9)![0] as Uint8Array).length,
        };
      });
      const expected = paramTensors(model.plan);
      expect(initializers.map((i) => i.name).sort()).toEqual(expected.map((p) => p.name).sort());
      for (const p of expected) {
        const init = initializers.find((i) => i.name === p.name)!;
        expect(init.dims).toEqual(p.shape);
        expect(init.bytes).toBe(4 * p.shape.reduce((a, b) => a * b, 1));
      }
    } finally {
      model.layersModel.dispose();
    }
  });

  it('refuses to encode a plan whose weights are missing', () => {
    const model = tinyModel(1);
    try {
      expect(() => encodeDenseNetOnnx(model.plan, new Map())).toThrow(/no weights for 'features\.conv0\.weight'/);
    } finally {
      model.layersModel.dispose();
    }
  });
});

/** Minimal protobuf reader for the checks above: field number → values (varints or bytes). */
function fields(bytes: Uint8Array): Map<number, (bigint | Uint8Array)[]> {
  const out = new Map<number, (bigint | Uint8Array)[]>();
  let pos = 0;
  const readVarint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = bytes[pos++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (pos < bytes.length) {
    const key = Number(readVarint());
    let value: bigint | Uint8Array;
    if ((key & 7) === 0) value = readVarint();
    else if ((key & 7) === 2) {
      const len = Number(readVarint());
      value = bytes.subarray(pos, pos + len);
      pos += len;
    } else if ((key & 7) === 5) {
      value = bytes.subarray(pos, pos + 4);
      pos += 4;
    } else throw new Error(`unexpected wire type ${key & 7}`);
    out.set(key >> 3, [...(out.get(key >> 3) ?? []), value]);
  }
  return out;
}

describe('protobuf encoding', () => {
  it('encodes varints, negative int64, floats, strings and nested messages as the wire format says', () => {
    const inner = new ProtoMessage().int(1, 300);
    const bytes = new ProtoMessage().int(1, 1).int(2, -1).float(3, 1.5).string(4, 'ab').message(5, inner).finish();
    expect(Array.from(bytes)).toEqual([
      0x08, 0x01, // field 1 varint 1
      0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // field 2: -1 as 10-byte two's complement
      0x1d, 0x00, 0x00, 0xc0, 0x3f, // field 3 fixed32 1.5
      0x22, 0x02, 0x61, 0x62, // field 4 "ab"
      0x2a, 0x03, 0x08, 0xac, 0x02, // field 5 { field 1: 300 }
    ]);
  });
});
