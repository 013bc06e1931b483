// The import command: detects the format, writes a folder the repository reads (manifest +
// torchvision-named safetensors carrying the source's sha256), lists every mismatch at once,
// refuses to overwrite, and the CLI prints the curl line (run as a real process once).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServeError } from '../../../src/errors.ts';
import { detectWeightsFormat, parseSafetensors, tensorToFloat32 } from '../../../src/densenet/index.ts';
import { readPytorchCheckpoint } from '../../../src/densenet/pytorch-checkpoint.ts';
import { importModel } from '../../../src/inference/repository/model-import.ts';
import { ModelRepository } from '../../../src/inference/repository/model-repository.ts';
import { parseImportArgs } from '../../../src/import-cli.ts';
import { fixture, readFixtureIo } from '../../helpers/import-fixtures.ts';

let repo: string;
beforeAll(async () => {
  repo = await mkdtemp(path.join(tmpdir(), 'import-'));
});
afterAll(async () => {
  await rm(repo, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<ServeError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ServeError)) throw new Error(`expected a ServeError, got ${err instanceof Error ? err.stack : String(err)}`);
  return err;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const tiny = readFixtureIo('tiny.zip.pth').config;
const tinyKeras = readFixtureIo('tiny.keras').config;

describe('format detection', () => {
  it.each([
    ['tiny.zip.pth', 'pytorch'], ['tiny.legacy.pth', 'pytorch'], ['tiny.state-dict-bf16.legacy.pth', 'pytorch'],
    ['tiny.keras', 'keras'], ['tiny.h5', 'keras'], ['tiny.weights.h5', 'keras'],
    ['tiny.zip.io.safetensors', 'safetensors'],
  ])('%s is %s', async (file, format) => {
    expect(await detectWeightsFormat(fixture(file))).toBe(format);
  });

  it('refuses a file of no known format', async () => {
    const file = path.join(repo, 'notes.txt');
    await writeFile(file, 'not weights at all');
    expect((await refusal(detectWeightsFormat(file))).message).toMatch(/not a checkpoint this server reads/);
  });
});

describe('importModel', () => {
  it('writes a folder the repository serves: safetensors under torchvision names, the source sha256, the tensors as read', async () => {
    const result = await importModel({ source: fixture('tiny.legacy.pth'), architecture: tiny, name: 'from-legacy', repository: repo });
    expect(result).toMatchObject({ format: 'pytorch', source: 'pytorch legacy format', tensors: 56, sha256: sha256(fixture('tiny.legacy.pth')) });
    const descriptor = await new ModelRepository(repo).describe('from-legacy');
    expect(descriptor.manifest.format).toBe('safetensors');
    expect(descriptor.labels).toEqual(['0', '1', '2']);
    const weights = parseSafetensors(readFileSync(path.join(repo, 'from-legacy', 'weights.safetensors')));
    expect(weights.metadata).toMatchObject({ source_file: 'tiny.legacy.pth', source_sha256: result.sha256, source_format: 'pytorch legacy format' });
    // Legacy norm.1 names became today's; values are the checkpoint's (its zip twin's) exactly.
    const zip = await readPytorchCheckpoint(readFileSync(fixture('tiny.zip.pth')));
    for (const [name, raw] of zip.tensors) {
      if (name.endsWith('num_batches_tracked')) continue;
      expect(tensorToFloat32(weights.tensors.get(name)!, name), name).toEqual(tensorToFloat32(raw, name));
    }
    expect(await readdir(repo)).not.toContainEqual(expect.stringMatching(/^\.import-/));
  });

  it('writes the Keras preprocessing and epsilon into the manifest', async () => {
    const { manifest } = await importModel({ source: fixture('tiny.keras'), architecture: { ...tinyKeras, bnEpsilon: 1e-5 }, name: 'from-keras', repository: repo });
    expect(manifest.architecture).toMatchObject({ bnEpsilon: 1.001e-5, blockLayers: [1, 1, 1, 1] });
    expect(manifest.description).toMatch(/keras\.applications\.densenet\.preprocess_input \(mode "torch"/);
    expect(manifest.preprocessing).toMatchObject({ resizeMode: 'resize-crop', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });

  it('writes a presets manifest with ImageNet labels, or a copied labels file', async () => {
    // DenseNet-121's full checkpoint is too big for a fixture: the preset path is checked with a
    // file that does not match, and with a labels file for the tiny net.
    const err = await refusal(importModel({ source: fixture('tiny.zip.pth'), preset: 'densenet121', name: 'nope', repository: repo, labels: 'imagenet' }));
    expect(err.message).toMatch(/missing tensors: features\.denseblock1\.denselayer3/);
    expect(err.message).toMatch(/wrong shapes: tensor 'features\.conv0\.weight' has shape \[8, 3, 7, 7\], the architecture needs \[64, 3, 7, 7\]/);
    expect(existsSync(path.join(repo, 'nope'))).toBe(false);
    const labels = path.join(repo, 'shapes.txt');
    await writeFile(labels, 'circle\nsquare\n\ntriangle\n');
    await importModel({ source: fixture('tiny.zip.pth'), architecture: tiny, name: 'labelled', repository: repo, labels });
    expect((await new ModelRepository(repo).describe('labelled')).labels).toEqual(['circle', 'square', 'triangle']);
    const wrong = await refusal(importModel({ source: fixture('tiny.zip.pth'), architecture: tiny, name: 'x', repository: repo, labels: 'imagenet' }));
    expect(wrong.message).toMatch(/'imagenet' names 1000 classes, the model has 3/);
  });

  it('lists missing, unexpected and wrong-shape tensors together, and hints --num-classes for a classifier', async () => {
    // Blocks [3, 1] instead of [2, 2], 5 classes instead of 3.
    const err = await refusal(importModel({ source: fixture('tiny.zip.pth'), architecture: { ...tiny, numClasses: 5, blockLayers: [3, 1] }, name: 'y', repository: repo }));
    expect(err.message).toMatch(/missing tensors: features\.denseblock1\.denselayer3\..*unexpected tensors: features\.denseblock2\.denselayer2\..*wrong shapes: tensor 'features\.transition1\.norm\.weight' has shape \[16\], the architecture needs \[20\]/s);
    expect(err.details.wrongShape).toContainEqual("tensor 'classifier.weight' has shape [3, 16], the architecture needs [5, 14]");
    expect(err.message).toMatch(/pass --num-classes/);
  });

  it('refuses to replace a model folder unless forced', async () => {
    await importModel({ source: fixture('tiny.zip.pth'), architecture: tiny, name: 'twice', repository: repo });
    const err = await refusal(importModel({ source: fixture('tiny.wrapped-f16.pth'), architecture: tiny, name: 'twice', repository: repo }));
    expect(err.message).toMatch(/already exists \(pass --force/);
    const forced = await importModel({ source: fixture('tiny.wrapped-f16.pth'), architecture: tiny, name: 'twice', repository: repo, force: true });
    expect(forced.source).toBe("pytorch zip format (the state_dict under 'model')");
    expect(parseSafetensors(readFileSync(path.join(repo, 'twice', 'weights.safetensors'))).metadata.source_file).toBe('tiny.wrapped-f16.pth');
  });
});

describe('import CLI', () => {
  it('parses its arguments and refuses bad ones', () => {
    expect(parseImportArgs(['a.pth', '--preset', 'densenet121', '--name=m', '--labels', 'imagenet', '--force'], { repository: 'models' }))
      .toMatchObject({ source: 'a.pth', preset: 'densenet121', name: 'm', labels: 'imagenet', repository: 'models', force: true });
    expect(() => parseImportArgs(['a.pth', '--preset', 'resnet50', '--name', 'm'], { repository: 'models' })).toThrow(/--preset must be one of densenet121/);
    expect(() => parseImportArgs(['--preset', 'densenet121', '--name', 'm'], { repository: 'models' })).toThrow(/weights file is missing/);
    expect(() => parseImportArgs(['a.pth', '--preset', 'densenet121', '--name', 'm', '--colour', 'red'], { repository: 'models' })).toThrow(/unknown option --colour/);
    expect(() => parseImportArgs(['a.pth', '--preset', 'densenet121', '--name', 'm', '--num-classes', '0'], { repository: 'models' })).toThrow(/positive integer/);
  });

  it('imports from the command line and prints the curl line; a failure exits 1 with the reason', async () => {
    const run = promisify(execFile);
    const cli = path.resolve('src/import-cli.ts');
    const arch = path.join(repo, 'arch.json');
    await writeFile(arch, JSON.stringify(tiny));
    const env = { ...process.env, HTTP_PORT: '9123' };
    const ok = await run('npx', ['tsx', cli, fixture('tiny.zip.pth'), '--architecture', arch, '--name', 'cli-model', '--repository', repo], { env });
    expect(ok.stdout).toContain(`imported ${fixture('tiny.zip.pth')} (pytorch zip format) as ${path.join(repo, 'cli-model')}`);
    expect(ok.stdout).toContain("curl -T photo.jpg 'http://localhost:9123/v1/models/cli-model/classify?top_k=5'");
    const bad = await run('npx', ['tsx', cli, fixture('hostile/os-system.pth'), '--architecture', arch, '--name', 'cli-bad', '--repository', repo], { env })
      .then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(bad?.code).toBe(1);
    expect(bad?.stderr).toMatch(/import failed: .*'posix\.system', which is not allowed/);
    expect(existsSync(path.join(repo, 'cli-bad'))).toBe(false);
  });
});
