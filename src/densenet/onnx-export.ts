// DenseNet → ONNX (ModelProto, opset 17), written from the layer plan, so ONNX Runtime,
// Triton's onnxruntime backend or any other ONNX engine runs exactly the network we serve.
//
// Nodes are torchvision's modules one for one (Conv, BatchNormalization, Relu, MaxPool,
// AveragePool, Concat, GlobalAveragePool, Flatten, Gemm) and initializers carry torchvision's
// state_dict names, as torch.onnx.export of the same model would. BatchNorms are not folded:
// ONNX Runtime folds conv→BN pairs itself, and the file stays a faithful copy of the weights.
//
// The protobuf encoding is written by hand (a few dozen lines) instead of pulling in a
// protobuf library: the field numbers below are typed from the ONNX IR spec (onnx/onnx.proto)
// and checked by the tests, which run the result through onnxruntime-node.
import { ServeError } from '../errors.ts';
import type { ConvUnit, DenseNetPlan, NormUnit } from './architecture.ts';
import { paramTensors } from './architecture.ts';
import type { DenseNetModel } from './model.ts';
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
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INT = 2; // AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INTS = 7;

/** Field numbers from the ONNX IR spec, one object per message. */
const F = {
  model: { irVersion: 1, producerName: 2, producerVersion: 3, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14 },
  opset: { domain: 1, version: 2 },
  entry: { key: 1, value: 2 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5 },
  attribute: { name: 1, f: 2, i: 3, ints: 8, type: 20 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9 },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();

/**
 * One protobuf message under construction. Nested messages are kept as chunk lists and
 * joined once in finish(), so a 30 MB initializer is copied once, not once per nesting level.
 */
export class ProtoMessage {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  get byteLength(): number {
    return this.size;
  }

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private key(field: number, wireType: 0 | 2 | 5): void {
    this.push(varint(BigInt(field * 8 + wireType)));
  }

  /** int32/int64/enum; negative values take 10 bytes (two's complement), as protobuf does. */
  int(field: number, value: number | bigint): this {
    const v = BigInt(value);
    this.key(field, 0);
    this.push(varint(v < 0n ? v + (1n << 64n) : v));
    return this;
  }

  /** Repeated int64, one key per value: proto2's unpacked encoding, which onnx.proto declares. */
  ints(field: number, values: readonly (number | bigint)[]): this {
    for (const v of values) this.int(field, v);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.push(varint(BigInt(value.length)));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, value: ProtoMessage): this {
    this.key(field, 2);
    this.push(varint(BigInt(value.size)));
    for (const chunk of value.chunks) this.push(chunk);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

function varint(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

type Attribute = { name: string } & ({ int: number } | { float: number } | { ints: number[] });

function attribute(a: Attribute): ProtoMessage {
  const m = new ProtoMessage().string(F.attribute.name, a.name);
  if ('int' in a) return m.int(F.attribute.i, a.int).int(F.attribute.type, ATTR_INT);
  if ('float' in a) return m.float(F.attribute.f, a.float).int(F.attribute.type, ATTR_FLOAT);
  return m.ints(F.attribute.ints, a.ints).int(F.attribute.type, ATTR_INTS);
}

function valueInfo(name: string, dims: (number | string)[]): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of dims) {
    shape.message(F.shape.dim, typeof d === 'number' ? new ProtoMessage().int(F.dim.value, d) : new ProtoMessage().string(F.dim.param, d));
  }
  const tensorType = new ProtoMessage().int(F.tensorType.elemType, FLOAT).message(F.tensorType.shape, shape);
  return new ProtoMessage()
    .string(F.valueInfo.name, name)
    .message(F.valueInfo.type, new ProtoMessage().message(F.type.tensorType, tensorType));
}

function floatTensor(name: string, dims: number[], values: Float32Array): ProtoMessage {
  if (!LITTLE_ENDIAN_HOST) throw new ServeError('INTERNAL', 'ONNX export needs a little-endian host (raw_data is little-endian)');
  return new ProtoMessage()
    .ints(F.tensor.dims, dims)
    .int(F.tensor.dataType, FLOAT)
    .string(F.tensor.name, name)
    .bytes(F.tensor.rawData, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** Accumulates nodes and initializers in topological order. */
class GraphBuilder {
  readonly nodes: ProtoMessage[] = [];
  readonly initializers: ProtoMessage[] = [];
  private readonly written = new Set<string>();

  constructor(private readonly state: ReadonlyMap<string, Float32Array>, private readonly shapes: ReadonlyMap<string, number[]>) {}

  node(opType: string, name: string, inputs: string[], attributes: Attribute[] = []): string {
    const m = new ProtoMessage();
    for (const input of inputs) m.string(F.node.input, input);
    m.string(F.node.output, name).string(F.node.name, name).string(F.node.opType, opType);
    for (const a of attributes) m.message(F.node.attribute, attribute(a));
    this.nodes.push(m);
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

  const graph = new ProtoMessage();
  for (const node of g.nodes) graph.message(F.graph.node, node);
  graph.string(F.graph.name, 'densenet');
  for (const init of g.initializers) graph.message(F.graph.initializer, init);
  graph.message(F.graph.input, valueInfo('input', inputDims));
  graph.message(F.graph.output, valueInfo('logits', ['batch', plan.classifier.outFeatures]));

  const model = new ProtoMessage()
    .int(F.model.irVersion, IR_VERSION)
    .string(F.model.producerName, 'densenet-serve')
    .string(F.model.producerVersion, options.producerVersion ?? '0')
    .string(F.model.docString, `DenseNet (torchvision layout), input ${layout.toUpperCase()} float32, output logits`)
    .message(F.model.graph, graph)
    .message(F.model.opsetImport, new ProtoMessage().string(F.opset.domain, '').int(F.opset.version, OPSET));
  const metadata = { config: JSON.stringify(cfg), input_layout: layout, ...options.metadata };
  for (const [key, value] of Object.entries(metadata)) {
    model.message(F.model.metadataProps, new ProtoMessage().string(F.entry.key, key).string(F.entry.value, value));
  }
  return model.finish();
}

/** The model's current weights as an ONNX file (see encodeDenseNetOnnx). */
export function exportOnnx(model: DenseNetModel, options: OnnxExportOptions = {}): Uint8Array {
  // The torchvision exporter owns the tfjs → PyTorch layout conversion; reuse it.
  const state = readTorchvisionState(model, parseSafetensors(exportTorchvisionWeights(model)));
  return encodeDenseNetOnnx(model.plan, state, options);
}
