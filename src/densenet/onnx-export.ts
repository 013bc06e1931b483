// DenseNet → ONNX (ModelProto, opset 17), written from the layer plan, so ONNX Runtime,
// Triton's onnxruntime backend or any other ONNX engine runs exactly the network we serve.
//
// Nodes are torchvision's modules one for one (Conv, BatchNormalization, Relu, MaxPool,
// AveragePool, Concat, GlobalAveragePool, Flatten, Gemm) and initializers carry torchvision's
// state_dict names, as torch.onnx.export of the same model would. BatchNorms are not folded:
// ONNX Runtime folds conv→BN pairs itself, and the file stays a faithful copy of the weights.
//
// Encoded by protobufjs from onnx-schema.ts, not by hand: the library owns the wire format at no cost that matters (issue 14).
// Measured against the hand-written writer it replaced: byte-identical files; warm export medians DenseNet-121 23–87 ms vs
// 32–125 ms, DenseNet-BC-100 3–7 ms vs 20–40 ms; same peak RSS (~215 MB); one protobufjs load per process, ~40 ms, ~8 MB.
import { LITTLE_ENDIAN_HOST } from '../byte-order.ts';
import { ServeError } from '../errors.ts';
import type { ConvUnit, DenseNetPlan, NormUnit } from './architecture.ts';
import { paramTensors } from './architecture.ts';
import type { DenseNetModel } from './model.ts';
import { ATTRIBUTE_TYPE, DATA_TYPE, encodeOnnxModel, type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-schema.ts';
import { parseSafetensors } from './safetensors.ts';
import { exportTorchvisionWeights, readTorchvisionState } from './torchvision-weights.ts';

export interface OnnxExportOptions {
  /**
   * Layout of the graph input 'input'. 'nchw' (default) is what torchvision exports take;
   * 'nhwc' takes the tensors this service feeds tfjs and adds one Transpose in front.
   */
  inputLayout?: 'nchw' | 'nhwc';
  /** Extra ModelProto.metadata_props entries (the DenseNet config is always written). */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

// IR version 8 and opset 17 are read by every ONNX Runtime since 1.13 (and by Triton's).
const IR_VERSION = 8;
const OPSET = 17;


type Attribute = { name: string } & ({ int: number } | { float: number } | { ints: number[] });

function attribute(a: Attribute): OnnxAttribute {
  if ('int' in a) return { name: a.name, type: ATTRIBUTE_TYPE.INT, i: a.int };
  if ('float' in a) return { name: a.name, type: ATTRIBUTE_TYPE.FLOAT, f: a.float };
  return { name: a.name, type: ATTRIBUTE_TYPE.INTS, ints: a.ints };
}

function valueInfo(name: string, dims: (number | string)[]): OnnxValueInfo {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: DATA_TYPE.FLOAT, shape: { dim } } } };
}

function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTensor {
  if (!LITTLE_ENDIAN_HOST) throw new ServeError('INTERNAL', 'ONNX export needs a little-endian host (raw_data is little-endian)');
  return { dims, dataType: DATA_TYPE.FLOAT, name, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Accumulates nodes and initializers in topological order. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly written = new Set<string>();

  constructor(private readonly state: ReadonlyMap<string, Float32Array>, private readonly shapes: ReadonlyMap<string, number[]>) {}

  node(opType: string, name: string, inputs: string[], attributes: Attribute[] = []): string {
    this.nodes.push({ input: inputs, output: [name], name, opType, attribute: attributes.map(attribute) });
    return name;
  }

  /** Adds a state_dict tensor as an initializer (once) and returns its name. */
  weight(key: string): string {
    if (this.written.has(key)) return key;
    const values = this.state.get(key);
    const dims = this.shapes.get(key);
    if (!values || !dims) throw new ServeError('INVALID_MODEL_FILE', `ONNX export: no weights for '${key}'`, { tensor: key });
    this.initializers.push(floatTensor(key, dims, values));
    this.written.add(key);
    return key;
  }

  conv(x: string, unit: ConvUnit): string {
    const p = unit.padding;
    return this.node('Conv', unit.name, [x, this.weight(`${unit.name}.weight`)], [
      { name: 'kernel_shape', ints: [unit.kernel, unit.kernel] },
      { name: 'strides', ints: [unit.stride, unit.stride] },
      { name: 'pads', ints: [p, p, p, p] },
    ]);
  }

  bnRelu(x: string, unit: NormUnit, reluName: string, epsilon: number): string {
    const w = (role: string) => this.weight(`${unit.name}.${role}`);
    const normed = this.node('BatchNormalization', unit.name,
      [x, w('weight'), w('bias'), w('running_mean'), w('running_var')], [{ name: 'epsilon', float: epsilon }]);
    return this.node('Relu', reluName, [normed]);
  }
}

/**
 * Encodes the network described by a plan with the given weights (torchvision's state_dict
 * names and PyTorch layouts: conv OIHW, linear [out, in]). Output 'logits' [batch, classes].
 */
export function encodeDenseNetOnnx(plan: DenseNetPlan, state: ReadonlyMap<string, Float32Array>, options: OnnxExportOptions = {}): Uint8Array {
  const cfg = plan.config;
  const layout = options.inputLayout ?? 'nchw';
  const shapes = new Map(paramTensors(plan).map((p) => [p.name, p.shape]));
  const g = new GraphBuilder(state, shapes);
  const eps = cfg.bnEpsilon;

  const [h, w, c] = [cfg.inputHeight, cfg.inputWidth, cfg.inputChannels];
  const inputDims = layout === 'nhwc' ? ['batch', h, w, c] : ['batch', c, h, w];
  let x = layout === 'nhwc' ? g.node('Transpose', 'input.nchw', ['input'], [{ name: 'perm', ints: [0, 3, 1, 2] }]) : 'input';

  x = g.conv(x, plan.stem.conv);
  if (plan.stem.norm) x = g.bnRelu(x, plan.stem.norm, 'features.relu0', eps);
  if (plan.stem.maxPool) {
    // ONNX pads pooling windows with -∞ like torch; DenseNet's max pool input is post-ReLU anyway.
    x = g.node('MaxPool', 'features.pool0', [x], [
      { name: 'kernel_shape', ints: [3, 3] }, { name: 'strides', ints: [2, 2] }, { name: 'pads', ints: [1, 1, 1, 1] },
    ]);
  }
  for (const block of plan.blocks) {
    for (const layer of block.layers) {
      // Dropout is the identity at inference: it is not written.
      let y = g.conv(g.bnRelu(x, layer.norm1, `${layer.name}.relu1`, eps), layer.conv1);
      if (layer.norm2 && layer.conv2) y = g.conv(g.bnRelu(y, layer.norm2, `${layer.name}.relu2`, eps), layer.conv2);
      x = g.node('Concat', `${layer.name}.concat`, [x, y], [{ name: 'axis', int: 1 }]);
    }
    if (block.transition) {
      const t = block.transition;
      x = g.conv(g.bnRelu(x, t.norm, `${t.name}.relu`, eps), t.conv);
      x = g.node('AveragePool', `${t.name}.pool`, [x], [{ name: 'kernel_shape', ints: [2, 2] }, { name: 'strides', ints: [2, 2] }]);
    }
  }
  x = g.bnRelu(x, plan.finalNorm, 'features.relu5', eps);
  x = g.node('GlobalAveragePool', 'global_pool', [x]);
  x = g.node('Flatten', 'global_pool.flatten', [x], [{ name: 'axis', int: 1 }]);
  const classifier = plan.classifier.name;
  g.node('Gemm', 'logits', [x, g.weight(`${classifier}.weight`), g.weight(`${classifier}.bias`)], [{ name: 'transB', int: 1 }]);

  return encodeOnnxModel({
    irVersion: IR_VERSION,
    producerName: 'densenet-serve',
    producerVersion: options.producerVersion ?? '0',
    docString: `DenseNet (torchvision layout), input ${layout.toUpperCase()} float32, output logits`,
    graph: {
      node: g.nodes,
      name: 'densenet',
      initializer: g.initializers,
      input: [valueInfo('input', inputDims)],
      output: [valueInfo('logits', ['batch', plan.classifier.outFeatures])],
    },
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: Object.entries({ config: JSON.stringify(cfg), input_layout: layout, ...options.metadata })
      .map(([key, value]) => ({ key, value })),
  });
}

/** The model's current weights as an ONNX file (see encodeDenseNetOnnx). */
export function exportOnnx(model: DenseNetModel, options: OnnxExportOptions = {}): Uint8Array {
  // The torchvision exporter owns the tfjs → PyTorch layout conversion; reuse it.
  const state = readTorchvisionState(model, parseSafetensors(exportTorchvisionWeights(model)));
  return encodeDenseNetOnnx(model.plan, state, options);
}
