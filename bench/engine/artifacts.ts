// One model's bench files, generated once and cached under bench/.cache/engine/<model>/:
//   weights.safetensors   seeded torchvision-named weights with real BN statistics (every
//                         candidate loads these)
//   check.safetensors     the seeded batch every candidate's logits are compared on
//   model.onnx            our ONNX export of the network (input NHWC)
//   saved-model/          a TensorFlow SavedModel of the network
//   cache.json            what the files were made from; a different config or seed remakes them
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseSafetensors, tensorToFloat32, type DenseNetConfig } from '../../src/densenet/index.ts';
import { exportOnnx } from '../../src/densenet/onnx-export.ts';
import type { ModelArtifacts } from './candidate.ts';
import { runPythonScript } from './python.ts';
import { loadDenseNet } from './tfjs-model.ts';

// Bump when a generator changes what it writes.
const GENERATION = 1;

export interface PreparedModel {
  name: string;
  config: DenseNetConfig;
  weightsPath: string;
  /** NHWC float32, `checkCount` images. */
  checkInput: Float32Array;
  checkCount: number;
  artifacts: ModelArtifacts;
}

export interface PrepareOptions {
  cacheDir: string;
  seed: number;
  torchPython: string;
  tfPython: string;
  log: (line: string) => void;
}

export async function prepareModel(name: string, config: DenseNetConfig, options: PrepareOptions): Promise<PreparedModel> {
  const dir = path.join(options.cacheDir, name);
  const file = (f: string) => path.join(dir, f);
  const key = JSON.stringify({ generation: GENERATION, seed: options.seed, config });
  const cached = existsSync(file('cache.json')) ? await readFile(file('cache.json'), 'utf8') : '';
  if (cached !== key || !existsSync(file('weights.safetensors')) || !existsSync(file('check.safetensors'))) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    options.log(`${name}: generating seeded weights (seed ${options.seed}) with ${options.torchPython}`);
    await runPythonScript(options.torchPython, 'make-weights.py', [
      '--config', JSON.stringify(config), '--seed', String(options.seed),
      '--weights', file('weights.safetensors'), '--check', file('check.safetensors'),
    ]);
    await writeFile(file('cache.json'), key);
  }

  const check = parseSafetensors(new Uint8Array(await readFile(file('check.safetensors')))).tensors.get('input');
  if (!check) throw new Error(`${file('check.safetensors')} has no 'input' tensor`);
  const weightsPath = file('weights.safetensors');
  // A derived file is current when it is newer than the weights it was made from.
  const current = async (p: string) => existsSync(p) && (await stat(p)).mtimeMs >= (await stat(weightsPath)).mtimeMs;
  const once = <T>(make: () => Promise<T>) => {
    let made: Promise<T> | undefined;
    return () => (made ??= make());
  };

  return {
    name,
    config,
    weightsPath,
    checkInput: tensorToFloat32(check, 'input'),
    checkCount: check.shape[0] ?? 0,
    artifacts: {
      onnx: once(async () => {
        const out = file('model.onnx');
        if (!(await current(out))) {
          options.log(`${name}: exporting ONNX (src/densenet/onnx-export.ts)`);
          const model = await loadDenseNet(config, weightsPath);
          try {
            await writeFile(out, exportOnnx(model, { inputLayout: 'nhwc' }));
          } finally {
            model.layersModel.dispose();
          }
        }
        return out;
      }),
      savedModel: once(async () => {
        const out = file('saved-model');
        if (!(await current(path.join(out, 'saved_model.pb')))) {
          options.log(`${name}: building the TF SavedModel with ${options.tfPython}`);
          await runPythonScript(options.tfPython, 'make-saved-model.py', [
            '--config', JSON.stringify(config), '--weights', weightsPath, '--out', out,
          ]);
        }
        return out;
      }),
    },
  };
}
