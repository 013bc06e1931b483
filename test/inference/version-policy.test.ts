// Model versions through the real server (startServer) on both transports: which version folders
// the version policy loads, that a request without a version gets the newest, that an explicit
// version gets exactly that one, and that a reload through the management endpoint picks up a
// version folder added or removed on disk. Each version has its own seeded weights, so every
// answer is checked against that version's network computed here, independently: the
// model_version field could not hide a wrong version's weights.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as grpcJs from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTorchvisionWeights } from '../../src/densenet/index.ts';
import type { Tensor } from '../../src/densenet/tf-runtime.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { expectLogitsClose, maxAbsDiff } from '../helpers/logits.ts';
import { seededRandom } from '../helpers/random.ts';
import { tinyModel, writeTinyModelFolder } from '../helpers/tiny-model.ts';
import { call, grpcClients, startRealServer, type GrpcClients, type RealServer } from '../security/real-server.ts';

const tf = await useNativeEngine();
const SHAPE = [1, 16, 16, 3];
/** writeTinyModelFolder gives the i-th listed version folder the seed `seed + 100 * i`. */
const SEED = 1;
const seedOf = (version: number): number => SEED + 100 * (version - 1);

const input = (() => {
  const next = seededRandom(42);
  return Float32Array.from({ length: 16 * 16 * 3 }, () => next() * 2 - 1);
})();

/** The logits the network with these seeded weights gives `input`, computed in this thread. */
function referenceLogits(seed: number): Float32Array {
  const model = tinyModel(seed);
  try {
    return tf.tidy(() => (model.layersModel.predict(tf.tensor4d(input, SHAPE as [number, number, number, number])) as Tensor).dataSync() as Float32Array);
  } finally {
    model.layersModel.dispose();
  }
}

async function addVersionFolder(root: string, model: string, version: number): Promise<void> {
  const network = tinyModel(seedOf(version));
  await mkdir(path.join(root, model, String(version)));
  await writeFile(path.join(root, model, String(version), 'weights.safetensors'), exportTorchvisionWeights(network));
  network.layersModel.dispose();
}

let repo: string;
let s: RealServer;
let base: string;
let grpc: GrpcClients;

beforeAll(async () => {
  repo = await mkdtemp(path.join(tmpdir(), 'versions-'));
  // Same folders, two policies: the default (the newest one) and every version.
  await writeTinyModelFolder(repo, 'newest', { seed: SEED, versions: [1, 2, 3] });
  await writeTinyModelFolder(repo, 'every', { seed: SEED, versions: [1, 2, 3], manifest: { versionPolicy: 'all' } });
  s = await startRealServer({ WORKERS: '1' }, { repo, logLevel: 'silent' });
  base = `http://127.0.0.1:${s.server.httpPort}`;
  grpc = grpcClients(`127.0.0.1:${s.server.grpcPort}`);
});

afterAll(async () => {
  grpc?.close();
  await s?.close();
  await rm(repo, { recursive: true, force: true });
});

interface Answer {
  version: string;
  logits: Float32Array;
}

const versionPath = (version?: number) => (version === undefined ? '' : `/versions/${version}`);

/** POST /v2/models/{m}[/versions/{v}]/infer with the FP32 input as JSON; undefined answer → the status. */
async function inferHttp(model: string, version?: number): Promise<Answer | number> {
  const res = await fetch(`${base}/v2/models/${model}${versionPath(version)}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: SHAPE, data: [...input] }], outputs: [{ name: 'logits' }] }),
  });
  if (res.status !== 200) return res.status;
  const body = (await res.json()) as { model_name: string; model_version: string; outputs: Array<{ name: string; data: number[] }> };
  expect(body.model_name).toBe(model);
  return { version: body.model_version, logits: Float32Array.from(body.outputs[0]!.data) };
}

/** ModelInfer with raw FP32 contents; a failed call → its gRPC status code. */
async function inferGrpc(model: string, version?: number): Promise<Answer | number> {
  const request = {
    model_name: model, model_version: version === undefined ? '' : String(version),
    inputs: [{ name: 'input', datatype: 'FP32', shape: SHAPE.map(String) }],
    outputs: [{ name: 'logits' }],
    raw_input_contents: [Buffer.from(input.buffer, input.byteOffset, input.byteLength)],
  };
  try {
    const res = await call<{ model_name: string; model_version: string; raw_output_contents: Buffer[] }>(grpc.inference, 'ModelInfer', request);
    expect(res.model_name).toBe(model);
    const raw = res.raw_output_contents[0]!;
    return { version: res.model_version, logits: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) };
  } catch (err) {
    return (err as grpcJs.ServiceError).code;
  }
}

/** Both transports answer with `expected` version and that version's own logits. */
async function expectServedBy(model: string, asked: number | undefined, expected: number): Promise<void> {
  const reference = referenceLogits(seedOf(expected));
  for (const answer of [await inferHttp(model, asked), await inferGrpc(model, asked)]) {
    expect(answer, `${model} asked for ${asked ?? 'no version'}`).toMatchObject({ version: String(expected) });
    expectLogitsClose((answer as Answer).logits, reference);
  }
}

/** Both transports refuse the version as absent: HTTP 404, gRPC NOT_FOUND. */
async function expectAbsent(model: string, version: number): Promise<void> {
  expect(await inferHttp(model, version)).toBe(404);
  expect(await inferGrpc(model, version)).toBe(5);
}

const loadedVersions = async (model: string): Promise<string[]> => {
  const res = await fetch(`${base}/v2/models/${model}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { versions: string[] }).versions;
};

const reload = async (model: string): Promise<void> => {
  const res = await fetch(`${base}/v2/repository/models/${model}/load`, { method: 'POST' });
  expect(res.status, await res.text()).toBe(200);
};

describe('version folders and the version policy, through the real server', () => {
  it('the seeded versions really differ (else the checks below could not tell them apart)', () => {
    const [a, b, c] = [1, 2, 3].map((v) => referenceLogits(seedOf(v)));
    expect(maxAbsDiff(a!, b!)).toBeGreaterThan(0.1);
    expect(maxAbsDiff(b!, c!)).toBeGreaterThan(0.1);
  });

  it('default policy (latest 1): only the newest folder is loaded and answers; a reload follows a new folder', async () => {
    expect(await loadedVersions('newest')).toEqual(['3']);
    await expectServedBy('newest', undefined, 3);
    await expectServedBy('newest', 3, 3);
    await expectAbsent('newest', 1);
    await expectAbsent('newest', 2);

    await addVersionFolder(repo, 'newest', 4);
    await reload('newest');
    expect(await loadedVersions('newest')).toEqual(['4']);
    await expectServedBy('newest', undefined, 4);
    await expectServedBy('newest', 4, 4);
    await expectAbsent('newest', 3);

    // Removing the newest folder and reloading falls back to the one before it.
    await rm(path.join(repo, 'newest', '4'), { recursive: true });
    await reload('newest');
    expect(await loadedVersions('newest')).toEqual(['3']);
    await expectServedBy('newest', undefined, 3);
    await expectAbsent('newest', 4);
  }, 60_000);

  it('policy "all": every version answers by number, the newest by default; a reload adds and drops versions', async () => {
    expect(await loadedVersions('every')).toEqual(['1', '2', '3']);
    await expectServedBy('every', undefined, 3);
    for (const v of [1, 2, 3]) await expectServedBy('every', v, v);

    await rm(path.join(repo, 'every', '2'), { recursive: true });
    await addVersionFolder(repo, 'every', 4);
    await reload('every');
    expect(await loadedVersions('every')).toEqual(['1', '3', '4']);
    await expectAbsent('every', 2);
    await expectServedBy('every', undefined, 4);
    for (const v of [1, 3, 4]) await expectServedBy('every', v, v);
  }, 60_000);
});
