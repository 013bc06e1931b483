// Strict reader and writer for the safetensors format
// (https://github.com/huggingface/safetensors#format). Model files come from outside the
// process, so every malformed input must end as one ServeError('INVALID_MODEL_FILE'),
// never as a RangeError from a typed-array constructor deep inside a loader.

import { LITTLE_ENDIAN_HOST } from '../byte-order.ts';
import { ServeError } from '../errors.ts';
import { halfToFloatBits } from './half-float.ts';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
});

export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** A view into the file buffer: no copy. */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  /** In data-offset order. */
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

export type TensorData = Uint8Array | Float32Array | Float64Array | Int32Array | BigInt64Array | Uint16Array;

export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

function fail(message: string, tensor?: string, details: Record<string, unknown> = {}): never {
  const where = tensor === undefined ? '' : `tensor ${show(tensor)}: `;
  throw new ServeError('INVALID_MODEL_FILE', `safetensors: ${where}${message}`,
    tensor === undefined ? details : { tensor, ...details });
}

// Values come from untrusted headers (a "shape" may be a megabyte of nested arrays):
// keep messages one short line.
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = '(unprintable)'; // a caller-built shape holding a BigInt
  }
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}

function isDtype(v: unknown): v is SafetensorsDtype {
  return typeof v === 'string' && Object.hasOwn(DTYPE_BYTES, v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function metadataOf(v: unknown): Record<string, string> {
  if (!isPlainObject(v)) fail('__metadata__ must be an object of strings');
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') fail(`__metadata__ value for ${show(k)} must be a string`, undefined, { key: k });
  }
  // fromEntries defines own properties, so a "__proto__" key stays data, not a prototype.
  return Object.fromEntries(Object.entries(v)) as Record<string, string>;
}

/** Element count; fails unless every dim is a non-negative safe integer and the product stays safe. */
function numelOf(shape: unknown, tensor: string): number {
  if (!Array.isArray(shape)) fail('shape must be an array', tensor);
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) {
      fail(`shape ${show(shape)} has a dimension that is not a non-negative integer`, tensor);
    }
    n *= d as number;
  }
  // If the true product is ≤ 2^53 the double product is exact, so this check is sufficient.
  if (!Number.isSafeInteger(n)) fail(`shape ${show(shape)} has too many elements`, tensor);
  return n;
}

/**
 * JSON.parse keeps the last of duplicate keys silently, which would let two headers disagree
 * on which tensor a name means. We scan the (already JSON.parse-validated) text once with a
 * stack of per-object key sets; keys are decoded with JSON.parse so "a" and "\u0061" collide.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) stack.push({ keys: new Set(), expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ keys: null, expectKey: false });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    } else if (c === 0x22 /* " */) {
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
    }
  }
  return undefined;
}

export function parseSafetensors(file: Uint8Array, limits: { maxHeaderBytes?: number } = {}): SafetensorsFile {
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (file.length < 8) fail(`file is ${file.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  // Read the u64 as two halves: a BigInt round trip buys nothing once we cap it far below 2^32.
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo;
  if (hi !== 0 || headerLen > maxHeaderBytes) {
    fail(`header length ${hi === 0 ? headerLen : '≥ 2^32'} exceeds the limit of ${maxHeaderBytes} bytes`, undefined,
      { headerBytes: headerLen, maxHeaderBytes });
  }
  if (8 + headerLen > file.length) {
    fail(`header length ${headerLen} runs past the end of the ${file.length}-byte file`, undefined, { headerBytes: headerLen });
  }

  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text so JSON.parse rejects it, as the reference (serde) does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(file.subarray(8, 8 + headerLen));
  } catch {
    fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) fail('header must be a JSON object');
  const dup = findDuplicateKey(text);
  if (dup !== undefined) fail(`header has the key ${show(dup)} more than once`, undefined, { key: dup });

  const dataStart = 8 + headerLen;
  const bufferLen = file.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];

  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = metadataOf(entry);
      continue;
    }
    if (!isPlainObject(entry)) fail('entry must be an object', name);
    for (const k of Object.keys(entry)) if (!ENTRY_KEYS.has(k)) fail(`unknown key ${show(k)}`, name);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDtype(dtype)) fail(`unknown dtype ${show(dtype)}`, name);
    const numel = numelOf(shape, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o))) {
      fail('data_offsets must be [begin, end] integers', name);
    }
    const [begin, end] = offsets as [number, number];
    if (!(begin >= 0 && begin <= end && end <= bufferLen)) {
      fail(`data_offsets [${begin}, ${end}] are outside the ${bufferLen}-byte data buffer`, name);
    }
    const expected = numel * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      fail(`data_offsets span ${end - begin} bytes but ${dtype}${show(shape)} needs ${expected}`, name,
        { expectedBytes: expected, actualBytes: end - begin });
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin, end });
  }

  // The spec requires the data to be tiled exactly: sorted by (begin, end), each tensor starts
  // where the previous ended (zero-size tensors may share an offset), and nothing trails.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: string | undefined;
  for (const e of entries) {
    if (e.begin < cursor) fail(`data_offsets [${e.begin}, ${e.end}] overlap tensor ${show(prev ?? '')}`, e.name, { other: prev });
    if (e.begin > cursor) fail(`gap of ${e.begin - cursor} bytes before this tensor's data at ${e.begin}`, e.name);
    cursor = e.end;
    prev = e.name;
  }
  if (cursor !== bufferLen) fail(`${bufferLen - cursor} trailing bytes after the last tensor`, undefined, { trailingBytes: bufferLen - cursor });

  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: file.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { tensors, metadata };
}

export function tensorToFloat32(t: RawTensor, name: string): Float32Array {
  const numel = numelOf(t.shape, name);
  if (!isDtype(t.dtype)) fail(`unknown dtype ${show(t.dtype)}`, name);
  const size = DTYPE_BYTES[t.dtype];
  if (t.bytes.length !== numel * size) {
    fail(`has ${t.bytes.length} bytes but ${t.dtype}${show(t.shape)} needs ${numel * size}`, name);
  }
  const out = new Float32Array(numel);
  const src = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  switch (t.dtype) {
    case 'F32':
      // Hot path for large checkpoints: one memcpy into aligned storage; the source may be unaligned.
      if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(t.bytes);
      else for (let i = 0; i < numel; i++) out[i] = src.getFloat32(i * 4, true);
      break;
    case 'F16': {
      const table = halfToFloatBits();
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) bits[i] = table[src.getUint16(i * 2, true)]!;
      break;
    }
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) bits[i] = src.getUint16(i * 2, true) << 16;
      break;
    }
    case 'F64': for (let i = 0; i < numel; i++) out[i] = src.getFloat64(i * 8, true); break;
    case 'I64': for (let i = 0; i < numel; i++) out[i] = Number(src.getBigInt64(i * 8, true)); break;
    case 'I32': for (let i = 0; i < numel; i++) out[i] = src.getInt32(i * 4, true); break;
    case 'I16': for (let i = 0; i < numel; i++) out[i] = src.getInt16(i * 2, true); break;
    case 'I8': for (let i = 0; i < numel; i++) out[i] = src.getInt8(i); break;
    case 'U8': out.set(t.bytes); break;
    case 'BOOL': for (let i = 0; i < numel; i++) out[i] = t.bytes[i] === 0 ? 0 : 1; break;
  }
  return out;
}

export function serializeSafetensors(
  tensors: Iterable<[string, { dtype: SafetensorsDtype; shape: number[]; data: TensorData }]>,
  metadata?: Record<string, string>,
): Uint8Array {
  const items: { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }[] = [];
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    if (name === METADATA_KEY) fail('the name __metadata__ is reserved', name);
    if (seen.has(name)) fail('appears more than once', name);
    seen.add(name);
    if (!isDtype(t.dtype)) fail(`unknown dtype ${show(t.dtype)}`, name);
    const size = DTYPE_BYTES[t.dtype];
    const expected = numelOf(t.shape, name) * size;
    // A typed array's element width must match the dtype, or e.g. Float32Array data for
    // an F16 tensor of twice the length would pass the byte-length check as garbage.
    const width = t.data.BYTES_PER_ELEMENT;
    if (!(t.data instanceof Uint8Array) && width !== size) {
      fail(`${t.data.constructor.name} data does not hold ${t.dtype} elements`, name);
    }
    if (t.data.byteLength !== expected) {
      fail(`data has ${t.data.byteLength} bytes but ${t.dtype}${show(t.shape)} needs ${expected}`, name,
        { expectedBytes: expected, actualBytes: t.data.byteLength });
    }
    let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (!LITTLE_ENDIAN_HOST && width > 1) {
      bytes = bytes.slice();
      for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
    }
    items.push({ name, dtype: t.dtype, shape: t.shape.slice(), bytes });
  }
  // Code-unit order, not localeCompare: the file must not depend on the host's locale.
  items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Built by hand: JSON.stringify of an object would move integer-like names ("0", "12")
  // to the front in numeric order, undoing the sort.
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadataOf(metadata))}`);
  }
  let offset = 0;
  for (const it of items) {
    const entry = { dtype: it.dtype, shape: it.shape, data_offsets: [offset, offset + it.bytes.length] };
    parts.push(`${JSON.stringify(it.name)}:${JSON.stringify(entry)}`);
    offset += it.bytes.length;
  }

  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces so the data starts 8-byte aligned, as the reference library does.
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const it of items) {
    out.set(it.bytes, at);
    at += it.bytes.length;
  }
  return out;
}
