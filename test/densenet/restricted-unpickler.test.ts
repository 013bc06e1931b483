// The restricted unpickler on hand-written streams: the opcodes checkpoints use read to the
// values Python's pickle gives (documented in pickletools), any global outside the allowlist is
// refused by name at the opcode that names it — before a call could happen — and hostile
// shapes of stream (truncation, bad memo use, extension codes) end as one clear error.
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../src/errors.ts';
import {
  PickleDict, PickleTuple, unpickle, type PickleGlobal, type PickleValue,
} from '../../src/densenet/restricted-unpickler.ts';

const enc = (s: string) => [...Buffer.from(s, 'latin1')];
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const str = (s: string) => [0x58, ...u32(Buffer.byteLength(s)), ...Buffer.from(s, 'utf8')]; // BINUNICODE
const PROTO2 = [0x80, 2];
const STOP = 0x2e;

function run(bytes: number[], globals: Map<string, PickleGlobal> = new Map(), persistentLoad?: (pid: PickleValue) => PickleValue): PickleValue {
  return unpickle(Uint8Array.from(bytes), 0, { what: 'test pickle', globals, persistentLoad }).value;
}

function refusal(fn: () => unknown): ServeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServeError) return err;
    throw new Error(`expected a ServeError, got ${String(err)}`);
  }
  throw new Error('expected the pickle to be refused');
}

describe('restricted unpickler: values', () => {
  it('reads ints of every width (LONG1 signed), floats, strings, bytes, None, bools', () => {
    const value = run([
      ...PROTO2, 0x5d, 0x28, // EMPTY_LIST, MARK
      0x4b, 200, // BININT1
      0x4d, 0x34, 0x12, // BININT2 0x1234
      0x4a, ...u32(-5 >>> 0), // BININT -5
      0x8a, 2, 0x00, 0xff, // LONG1 [0x00, 0xff] = -256
      0x8a, 1, 0x7f, // LONG1 127
      0x47, ...[...Buffer.from(new Float64Array([1.5]).buffer)].reverse(), // BINFLOAT (big-endian)
      ...str('näme'),
      0x43, 3, 1, 2, 3, // SHORT_BINBYTES
      0x4e, 0x88, 0x89, // None, True, False
      0x65, STOP, // APPENDS
    ]);
    expect(value).toEqual([200, 0x1234, -5, -256, 127, 1.5, 'näme', Uint8Array.from([1, 2, 3]), null, true, false]);
  });

  it('keeps tuples apart from lists and dicts as maps (no prototype keys)', () => {
    const value = run([
      ...PROTO2, 0x7d, 0x28, // EMPTY_DICT, MARK
      ...str('__proto__'), 0x4b, 1, 0x85, // ('__proto__': (1,))
      ...str('b'), 0x4b, 2, 0x4b, 3, 0x86, // ('b': (2, 3))
      0x75, STOP, // SETITEMS
    ]) as PickleDict;
    expect(value).toBeInstanceOf(PickleDict);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect([...value.entries.keys()]).toEqual(['__proto__', 'b']);
    expect((value.entries.get('b') as PickleTuple).items).toEqual([2, 3]);
    expect(value.entries.get('b')).toBeInstanceOf(PickleTuple);
  });

  it('memoises and recalls (BINPUT/BINGET, MEMOIZE), the same object twice', () => {
    const value = run([...PROTO2, 0x5d, 0x71, 0, 0x5d, 0x68, 0, 0x61, 0x94, 0x28, 0x68, 0, 0x68, 1, 0x74, STOP]) as PickleTuple;
    // [[]] is built (list 0 appended into a new list), memoised as 1; then (list0, list1).
    const [a, b] = value.items as [PickleValue[], PickleValue[]];
    expect(b[0]).toBe(a);
  });

  it('calls an allowed global with REDUCE, and passes persistent ids to the loader', () => {
    const calls: (readonly PickleValue[])[] = [];
    const globals = new Map<string, PickleGlobal>([['m.f', { kind: 'global', module: 'm', name: 'f', call: (args) => { calls.push(args); return 'built'; } }]]);
    const value = run([
      ...PROTO2, 0x63, ...enc('m\nf\n'), 0x28, ...str('storage'), 0x4b, 7, 0x74, 0x51, 0x85, 0x52, STOP,
    ], globals, (pid) => ({ kind: 'loaded', pid }) as unknown as PickleValue);
    expect(value).toBe('built');
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toEqual({ kind: 'loaded', pid: new PickleTuple(['storage', 7]) });
  });
});

describe('restricted unpickler: refusals', () => {
  const payload = (global: number[]) => [...PROTO2, ...global, ...str('touch /tmp/x'), 0x85, 0x52, STOP];

  it.each([
    ['GLOBAL', payload([0x63, ...enc('os\nsystem\n')]), 'os.system'],
    ['GLOBAL (protocol 2 name)', payload([0x63, ...enc('__builtin__\neval\n')]), '__builtin__.eval'],
    ['STACK_GLOBAL', payload([0x8c, 10, ...enc('subprocess'), 0x8c, 5, ...enc('Popen'), 0x93]), 'subprocess.Popen'],
    ['INST', [0x28, ...enc("S'touch /tmp/x'\n"), 0x69, ...enc('posix\nsystem\n'), STOP], 'posix.system'],
  ])('refuses a forbidden global named by %s, naming it', (_, bytes, name) => {
    // The allowlist holds a callable that records calls: the refusal must come before any call.
    const calls: unknown[] = [];
    const globals = new Map<string, PickleGlobal>([['m.f', { kind: 'global', module: 'm', name: 'f', call: (a) => { calls.push(a); return null; } }]]);
    const err = refusal(() => run(bytes, globals));
    expect(err.code).toBe('INVALID_MODEL_FILE');
    expect(err.message).toContain(`'${name}'`);
    expect(err.message).toContain('nothing was run');
    expect(err.details.global).toBe(name);
    expect(calls).toHaveLength(0);
  });

  it('refuses a forbidden global before the allowed call that would receive it', () => {
    // m.f(os.system): the forbidden name is met while m.f's arguments are read, so m.f never runs.
    const calls: unknown[] = [];
    const globals = new Map<string, PickleGlobal>([['m.f', { kind: 'global', module: 'm', name: 'f', call: (a) => { calls.push(a); return null; } }]]);
    const err = refusal(() => run([...PROTO2, 0x63, ...enc('m\nf\n'), 0x63, ...enc('os\nsystem\n'), 0x85, 0x52, STOP], globals));
    expect(err.details.global).toBe('os.system');
    expect(calls).toHaveLength(0);
  });

  it.each([
    ['an extension code', [...PROTO2, 0x82, 1, STOP], /extension code/],
    ['a persistent id without a loader', [...PROTO2, 0x4b, 1, 0x51, STOP], /persistent id/],
    ['BUILD on a non-dict', [...PROTO2, 0x5d, 0x7d, 0x62, STOP], /BUILD/],
    ['REDUCE of a value that is no allowed callable', [...PROTO2, ...str('x'), 0x29, 0x52, STOP], /not an allowed callable/],
    ['a memo entry read before it is written', [...PROTO2, 0x68, 3, STOP], /memo entry 3/],
    ['a string running past the end', [...PROTO2, 0x58, ...u32(1000), 0x41, STOP], /truncated/],
    ['a stream without STOP', [...PROTO2, 0x4b, 1], /truncated/],
    ['an unknown opcode', [...PROTO2, 0xff, STOP], /unknown or unsupported opcode 0xff/],
    ['an out-of-band buffer', [0x80, 5, 0x97, STOP], /out-of-band/],
    ['a protocol newer than 5', [0x80, 6, 0x4e, STOP], /protocol 6/],
  ])('refuses %s with a clear error', (_, bytes, message) => {
    const err = refusal(() => run(bytes));
    expect(err.code).toBe('INVALID_MODEL_FILE');
    expect(err.message).toMatch(message);
  });

  it('bounds the memo', () => {
    const bytes = [...PROTO2, 0x4e];
    for (let i = 0; i < 5; i++) bytes.push(0x72, ...u32(i)); // LONG_BINPUT 0..4
    bytes.push(STOP);
    expect(run(bytes)).toBeNull();
    const err = refusal(() => unpickle(Uint8Array.from(bytes), 0, { what: 't', globals: new Map(), maxMemo: 3 }));
    expect(err.message).toMatch(/more than 3 memo entries/);
  });

  it('reads several pickles in a row and says where each ends', () => {
    const bytes = Uint8Array.from([...PROTO2, 0x4b, 1, STOP, ...PROTO2, 0x4b, 2, STOP]);
    const first = unpickle(bytes, 0, { what: 't', globals: new Map() });
    expect(first).toEqual({ value: 1, end: 5 });
    expect(unpickle(bytes, first.end, { what: 't', globals: new Map() })).toEqual({ value: 2, end: 10 });
  });
});
