// Keras files of keras.applications DenseNets, as Keras 3.15 / TF 2.21 wrote them
// (scripts/make-import-fixtures.py): every layout maps onto the same torchvision tensors; the
// model config is checked against the architecture; HDF5 with wrong shapes or dtypes (written
// here with h5wasm), truncated files and other architectures are each one clear error.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServeError } from '../../src/errors.ts';
import { paramTensors, parseDenseNetConfig, planDenseNet, readCheckpointFile, readTorchvisionState, tensorToFloat32 } from '../../src/densenet/index.ts';
import { positionalKerasNames, readKerasFile, transposeRaw } from '../../src/densenet/keras-checkpoint.ts';
import { KERAS_FIXTURES, fixture, readFixtureIo } from '../helpers/import-fixtures.ts';

const io = readFixtureIo('tiny.keras');
const config = parseDenseNetConfig(io.config);
const plan = planDenseNet(config);
const dir = mkdtempSync(path.join(tmpdir(), 'keras-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(promise: Promise<unknown>): Promise<ServeError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ServeError)) throw new Error(`expected a ServeError, got ${err instanceof Error ? err.stack : String(err)}`);
  return err;
}

async function stateOf(file: string, architecture = plan) {
  const read = await readCheckpointFile('keras', file, architecture);
  return { read, state: readTorchvisionState({ plan: architecture }, read.file) };
}

describe('Keras files', () => {
  it('reads the .keras archive and the .h5 model file to the same tensors', async () => {
    const keras = await stateOf(fixture('tiny.keras'));
    const h5 = await stateOf(fixture('tiny.h5'));
    expect(keras.read.source).toMatch(/keras archive, Keras 3\.15/);
    expect(h5.read.source).toMatch(/Keras 2 layout/);
    expect(keras.read.keras).toMatchObject({ name: 'densenet', blocks: [1, 1, 1, 1], bnEpsilon: 1.001e-5, inputShape: [null, 32, 32, 3] });
    expect(keras.state.size).toBe(paramTensors(plan).length);
    for (const [name, values] of keras.state) expect(h5.state.get(name), name).toEqual(values);
  });

  it.each(['tiny.weights.h5', 'tiny.keras2-names.h5'])('reads %s (float16) to the float32 tensors rounded to half', async (file) => {
    const reference = (await stateOf(fixture('tiny.keras'))).state;
    const { state } = await stateOf(fixture(file));
    let worst = { excess: -Infinity, where: '' };
    for (const [name, values] of reference) {
      const got = state.get(name) as Float32Array;
      for (let i = 0; i < values.length; i++) {
        // float16 keeps 11 significant bits: the relative error of rounding is at most 2^-11.
        const excess = Math.abs(got[i]! - values[i]!) - (Math.abs(values[i]!) * 2 ** -11 + 2 ** -24);
        if (excess > worst.excess) worst = { excess, where: `${name}[${i}]` };
      }
    }
    expect(worst.excess, worst.where).toBeLessThanOrEqual(0);
  });

  it('maps conv kernels HWIO → OIHW and the Dense kernel [in, out] → [out, in]', async () => {
    const keras = await readKerasFile(fixture('tiny.keras'));
    const kernel = keras.tensors.get('conv1_conv/kernel')!.raw; // [7, 7, 3, 64]
    const { state } = await stateOf(fixture('tiny.keras'));
    const hwio = tensorToFloat32(kernel, 'k');
    const oihw = state.get('features.conv0.weight') as Float32Array;
    for (const [o, i, h, w] of [[0, 0, 0, 0], [63, 2, 6, 5], [17, 1, 3, 2]] as const) {
      expect(oihw[((o * 3 + i) * 7 + h) * 7 + w]).toBe(hwio[((h * 7 + w) * 3 + i) * 64 + o]);
    }
    const dense = tensorToFloat32(keras.tensors.get('predictions/kernel')!.raw, 'd'); // [68, 3]
    const classifier = state.get('classifier.weight') as Float32Array; // [3, 68]
    expect(classifier[2 * 68 + 67]).toBe(dense[67 * 3 + 2]);
    expect(transposeRaw({ dtype: 'U8', shape: [2, 3], bytes: Uint8Array.from([1, 2, 3, 4, 5, 6]) }, [1, 0]).bytes).toEqual(Uint8Array.from([1, 4, 2, 5, 3, 6]));
  });

  it("names Keras 3's weight groups by position the way Keras does (checked against the file's own names)", async () => {
    const keras = await readKerasFile(fixture('tiny.weights.h5'));
    // Each key is `<layer>/<role>` from the vars group's `name` attribute; `where` has the object path.
    const byObject = new Map<string, string>();
    for (const [key, t] of keras.tensors) byObject.set(/^layers\/([^/]+)\//.exec(t.where)![1]!, key.split('/')[0]!);
    // 12 convs + 13 batch norms + 1 dense in DenseNet(blocks=[1, 1, 1, 1]).
    expect(byObject.size).toBe(26);
    expect(positionalKerasNames(plan)).toEqual(byObject);
  });
});

describe('Keras configs and hostile files', () => {
  it('refuses a .keras of another architecture, naming what it holds', async () => {
    const err = await refusal(readCheckpointFile('keras', fixture('hostile/other-architecture.keras'), plan));
    expect(err.message).toMatch(/Functional model named 'mobilenet_tiny'.*not a keras\.applications DenseNet/);
  });

  it('refuses a DenseNet of other blocks, or other BN epsilon, than the architecture', async () => {
    const other = planDenseNet(parseDenseNetConfig({ ...io.config, blockLayers: [1, 1, 2, 1] }));
    expect((await refusal(readCheckpointFile('keras', fixture('tiny.keras'), other))).message)
      .toMatch(/has blocks \[1, 1, 1, 1\], the architecture \[1, 1, 2, 1\]/);
    const torchEps = planDenseNet(parseDenseNetConfig({ ...io.config, bnEpsilon: 1e-5 }));
    expect((await refusal(readCheckpointFile('keras', fixture('tiny.h5'), torchEps))).message)
      .toMatch(/BatchNormalization epsilon is 0\.00001001, the architecture's 0\.00001/);
    // A weights-only file carries no config: its tensors are still checked one by one.
    const wider = planDenseNet(parseDenseNetConfig({ ...io.config, numClasses: 5 }));
    expect((await refusal(readCheckpointFile('keras', fixture('tiny.weights.h5'), wider))).message)
      .toMatch(/wrong shapes: 'predictions\/kernel' .* has shape \[68, 3\], the architecture needs \[68, 5\]/);
  });

  it.each([
    ['tiny.keras', [100, 5000, 500_000, 961_000]],
    ['tiny.h5', [100, 2000, 500_000, 939_000]],
    ['tiny.weights.h5', [100, 800, 300_000, 524_000]],
  ])('refuses %s cut short with a clear error', async (file, cuts) => {
    const whole = readFileSync(fixture(file));
    for (const cut of cuts) {
      const cutFile = path.join(dir, `cut-${cut}-${file}`);
      writeFileSync(cutFile, whole.subarray(0, cut));
      const err = await refusal(readCheckpointFile('keras', cutFile, plan));
      expect(err.code, `cut at ${cut}`).toBe('INVALID_MODEL_FILE');
      expect(err.message, `cut at ${cut}`).toMatch(/truncated|not a readable zip|neither a Keras|damaged/);
    }
  });

  // HDF5 files in Keras 3's weights layout, written here with h5wasm from the fixture's
  // tensors with one dataset changed.
  async function rewrite(name: string, change: (layer: string, index: string, values: Float32Array, shape: number[]) => { data: Float32Array | Int32Array; shape: number[] } | undefined): Promise<string> {
    const h5 = await import('h5wasm/node');
    await h5.ready;
    const keras = await readKerasFile(fixture('tiny.weights.h5'));
    const out = path.join(dir, name);
    const f = new h5.File(out, 'w');
    type Group = InstanceType<typeof h5.Group>;
    const group = (parent: Group, name: string): Group => (parent.get(name) as Group | null) ?? parent.create_group(name);
    try {
      const layers = group(f, 'layers');
      for (const t of keras.tensors.values()) {
        const [, object, index] = /^layers\/([^/]+)\/vars\/(\d+)/.exec(t.where)! as unknown as [string, string, string];
        const layerName = / \((.+)\)$/.exec(t.where)![1]!;
        const fresh = !layers.get(object!);
        const vars = group(group(layers, object!), 'vars');
        if (fresh) vars.create_attribute('name', layerName);
        const values = tensorToFloat32(t.raw, t.where);
        const changed = change(layerName, index!, values, t.raw.shape) ?? { data: values, shape: t.raw.shape };
        vars.create_dataset({ name: index!, data: changed.data, shape: changed.shape });
      }
    } finally {
      f.close();
    }
    return out;
  }

  it('reads an h5wasm-written copy (the control for the two below)', async () => {
    const file = await rewrite('same.weights.h5', () => undefined);
    const { state } = await stateOf(file);
    const reference = (await stateOf(fixture('tiny.weights.h5'))).state;
    for (const [name, values] of reference) expect(state.get(name), name).toEqual(values);
  });

  it('refuses HDF5 weights of the wrong shape, naming the dataset', async () => {
    const file = await rewrite('wrong-shape.weights.h5', (layer, _index, values) =>
      (layer === 'conv2_block1_2_conv' ? { data: values.subarray(0, 3 * 3 * 128 * 16), shape: [3, 3, 128, 16] } : undefined));
    const err = await refusal(readCheckpointFile('keras', file, plan));
    expect(err.message).toMatch(/'conv2_block1_2_conv\/kernel' \(layers\/conv2d_2\/vars\/0 \(conv2_block1_2_conv\)\) has shape \[3, 3, 128, 16\], the architecture needs \[3, 3, 128, 32\]/);
  });

  it('refuses HDF5 weights that are not floating point, naming the dataset and its type', async () => {
    const file = await rewrite('int.weights.h5', (layer, index, values) =>
      (layer === 'bn' && index === '3' ? { data: Int32Array.from(values, (v) => Math.round(v)), shape: [values.length] } : undefined));
    const err = await refusal(readCheckpointFile('keras', file, plan));
    expect(err.message).toMatch(/dataset 'layers\/batch_normalization_\d+\/vars\/3' holds int32, not floating-point weights/);
  });

  it('refuses a file that is neither a .keras archive nor HDF5', async () => {
    const file = path.join(dir, 'not-keras.h5');
    copyFileSync(fixture('tiny.zip.pth'), file);
    expect((await refusal(readCheckpointFile('keras', file, plan))).message).toMatch(/no config\.json/);
    writeFileSync(file, 'plain text');
    expect((await refusal(readCheckpointFile('keras', file, plan))).message).toMatch(/neither a Keras \.keras archive nor an HDF5 file/);
  });
});

it('lists every Keras fixture in the helper (so the service test covers them all)', () => {
  expect(KERAS_FIXTURES.map((f) => f.file).sort()).toEqual(['tiny.h5', 'tiny.keras', 'tiny.keras2-names.h5', 'tiny.weights.h5']);
});
