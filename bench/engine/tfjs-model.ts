// The tfjs LayersModel of a config with the bench's weights: what `ours`, `tfjs-layers` and
// the ONNX export start from.
import { readFile } from 'node:fs/promises';
import { buildDenseNet, loadTorchvisionWeights, type DenseNetConfig, type DenseNetModel } from '../../src/densenet/index.ts';

export async function loadDenseNet(config: DenseNetConfig, weightsPath: string): Promise<DenseNetModel> {
  const model = buildDenseNet(config);
  try {
    loadTorchvisionWeights(model, new Uint8Array(await readFile(weightsPath)));
  } catch (err) {
    model.layersModel.dispose();
    throw err;
  }
  return model;
}
