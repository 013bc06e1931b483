// The framework-made import fixtures (test/fixtures/import/, scripts/make-import-fixtures.py):
// which file is which format, its architecture, and the input and logits the framework
// recorded next to it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, tensorToFloat32, type DenseNetConfigInput, type WeightsFormat } from '../../src/densenet/index.ts';

export const IMPORT_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/import');
export const fixture = (name: string) => path.join(IMPORT_FIXTURES, name);

export interface ImportFixture {
  file: string;
  format: WeightsFormat;
  /** The framework that wrote it, for reports. */
  framework: 'pytorch' | 'keras';
  what: string;
}

export const PYTORCH_FIXTURES: ImportFixture[] = [
  { file: 'tiny.zip.pth', format: 'pytorch', framework: 'pytorch', what: 'zip format, F32 state_dict' },
  { file: 'tiny.legacy.pth', format: 'pytorch', framework: 'pytorch', what: 'legacy format, norm.1 keys, shared and strided storages' },
  { file: 'tiny.wrapped-f16.pth', format: 'pytorch', framework: 'pytorch', what: "zip format, {'model': module.-prefixed F16}" },
  { file: 'tiny.state-dict-bf16.legacy.pth', format: 'pytorch', framework: 'pytorch', what: "legacy format, {'state_dict': BF16}" },
];

export const KERAS_FIXTURES: ImportFixture[] = [
  { file: 'tiny.keras', format: 'keras', framework: 'keras', what: 'Keras 3 .keras archive' },
  { file: 'tiny.h5', format: 'keras', framework: 'keras', what: 'HDF5 model file (Keras 2 layout, model_config)' },
  { file: 'tiny.weights.h5', format: 'keras', framework: 'keras', what: 'Keras 3 .weights.h5, float16' },
  { file: 'tiny.keras2-names.h5', format: 'keras', framework: 'keras', what: "Keras 2 weights layout, tf.keras names ('conv1/conv', ':0'), float16" },
];

export interface FixtureIo {
  input: Float32Array;
  /** NHWC. */
  inputShape: [number, number, number, number];
  logits: Float32Array;
  classes: number;
  config: DenseNetConfigInput;
  metadata: Record<string, string>;
}

/** `<file>.io.safetensors` (the .pth ones drop the extension: tiny.zip.pth → tiny.zip.io…). */
export function readFixtureIo(file: string): FixtureIo {
  const stem = file.endsWith('.pth') ? file.slice(0, -'.pth'.length) : file;
  const io = parseSafetensors(readFileSync(fixture(`${stem}.io.safetensors`)));
  const input = io.tensors.get('input');
  const logits = io.tensors.get('logits');
  if (!input || !logits) throw new Error(`${stem}.io.safetensors lacks input or logits`);
  return {
    input: tensorToFloat32(input, 'input'),
    inputShape: input.shape as [number, number, number, number],
    logits: tensorToFloat32(logits, 'logits'),
    classes: logits.shape[1] as number,
    config: JSON.parse(io.metadata.config as string) as DenseNetConfigInput,
    metadata: io.metadata,
  };
}
