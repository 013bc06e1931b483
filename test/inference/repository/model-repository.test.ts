import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRepository } from '../../../src/inference/repository/model-repository.ts';
import { parseManifest } from '../../../src/inference/repository/manifest.ts';
import { ServeError } from '../../../src/errors.ts';
import { useNativeEngine } from '../../helpers/engine.ts';
import { TINY_ARCHITECTURE, TINY_LABELS, writeTinyModelFolder } from '../../helpers/tiny-model.ts';

await useNativeEngine();

async function failure(promise: Promise<unknown>): Promise<ServeError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ServeError)) throw new Error(`expected a ServeError, got ${String(err)}`);
  return err;
}

const validManifest = {
  format: 'safetensors',
  architecture: { preset: 'densenet-bc-100-k12' },
  labels: 'labels.txt',
  preprocessing: { mean: [0.5], std: [0.25] },
};

describe('manifest', () => {
  it('fills named defaults', () => {
    const m = parseManifest(JSON.stringify(validManifest), 'm');
    expect(m.batching).toEqual({ maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 256 });
    expect(m.versionPolicy).toEqual({ latest: 1 });
    expect(m.preprocessing.resizeMode).toBe('resize-crop');
  });

  it.each([
    [{ colour: 'rgb' }, 'colour'],
    [{ format: 'onnx' }, 'format'],
    [{ architecture: undefined }, 'architecture'],
    [{ architecture: { preset: 'resnet50' } }, 'architecture'],
    [{ labels: '../labels.txt' }, 'labels'],
    [{ weights: '../../etc/passwd' }, 'weights'],
    [{ batching: { maxBatchSize: 0 } }, 'batching.maxBatchSize'],
    [{ batching: { maxBatchSize: 4, preferredBatchSizes: [8] } }, 'batching.preferredBatchSizes.0'],
    [{ preprocessing: { mean: [0.5, 0.5], std: [0.25] } }, 'preprocessing.std'],
    [{ preprocessing: { mean: [0.5], std: [0] } }, 'preprocessing.std'],
    [{ versionPolicy: { latest: 0 } }, 'versionPolicy'],
  ])('rejects %j naming %s', (patch, field) => {
    let err: unknown;
    try {
      parseManifest(JSON.stringify({ ...validManifest, ...patch }), 'models/x/manifest.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ServeError);
    expect((err as ServeError).code).toBe('INVALID_MODEL_FILE');
    expect((err as ServeError).message).toContain('models/x/manifest.json');
    expect((err as ServeError).message).toContain(field);
  });

  it('rejects text that is not JSON', () => {
    expect(() => parseManifest('{ nope', 'm.json')).toThrow(/m.json: not valid JSON/);
  });
});

describe('model repository', () => {
  let root: string;
  let outside: string;
  let repo: ModelRepository;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'repo-'));
    outside = await mkdtemp(path.join(tmpdir(), 'outside-'));
    await writeTinyModelFolder(root, 'tiny');
    await writeTinyModelFolder(root, 'versioned', { versions: [1, 2, 10], manifest: { versionPolicy: { latest: 2 } } });
    await writeTinyModelFolder(root, 'all-versions', { versions: [3, 1], manifest: { versionPolicy: 'all' } });
    // Broken folders: each must be reported and skipped, never take the others down.
    await mkdir(path.join(root, 'no-manifest'));
    await writeTinyModelFolder(root, 'bad-labels', { manifest: { labels: ['a', 'b'] } });
    await writeTinyModelFolder(root, 'no-weights', { manifest: { weights: 'missing.safetensors' } });
    // Escapes: a model folder that is a symlink out of the repository, and a weights symlink out.
    await writeTinyModelFolder(outside, 'elsewhere');
    await symlink(path.join(outside, 'elsewhere'), path.join(root, 'linked-out'));
    await writeTinyModelFolder(root, 'weights-out');
    await rm(path.join(root, 'weights-out', 'weights.safetensors'));
    await symlink(path.join(outside, 'elsewhere', 'weights.safetensors'), path.join(root, 'weights-out', 'weights.safetensors'));
    await writeFile(path.join(root, 'README.txt'), 'not a model');
    repo = new ModelRepository(root);
  }, 60_000);

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('indexes every folder and says why the broken ones are skipped', async () => {
    const index = await repo.index();
    const byName = Object.fromEntries(index.map((e) => [e.name, e.error]));
    expect(Object.keys(byName).sort()).toEqual(['all-versions', 'bad-labels', 'linked-out', 'no-manifest', 'no-weights', 'tiny', 'versioned', 'weights-out']);
    expect(byName.tiny).toBeUndefined();
    expect(byName.versioned).toBeUndefined();
    expect(byName['no-manifest']).toContain('manifest.json is missing');
    expect(byName['bad-labels']).toContain('2 labels for 3 classes');
    expect(byName['no-weights']).toContain('missing.safetensors is missing');
    expect(byName['linked-out']).toContain('outside the model repository');
    expect(byName['weights-out']).toContain('outside the model repository');
  });

  it('describes a model: architecture, labels, version 1 when unversioned', async () => {
    const d = await repo.describe('tiny');
    expect(d.architecture?.growthRate).toBe(TINY_ARCHITECTURE.growthRate);
    expect(d.labels).toEqual(TINY_LABELS);
    expect(d.versions.map((v) => v.version)).toEqual(['1']);
    expect(d.versions[0]?.weightsPath).toBe(path.join(await import('node:fs/promises').then((fs) => fs.realpath(root)), 'tiny', 'weights.safetensors'));
  });

  it('serves the newest versions by the version policy, in numeric order', async () => {
    expect((await repo.describe('versioned')).versions.map((v) => v.version)).toEqual(['2', '10']);
    expect((await repo.describe('all-versions')).versions.map((v) => v.version)).toEqual(['1', '3']);
  });

  it.each(['../tiny', '..', 'a/b', '/etc', '.hidden', 'x'.repeat(200), 'tiny\u0000'])('refuses the model name %j', async (name) => {
    const err = await failure(repo.describe(name));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toContain('not a valid model name');
  });

  it('answers MODEL_NOT_FOUND for a model that is not there', async () => {
    expect((await failure(repo.describe('absent'))).code).toBe('MODEL_NOT_FOUND');
  });
});
