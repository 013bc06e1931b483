// Writes the ONNX file our server would run for a model (src/densenet/onnx-export.ts, NHWC
// input: what an onnxruntime worker exports in memory) from the same weights file the load
// bench's repository holds, so the peers serve exactly our network and weights. Run as a child
// process by onnx-model.ts: the load generator itself never builds a network.
//   node --import tsx bench/peers/make-onnx.ts <preset> <weights.safetensors> <out.onnx>
import { readFile, rename, writeFile } from 'node:fs/promises';
import { buildDenseNet, isPresetName, loadTorchvisionWeights, presetConfig } from '../../src/densenet/index.ts';
import { exportOnnx } from '../../src/densenet/onnx-export.ts';
import { initEngine } from '../../src/densenet/tf-runtime.ts';

const [preset, weights, out] = process.argv.slice(2);
if (!preset || !weights || !out || !isPresetName(preset)) throw new Error('usage: make-onnx.ts <preset> <weights.safetensors> <out.onnx>');
// The pure-JS backend is enough to hold weights; nothing is computed (as in an onnxruntime worker).
await initEngine({ backend: 'cpu', intraOpThreads: 1, interOpThreads: 1, oneDnn: false });
const model = buildDenseNet(presetConfig(preset));
try {
  loadTorchvisionWeights(model, new Uint8Array(await readFile(weights)));
  await writeFile(`${out}.tmp`, exportOnnx(model, { inputLayout: 'nhwc' }));
  await rename(`${out}.tmp`, out);
} finally {
  model.layersModel.dispose();
}
