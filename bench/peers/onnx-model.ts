// The model the peers serve: the ONNX file our server would run for the load bench's model
// (make-onnx.ts, from the very weights file in its repository), in bench/.cache/peers/<model>/,
// remade when the weights are newer; and the repository's manifest.json, from which the peers
// read labels and the preprocessing recipe.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { isPresetName } from '../../src/densenet/index.ts';
import { CACHE_DIR, type RepositoryChoice } from '../load/model-repo.ts';
import { REPO_ROOT } from '../load/server-process.ts';

export interface PeerModel {
  onnx: string;
  manifest: string;
}

export async function peerModel(model: string, repo: RepositoryChoice, log: (line: string) => void): Promise<PeerModel> {
  if (!isPresetName(model)) {
    throw new Error(`the peers serve DenseNet presets only (their preprocessing is resize-crop from the manifest); '${model}' is not one`);
  }
  const dir = path.join(repo.root, repo.name);
  const weights = path.join(dir, 'weights.safetensors');
  const manifest = path.join(dir, 'manifest.json');
  const out = path.join(CACHE_DIR, 'peers', model, 'model.onnx');
  const current = existsSync(out) && (await stat(out)).mtimeMs >= (await stat(weights)).mtimeMs;
  if (!current) {
    await mkdir(path.dirname(out), { recursive: true });
    log(`peers: exporting ${model} to ONNX from ${path.relative(REPO_ROOT, weights)} (src/densenet/onnx-export.ts, NHWC)`);
    await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench/peers/make-onnx.ts'), model, weights, out], { cwd: REPO_ROOT });
  }
  return { onnx: out, manifest };
}
