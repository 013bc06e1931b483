// keras.applications DenseNets (DenseNet121/169/201 and DenseNet(blocks=…)) from the files
// Keras writes: a Keras 3 `.keras` archive (config.json + model.weights.h5), a Keras 3
// `.weights.h5`, or an HDF5 file in Keras 2's layout (`model.save('x.h5')`, `save_weights`,
// the published `densenet121_weights_tf_dim_ordering_tf_kernels.h5`). HDF5 is read with h5wasm.
//
// Keras's DenseNet is torchvision's network: ZeroPadding2D(3) + 7×7/2 'valid' conv and
// ZeroPadding2D(1) + 3×3/2 max pool (symmetric, as our model builds it), BN-ReLU-1×1 conv-2×2
// average pool transitions, k = 32, bottleneck 4k, BN epsilon 1.001e-5. Its layers map one to
// one onto torchvision's modules:
//   conv1_conv, conv1_bn                          features.conv0, features.norm0
//   conv{B}_block{I}_0_bn, _1_conv, _1_bn, _2_conv features.denseblock{B-1}.denselayer{I}.norm1, conv1, norm2, conv2
//   pool{B}_bn, pool{B}_conv                      features.transition{B-1}.norm, .conv
//   bn, predictions                               features.norm5, classifier
// (tf.keras named the stem 'conv1/conv' and 'conv1/bn'; keras-applications called the
// classifier 'fc1000'.) Kernels are HWIO and Dense kernels [in, out]: transposed here to
// PyTorch's OIHW and [out, in], so the torchvision importer validates and loads them.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ServeError } from '../errors.ts';
import { paramTensors, type DenseNetPlan, type ParamTensor } from './architecture.ts';
import type { DenseNetConfig } from './config.ts';
import { DTYPE_BYTES, type RawTensor, type SafetensorsDtype, type SafetensorsFile } from './safetensors.ts';
import { DEFAULT_ZIP_LIMITS, ZipArchive, looksLikeZip } from './zip-archive.ts';

export const KERAS_BN_EPSILON = 1.001e-5;

export interface KerasLimits {
  maxFileBytes: number;
  /** Bytes of one dataset, and of all datasets read. */
  maxDatasetBytes: number;
  maxTotalBytes: number;
  maxConfigBytes: number;
}

export const DEFAULT_KERAS_LIMITS: Readonly<KerasLimits> = Object.freeze({
  maxFileBytes: 2 * 1024 * 1024 * 1024 - 1,
  maxDatasetBytes: 1024 * 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024 - 1,
  maxConfigBytes: 64 * 1024 * 1024,
});

type KerasRole = 'kernel' | 'bias' | 'gamma' | 'beta' | 'moving_mean' | 'moving_variance';

interface KerasTensor {
  /** Where it is in the file, for messages. */
  where: string;
  raw: RawTensor;
}

export interface KerasFile {
  container: 'keras-archive' | 'hdf5';
  layout: 'keras3' | 'keras2';
  /** `${layer}/${role}`, layer names as keras.applications (Keras 3) names them. */
  tensors: Map<string, KerasTensor>;
  /** The model's config (.keras config.json, or an .h5 model file's model_config). */
  config?: unknown;
  kerasVersion?: string;
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export function looksLikeHdf5(head: Uint8Array, at = 0): boolean {
  return HDF5_SIGNATURE.every((b, i) => head[at + i] === b);
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new ServeError('INVALID_MODEL_FILE', `keras: ${message}`, details);
}

/** tf.keras (Keras 2) and keras-applications names → Keras 3's. */
function canonicalLayerName(name: string): string {
  if (name === 'fc1000') return 'predictions';
  return name.replaceAll('/', '_');
}

const ROLE_BY_WEIGHT_NAME: Readonly<Record<string, KerasRole>> = {
  kernel: 'kernel', bias: 'bias', gamma: 'gamma', beta: 'beta', moving_mean: 'moving_mean', moving_variance: 'moving_variance',
};

/** Reads a .keras archive or a Keras HDF5 file: every weight of every layer, as stored. */
export async function readKerasFile(file: string, limits: KerasLimits = DEFAULT_KERAS_LIMITS): Promise<KerasFile> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) fail(`${path.basename(file)} is missing`);
  if (info.size > limits.maxFileBytes) fail(`${path.basename(file)} is ${info.size} bytes, over the limit of ${limits.maxFileBytes}`);
  const bytes = await readFile(file);
  if (looksLikeZip(bytes)) return readArchive(bytes, limits);
  checkHdf5Header(bytes, path.basename(file));
  return { container: 'hdf5', ...(await readHdf5(file, limits)) };
}

async function readArchive(bytes: Buffer, limits: KerasLimits): Promise<KerasFile> {
  const zip = await ZipArchive.open(bytes, 'keras archive', { ...DEFAULT_ZIP_LIMITS, maxEntryBytes: limits.maxDatasetBytes * 2, maxTotalBytes: limits.maxTotalBytes });
  let dir: string | undefined;
  try {
    if (!zip.has('config.json')) fail(`the archive has no config.json (entries: ${zip.names().slice(0, 8).join(', ')}); is it a Keras 3 .keras file?`);
    if (!zip.has('model.weights.h5')) {
      const sharded = zip.has('model.weights.json') ? ' (sharded weights are not supported: save with one weights file)' : '';
      fail(`the archive has no model.weights.h5${sharded}`);
    }
    if (zip.size('config.json') > limits.maxConfigBytes) fail(`config.json is over ${limits.maxConfigBytes} bytes`);
    let config: unknown;
    try {
      config = JSON.parse((await zip.read('config.json')).toString('utf8'));
    } catch (err) {
      if (err instanceof ServeError) throw err;
      fail(`config.json is not valid JSON: ${(err as Error).message}`);
    }
    let kerasVersion: string | undefined;
    if (zip.has('metadata.json') && zip.size('metadata.json') < 1_000_000) {
      try {
        kerasVersion = String((JSON.parse((await zip.read('metadata.json')).toString('utf8')) as { keras_version?: unknown }).keras_version ?? '') || undefined;
      } catch { /* metadata is informative only */ }
    }
    const weights = await zip.read('model.weights.h5');
    checkHdf5Header(weights, 'model.weights.h5');
    // h5wasm reads files through the real file system (NODERAWFS): the inner file goes to a
    // private temporary folder for the time of the read.
    dir = await mkdtemp(path.join(tmpdir(), 'densenet-serve-keras-'));
    const inner = path.join(dir, 'model.weights.h5');
    await writeFile(inner, weights, { mode: 0o600 });
    const read = await readHdf5(inner, limits);
    return { container: 'keras-archive', ...read, config, kerasVersion: kerasVersion ?? read.kerasVersion };
  } finally {
    zip.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The signature, and the end-of-file address the superblock records against the real size:
 * a truncated file is named as such here instead of failing somewhere inside HDF5.
 */
function checkHdf5Header(bytes: Uint8Array, name: string): void {
  // The superblock may follow a user block of 512, 1024, 2048, … bytes.
  let base = -1;
  for (let at = 0; at + 8 <= bytes.length && at <= 1 << 20; at = at === 0 ? 512 : at * 2) {
    if (looksLikeHdf5(bytes, at)) {
      base = at;
      break;
    }
  }
  if (base < 0) fail(`${name} is neither a Keras .keras archive nor an HDF5 file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = bytes[base + 8];
  let eofAt: number;
  let offsetSize: number;
  if (version === 0 || version === 1) {
    offsetSize = bytes[base + 13] as number;
    // signature 8, versions 5, reserved 1, sizes 2, reserved 1 (=16), K values 4, flags 4 (=24),
    // v1: indexed storage K 2 + reserved 2; then base, free-space, EOF addresses.
    eofAt = base + 24 + (version === 1 ? 4 : 0) + 2 * offsetSize;
  } else if (version === 2 || version === 3) {
    offsetSize = bytes[base + 9] as number;
    // signature 8, version 1, sizes 2, flags 1 (=12); then base, extension, EOF addresses.
    eofAt = base + 12 + 2 * offsetSize;
  } else {
    return; // a newer superblock: HDF5 itself checks it
  }
  if (offsetSize !== 8 || eofAt + 8 > bytes.length) {
    if (eofAt + 8 > bytes.length) fail(`${name} is truncated: it ends inside its HDF5 superblock`);
    return;
  }
  const eof = Number(view.getBigUint64(eofAt, true)) + base;
  if (eof > bytes.length) fail(`${name} is truncated: HDF5 says it ends at byte ${eof}, the file has ${bytes.length}`, { expectedBytes: eof, actualBytes: bytes.length });
}

type H5Module = typeof import('h5wasm/node');
type H5Group = import('h5wasm/node').Group;
type H5Dataset = import('h5wasm/node').Dataset;
let h5: Promise<H5Module> | undefined;

/** h5wasm's WebAssembly HDF5, loaded on first use (only Keras models need it). */
async function hdf5(): Promise<H5Module> {
  h5 ??= import('h5wasm/node').then(async (mod) => {
    await mod.ready;
    return mod;
  });
  return h5;
}

async function readHdf5(file: string, limits: KerasLimits): Promise<Omit<KerasFile, 'container'>> {
  const mod = await hdf5();
  const f = new mod.File(file, 'r');
  // h5wasm reports a file HDF5 could not open with a negative id rather than an exception.
  if (f.file_id < 0n) fail(`${path.basename(file)} could not be opened as HDF5 (damaged or not HDF5)`);
  const budget = { left: limits.maxTotalBytes };
  try {
    const attrs = f.attrs;
    const kerasVersion = attrs.keras_version ? String(attrs.keras_version.value) : undefined;
    let config: unknown;
    if (attrs.model_config) {
      try {
        config = JSON.parse(String(attrs.model_config.value));
      } catch (err) {
        fail(`model_config is not valid JSON: ${(err as Error).message}`);
      }
    }
    const root = f.get('model_weights');
    const weightsGroup = root instanceof mod.Group ? root : f;
    if (weightsGroup.attrs.layer_names) {
      return { layout: 'keras2', tensors: readKeras2Layout(mod, weightsGroup, limits, budget), config, kerasVersion };
    }
    const layers = f.get('layers') ?? f.get('_layer_checkpoint_dependencies');
    if (layers instanceof mod.Group) return { layout: 'keras3', tensors: readKeras3Layout(mod, layers, limits, budget), config, kerasVersion };
    return fail(`${path.basename(file)} is HDF5 but holds no Keras weights (neither layer_names nor a layers group)`);
  } catch (err) {
    if (err instanceof ServeError) throw err;
    return fail(`${path.basename(file)} is damaged or truncated: HDF5 says ${(err as Error).message}`);
  } finally {
    f.close();
  }
}

function stringList(value: unknown): string[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  return items.map((v) => String(v));
}

/** layer_names → each layer's weight_names → the dataset at `<layer>/<weight name>`. */
function readKeras2Layout(mod: H5Module, group: H5Group, limits: KerasLimits, budget: { left: number }): Map<string, KerasTensor> {
  const out = new Map<string, KerasTensor>();
  for (const layer of stringList(group.attrs.layer_names?.value)) {
    const g = group.get(layer);
    if (!(g instanceof mod.Group)) fail(`layer '${layer}' is listed in layer_names but has no group`);
    for (const weightName of stringList(g.attrs.weight_names?.value)) {
      const ds = g.get(weightName);
      if (!(ds instanceof mod.Dataset)) fail(`weight '${layer}/${weightName}' is listed but is not a dataset`);
      const last = weightName.split('/').pop()?.replace(/:\d+$/, '') ?? '';
      const role = ROLE_BY_WEIGHT_NAME[last];
      const key = `${canonicalLayerName(layer)}/${role ?? last}`;
      out.set(key, { where: `${layer}/${weightName}`, raw: readDataset(mod, ds, `${layer}/${weightName}`, limits, budget) });
    }
  }
  return out;
}

/**
 * Keras 3: layers/<object name>/vars/<index>, the object name a class-based counter
 * (conv2d_3, batch_normalization_7, …) and, since Keras 3.x, the layer's name in the `vars`
 * group's `name` attribute. Without that attribute the layer is found by its position among
 * the layers of its class (positionalKerasNames); the shape checks catch a wrong guess.
 */
function readKeras3Layout(mod: H5Module, layers: H5Group, limits: KerasLimits, budget: { left: number }): Map<string, KerasTensor> {
  const out = new Map<string, KerasTensor>();
  for (const objectName of layers.keys()) {
    const vars = layers.get(`${objectName}/vars`);
    if (!(vars instanceof mod.Group)) continue;
    const indices = vars.keys();
    if (indices.length === 0) continue;
    const named = vars.attrs.name ? String(vars.attrs.name.value) : undefined;
    const layer = canonicalLayerName(named ?? objectName);
    const roles = rolesFor(layer, objectName, indices.length);
    for (const index of indices) {
      const ds = vars.get(index);
      if (!(ds instanceof mod.Dataset)) fail(`layers/${objectName}/vars/${index} is not a dataset`);
      const i = Number(index);
      const role = Number.isInteger(i) ? roles[i] : undefined;
      out.set(`${layer}/${role ?? `vars/${index}`}`, {
        where: `layers/${objectName}/vars/${index}${named ? ` (${named})` : ''}`,
        raw: readDataset(mod, ds, `layers/${objectName}/vars/${index}`, limits, budget),
      });
    }
  }
  return out;
}

/** Variable order of the layer kinds a DenseNet has (Keras 3 saves them by index). */
function rolesFor(layer: string, objectName: string, count: number): (KerasRole | undefined)[] {
  const kind = /^batch_normalization(_\d+)?$/.test(objectName) || /(_bn|^bn)$/.test(layer) ? 'bn'
    : /^dense(_\d+)?$/.test(objectName) || layer === 'predictions' ? 'dense' : 'conv';
  if (kind === 'bn') return ['gamma', 'beta', 'moving_mean', 'moving_variance'];
  if (kind === 'dense') return ['kernel', 'bias'];
  return count === 1 ? ['kernel'] : ['kernel', 'bias'];
}

/** The dataset's bytes as stored: float16/32/64 only (h5wasm has no float16 view in Node 20). */
function readDataset(mod: H5Module, ds: H5Dataset, where: string, limits: KerasLimits, budget: { left: number }): RawTensor {
  const meta = ds.metadata;
  const shape = (meta.shape ?? []).map(Number);
  const bfloat16 = ds.attrs.dtype !== undefined && String(ds.attrs.dtype.value) === 'bfloat16';
  let dtype: SafetensorsDtype | undefined;
  if (meta.type === H5T_FLOAT) dtype = ({ 2: 'F16', 4: 'F32', 8: 'F64' } as Record<number, SafetensorsDtype>)[meta.size];
  else if (bfloat16 && meta.size === 2) dtype = 'BF16';
  if (!dtype) {
    fail(`dataset '${where}' holds ${describeH5Type(meta)}, not floating-point weights`, { dataset: where });
  }
  if (!meta.littleEndian && meta.size > 1) fail(`dataset '${where}' is big-endian, which is not supported`, { dataset: where });
  const numel = shape.reduce((a, b) => a * b, 1);
  const nbytes = numel * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (!Number.isSafeInteger(nbytes) || nbytes > limits.maxDatasetBytes || nbytes > budget.left) {
    fail(`dataset '${where}' [${shape.join(', ')}] needs ${nbytes} bytes, over the limit`, { dataset: where });
  }
  budget.left -= nbytes;
  // Dataset.value would build a typed array per dtype and has none for float16 on Node 20:
  // read the bytes as stored through the call `value` itself makes.
  const M = mod.Module;
  const ptr = M._malloc(Math.max(nbytes, 1));
  if (!ptr) fail(`dataset '${where}': out of WebAssembly memory for ${nbytes} bytes`);
  try {
    const status = M.get_dataset_data(ds.file_id, ds.path, null, null, null, BigInt(ptr));
    if (status < 0) fail(`dataset '${where}' could not be read (the file is damaged)`, { dataset: where });
    return { dtype: dtype as SafetensorsDtype, shape, bytes: M.HEAPU8.slice(ptr, ptr + nbytes) };
  } finally {
    M._free(ptr);
  }
}

/** HDF5's datatype classes (H5Tpublic.h H5T_class_t, stable across versions). */
const H5T_CLASSES = ['integer', 'float', 'time', 'string', 'bitfield', 'opaque', 'compound', 'reference', 'enum', 'variable-length', 'array'];
const H5T_FLOAT = 1;

function describeH5Type(meta: { type: number; size: number; signed?: boolean }): string {
  const name = H5T_CLASSES[meta.type] ?? `type ${meta.type}`;
  return name === 'integer' ? `${meta.signed ? '' : 'u'}int${meta.size * 8}` : `${name} (${meta.size} bytes)`;
}

// ---------------------------------------------------------------------------------------------
// The mapping onto our model.

interface KerasParam {
  keras: string;
  param: ParamTensor;
  /** Keras layout of the tensor. */
  shape: number[];
  /** Permutation from the Keras layout to PyTorch's. */
  perm?: number[];
}

const BN_ROLES: Record<ParamTensor['role'], KerasRole> = { weight: 'gamma', bias: 'beta', running_mean: 'moving_mean', running_var: 'moving_variance' };

/** Every tensor of the plan under its keras.applications name, with its Keras shape. */
export function kerasParams(plan: DenseNetPlan): KerasParam[] {
  assertKerasShaped(plan.config);
  const layerOf = new Map<string, string>();
  if (plan.stem.norm) layerOf.set(plan.stem.norm.name, 'conv1_bn');
  layerOf.set(plan.stem.conv.name, 'conv1_conv');
  plan.blocks.forEach((block, b) => {
    block.layers.forEach((layer, i) => {
      const base = `conv${b + 2}_block${i + 1}`;
      layerOf.set(layer.norm1.name, `${base}_0_bn`);
      layerOf.set(layer.conv1.name, `${base}_1_conv`);
      if (layer.norm2 && layer.conv2) {
        layerOf.set(layer.norm2.name, `${base}_1_bn`);
        layerOf.set(layer.conv2.name, `${base}_2_conv`);
      }
    });
    if (block.transition) {
      layerOf.set(block.transition.norm.name, `pool${b + 2}_bn`);
      layerOf.set(block.transition.conv.name, `pool${b + 2}_conv`);
    }
  });
  layerOf.set(plan.finalNorm.name, 'bn');
  layerOf.set(plan.classifier.name, 'predictions');
  return paramTensors(plan).map((param) => {
    const layer = layerOf.get(param.unit.name) as string;
    if (param.unit.kind === 'conv') {
      const [o, i, h, w] = param.shape as [number, number, number, number];
      return { keras: `${layer}/kernel`, param, shape: [h, w, i, o], perm: [3, 2, 0, 1] };
    }
    if (param.unit.kind === 'linear') {
      if (param.role === 'weight') {
        const [out, inp] = param.shape as [number, number];
        return { keras: `${layer}/kernel`, param, shape: [inp, out], perm: [1, 0] };
      }
      return { keras: `${layer}/bias`, param, shape: param.shape };
    }
    return { keras: `${layer}/${BN_ROLES[param.role]}`, param, shape: param.shape };
  });
}

/** keras.applications' DenseNet has the ImageNet stem and bottleneck layers of 4k; four blocks. */
function assertKerasShaped(config: DenseNetConfig): void {
  if (config.stem !== 'imagenet' || !config.bottleneck || config.compression !== 0.5) {
    throw new ServeError('INVALID_CONFIG',
      'keras: keras.applications DenseNets have the ImageNet stem, bottleneck layers and compression 0.5; this architecture does not',
      { field: 'architecture' });
  }
}

function listNames(names: string[], max = 12): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} … (${names.length} in all)` : shown;
}

/**
 * Checks every tensor against the architecture under its Keras name and shape (listing
 * missing, unexpected and wrong-shape ones), then returns them under torchvision's names in
 * PyTorch's layouts, dtype kept.
 */
export function kerasToTorchvision(read: KerasFile, plan: DenseNetPlan): SafetensorsFile {
  const params = kerasParams(plan);
  const file = read.layout === 'keras3' ? withPositionalNames(read, plan) : read;
  const expected = new Map(params.map((p) => [p.keras, p]));
  const missing = params.filter((p) => !file.tensors.has(p.keras)).map((p) => p.keras);
  const unexpected = [...file.tensors.keys()].filter((k) => !expected.has(k));
  const wrongShape = params.flatMap((p) => {
    const t = file.tensors.get(p.keras);
    if (!t || (t.raw.shape.length === p.shape.length && t.raw.shape.every((d, i) => d === p.shape[i]))) return [];
    return [`'${p.keras}' (${t.where}) has shape [${t.raw.shape.join(', ')}], the architecture needs [${p.shape.join(', ')}]`];
  });
  if (missing.length || unexpected.length || wrongShape.length) {
    const parts = [];
    if (missing.length) parts.push(`missing tensors: ${listNames(missing)}`);
    if (unexpected.length) parts.push(`unexpected tensors: ${listNames(unexpected.map((k) => (file.tensors.get(k) as KerasTensor).where))}`);
    if (wrongShape.length) parts.push(`wrong shapes: ${listNames(wrongShape, 6)}`);
    throw new ServeError('INVALID_MODEL_FILE', `keras: the weights do not match the architecture; ${parts.join('; ')}`, {
      missing: missing.slice(0, 100), unexpected: unexpected.slice(0, 100), wrongShape: wrongShape.slice(0, 100),
    });
  }
  const tensors = new Map<string, RawTensor>();
  for (const p of params) {
    const t = file.tensors.get(p.keras) as KerasTensor;
    tensors.set(p.param.name, p.perm ? transposeRaw(t.raw, p.perm) : t.raw);
  }
  return { tensors, metadata: {} };
}

/**
 * Keras 3 names a layer's weights by object path: its class in snake case and a counter over
 * the model's layers of that class (conv2d, conv2d_1, …, batch_normalization_7, dense), in the
 * order keras.applications creates them. Files whose `vars` groups lack the `name` attribute
 * are mapped by that order.
 */
export function positionalKerasNames(plan: DenseNetPlan): Map<string, string> {
  const counters = new Map<string, number>();
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const p of kerasParams(plan)) {
    const layer = p.keras.split('/')[0] as string;
    if (seen.has(layer)) continue;
    seen.add(layer);
    const cls = p.param.unit.kind === 'conv' ? 'conv2d' : p.param.unit.kind === 'bn' ? 'batch_normalization' : 'dense';
    const n = counters.get(cls);
    counters.set(cls, n === undefined ? 0 : n + 1);
    out.set(n === undefined ? cls : `${cls}_${n + 1}`, layer);
  }
  return out;
}

function withPositionalNames(file: KerasFile, plan: DenseNetPlan): KerasFile {
  const names = positionalKerasNames(plan);
  const tensors = new Map<string, KerasTensor>();
  for (const [key, t] of file.tensors) {
    const [layer, ...rest] = key.split('/');
    const named = names.get(layer as string);
    tensors.set(named ? [named, ...rest].join('/') : key, t);
  }
  return { ...file, tensors };
}

/** A row-major tensor permuted (out dim d = in dim perm[d]), element by element, any dtype. */
export function transposeRaw(t: RawTensor, perm: number[]): RawTensor {
  const size = DTYPE_BYTES[t.dtype];
  const inShape = t.shape;
  const outShape = perm.map((p) => inShape[p] as number);
  const inStrides = new Array<number>(inShape.length);
  for (let d = inShape.length - 1, s = 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= inShape[d] as number;
  }
  const stride = perm.map((p) => inStrides[p] as number);
  const numel = outShape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(numel * size);
  const index = new Array<number>(outShape.length).fill(0);
  let src = 0;
  for (let i = 0; i < numel; i++) {
    for (let b = 0; b < size; b++) out[i * size + b] = t.bytes[src * size + b] as number;
    for (let d = outShape.length - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      src += stride[d] as number;
      if ((index[d] as number) < (outShape[d] as number)) break;
      src -= (outShape[d] as number) * (stride[d] as number);
      index[d] = 0;
    }
  }
  return { dtype: t.dtype, shape: outShape, bytes: out };
}

// ---------------------------------------------------------------------------------------------
// The model config a .keras / .h5 model file carries.

interface LayerConfig {
  class_name?: string;
  name?: string;
  config?: Record<string, unknown>;
}

export interface KerasModelSummary {
  name: string;
  blocks: number[];
  bnEpsilon?: number;
  inputShape?: (number | null)[];
}

/**
 * Checks a Keras model config describes a keras.applications DenseNet matching the
 * architecture: its class, its layers, blocks, growth rate, BN epsilon, input and classifier.
 */
export function checkKerasConfig(config: unknown, architecture: DenseNetConfig): KerasModelSummary {
  const top = config as { class_name?: unknown; config?: { name?: unknown; layers?: unknown } } | null;
  const className = typeof top?.class_name === 'string' ? top.class_name : '(none)';
  const modelName = typeof top?.config?.name === 'string' ? top.config.name : '(unnamed)';
  const layers = Array.isArray(top?.config?.layers) ? (top.config.layers as LayerConfig[]) : [];
  const nameOf = (l: LayerConfig) => canonicalLayerName(String(l.config?.name ?? l.name ?? ''));
  const byName = new Map(layers.map((l) => [nameOf(l), l]));
  const notDenseNet = (why: string): never => fail(
    `the file holds a ${className} model named '${modelName}' (layers: ${listNames(layers.map(nameOf), 8)}), ` +
    `not a keras.applications DenseNet: ${why}`, { model: modelName });
  if (className !== 'Functional' && className !== 'Model') notDenseNet(`a DenseNet is a Functional model, this is a ${className}`);
  const stem = byName.get('conv1_conv');
  const kernel = stem?.config?.kernel_size;
  if (stem?.class_name !== 'Conv2D' || !Array.isArray(kernel) || kernel[0] !== 7) notDenseNet('it has no 7×7 conv1_conv stem');
  const blocks: number[] = [];
  for (let b = 2; ; b++) {
    let count = 0;
    while (byName.has(`conv${b}_block${count + 1}_concat`)) count++;
    if (count === 0) break;
    blocks.push(count);
  }
  if (blocks.length === 0) notDenseNet('it has no dense blocks (conv2_block1_concat, …)');
  const want = architecture.blockLayers;
  if (blocks.length !== want.length || blocks.some((n, i) => n !== want[i])) {
    fail(`the file's DenseNet '${modelName}' has blocks [${blocks.join(', ')}], the architecture [${want.join(', ')}]: choose the matching preset`,
      { blocks, expected: want });
  }
  const growth = byName.get('conv2_block1_2_conv')?.config?.filters;
  if (typeof growth === 'number' && growth !== architecture.growthRate) {
    fail(`the file's DenseNet has growth rate ${growth}, the architecture ${architecture.growthRate}`);
  }
  const epsilons = layers.filter((l) => l.class_name === 'BatchNormalization').map((l) => l.config?.epsilon).filter((e): e is number => typeof e === 'number');
  const bnEpsilon = epsilons[0];
  const off = epsilons.find((e) => Math.abs(e - architecture.bnEpsilon) > 1e-9 * Math.max(1, e));
  if (off !== undefined) {
    fail(`the file's BatchNormalization epsilon is ${off}, the architecture's ${architecture.bnEpsilon} (set architecture.bnEpsilon)`, { bnEpsilon: off });
  }
  const activation = byName.get('predictions')?.config?.activation;
  if (activation !== undefined && activation !== 'softmax' && activation !== 'linear' && activation !== null) {
    fail(`the classifier's activation is '${JSON.stringify(activation)}'; the service applies softmax to logits, so only a softmax or linear classifier is served`);
  }
  const input = layers.find((l) => l.class_name === 'InputLayer')?.config;
  const inputShape = (input?.batch_shape ?? input?.batch_input_shape) as (number | null)[] | undefined;
  if (Array.isArray(inputShape) && inputShape.length === 4) {
    const [, h, w, c] = inputShape;
    if ((typeof h === 'number' && h !== architecture.inputHeight) || (typeof w === 'number' && w !== architecture.inputWidth)) {
      fail(`the file's model takes ${h}×${w} images, the architecture ${architecture.inputHeight}×${architecture.inputWidth} (set architecture.inputHeight / inputWidth)`);
    }
    if (typeof c === 'number' && c !== architecture.inputChannels) fail(`the file's model takes ${c} channels, the architecture ${architecture.inputChannels}`);
  }
  return { name: modelName, blocks, bnEpsilon, inputShape };
}
