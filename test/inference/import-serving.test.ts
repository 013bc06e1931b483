// PyTorch and Keras files through the running service (startServer, a real HTTP socket, worker
// processes): every framework-made fixture served as it is (format pytorch / keras) and after
// `npm run import` (safetensors) answers with the framework's own logits within
// 1e-4 · max(1, |logit|); hostile files in the same repository fail to load with an error that
// names the problem, create nothing, and the server goes on serving the others.
import { copyFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importModel } from '../../src/inference/repository/model-import.ts';
import { expectLogitsClose, maxAbsDiff } from '../helpers/logits.ts';
import { KERAS_FIXTURES, PYTORCH_FIXTURES, fixture, readFixtureIo, type ImportFixture } from '../helpers/import-fixtures.ts';
import { startRealServer, type RealServer } from '../security/real-server.ts';

interface Served {
  model: string;
  fixture: ImportFixture;
  via: 'served as is' | 'imported';
}

const served: Served[] = [];
const HOSTILE = [
  { model: 'bad-os-system', file: 'hostile/os-system.pth', format: 'pytorch', expect: /'posix\.system'.*not allowed/, marker: 'os-system' },
  { model: 'bad-eval', file: 'hostile/builtins-eval.legacy.pth', format: 'pytorch', expect: /'__builtin__\.eval'.*not allowed/, marker: 'eval' },
  { model: 'bad-popen', file: 'hostile/subprocess-popen.pth', format: 'pytorch', expect: /'subprocess\.Popen'.*not allowed/, marker: 'popen' },
  { model: 'bad-whole-model', file: 'hostile/whole-model.pth', format: 'pytorch', expect: /'torchvision\.models\.densenet\.DenseNet'/ },
  { model: 'bad-short-storage', file: 'hostile/short-storage.pth', format: 'pytorch', expect: /holds 2352 bytes, but the checkpoint declares/ },
  { model: 'bad-zip-bomb', file: 'hostile/zip-bomb-lying.pth', format: 'pytorch', expect: /not the size it declares/ },
  { model: 'bad-truncated-zip', file: 'truncated:tiny.zip.pth', format: 'pytorch', expect: /truncated|not a readable zip/ },
  { model: 'bad-truncated-keras', file: 'truncated:tiny.keras', format: 'keras', expect: /truncated|not a readable zip/ },
  { model: 'bad-other-architecture', file: 'hostile/other-architecture.keras', format: 'keras', expect: /'mobilenet_tiny'.*not a keras\.applications DenseNet/ },
] as const;

let repo: string;
let s: RealServer;
let base: string;

async function addModel(name: string, format: string, file: string, config: object): Promise<void> {
  const dir = path.join(repo, name);
  await mkdir(dir);
  const weights = format === 'keras' ? `model${path.extname(file)}` : 'weights.pth';
  if (file.startsWith('truncated:')) {
    const whole = readFileSync(fixture(file.slice('truncated:'.length)));
    writeFileSync(path.join(dir, weights), whole.subarray(0, Math.floor(whole.length * 0.6)));
  } else {
    copyFileSync(fixture(file), path.join(dir, weights));
  }
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({
    format, weights, architecture: config,
    // Tensors are sent already normalised; preprocessing is required without a preset.
    preprocessing: { resizeMode: 'stretch', mean: [0.5], std: [0.25] },
    batching: { maxBatchSize: 2 },
  }));
}

beforeAll(async () => {
  repo = await mkdtemp(path.join(tmpdir(), 'import-serving-'));
  for (const [i, f] of [...PYTORCH_FIXTURES, ...KERAS_FIXTURES].entries()) {
    const model = `${f.framework}-${i}`;
    await addModel(model, f.format, f.file, readFixtureIo(f.file).config);
    served.push({ model, fixture: f, via: 'served as is' });
  }
  // The same files through the import command's code: safetensors folders.
  for (const f of [PYTORCH_FIXTURES[1]!, PYTORCH_FIXTURES[2]!, KERAS_FIXTURES[0]!, KERAS_FIXTURES[3]!]) {
    const model = `imported-${served.length}`;
    await importModel({ source: fixture(f.file), architecture: readFixtureIo(f.file).config, name: model, repository: repo });
    served.push({ model, fixture: f, via: 'imported' });
  }
  const tiny = readFixtureIo('tiny.zip.pth').config;
  const keras = readFixtureIo('tiny.keras').config;
  for (const h of HOSTILE) await addModel(h.model, h.format, h.file, h.format === 'keras' ? keras : tiny);
  for (const h of HOSTILE) if ('marker' in h) rmSync(`/tmp/densenet-serve-pickle-ran-${h.marker}`, { force: true });
  s = await startRealServer({ WORKERS: '1' }, { repo, logLevel: 'silent' });
  base = `http://127.0.0.1:${s.server.httpPort}`;
});

afterAll(async () => {
  await s?.close();
  await rm(repo, { recursive: true, force: true });
});

async function infer(model: string, file: string): Promise<{ status: number; logits?: Float32Array; error?: string }> {
  const io = readFixtureIo(file);
  const res = await fetch(`${base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: io.inputShape, data: [...io.input] }], outputs: [{ name: 'logits' }] }),
  });
  const body = (await res.json()) as { outputs?: Array<{ data: number[]; shape: number[] }>; error?: string };
  if (res.status !== 200) return { status: res.status, error: body.error };
  expect(body.outputs![0]!.shape).toEqual([io.inputShape[0], io.classes]);
  return { status: 200, logits: Float32Array.from(body.outputs![0]!.data) };
}

describe('PyTorch and Keras models through the service', () => {
  it("answers every fixture with the framework's logits (1e-4 · max(1, |logit|))", async () => {
    const worst: Record<string, number> = {};
    for (const { model, fixture: f, via } of served) {
      const io = readFixtureIo(f.file);
      const answer = await infer(model, f.file);
      expect(answer.status, `${model} (${f.file}, ${via}): ${answer.error}`).toBe(200);
      expectLogitsClose(answer.logits!, io.logits);
      worst[f.framework] = Math.max(worst[f.framework] ?? 0, maxAbsDiff(answer.logits!, io.logits));
    }
    expect(served).toHaveLength(12);
    // For the record (issue 18's closing note): max |Δlogit| per framework over all its files.
    console.info(`max |Δlogit| vs the framework: ${JSON.stringify(worst)}`);
  });

  it('labels classes by index when the manifest has no labels', async () => {
    const res = await fetch(`${base}/v2/models/${served[0]!.model}`);
    expect(res.status).toBe(200);
    const cls = await fetch(`${base}/v2/models/${served[0]!.model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 32, 32, 3], data: [...readFixtureIo('tiny.zip.pth').input.subarray(0, 32 * 32 * 3)] }],
        outputs: [{ name: 'logits', parameters: { classification: 3 } }],
      }),
    });
    const body = (await cls.json()) as { outputs: Array<{ data: string[] }> };
    // Classification strings are "score:index:label"; the label is the index itself.
    const labels = body.outputs[0]!.data.map((d) => d.split(':'));
    expect(labels).toHaveLength(3);
    for (const [, index, label] of labels) expect(label).toBe(index);
  });

  it('refuses every hostile file by name, runs nothing, and keeps serving the others', async () => {
    const index = await fetch(`${base}/v2/repository/index`, { method: 'POST' });
    const states = new Map(((await index.json()) as Array<{ name: string; state: string; reason?: string }>).map((m) => [m.name, m]));
    for (const h of HOSTILE) {
      // Loaded at start: failed, with the reason.
      expect(states.get(h.model)?.state, h.model).toBe('UNAVAILABLE');
      expect(states.get(h.model)?.reason, h.model).toMatch(h.expect);
      // Loaded again on request: the same clear error, as a 400.
      const res = await fetch(`${base}/v2/repository/models/${h.model}/load`, { method: 'POST' });
      expect(res.status, h.model).toBe(400);
      expect(((await res.json()) as { error: string }).error, h.model).toMatch(h.expect);
      expect((await infer(h.model, 'tiny.zip.pth')).status, h.model).toBe(503);
    }
    await new Promise((resolve) => setTimeout(resolve, 200)); // Popen would touch its marker asynchronously
    for (const h of HOSTILE) if ('marker' in h) expect(existsSync(`/tmp/densenet-serve-pickle-ran-${h.marker}`), h.model).toBe(false);
    // Still serving, with the right numbers.
    for (const { model, fixture: f } of [served[0]!, served[5]!]) {
      const answer = await infer(model, f.file);
      expect(answer.status).toBe(200);
      expectLogitsClose(answer.logits!, readFixtureIo(f.file).logits);
    }
    expect((await fetch(`${base}/v2/health/ready`)).status).toBe(200);
  });
});
