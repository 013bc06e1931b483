// Writes a model repository with one generated DenseNet (random weights: speed does not depend
// on values) for the chaos runs, in a child process so the runner itself never loads TensorFlow.
//   node --import tsx test/chaos/harness/make-model.ts <dir> <preset> <maxBatchSize> <maxQueueSize>
// Prints one JSON line: { model, shape, maxBatchSize, maxQueueSize }.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initEngine } from '../../../src/densenet/tf-runtime.ts';
import { buildDenseNet, exportTorchvisionWeights, isPresetName, presetConfig } from '../../../src/densenet/index.ts';

export const CHAOS_MODEL = 'chaos-densenet';

const [dir, preset, maxBatchSize, maxQueueSize] = process.argv.slice(2);
if (!dir || !preset || !maxBatchSize || !maxQueueSize) throw new Error('usage: make-model.ts <dir> <preset> <maxBatchSize> <maxQueueSize>');
if (!isPresetName(preset)) throw new Error(`unknown DenseNet preset '${preset}'`);
await initEngine({ backend: 'tensorflow', intraOpThreads: 1, interOpThreads: 1, oneDnn: false });
const config = presetConfig(preset);
const model = buildDenseNet(config);
const folder = path.join(dir, CHAOS_MODEL);
await mkdir(folder, { recursive: true });
await writeFile(path.join(folder, 'weights.safetensors'), exportTorchvisionWeights(model));
model.layersModel.dispose();
const channels = config.inputChannels;
const batching = { maxBatchSize: Number(maxBatchSize), maxQueueDelayMs: 0, maxQueueSize: Number(maxQueueSize) };
await writeFile(path.join(folder, 'manifest.json'), JSON.stringify({
  format: 'safetensors',
  architecture: { preset },
  labels: Array.from({ length: config.numClasses }, (_, i) => `class-${i}`),
  preprocessing: { resizeMode: 'stretch', mean: Array(channels).fill(0.5), std: Array(channels).fill(0.25) },
  batching,
}, null, 2));
process.stdout.write(`${JSON.stringify({ model: CHAOS_MODEL, shape: [config.inputHeight, config.inputWidth, channels], ...batching })}\n`);
