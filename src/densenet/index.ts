// Public surface of the DenseNet family: configs and presets, the layer plan, the tfjs model,
// weights in and out (torchvision safetensors, PyTorch .pth, Keras .keras/.h5, tfjs LayersModel),
// and the ImageNet class names.
export { parseDenseNetConfig, DenseNetConfigSchema, type DenseNetConfig, type DenseNetConfigInput } from './config.ts';
export { PRESETS, PRESET_NAMES, presetConfig, isPresetName, type PresetName, type PresetOverrides } from './presets.ts';
export { planDenseNet, paramTensors, countParameters, type DenseNetPlan } from './architecture.ts';
export { buildDenseNet, type DenseNetModel } from './model.ts';
export { loadTorchvisionWeights, exportTorchvisionWeights, readTorchvisionState, canonicalTorchvisionKey } from './torchvision-weights.ts';
export { saveLayersModel, loadLayersModel, type LoadedLayersModel } from './layers-format.ts';
export { parseSafetensors, serializeSafetensors, tensorToFloat32 } from './safetensors.ts';
export {
  loadWeightsFile, readCheckpointFile, validateCheckpointFile, detectWeightsFormat, WEIGHTS_FORMATS, type WeightsFormat, type ReadCheckpoint,
} from './weights-file.ts';
export { KERAS_BN_EPSILON } from './keras-checkpoint.ts';
export { IMAGENET_CLASSES } from './imagenet-classes.ts';
export { compileDenseNet, type CompiledDenseNet } from './compiled-densenet.ts';
export { EXECUTORS, parseExecutorName, fusedRunner, layersRunner, type DenseNetRunner, type ExecutorName } from './runner.ts';
export { onnxRunner } from './onnx-runner.ts';
