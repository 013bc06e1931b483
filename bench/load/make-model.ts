// Writes <dir>/weights.safetensors for a DenseNet preset with its initial (random) weights:
// compute time does not depend on the values. Run as a child process by model-repo.ts, so the
// load generator itself never loads TensorFlow.
//   node --import tsx bench/load/make-model.ts <preset> <dir>
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initEngine } from '../../src/densenet/tf-runtime.ts';
import { buildDenseNet, exportTorchvisionWeights, isPresetName, presetConfig } from '../../src/densenet/index.ts';

const [preset, dir] = process.argv.slice(2);
if (!preset || !dir || !isPresetName(preset)) throw new Error('usage: make-model.ts <preset> <dir>');
await initEngine({ backend: 'tensorflow', intraOpThreads: 0, interOpThreads: 1, oneDnn: false });
const model = buildDenseNet(presetConfig(preset));
const target = path.join(dir, 'weights.safetensors');
await writeFile(`${target}.tmp`, exportTorchvisionWeights(model));
await rename(`${target}.tmp`, target);
model.layersModel.dispose();
