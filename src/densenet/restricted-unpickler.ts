// A restricted reader of Python pickles: enough of the format to rebuild the tensors and plain
// containers a PyTorch checkpoint holds, and nothing that could run code. Python's own
// unpickler calls whatever global the stream names (`os.system`, `builtins.eval`, …); this one
// resolves a global only through the caller's allowlist and refuses any other name, by name,
// at the opcode that names it — before anything was built from it.
//
// Why our own: the npm pickle readers build placeholder objects for unknown globals instead of
// refusing them (pickleparser's Registry.resolve falls back to a generic object for any name),
// so the restriction would have to be bolted on, and they set no bounds on what a hostile
// stream may allocate. The subset needed here is small (pickletools documents every opcode).
import { ServeError } from '../errors.ts';

/** A Python tuple (arrays are lists). */
export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A dict or OrderedDict; keys are kept as their JS values (strings, numbers, …). */
export class PickleDict {
  readonly entries = new Map<unknown, PickleValue>();
}

/** A global the allowlist resolved: a callable (REDUCE, NEWOBJ) or a plain marker (a storage type). */
export interface PickleGlobal {
  readonly kind: 'global';
  readonly module: string;
  readonly name: string;
  /** Absent for a global that is only a value (never called). */
  readonly call?: (args: readonly PickleValue[]) => PickleValue;
}

/** Whatever the caller's globals and persistent loader build (tensors, storages). */
export interface PickleObject {
  readonly kind: string;
}

export type PickleValue = null | boolean | number | bigint | string | Uint8Array | PickleTuple | PickleValue[] | PickleDict | PickleObject;

export interface UnpickleOptions {
  /** `module.name` → the global. Every other global is refused. */
  globals: ReadonlyMap<string, PickleGlobal>;
  /** Persistent ids (PyTorch's storages); without it a persistent id is refused. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** What the file is, for messages ("data.pkl", "the legacy checkpoint's 4th pickle"). */
  what: string;
  /** Bounds against hostile streams. */
  maxMemo?: number;
  maxDepth?: number;
}

export interface UnpickleResult {
  value: PickleValue;
  /** Offset just past the STOP opcode (legacy checkpoints chain several pickles). */
  end: number;
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

const DEFAULT_MAX_MEMO = 1_000_000;
const DEFAULT_MAX_DEPTH = 10_000;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const LATIN1 = new TextDecoder('latin1');

export function pickleError(what: string, message: string, details: Record<string, unknown> = {}): ServeError {
  return new ServeError('INVALID_MODEL_FILE', `${what}: ${message}`, details);
}

/** Refusal of a global: the message names it and says what is allowed. */
function refused(what: string, module: string, name: string): ServeError {
  return pickleError(what,
    `refers to the Python global '${module}.${name}', which is not allowed: a checkpoint may hold only tensors and ` +
    'plain containers (nothing was run). Save the weights with torch.save(model.state_dict(), path)',
    { global: `${module}.${name}` });
}

/** Reads one pickle starting at `offset`; every value is built from the allowlist only. */
export function unpickle(bytes: Uint8Array, offset: number, options: UnpickleOptions): UnpickleResult {
  const { what } = options;
  const maxMemo = options.maxMemo ?? DEFAULT_MAX_MEMO;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = offset;
  let stack: StackItem[] = [];
  const metastack: StackItem[][] = [];
  const memo = new Map<number, PickleValue>();

  // Annotated so TypeScript knows a call ends the path (narrowing needs an explicit type).
  const fail: (message: string, details?: Record<string, unknown>) => never = (message, details = {}) => {
    throw pickleError(what, message, details);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated: needs ${n} more bytes at offset ${pos}, the data ends at ${bytes.length}`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    const v = hi * 2 ** 32 + lo;
    if (!Number.isSafeInteger(v)) fail(`a length of ${v} bytes at offset ${pos - 8} is past any real file`);
    return v;
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`truncated: no end of line after offset ${pos}`);
    const text = LATIN1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const utf8 = (n: number): string => {
    const raw = take(n);
    try {
      return UTF8.decode(raw);
    } catch {
      return fail(`a string at offset ${pos - n} is not valid UTF-8`);
    }
  };
  const push = (v: PickleValue): void => {
    stack.push(v);
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined) fail(`stack underflow at offset ${pos - 1}`);
    if (v === MARK) fail(`unexpected mark at offset ${pos - 1}`);
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail(`stack underflow at offset ${pos - 1}`);
    return v as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const items = stack;
    const previous = metastack.pop();
    if (!previous) fail(`no mark to pop at offset ${pos - 1}`);
    stack = previous as StackItem[];
    if (items.includes(MARK)) fail(`nested mark at offset ${pos - 1}`);
    return items as PickleValue[];
  };
  const remember = (index: number): void => {
    if (memo.size >= maxMemo && !memo.has(index)) fail(`more than ${maxMemo} memo entries`);
    memo.set(index, top());
  };
  const recall = (index: number): PickleValue => {
    if (!memo.has(index)) fail(`memo entry ${index} is read before it is written`);
    return memo.get(index) as PickleValue;
  };
  const resolve = (module: string, name: string): PickleGlobal => {
    const found = options.globals.get(`${module}.${name}`);
    if (!found) throw refused(what, module, name);
    return found;
  };
  const callable = (fn: PickleValue, opcode: string): NonNullable<PickleGlobal['call']> => {
    const g = fn as Partial<PickleGlobal> | null;
    if (g === null || typeof g !== 'object' || g.kind !== 'global' || !g.call) {
      return fail(`${opcode} at offset ${pos - 1} calls something that is not an allowed callable`);
    }
    return g.call;
  };
  const dictOf = (v: PickleValue, opcode: string): PickleDict => {
    if (!(v instanceof PickleDict)) fail(`${opcode} at offset ${pos - 1} on a ${describe(v)}, not a dict`);
    return v as PickleDict;
  };
  const listOf = (v: PickleValue, opcode: string): PickleValue[] => {
    if (!Array.isArray(v)) fail(`${opcode} at offset ${pos - 1} on a ${describe(v)}, not a list`);
    return v as PickleValue[];
  };
  const setItems = (dict: PickleDict, items: PickleValue[]): void => {
    if (items.length % 2 !== 0) fail(`SETITEMS with an odd number of items at offset ${pos - 1}`);
    for (let i = 0; i < items.length; i += 2) dict.entries.set(dictKey(items[i] as PickleValue), items[i + 1] as PickleValue);
  };
  const dictKey = (k: PickleValue): unknown => {
    if (k === null || typeof k !== 'object') return k;
    if (k instanceof PickleTuple) return `(${k.items.map((x) => String(x)).join(', ')})`; // optimizer state keys at most
    return fail(`a ${describe(k)} used as a dict key at offset ${pos - 1}`);
  };
  const signedLE = (raw: Uint8Array): number | bigint => {
    if (raw.length === 0) return 0;
    let v = 0n;
    for (let i = raw.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i] as number);
    if ((raw[raw.length - 1] as number) & 0x80) v -= 1n << BigInt(8 * raw.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const textString = (raw: string): string => {
    // Protocol 0 STRING: a quoted Python repr. Escapes are not needed by any checkpoint.
    const quoted = raw.length >= 2 && (raw[0] === "'" || raw[0] === '"') && raw[raw.length - 1] === raw[0];
    if (!quoted || raw.includes('\\')) fail(`a protocol-0 string at offset ${pos} is not a plain quoted string`);
    return raw.slice(1, -1);
  };

  for (;;) {
    if (metastack.length > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`pickle protocol ${v} is newer than 5`);
        break;
      }
      case 0x95: u64(); break; // FRAME: a length hint only
      case 0x2e: { // STOP
        const value = pop();
        return { value, end: pos };
      }
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP

      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(signedLE(take(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = u32();
        if (n > 8) fail(`an integer of ${n} bytes at offset ${at}`);
        push(signedLE(take(n)));
        break;
      }
      case 0x47: { // BINFLOAT (big-endian double)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x49: { // INT (protocol 0; "00"/"01" are False/True)
        const text = line();
        if (text === '00' || text === '01') push(text === '01');
        else push(parseDecimal(text, at, fail));
        break;
      }
      case 0x4c: push(parseDecimal(line().replace(/L$/, ''), at, fail)); break; // LONG (protocol 0)
      case 0x46: { // FLOAT (protocol 0)
        const v = Number(line());
        if (Number.isNaN(v)) fail(`bad float at offset ${at}`);
        push(v);
        break;
      }

      case 0x58: push(utf8(u32())); break; // BINUNICODE
      case 0x8c: push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(utf8(u64())); break; // BINUNICODE8
      case 0x54: push(LATIN1.decode(take(i32()))); break; // BINSTRING
      case 0x55: push(LATIN1.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x53: push(textString(line())); break; // STRING (protocol 0)
      case 0x56: { // UNICODE (protocol 0, raw-unicode-escape)
        const text = line();
        if (text.includes('\\')) fail(`a protocol-0 unicode string with escapes at offset ${at}`);
        push(text);
        break;
      }
      case 0x42: push(take(u32()).slice()); break; // BINBYTES
      case 0x43: push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: push(take(u64()).slice()); break; // BINBYTES8
      case 0x96: push(take(u64()).slice()); break; // BYTEARRAY8

      case 0x29: push(new PickleTuple([])); break; // EMPTY_TUPLE
      case 0x74: push(new PickleTuple(popMark())); break; // TUPLE
      case 0x85: push(new PickleTuple([pop()])); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        push(new PickleTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        push(new PickleTuple([pop(), b, c]));
        break;
      }
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x6c: push(popMark()); break; // LIST
      case 0x61: { // APPEND
        const v = pop();
        listOf(top(), 'APPEND').push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = listOf(top(), 'APPENDS');
        for (const v of items) list.push(v);
        break;
      }
      case 0x7d: push(new PickleDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const d = new PickleDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        dictOf(top(), 'SETITEM').entries.set(dictKey(k), v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(dictOf(top(), 'SETITEMS'), items);
        break;
      }
      // Sets appear in no checkpoint's tensors; read as lists so a stray one does not fail.
      case 0x8f: push([]); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const set = listOf(top(), 'ADDITEMS');
        for (const v of items) set.push(v);
        break;
      }
      case 0x91: push(popMark()); break; // FROZENSET

      case 0x71: remember(u8()); break; // BINPUT
      case 0x72: remember(u32()); break; // LONG_BINPUT
      case 0x70: remember(parseDecimal(line(), at, fail) as number); break; // PUT
      case 0x94: remember(memo.size); break; // MEMOIZE
      case 0x68: push(recall(u8())); break; // BINGET
      case 0x6a: push(recall(u32())); break; // LONG_BINGET
      case 0x67: push(recall(parseDecimal(line(), at, fail) as number)); break; // GET

      case 0x63: { // GLOBAL: module and name inline; refused here unless allowed
        const module = line();
        push(resolve(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL with non-string names at offset ${at}`);
        push(resolve(module as string, name as string));
        break;
      }
      case 0x69: { // INST: module and name inline, then calls it with the marked items
        const module = line();
        const g = resolve(module, line());
        push(callable(g, 'INST')(popMark()));
        break;
      }
      case 0x6f: { // OBJ: the class is the first marked item
        const [cls, ...args] = popMark();
        push(callable(cls as PickleValue, 'OBJ')(args));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!(args instanceof PickleTuple)) fail(`REDUCE at offset ${at} with arguments that are not a tuple`);
        push(callable(fn, 'REDUCE')((args as PickleTuple).items));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        if (!(args instanceof PickleTuple)) fail(`NEWOBJ at offset ${at} with arguments that are not a tuple`);
        push(callable(cls, 'NEWOBJ')((args as PickleTuple).items));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(args instanceof PickleTuple) || !(kwargs instanceof PickleDict) || kwargs.entries.size > 0) {
          fail(`NEWOBJ_EX at offset ${at} with keyword arguments`);
        }
        push(callable(cls, 'NEWOBJ_EX')((args as PickleTuple).items));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state)
        const state = pop();
        const obj = top();
        // An OrderedDict state_dict carries its `_metadata` attribute this way: plain data, kept aside.
        if (obj instanceof PickleDict && (state instanceof PickleDict || state === null)) break;
        fail(`BUILD at offset ${at} sets the state of a ${describe(obj)}, which no checkpoint of tensors needs`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail(`persistent id at offset ${at} in a pickle that may not have one`);
        push((options.persistentLoad as (p: PickleValue) => PickleValue)(pid));
        break;
      }
      case 0x50: { // PERSID (protocol 0: the id is a line of text)
        const pid = line();
        if (!options.persistentLoad) fail(`persistent id at offset ${at} in a pickle that may not have one`);
        push((options.persistentLoad as (p: PickleValue) => PickleValue)(pid));
        break;
      }
      case 0x82: case 0x83: case 0x84: // EXT1/2/4: the copyreg extension registry names globals by number
        fail(`extension code opcode at offset ${at}: it names a Python global by number, which is not allowed`);
        break;
      case 0x97: case 0x98: // NEXT_BUFFER, READONLY_BUFFER: out-of-band buffers
        fail(`out-of-band buffer opcode at offset ${at} (protocol 5 buffers are not part of a checkpoint)`);
        break;
      default:
        fail(`unknown or unsupported opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at}`);
    }
  }
}

function parseDecimal(text: string, at: number, fail: (m: string) => never): number | bigint {
  if (!/^[-+]?\d+$/.test(text)) fail(`bad integer '${text.slice(0, 40)}' at offset ${at}`);
  const v = BigInt(text);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** A short name for a value's kind, for messages. */
export function describe(v: PickleValue | undefined): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PickleTuple) return 'tuple';
  if (v instanceof PickleDict) return 'dict';
  if (typeof v === 'object') return (v as PickleObject).kind;
  return typeof v;
}
