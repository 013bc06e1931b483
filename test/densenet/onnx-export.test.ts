// The ONNX export must be a file ONNX Runtime loads and computes the same logits from as our
// tfjs model: max |Δlogit| ≤ 1e-4 · max(1, max |logit|), on small seeded networks that cover
// both stems, bottleneck and plain layers, compression and dropout. And its bytes must be the
// ModelProto that ONNX's own schema reads: decoded by onnx-proto (ONNX's onnx.proto3 compiled by
// a third party, with its own protobufjs), not by the schema subset the encoder writes with.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { encodeDenseNetOnnx, exportOnnx, type OnnxExportOptions } from '../../src/densenet/onnx-export.ts';
import { paramTensors, planDenseNet, presetConfig, type DenseNetConfigInput, type PresetName } from '../../src/densenet/index.ts';
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

  it('refuses to encode a plan whose weights are missing', () => {
    const model = tinyModel(1);
    try {
      expect(() => encodeDenseNetOnnx(model.plan, new Map())).toThrow(/no weights for 'features\.conv0\.weight'/);
    } finally {
      model.layersModel.dispose();
    }
  });
});

// What onnx-proto's toObject gives for the fields the export writes (longs as numbers).
interface Decoded {
  irVersion: number;
  producerName: string;
  opsetImport: { domain?: string; version: number }[];
  metadataProps: { key: string; value: string }[];
  graph: {
    node: { input: string[]; output: string[]; name: string; opType: string; attribute?: { name: string; type: number; i?: number; f?: number; ints?: number[] }[] }[];
    initializer: { name: string; dims: number[]; dataType: number; rawData: Uint8Array }[];
    input: { name: string; type: { tensorType: { elemType: number; shape: { dim: { dimValue?: number; dimParam?: string }[] } } } }[];
    output: Decoded['graph']['input'];
  };
}

function decode(bytes: Uint8Array): Decoded {
  const { onnx } = onnxProto;
  return onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, defaults: false }) as Decoded;
}

/** torchvision's parameter counts, from PyTorch builds of the paper's definitions (make-reference-fixtures.py). */
const PYTORCH_COUNTS = (JSON.parse(readFileSync(new URL('../fixtures/reference/parameter-counts.json', import.meta.url), 'utf8')) as {
  counts: Record<string, { trainable: number; bnRunningStats: number }>;
}).counts;

/** Seeded weights for every state_dict tensor of a preset, without building a tfjs model. */
function presetWeights(name: PresetName) {
  const plan = planDenseNet(presetConfig(name));
  const next = seededRandom(3);
  const state = new Map(paramTensors(plan).map((p) => [p.name, Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => next())]));
  return { plan, state };
}

const bytesOf = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const dims = (v: Decoded['graph']['input'][number]) => v.type.tensorType.shape.dim.map((d) => d.dimParam ?? d.dimValue);

describe('the export decoded with ONNX\'s own schema (onnx-proto)', () => {
  it.each([
    ['densenet121', 'nhwc'],
    ['densenet-bc-100-k12', 'nchw'],
  ] as const)('%s, input %s: header, graph signature, node counts, every initializer', (preset, inputLayout) => {
    const { plan, state } = presetWeights(preset);
    const options: OnnxExportOptions = { inputLayout, producerVersion: '1.2.3', metadata: { label_set: 'imagenet' } };
    const model = decode(encodeDenseNetOnnx(plan, state, options));
    const cfg = plan.config;

    expect(model.irVersion).toBe(8);
    expect(model.opsetImport).toEqual([{ domain: '', version: 17 }]);
    expect(model.producerName).toBe('densenet-serve');
    expect(Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]))).toEqual({
      config: JSON.stringify(cfg), input_layout: inputLayout, label_set: 'imagenet',
    });

    const g = model.graph;
    expect(g.input.map((v) => [v.name, v.type.tensorType.elemType, dims(v)])).toEqual([
      ['input', 1, inputLayout === 'nhwc' ? ['batch', cfg.inputHeight, cfg.inputWidth, cfg.inputChannels] : ['batch', cfg.inputChannels, cfg.inputHeight, cfg.inputWidth]],
    ]);
    expect(g.output.map((v) => [v.name, v.type.tensorType.elemType, dims(v)])).toEqual([['logits', 1, ['batch', cfg.numClasses]]]);

    // Node counts from the config alone: per dense layer BN-ReLU-Conv once (plain) or twice
    // (bottleneck) and a Concat; per transition BN-ReLU-Conv-AvgPool; the stem, the head.
    const layers = cfg.blockLayers.reduce((a, b) => a + b, 0);
    const transitions = cfg.blockLayers.length - 1;
    const perLayer = cfg.bottleneck ? 2 : 1;
    const imagenet = cfg.stem === 'imagenet' ? 1 : 0;
    const bn = imagenet + perLayer * layers + transitions + 1;
    const counts: Record<string, number> = {};
    for (const n of g.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    expect(counts).toEqual({
      ...(inputLayout === 'nhwc' ? { Transpose: 1 } : {}),
      Conv: 1 + perLayer * layers + transitions, BatchNormalization: bn, Relu: bn, Concat: layers,
      AveragePool: transitions, ...(imagenet ? { MaxPool: 1 } : {}), GlobalAveragePool: 1, Flatten: 1, Gemm: 1,
    });
    // Topological order: every input is the graph's, an initializer, or an earlier node's output.
    const known = new Set(['input', ...g.initializer.map((t) => t.name)]);
    for (const n of g.node) {
      expect(n.input.filter((i) => !known.has(i)), n.name).toEqual([]);
      for (const o of n.output) known.add(o);
    }
    expect(g.node.at(-1)!.output).toEqual(['logits']);
    const stem = g.node.find((n) => n.name === 'features.conv0')!;
    expect(stem.attribute).toEqual([
      { name: 'kernel_shape', type: 7, ints: [imagenet ? 7 : 3, imagenet ? 7 : 3] },
      { name: 'strides', type: 7, ints: [imagenet ? 2 : 1, imagenet ? 2 : 1] },
      { name: 'pads', type: 7, ints: Array(4).fill(imagenet ? 3 : 1) },
    ]);
    const norm5 = g.node.find((n) => n.name === 'features.norm5')!.attribute!;
    expect(norm5.map((a) => [a.name, a.type])).toEqual([['epsilon', 1]]);
    expect(norm5[0]!.f).toBeCloseTo(cfg.bnEpsilon, 12);
    expect(g.node.at(-1)!.attribute).toEqual([{ name: 'transB', type: 2, i: 1 }]);

    // Initializers: every state_dict tensor once, float32, its PyTorch shape and its exact bytes;
    // the element counts add up to PyTorch's parameter counts for the preset.
    const expected = paramTensors(plan);
    expect(g.initializer.map((t) => t.name)).toEqual(expect.arrayContaining(expected.map((p) => p.name)));
    expect(g.initializer).toHaveLength(expected.length);
    let trainable = 0;
    let running = 0;
    for (const t of g.initializer) {
      expect(t.dataType, t.name).toBe(1);
      expect(t.dims, t.name).toEqual(expected.find((p) => p.name === t.name)!.shape);
      expect(Buffer.from(t.rawData).equals(bytesOf(state.get(t.name)!)), t.name).toBe(true);
      const n = t.dims.reduce((a, b) => a * b, 1);
      if (/running_(mean|var)$/.test(t.name)) running += n;
      else trainable += n;
    }
    const { trainable: pytorchTrainable, bnRunningStats } = PYTORCH_COUNTS[preset]!;
    expect({ trainable, running }).toEqual({ trainable: pytorchTrainable, running: bnRunningStats });
  });
});
