// torch.save checkpoints (.pth / .pt), read without running anything: both on-disk formats,
// through the restricted unpickler (restricted-unpickler.ts) with an allowlist of exactly the
// globals that rebuild tensors and plain containers.
//
// - zip format (torch >= 1.6): `<prefix>/data.pkl` pickles the object with persistent ids
//   ('storage', StorageType, key, location, numel) whose bytes are `<prefix>/data/<key>`.
// - legacy format: five pickles in a row (magic number, protocol version 1001, sys_info, the
//   object with persistent ids ('storage', StorageType, key, location, numel, view), the list
//   of storage keys), then for each key in that list an int64 element count and the raw bytes.
//   Many published torchvision weights are in this format.
//
// The result is a safetensors-shaped map (name → dtype, shape, contiguous little-endian bytes),
// so the torchvision importer validates it like any checkpoint.
import { ServeError } from '../errors.ts';
import { DTYPE_BYTES, type RawTensor, type SafetensorsDtype, type SafetensorsFile } from './safetensors.ts';
import {
  PickleDict, PickleTuple, describe, pickleError, unpickle,
  type PickleGlobal, type PickleObject, type PickleValue,
} from './restricted-unpickler.ts';
import { DEFAULT_ZIP_LIMITS, ZipArchive, looksLikeZip, type ZipLimits } from './zip-archive.ts';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

/** torch storage classes → the element type they hold. */
const STORAGE_DTYPES: Readonly<Record<string, SafetensorsDtype>> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8',
  BoolStorage: 'BOOL', UntypedStorage: 'U8',
};

interface StorageRef extends PickleObject {
  kind: 'storage';
  key: string;
  dtype: SafetensorsDtype;
  /** Elements the checkpoint declares for it. */
  numel: number;
  /** Legacy storage views: [root key, element offset, element count]. */
  view?: { offset: number; numel: number };
}

interface TensorRef extends PickleObject {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

interface StorageTypeGlobal extends PickleGlobal {
  dtype: SafetensorsDtype;
}

const isTensor = (v: PickleValue | undefined): v is TensorRef => typeof v === 'object' && v !== null && (v as PickleObject).kind === 'tensor';

function ints(v: PickleValue, what: string, field: string): number[] {
  if (!(v instanceof PickleTuple) && !Array.isArray(v)) throw pickleError(what, `tensor ${field} is a ${describe(v)}, not a tuple`);
  const items = v instanceof PickleTuple ? v.items : v;
  return items.map((d) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw pickleError(what, `tensor ${field} holds ${String(d)}, not a size`);
    return d;
  });
}

function rebuildTensor(what: string, args: readonly PickleValue[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (typeof storage !== 'object' || storage === null || (storage as PickleObject).kind !== 'storage') {
    throw pickleError(what, `a tensor is rebuilt from a ${describe(storage)}, not a storage`);
  }
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw pickleError(what, `tensor storage offset ${String(offset)} is not valid`);
  const shape = ints(size as PickleValue, what, 'size');
  const strides = ints(stride as PickleValue, what, 'stride');
  if (shape.length !== strides.length) throw pickleError(what, `tensor has ${shape.length} sizes but ${strides.length} strides`);
  return { kind: 'tensor', storage: storage as StorageRef, offset, shape, stride: strides };
}

/** The allowlist: what a state_dict pickle needs, and nothing else. */
function allowedGlobals(what: string): Map<string, PickleGlobal> {
  const g = new Map<string, PickleGlobal>();
  const add = (module: string, name: string, call?: PickleGlobal['call']) => g.set(`${module}.${name}`, { kind: 'global', module, name, call });
  // OrderedDict() with no arguments, then SETITEMS (and BUILD for its _metadata attribute).
  add('collections', 'OrderedDict', (args) => {
    if (args.length !== 0) throw pickleError(what, 'OrderedDict is called with arguments');
    return new PickleDict();
  });
  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]);
  // _rebuild_tensor (torch < 0.4): (storage, offset, size, stride).
  add('torch._utils', '_rebuild_tensor_v2', (args) => rebuildTensor(what, args));
  add('torch._utils', '_rebuild_tensor', (args) => rebuildTensor(what, args));
  // nn.Parameter wrappers: the data is the tensor.
  const parameter: PickleGlobal['call'] = (args) => {
    if (!isTensor(args[0])) throw pickleError(what, `a parameter wraps a ${describe(args[0])}, not a tensor`);
    return args[0];
  };
  add('torch._utils', '_rebuild_parameter', parameter);
  add('torch._utils', '_rebuild_parameter_with_state', parameter);
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
    g.set(`torch.${name}`, { kind: 'global', module: 'torch', name, dtype } as StorageTypeGlobal);
  }
  return g;
}

/** ('storage', StorageType, key, location, numel[, view_metadata]) → a storage reference. */
function storageLoader(what: string, storages: Map<string, StorageRef>, legacy: boolean) {
  return (pid: PickleValue): PickleValue => {
    const items = pid instanceof PickleTuple ? pid.items : undefined;
    if (!items || items[0] !== 'storage' || items.length < 5 || items.length > 6) {
      throw pickleError(what, `persistent id ${pid instanceof PickleTuple ? `('${String(items?.[0])}', …)` : describe(pid)} is not a storage`);
    }
    const [, type, key, , numel, view] = items;
    const dtype = (type as Partial<StorageTypeGlobal> | null)?.dtype;
    if (!dtype) throw pickleError(what, `storage ${String(key)} has no storage type`);
    if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) throw pickleError(what, `storage key ${String(key).slice(0, 40)} is not valid`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw pickleError(what, `storage '${key}' size ${String(numel)} is not valid`);
    let ref = storages.get(key);
    if (!ref) {
      ref = { kind: 'storage', key, dtype, numel };
      storages.set(key, ref);
    } else if (ref.dtype !== dtype) {
      throw pickleError(what, `storage '${key}' is used as both ${ref.dtype} and ${dtype}`);
    }
    if (legacy && view !== undefined && view !== null) {
      // Pre-1.0 storage views: (view_key, offset, view_size) into the root storage.
      const v = view instanceof PickleTuple ? view.items : [];
      const [viewKey, offset, size] = v;
      if (typeof viewKey !== 'string' || typeof offset !== 'number' || typeof size !== 'number' || offset < 0 || size < 0 || offset + size > numel) {
        throw pickleError(what, `storage '${key}' has a view that is not within it`);
      }
      const viewed: StorageRef = { ...ref, view: { offset, numel: size } };
      return viewed;
    }
    return ref;
  };
}

export interface PytorchReadLimits extends ZipLimits {
  /** Tensors in the state dict. */
  maxTensors: number;
}

export const DEFAULT_PYTORCH_LIMITS: Readonly<PytorchReadLimits> = Object.freeze({ ...DEFAULT_ZIP_LIMITS, maxTensors: 100_000 });

export type PytorchFormat = 'zip' | 'legacy';

export interface PytorchCheckpoint extends SafetensorsFile {
  format: PytorchFormat;
  /** Where the state dict was found: '' (the top level) or the key holding it ('state_dict', 'model', …). */
  stateDictKey: string;
}

/** Whether the bytes start like a legacy torch.save file (a protocol-2+ pickle of the magic number). */
export function looksLikeLegacyPytorch(head: Uint8Array): boolean {
  // PROTO n, LONG1 10 bytes, the magic number's 10 little-endian bytes.
  return head[0] === 0x80 && head[2] === 0x8a && head[3] === 0x0a && head[4] === 0x6c && head[5] === 0xfc;
}

/** Reads a torch.save file of either format into named tensors. */
export async function readPytorchCheckpoint(bytes: Buffer, limits: PytorchReadLimits = DEFAULT_PYTORCH_LIMITS): Promise<PytorchCheckpoint> {
  if (looksLikeZip(bytes)) return readZip(bytes, limits);
  if (bytes[0] === 0x80) return readLegacy(bytes, limits);
  // ustar at 257: the tar format of torch < 0.1.10.
  if (bytes.length > 262 && Buffer.from(bytes.subarray(257, 262)).toString('latin1') === 'ustar') {
    throw new ServeError('INVALID_MODEL_FILE', 'pytorch: a tar-format checkpoint (torch < 0.1.10) is not supported; re-save it with a current torch');
  }
  throw new ServeError('INVALID_MODEL_FILE', 'pytorch: not a torch.save file (neither a zip archive nor a legacy pickle stream)');
}

async function readZip(bytes: Buffer, limits: PytorchReadLimits): Promise<PytorchCheckpoint> {
  const zip = await ZipArchive.open(bytes, 'pytorch checkpoint', limits);
  try {
    const pickles = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pickles.length !== 1) {
      throw new ServeError('INVALID_MODEL_FILE',
        `pytorch checkpoint: a torch.save zip archive holds one '<name>/data.pkl', this one ${pickles.length} (entries: ${zip.names().slice(0, 8).join(', ')})`);
    }
    const prefix = (pickles[0] as string).slice(0, -'data.pkl'.length);
    if (zip.has(`${prefix}byteorder`)) {
      const order = (await zip.read(`${prefix}byteorder`)).toString('latin1').trim();
      if (order !== 'little') throw new ServeError('INVALID_MODEL_FILE', `pytorch checkpoint: byte order '${order.slice(0, 20)}' is not supported (little-endian only)`);
    }
    const what = `pytorch checkpoint ${prefix}data.pkl`;
    const storages = new Map<string, StorageRef>();
    const { value } = unpickle(await zip.read(`${prefix}data.pkl`), 0, {
      what, globals: allowedGlobals(what), persistentLoad: storageLoader(what, storages, false),
    });
    const { state, key } = findStateDict(value, what, limits);
    const data = new Map<string, Uint8Array>();
    // Only the storages the state dict's tensors use (not an optimizer's buffers, say).
    const used = new Set([...state.entries.values()].map((t) => (t as TensorRef).storage.key));
    for (const ref of [...storages.values()].filter((r) => used.has(r.key))) {
      const entry = `${prefix}data/${ref.key}`;
      if (!zip.has(entry)) throw pickleError(what, `storage '${ref.key}' has no entry ${entry} in the archive`, { storage: ref.key });
      const expected = ref.numel * DTYPE_BYTES[ref.dtype];
      if (zip.size(entry) !== expected) {
        throw pickleError(what, `storage '${ref.key}' holds ${zip.size(entry)} bytes, but the checkpoint declares ${ref.numel} ${ref.dtype} elements (${expected} bytes)`, { storage: ref.key });
      }
      data.set(ref.key, await zip.read(entry));
    }
    return { format: 'zip', stateDictKey: key, tensors: materialise(state, data, what), metadata: {} };
  } finally {
    zip.close();
  }
}

function readLegacy(bytes: Buffer, limits: PytorchReadLimits): PytorchCheckpoint {
  const header = (index: number, at: number) => unpickle(bytes, at, {
    what: `pytorch legacy checkpoint (pickle ${index} of 5, at byte ${at})`, globals: new Map(),
  });
  const magic = header(1, 0);
  if (magic.value !== LEGACY_MAGIC) throw new ServeError('INVALID_MODEL_FILE', 'pytorch: not a torch.save file (a pickle without the legacy magic number)');
  const version = header(2, magic.end);
  if (version.value !== LEGACY_PROTOCOL_VERSION) {
    throw new ServeError('INVALID_MODEL_FILE', `pytorch legacy checkpoint: protocol version ${String(version.value)} is not ${LEGACY_PROTOCOL_VERSION}`);
  }
  const sysInfo = header(3, version.end);
  if (sysInfo.value instanceof PickleDict && sysInfo.value.entries.get('little_endian') === false) {
    throw new ServeError('INVALID_MODEL_FILE', 'pytorch legacy checkpoint: written on a big-endian machine, which is not supported');
  }
  const what = 'pytorch legacy checkpoint';
  const storages = new Map<string, StorageRef>();
  const main = unpickle(bytes, sysInfo.end, { what, globals: allowedGlobals(what), persistentLoad: storageLoader(what, storages, true) });
  const keys = unpickle(bytes, main.end, { what: `${what} (storage keys)`, globals: new Map() });
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw pickleError(what, 'the storage key list is not a list of strings');
  }
  const { state, key } = findStateDict(main.value, what, limits);
  // The raw storages follow in the order of that list: an int64 element count, then the bytes.
  const data = new Map<string, Uint8Array>();
  let at = keys.end;
  for (const storageKey of keys.value as string[]) {
    const ref = storages.get(storageKey);
    if (at + 8 > bytes.length) throw pickleError(what, `truncated: storage '${storageKey}' starts past the end of the file`, { storage: storageKey });
    const count = bytes.readBigInt64LE(at);
    at += 8;
    if (!ref) throw pickleError(what, `storage '${storageKey}' is listed but no tensor uses it`);
    if (count !== BigInt(ref.numel)) {
      throw pickleError(what, `storage '${storageKey}' holds ${count} elements, the checkpoint declares ${ref.numel}`, { storage: storageKey });
    }
    const size = ref.numel * DTYPE_BYTES[ref.dtype];
    if (at + size > bytes.length) {
      throw pickleError(what, `truncated: storage '${storageKey}' needs ${size} bytes at offset ${at}, the file ends at ${bytes.length}`, { storage: storageKey });
    }
    data.set(storageKey, bytes.subarray(at, at + size));
    at += size;
  }
  return { format: 'legacy', stateDictKey: key, tensors: materialise(state, data, what), metadata: {} };
}

/** Keys under which training scripts keep the state_dict, in the order they are tried. */
const STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'net', 'network'];

function isStateDict(v: PickleValue | undefined): v is PickleDict {
  return v instanceof PickleDict && v.entries.size > 0 && [...v.entries.values()].every(isTensor);
}

/** The state dict itself, or the one a training checkpoint keeps under a known key. */
function findStateDict(value: PickleValue, what: string, limits: PytorchReadLimits): { state: PickleDict; key: string } {
  if (!(value instanceof PickleDict)) throw pickleError(what, `holds a ${describe(value)}, not a state_dict (a dict of tensors)`);
  let found: { state: PickleDict; key: string } | undefined;
  if (isStateDict(value)) found = { state: value, key: '' };
  for (const key of STATE_DICT_KEYS) {
    if (found) break;
    const inner = value.entries.get(key);
    if (isStateDict(inner)) found = { state: inner, key };
  }
  if (!found) {
    const keys = [...value.entries.keys()].slice(0, 12).map(String);
    const nonTensor = [...value.entries].find(([, v]) => !isTensor(v));
    throw pickleError(what,
      `holds no state_dict: expected a dict of tensors, or one under ${STATE_DICT_KEYS.map((k) => `'${k}'`).join(', ')}; ` +
      `its keys are ${keys.join(', ')}${nonTensor ? ` ('${String(nonTensor[0])}' is a ${describe(nonTensor[1])})` : ''}`);
  }
  if (found.state.entries.size > limits.maxTensors) throw pickleError(what, `holds ${found.state.entries.size} tensors, over the limit of ${limits.maxTensors}`);
  return found;
}

/** Each tensor as contiguous bytes: bounds checked against its storage, strided views gathered. */
function materialise(state: PickleDict, data: Map<string, Uint8Array>, what: string): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  for (const [name, value] of state.entries) {
    if (typeof name !== 'string') throw pickleError(what, `a state_dict key is a ${typeof name}, not a string`);
    const t = value as TensorRef;
    const storageBytes = data.get(t.storage.key);
    if (!storageBytes) throw pickleError(what, `tensor '${name}' uses storage '${t.storage.key}', which the file does not hold`, { tensor: name });
    const size = DTYPE_BYTES[t.storage.dtype];
    const base = t.storage.view ? t.storage.view.offset : 0;
    const available = t.storage.view ? t.storage.view.numel : t.storage.numel;
    let numel = 1;
    let last = t.offset; // highest element index the tensor reads
    for (let d = 0; d < t.shape.length; d++) {
      numel *= t.shape[d] as number;
      last += ((t.shape[d] as number) - 1) * (t.stride[d] as number);
    }
    if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last)) throw pickleError(what, `tensor '${name}' is too large`, { tensor: name });
    if (numel > 0 && last >= available) {
      throw pickleError(what,
        `tensor '${name}' [${t.shape.join(', ')}] needs elements up to ${last} of storage '${t.storage.key}', which holds ${available}`,
        { tensor: name, storage: t.storage.key });
    }
    const start = (base + t.offset) * size;
    let bytes: Uint8Array;
    if (numel === 0) bytes = new Uint8Array(0);
    else if (isContiguous(t.shape, t.stride)) bytes = storageBytes.subarray(start, start + numel * size);
    else bytes = gather(storageBytes, (base + t.offset), t.shape, t.stride, size);
    out.set(name, { dtype: t.storage.dtype, shape: t.shape.slice(), bytes });
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if ((shape[d] as number) !== 1 && stride[d] !== expected) return false;
    expected *= shape[d] as number;
  }
  return true;
}

/** Copies a strided view into row-major order, element by element (rare: transposed saves). */
function gather(src: Uint8Array, offset: number, shape: number[], stride: number[], size: number): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(numel * size);
  const index = new Array<number>(shape.length).fill(0);
  let srcElem = offset;
  for (let i = 0; i < numel; i++) {
    out.set(src.subarray(srcElem * size, srcElem * size + size), i * size);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      srcElem += stride[d] as number;
      if ((index[d] as number) < (shape[d] as number)) break;
      srcElem -= (shape[d] as number) * (stride[d] as number);
      index[d] = 0;
    }
  }
  return out;
}
