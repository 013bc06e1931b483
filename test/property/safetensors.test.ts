// Properties of the safetensors reader and writer (src/densenet/safetensors.ts), on inputs
// fast-check makes up: written tensors read back bit for bit; any bytes at all — random,
// mutated valid files, headers of arbitrary JSON — are either a well-formed file or one
// ServeError('INVALID_MODEL_FILE'), never a RangeError from an allocation a header asked for.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../src/errors.ts';
import {
  DTYPE_BYTES, parseSafetensors, serializeSafetensors, tensorToFloat32, type SafetensorsDtype, type SafetensorsFile,
} from '../../src/densenet/safetensors.ts';
import { float32ToBfloat16, float32ToFloat16 } from '../../src/densenet/half-float.ts';

const SEED = 0x5afe;
const DTYPES = Object.keys(DTYPE_BYTES) as SafetensorsDtype[];
const enc = new TextEncoder();

interface Tensor { name: string; dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }

/** A tensor with a small shape and bytes of exactly the size its dtype and shape need. */
const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    name: fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((n) => n !== '__metadata__'),
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
  })
  .chain((t) => {
    const size = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    return fc.uint8Array({ minLength: size, maxLength: size }).map((data) => ({ ...t, data }));
  });

const fileArb = fc.record({
  tensors: fc.uniqueArray(tensorArb, { maxLength: 6, selector: (t) => t.name }),
  metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 }),
});

function serialize(tensors: Tensor[], metadata?: Record<string, string>): Uint8Array {
  return serializeSafetensors(tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: t.data }]), metadata);
}

/** Runs the reader; the only error it may throw is INVALID_MODEL_FILE. */
function parseOrCodedError(bytes: Uint8Array, limits?: { maxHeaderBytes?: number }): SafetensorsFile | ServeError {
  try {
    return parseSafetensors(bytes, limits);
  } catch (err) {
    if (err instanceof ServeError && err.code === 'INVALID_MODEL_FILE' && err.message.startsWith('safetensors: ')) return err;
    throw err;
  }
}

/** What holds of any file the reader accepts: views into the input that tile its data exactly. */
function expectWellFormed(file: Uint8Array, parsed: SafetensorsFile): void {
  const headerLength = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  let total = 0;
  for (const [name, t] of parsed.tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    expect(t.bytes.length, name).toBe(numel * DTYPE_BYTES[t.dtype]);
    expect(t.bytes.buffer, 'a view, not a copy').toBe(file.buffer);
    total += t.bytes.length;
    expect(tensorToFloat32(t, name)).toHaveLength(numel);
  }
  expect(total).toBe(file.length - 8 - headerLength);
}

/** How often the reader refused a property's input, and accepted it (with at least one tensor). */
interface Branches { refused: number; accepted: number; acceptedWithTensors: number }

function tally(branches: Branches, result: SafetensorsFile | ServeError): void {
  if (result instanceof ServeError) {
    branches.refused++;
    return;
  }
  branches.accepted++;
  if (result.tensors.size > 0) branches.acceptedWithTensors++;
}

/** Both branches ran: well-formedness was checked on accepted files with tensors, not only refusals. */
function expectBothBranches(branches: Branches): void {
  expect(branches.refused).toBeGreaterThan(0);
  expect(branches.acceptedWithTensors).toBeGreaterThan(0);
}

/** The furthest data_offsets end (up to 4 KiB) any entry of a header names; 0 when none does. */
function coveredBytes(json: unknown): number {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 0;
  let end = 0;
  for (const entry of Object.values(json)) {
    const offsets = (entry as { data_offsets?: unknown } | null)?.data_offsets;
    if (Array.isArray(offsets) && typeof offsets[1] === 'number' && Number.isSafeInteger(offsets[1]) && offsets[1] <= 4096) end = Math.max(end, offsets[1]);
  }
  return end;
}

describe('safetensors properties', () => {
  it('reads back what it writes: names in code-unit order, dtypes, shapes, bytes and metadata', () => {
    fc.assert(fc.property(fileArb, ({ tensors, metadata }) => {
      const bytes = serialize(tensors, metadata);
      const parsed = parseSafetensors(bytes);
      const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      expect([...parsed.tensors.keys()]).toEqual(sorted.map((t) => t.name));
      for (const t of tensors) {
        const got = parsed.tensors.get(t.name)!;
        expect(got.dtype).toBe(t.dtype);
        expect(got.shape).toEqual(t.shape);
        expect(Buffer.from(got.bytes).equals(Buffer.from(t.data))).toBe(true);
      }
      expect(Object.entries(parsed.metadata)).toEqual(Object.entries(metadata));
      // Data starts 8-byte aligned, as the reference writer does.
      expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    }), { seed: SEED, numRuns: 200 });
  });

  it('keeps F32 bit patterns (NaN payloads, -0, subnormals) and F16/BF16 codes through a round trip', () => {
    fc.assert(fc.property(fc.float32Array({ maxLength: 64 }), fc.uint16Array({ maxLength: 64 }), (f32, u16) => {
      const halfBytes = new Uint8Array(u16.buffer, u16.byteOffset, u16.byteLength);
      const parsed = parseSafetensors(serializeSafetensors([
        ['f32', { dtype: 'F32', shape: [f32.length], data: f32 }],
        ['f16', { dtype: 'F16', shape: [u16.length], data: halfBytes }],
        ['bf16', { dtype: 'BF16', shape: [u16.length], data: halfBytes }],
      ]));
      const back = tensorToFloat32(parsed.tensors.get('f32')!, 'f32');
      expect([...new Uint32Array(back.buffer)]).toEqual([...new Uint32Array(f32.buffer, f32.byteOffset, f32.length)]);
      // Every half and bfloat16 value widens exactly, so narrowing it again gives the same code;
      // NaNs stay NaN (made quiet).
      for (const [name, narrow, isNaN16] of [
        ['f16', float32ToFloat16, (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0],
        ['bf16', float32ToBfloat16, (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0],
      ] as const) {
        const again = narrow(tensorToFloat32(parsed.tensors.get(name)!, name));
        u16.forEach((h, i) => {
          if (isNaN16(h)) expect(isNaN16(again[i]!), `${name} ${h.toString(16)}`).toBe(true);
          else expect(again[i], `${name} ${h.toString(16)}`).toBe(h);
        });
      }
    }), { seed: SEED, numRuns: 100 });
  });

  it('answers arbitrary bytes with a file or INVALID_MODEL_FILE, whatever the header length field says', () => {
    const lengthField = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 300n }));
    const randomBytes = fc.record({ declared: lengthField, rest: fc.uint8Array({ maxLength: 300 }) });
    // Random bytes are practically never a file, so the accepted branch needs bytes that are
    // close to one: a real file's bytes after its length field, which says the true header
    // length or one up to two bytes off.
    const nearlyAFile = fc.record({ file: fileArb, off: fc.integer({ min: -2, max: 2 }) }).map(({ file, off }) => {
      const bytes = serialize(file.tensors, file.metadata);
      const declared = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true) + BigInt(off);
      return { declared: declared < 0n ? 0n : declared, rest: bytes.subarray(8) };
    });
    const branches: Branches = { refused: 0, accepted: 0, acceptedWithTensors: 0 };
    fc.assert(fc.property(fc.oneof(randomBytes, nearlyAFile), fc.integer({ min: 0, max: 400 }), ({ declared, rest }, maxHeaderBytes) => {
      const file = new Uint8Array(8 + rest.length);
      new DataView(file.buffer).setBigUint64(0, declared, true);
      file.set(rest, 8);
      for (const limits of [undefined, { maxHeaderBytes }]) {
        const result = parseOrCodedError(file, limits);
        tally(branches, result);
        if (result instanceof ServeError) continue;
        expect(declared).toBeLessThanOrEqual(BigInt(limits?.maxHeaderBytes ?? 100_000_000));
        expectWellFormed(file, result);
      }
      // Shorter than the length field itself.
      expect(parseOrCodedError(file.subarray(0, Math.min(7, rest.length)))).toBeInstanceOf(ServeError);
    }), { seed: SEED, numRuns: 300 });
    expectBothBranches(branches);
  });

  it('answers any mutation of a valid file (flips, cuts, insertions, overwrites) the same way', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    );
    const branches: Branches = { refused: 0, accepted: 0, acceptedWithTensors: 0 };
    fc.assert(fc.property(fileArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ tensors, metadata }, mutations) => {
      let bytes = Buffer.from(serialize(tensors, metadata));
      for (const m of mutations) {
        const at = m.at % (bytes.length + 1);
        if (m.kind === 'flip' && at < bytes.length) bytes[at] = bytes[at]! ^ (1 << m.bit);
        if (m.kind === 'set' && at < bytes.length) bytes[at] = m.value;
        if (m.kind === 'cut') bytes = bytes.subarray(0, at);
        if (m.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
      }
      const file = new Uint8Array(bytes);
      const result = parseOrCodedError(file);
      tally(branches, result);
      if (!(result instanceof ServeError)) expectWellFormed(file, result);
    }), { seed: SEED, numRuns: 400 });
    // Some mutations leave a valid file (a flip in tensor bytes, say).
    expectBothBranches(branches);
  });

  it('answers headers of arbitrary JSON (entries half right, half anything) the same way', () => {
    const entry = fc.record({
      dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.jsonValue({ maxDepth: 1 })),
      shape: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -2, max: 6 }), fc.constantFrom(2 ** 31, 2 ** 53, 2 ** 53 + 2, 1.5, 1e300)), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -4, max: 200 }), fc.integer({ min: -4, max: 200 })), fc.jsonValue({ maxDepth: 1 })),
    }, { requiredKeys: [] });
    const header = fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__metadata__')), fc.oneof(entry, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 });
    // Random entries are practically never consistent, so a third kind of header is a real one
    // (from the writer), sometimes with one more random entry.
    const realHeader = fc.record({ file: fileArb, extra: fc.option(fc.tuple(fc.string({ maxLength: 6 }), entry), { nil: undefined }) }).map(({ file, extra }) => {
      const bytes = serialize(file.tensors, file.metadata);
      const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
      const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<string, unknown>;
      if (extra) json[extra[0]] = extra[1];
      return json;
    });
    // Data of a random length is practically never exactly what the entries cover, so half the
    // cases carry as many bytes as the furthest data_offsets end the header names.
    const dataLength = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.constant('covered' as const));
    const branches: Branches = { refused: 0, accepted: 0, acceptedWithTensors: 0 };
    fc.assert(fc.property(fc.oneof(header, fc.jsonValue({ maxDepth: 3 }), realHeader), dataLength, (json, length) => {
      const text = enc.encode(JSON.stringify(json) ?? 'undefined');
      const dataBytes = length === 'covered' ? coveredBytes(json) : length;
      const file = new Uint8Array(8 + text.length + dataBytes);
      new DataView(file.buffer).setBigUint64(0, BigInt(text.length), true);
      file.set(text, 8);
      const result = parseOrCodedError(file);
      tally(branches, result);
      if (!(result instanceof ServeError)) expectWellFormed(file, result);
    }), { seed: SEED, numRuns: 400 });
    expectBothBranches(branches);
  });

  it('refuses a header that names a key twice, however the duplicate is spelled', () => {
    fc.assert(fc.property(fileArb.filter((f) => f.tensors.length > 0), fc.boolean(), ({ tensors }, escaped) => {
      const bytes = serialize(tensors);
      const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)).trimEnd();
      const name = tensors[0]!.name;
      const spelled = escaped ? `"${name.split('').map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(name);
      // The same name again, with a valid entry of its own (zero bytes): only the duplicate is wrong.
      const twice = enc.encode(`${text.slice(0, -1)},${spelled}:{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`);
      const data = bytes.subarray(8 + headerLength);
      const file = new Uint8Array(8 + twice.length + data.length);
      new DataView(file.buffer).setBigUint64(0, BigInt(twice.length), true);
      file.set(twice, 8);
      file.set(data, 8 + twice.length);
      const result = parseOrCodedError(file);
      expect(result).toBeInstanceOf(ServeError);
      expect((result as ServeError).message).toContain('more than once');
    }), { seed: SEED, numRuns: 100 });
  });

  it('converts only what a shape and byte count agree on, however large the shape', () => {
    const dim = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(2 ** 31, 2 ** 40, 2 ** 53 - 1, -1, 0.5));
    fc.assert(fc.property(fc.constantFrom(...DTYPES), fc.array(dim, { maxLength: 5 }), fc.uint8Array({ maxLength: 64 }), (dtype, shape, bytes) => {
      try {
        const out = tensorToFloat32({ dtype, shape, bytes }, 't');
        expect(out.length * DTYPE_BYTES[dtype]).toBe(bytes.length);
      } catch (err) {
        expect(err).toBeInstanceOf(ServeError);
        expect((err as ServeError).code).toBe('INVALID_MODEL_FILE');
      }
    }), { seed: SEED, numRuns: 300 });
  });
});
