// torchvision / timm DenseNet checkpoints (safetensors) in and out of our tfjs model.
//
// Layouts: PyTorch convs are OIHW and tfjs HWIO; Linear weights are [out, in] and Dense
// kernels [in, out]. BN maps weight→gamma, bias→beta, running_mean/var→moving_mean/variance.
import { tf, type Tensor } from './tf-runtime.ts';
import { ServeError } from '../errors.ts';
import { paramTensors, type ParamTensor } from './architecture.ts';
import type { DenseNetModel } from './model.ts';
import {
  parseSafetensors,
  serializeSafetensors,
  tensorToFloat32,
  type RawTensor,
  type SafetensorsFile,
} from './safetensors.ts';

// Pre-0.4 torchvision checkpoints name dense-layer modules `norm.1`, `conv.2`, …;
// torchvision itself renames them on load with an equivalent pattern.
const LEGACY_LAYER_KEY = /^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$/;

/** Maps legacy and wrapped names onto today's torchvision state_dict keys. */
export function canonicalTorchvisionKey(key: string): string {
  // nn.DataParallel / DistributedDataParallel checkpoints prefix every key with `module.`.
  const unwrapped = key.startsWith('module.') ? key.slice('module.'.length) : key;
  const legacy = LEGACY_LAYER_KEY.exec(unwrapped);
  return legacy ? `${legacy[1]}${legacy[2]}` : unwrapped;
}

const isBatchCounter = (key: string) => key.endsWith('.num_batches_tracked');

function listNames(names: string[], max = 12): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} … (${names.length} in all)` : shown;
}

/**
 * Checks a checkpoint against the model's plan and returns each parameter as float32 in
 * PyTorch layout. Missing or unexpected tensors and shape mismatches are errors naming them.
 */
export function readTorchvisionState(model: Pick<DenseNetModel, 'plan'>, file: SafetensorsFile): Map<string, Float32Array> {
  const expected = new Map(paramTensors(model.plan).map((p) => [p.name, p]));
  const found = new Map<string, { raw: RawTensor; original: string }>();
  const unexpected: string[] = [];
  for (const [original, raw] of file.tensors) {
    const key = canonicalTorchvisionKey(original);
    if (isBatchCounter(key)) continue; // a training counter; inference does not use it
    if (!expected.has(key)) unexpected.push(original);
    else if (found.has(key)) {
      throw new ServeError('INVALID_MODEL_FILE', `checkpoint holds '${key}' twice (as '${found.get(key)?.original}' and '${original}')`, { tensor: key });
    } else found.set(key, { raw, original });
  }
  const missing = [...expected.keys()].filter((k) => !found.has(k));
  // Every mismatch at once, so one run of the importer shows all that is wrong with a file.
  const wrongShape: string[] = [];
  for (const [key, { raw, original }] of found) {
    const spec = expected.get(key) as ParamTensor;
    if (raw.shape.length !== spec.shape.length || raw.shape.some((d, i) => d !== spec.shape[i])) {
      wrongShape.push(`tensor '${original}' has shape [${raw.shape.join(', ')}], the architecture needs [${spec.shape.join(', ')}]`);
    }
  }
  if (missing.length || unexpected.length || wrongShape.length) {
    const parts = [];
    if (missing.length) parts.push(`missing tensors: ${listNames(missing)}`);
    if (unexpected.length) parts.push(`unexpected tensors: ${listNames(unexpected)}`);
    if (wrongShape.length) parts.push(`wrong shapes: ${listNames(wrongShape, 6)}`);
    throw new ServeError('INVALID_MODEL_FILE', `checkpoint does not match the architecture; ${parts.join('; ')}`, {
      missing: missing.slice(0, 100),
      unexpected: unexpected.slice(0, 100),
      wrongShape: wrongShape.slice(0, 100),
    });
  }
  const out = new Map<string, Float32Array>();
  for (const [key, { raw, original }] of found) {
    const values = tensorToFloat32(raw, original);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new ServeError('INVALID_MODEL_FILE', `tensor '${original}' holds a non-finite value at index ${bad}`, { tensor: original });
    }
    out.set(key, values);
  }
  return out;
}

/** Converts one unit's PyTorch tensors to the tfjs layer's weight list, in the layer's order. */
function toLayerWeights(unitName: string, kind: ParamTensor['unit']['kind'], state: Map<string, Float32Array>, specs: ParamTensor[]) {
  const get = (role: ParamTensor['role']) => {
    const spec = specs.find((s) => s.role === role) as ParamTensor;
    return tf.tensor(state.get(`${unitName}.${role}`) as Float32Array, spec.shape);
  };
  if (kind === 'conv') return [get('weight').transpose([2, 3, 1, 0])];
  if (kind === 'linear') return [get('weight').transpose([1, 0]), get('bias')];
  return [get('weight'), get('bias'), get('running_mean'), get('running_var')];
}

function groupByUnit(model: DenseNetModel): Map<string, ParamTensor[]> {
  const groups = new Map<string, ParamTensor[]>();
  for (const p of paramTensors(model.plan)) {
    const list = groups.get(p.unit.name) ?? [];
    list.push(p);
    groups.set(p.unit.name, list);
  }
  return groups;
}

/** Loads a torchvision-named checkpoint into the model (validated first, then applied). */
export function loadTorchvisionWeights(model: DenseNetModel, file: SafetensorsFile | Uint8Array): void {
  const parsed = file instanceof Uint8Array ? parseSafetensors(file) : file;
  const state = readTorchvisionState(model, parsed);
  for (const [unitName, specs] of groupByUnit(model)) {
    const unitKind = (specs[0] as ParamTensor).unit.kind;
    tf.tidy(() => model.layersModel.getLayer(unitName).setWeights(toLayerWeights(unitName, unitKind, state, specs)));
  }
}

/**
 * Writes the model's weights under torchvision's names (F32), loadable by
 * `model.load_state_dict(safetensors.torch.load_file(path))`. num_batches_tracked is written
 * as 0: tfjs does not count batches and torch only uses it when BN momentum is None.
 */
export function exportTorchvisionWeights(model: DenseNetModel, metadata: Record<string, string> = {}): Uint8Array {
  const entries: [string, { dtype: 'F32' | 'I64'; shape: number[]; data: Float32Array | BigInt64Array }][] = [];
  for (const [unitName, specs] of groupByUnit(model)) {
    const unit = (specs[0] as ParamTensor).unit;
    const weights = model.layersModel.getLayer(unitName).getWeights();
    // getWeights returns the variables themselves: clone, since these are disposed below.
    const torchLayout = tf.tidy(() => {
      if (unit.kind === 'conv') return [(weights[0] as Tensor).transpose([3, 2, 0, 1])];
      if (unit.kind === 'linear') return [(weights[0] as Tensor).transpose([1, 0]), (weights[1] as Tensor).clone()];
      return weights.map((w) => w.clone());
    });
    const order: ParamTensor['role'][] = unit.kind === 'bn' ? ['weight', 'bias', 'running_mean', 'running_var'] : unit.kind === 'linear' ? ['weight', 'bias'] : ['weight'];
    order.forEach((role, i) => {
      const t = torchLayout[i] as Tensor;
      entries.push([`${unitName}.${role}`, { dtype: 'F32', shape: t.shape, data: t.dataSync() as Float32Array }]);
      t.dispose();
    });
    if (unit.kind === 'bn') entries.push([`${unitName}.num_batches_tracked`, { dtype: 'I64', shape: [], data: new BigInt64Array(1) }]);
  }
  return serializeSafetensors(entries, { format: 'pt', ...metadata });
}
