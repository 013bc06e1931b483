// What a manifest may leave out (issue 18): with a preset, preprocessing defaults to the preset's
// standard one and labels to the class indices; "imagenet" names the shipped class list; Keras
// presets get Keras's BN epsilon. Without a preset, preprocessing stays required.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import { IMAGENET_CLASSES } from '../../../src/densenet/index.ts';
import { manifestArchitecture, parseManifest } from '../../../src/inference/repository/manifest.ts';
import { ModelRepository } from '../../../src/inference/repository/model-repository.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'manifest-defaults-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function folder(name: string, manifest: object, files: Record<string, string> = { 'weights.safetensors': '' }): Promise<void> {
  await mkdir(path.join(root, name));
  await writeFile(path.join(root, name, 'manifest.json'), JSON.stringify(manifest));
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(root, name, file), text);
}

describe('manifest defaults', () => {
  it('loads the manifest a new user writes: format, preset and labels only (was: "preprocessing: expected object")', async () => {
    await folder('densenet121', { format: 'safetensors', architecture: { preset: 'densenet121' }, labels: 'imagenet' });
    const d = await new ModelRepository(root).describe('densenet121');
    // torchvision's ImageNet evaluation transform.
    expect(d.manifest.preprocessing).toEqual({
      resizeMode: 'resize-crop', resizeShorterTo: 256, interpolation: 'bilinear',
      mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], polarity: 'as-is', background: 255,
    });
    expect(d.labels).toEqual([...IMAGENET_CLASSES]);
    expect(d.labels[0]).toBe('tench');
    expect(d.labels[999]).toBe('toilet tissue');
  });

  it('gives CIFAR presets the CIFAR-10 statistics at 32², stretched, and index labels', async () => {
    await folder('cifar', { format: 'pytorch', architecture: { preset: 'densenet-bc-100-k12' } }, { 'weights.pth': '' });
    const d = await new ModelRepository(root).describe('cifar');
    expect(d.manifest.preprocessing).toMatchObject({ resizeMode: 'stretch', mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    expect(d.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(d.versions[0]!.weightsPath).toBe(path.join(await import('node:fs/promises').then((fs) => fs.realpath(root)), 'cifar', 'weights.pth'));
  });

  it('keeps the 256:224 resize ratio when an ImageNet preset takes another input size', () => {
    const m = parseManifest(JSON.stringify({ format: 'safetensors', architecture: { preset: 'densenet121', inputHeight: 112, inputWidth: 112 } }), 'm');
    expect(m.preprocessing.resizeShorterTo).toBe(128);
  });

  it('an explicit preprocessing block wins over the preset default', () => {
    const m = parseManifest(JSON.stringify({ format: 'safetensors', architecture: { preset: 'densenet121' }, preprocessing: { mean: [0.5], std: [0.5] } }), 'm');
    expect(m.preprocessing).toMatchObject({ mean: [0.5], std: [0.5], resizeMode: 'resize-crop' });
    expect(m.preprocessing.resizeShorterTo).toBeUndefined();
  });

  it('gives keras presets BN epsilon 1.001e-5 unless the manifest sets one', () => {
    const keras = parseManifest(JSON.stringify({ format: 'keras', architecture: { preset: 'densenet169' } }), 'm');
    expect(manifestArchitecture(keras)?.bnEpsilon).toBe(1.001e-5);
    const set = parseManifest(JSON.stringify({ format: 'keras', architecture: { preset: 'densenet169', bnEpsilon: 1e-3 } }), 'm');
    expect(manifestArchitecture(set)?.bnEpsilon).toBe(1e-3);
    const torch = parseManifest(JSON.stringify({ format: 'pytorch', architecture: { preset: 'densenet169' } }), 'm');
    expect(manifestArchitecture(torch)?.bnEpsilon).toBe(1e-5);
  });

  it.each([
    [{ format: 'pytorch', architecture: { growthRate: 4, blockLayers: [2], bottleneck: true, compression: 0.5, stem: 'cifar', stemChannels: 8, inputHeight: 8, inputWidth: 8, inputChannels: 3, numClasses: 2 } }, 'preprocessing: required unless architecture.preset'],
    [{ format: 'keras' }, 'architecture: required for keras weights'],
    [{ format: 'tfjs-layers', preprocessing: { mean: [0.5], std: [0.5] } }, 'labels: required when the manifest has no architecture'],
    [{ format: 'pytorch', architecture: { preset: 'densenet121' }, weights: '../x.pth' }, 'weights: must be a plain file name'],
  ])('still refuses %j', (manifest, message) => {
    let err: unknown;
    try {
      parseManifest(JSON.stringify(manifest), 'models/x/manifest.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ServeError);
    expect((err as ServeError).message).toContain(message);
  });

  it('needs the weights file of the format (weights.pth, model.keras by default)', async () => {
    await folder('keras-missing', { format: 'keras', architecture: { preset: 'densenet121' } }, {});
    await expect(new ModelRepository(root).describe('keras-missing')).rejects.toThrow(/keras-missing\/model\.keras is missing \(a keras file expected\)/);
  });
});
