// torch.save files read without running anything: the fixtures PyTorch 1.13 wrote in both
// formats (scripts/make-import-fixtures.py) give the same tensors; files whose unpickling runs
// code under torch.load (checked when they were made: a marker file appears) are refused by the
// global's name and leave no marker; broken archives and streams end as one clear error.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ServeError } from '../../src/errors.ts';
import { parseDenseNetConfig, planDenseNet, readTorchvisionState } from '../../src/densenet/index.ts';
import { readPytorchCheckpoint } from '../../src/densenet/pytorch-checkpoint.ts';
import { ZipArchive } from '../../src/densenet/zip-archive.ts';
import { fixture, readFixtureIo } from '../helpers/import-fixtures.ts';

const plan = planDenseNet(parseDenseNetConfig(readFixtureIo('tiny.zip.pth').config));

async function stateOf(file: string | Buffer): Promise<Map<string, Float32Array>> {
  const bytes = typeof file === 'string' ? readFileSync(fixture(file)) : file;
  return readTorchvisionState({ plan }, await readPytorchCheckpoint(bytes));
}

async function refusal(promise: Promise<unknown>): Promise<ServeError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ServeError)) throw new Error(`expected a ServeError, got ${err instanceof Error ? err.stack : String(err)}`);
  return err;
}

describe('torch.save checkpoints', () => {
  it('reads the zip format and the legacy format to the same tensors', async () => {
    const zip = await stateOf('tiny.zip.pth');
    const legacy = await stateOf('tiny.legacy.pth');
    expect(zip.size).toBe(56);
    expect([...legacy.keys()].sort()).toEqual([...zip.keys()].sort());
    // The legacy file keeps norm0's weight and bias as views of one storage and
    // classifier.weight transposed in memory: both must come out as the zip's tensors.
    for (const [name, values] of zip) expect(legacy.get(name), name).toEqual(values);
  });

  it.each([
    ['tiny.wrapped-f16.pth', 'zip', 'model', 2 ** -11],
    ['tiny.state-dict-bf16.legacy.pth', 'legacy', 'state_dict', 2 ** -8],
  ])('reads %s (%s format, state_dict under %j) to the F32 tensors within its rounding', async (file, format, key, relative) => {
    const checkpoint = await readPytorchCheckpoint(readFileSync(fixture(file)));
    expect(checkpoint.format).toBe(format);
    expect(checkpoint.stateDictKey).toBe(key);
    const reference = await stateOf('tiny.zip.pth');
    const state = readTorchvisionState({ plan }, checkpoint);
    for (const [name, values] of reference) {
      const got = state.get(name) as Float32Array;
      for (let i = 0; i < values.length; i++) {
        expect(Math.abs(got[i]! - values[i]!), `${name}[${i}]`).toBeLessThanOrEqual(Math.abs(values[i]!) * relative + 1e-7);
      }
    }
  });
});

describe('hostile checkpoints', () => {
  // Each of these ran its payload under torch.load when it was made (make-import-fixtures.py
  // checks the marker appeared). Reading it here must refuse the global and create nothing.
  it.each([
    ['os-system.pth', 'posix.system', 'os-system'],
    ['builtins-eval.legacy.pth', '__builtin__.eval', 'eval'],
    ['subprocess-popen.pth', 'subprocess.Popen', 'popen'],
    ['inst-opcode.pth', 'os.system', 'inst'],
  ])('%s: refused as %s, nothing executed', async (file, global, kind) => {
    const marker = `/tmp/densenet-serve-pickle-ran-${kind}`;
    rmSync(marker, { force: true });
    const err = await refusal(readPytorchCheckpoint(readFileSync(fixture(`hostile/${file}`))));
    expect(err.code).toBe('INVALID_MODEL_FILE');
    expect(err.message).toContain(`'${global}'`);
    expect(err.details.global).toBe(global);
    // Popen would touch the file asynchronously: give it the time it took under torch.load.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a whole pickled model (torch.save(model)) by its class', async () => {
    const err = await refusal(readPytorchCheckpoint(readFileSync(fixture('hostile/whole-model.pth'))));
    expect(err.details.global).toBe('torchvision.models.densenet.DenseNet');
    expect(err.message).toContain('torch.save(model.state_dict(), path)');
  });

  it('refuses a storage shorter than the checkpoint declares', async () => {
    const err = await refusal(readPytorchCheckpoint(readFileSync(fixture('hostile/short-storage.pth'))));
    expect(err.message).toMatch(/storage '\d+' holds 2352 bytes, but the checkpoint declares 1176 F32 elements \(4704 bytes\)/);
  });

  it('refuses zip bombs: a declared size over the limit before inflating, a lying size at the declared size', async () => {
    const declared = await ZipArchive.open(readFileSync(fixture('hostile/zip-bomb-declared.pth')), 'bomb');
    const tooBig = await refusal(declared.read('zip-bomb-declared/data/0'));
    expect(tooBig.message).toMatch(/declares 4294967280 bytes uncompressed, over the limit of 1073741824/);
    declared.close();
    const lying = await ZipArchive.open(readFileSync(fixture('hostile/zip-bomb-lying.pth')), 'bomb');
    expect(lying.size('zip-bomb-lying/data/0')).toBe(4096);
    const inflated = await refusal(lying.read('zip-bomb-lying/data/0'));
    expect(inflated.message).toMatch(/not the size it declares.*too many bytes/);
    lying.close();
    // And through the checkpoint reader, each a clear error.
    for (const file of ['zip-bomb-declared.pth', 'zip-bomb-lying.pth']) {
      expect((await refusal(readPytorchCheckpoint(readFileSync(fixture(`hostile/${file}`))))).code).toBe('INVALID_MODEL_FILE');
    }
  });

  it.each(['tiny.zip.pth', 'tiny.legacy.pth'])('refuses %s cut short anywhere with a clear error', async (file) => {
    const whole = readFileSync(fixture(file));
    const cuts = [10, 64, 200, 1000, Math.floor(whole.length / 2), whole.length - 100, whole.length - 1];
    for (const cut of cuts) {
      const err = await refusal(readPytorchCheckpoint(whole.subarray(0, cut)));
      expect(err.code, `cut at ${cut}`).toBe('INVALID_MODEL_FILE');
      expect(err.message, `cut at ${cut}`).toMatch(/truncated|not a readable zip|not a torch.save file|legacy magic/);
    }
  });
});

// A legacy stream written by hand from the format (torch/serialization.py _legacy_save): five
// pickles, then each storage as an int64 element count and its bytes.
describe('legacy format, written by hand', () => {
  const enc = (s: string) => [...Buffer.from(s, 'latin1')];
  const str = (s: string) => [0x58, s.length, 0, 0, 0, ...enc(s)];
  const pickle = (...ops: number[]) => [0x80, 2, ...ops, 0x2e];
  const MAGIC = [0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  const ORDERED_DICT = [0x63, ...enc('collections\nOrderedDict\n'), 0x29, 0x52];

  function legacy(storageNumel: number, size: [number, number], values: number[], dtype = 'FloatStorage'): Buffer {
    const tensor = [
      0x63, ...enc('torch._utils\n_rebuild_tensor_v2\n'), 0x28,
      0x28, ...str('storage'), 0x63, ...enc(`torch\n${dtype}\n`), ...str('0'), ...str('cpu'), 0x4b, storageNumel, 0x4e, 0x74, 0x51,
      0x4b, 0, 0x4b, size[0], 0x4b, size[1], 0x86, 0x4b, size[1], 0x4b, 1, 0x86, 0x89, ...ORDERED_DICT, 0x74, 0x52,
    ];
    const data = Buffer.alloc(8 + 4 * values.length);
    data.writeBigInt64LE(BigInt(values.length));
    values.forEach((v, i) => data.writeFloatLE(v, 8 + 4 * i));
    return Buffer.concat([
      Buffer.from(pickle(...MAGIC)),
      Buffer.from(pickle(0x4d, 0xe9, 0x03)), // 1001
      Buffer.from(pickle(0x7d)), // sys_info (little-endian by default)
      Buffer.from(pickle(...ORDERED_DICT, 0x28, ...str('w'), ...tensor, 0x75)),
      Buffer.from(pickle(0x5d, 0x28, ...str('0'), 0x65)),
      data,
    ]);
  }

  it('reads a tensor from its storage', async () => {
    const checkpoint = await readPytorchCheckpoint(legacy(6, [2, 3], [1, 2, 3, 4, 5, 6]));
    const w = checkpoint.tensors.get('w');
    expect(w).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect([...new Float32Array(Uint8Array.from(w!.bytes).buffer)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a tensor that reads past its storage', async () => {
    const err = await refusal(readPytorchCheckpoint(legacy(4, [2, 3], [1, 2, 3, 4])));
    expect(err.message).toContain("tensor 'w' [2, 3] needs elements up to 5 of storage '0', which holds 4");
  });

  it('refuses a storage whose count disagrees with its declaration, or a storage type not allowed', async () => {
    const lying = legacy(6, [2, 3], [1, 2, 3, 4, 5, 6]);
    lying.writeBigInt64LE(5n, lying.length - 8 - 24); // the count before the data
    expect((await refusal(readPytorchCheckpoint(lying))).message).toMatch(/storage '0' holds 5 elements, the checkpoint declares 6/);
    const complex = await refusal(readPytorchCheckpoint(legacy(6, [2, 3], [1, 2, 3, 4, 5, 6], 'ComplexFloatStorage')));
    expect(complex.details.global).toBe('torch.ComplexFloatStorage');
  });
});
