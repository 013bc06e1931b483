// PyTorch and our service must agree on the served model: top-1 identical on the whole
// Fashion-MNIST test set and max |Δlogit| ≤ 1e-4. PyTorch's side is
// scripts/pytorch_logits.py (the checkpoint in torchvision's layout); ours is the service
// pipeline an upload takes (PNG decode, polarity check, normalisation, batching, workers), on the
// engine plan the server would run (src/inference/engine-plan.ts) unless --executor says otherwise.
//   npx tsx scripts/compare-with-pytorch.ts [--repository models] [--model fashion-mnist-densenet] [--executor fused|layers|onnxruntime]
// Needs python3 with torch, safetensors and numpy. Exits 1 when they disagree.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { InferenceService, DEFAULT_IMAGE_LIMITS, planEngine } from '../src/inference/index.ts';
import { parseIdxDataset } from '../src/eval/idx.ts';
import { parseSafetensors, tensorToFloat32 } from '../src/densenet/index.ts';
import { silentLogger } from '../src/logger.ts';
import { availableCores } from '../src/config.ts';
import { parseExecutorName } from '../src/densenet/index.ts';

const { values: args } = parseArgs({
  options: {
    repository: { type: 'string', default: 'models' },
    model: { type: 'string', default: 'fashion-mnist-densenet' },
    data: { type: 'string', default: 'test/fixtures/fashion-mnist' },
    executor: { type: 'string' },
  },
});
const TOLERANCE = 1e-4;

const out = path.join(mkdtempSync(path.join(tmpdir(), 'compare-')), 'pytorch-logits.safetensors');
const weights = path.join(args.repository, args.model, 'weights.safetensors');
const python = spawnSync('python3', ['scripts/pytorch_logits.py', '--weights', weights, '--data', args.data, '--out', out], { stdio: 'inherit' });
if (python.status !== 0) throw new Error('scripts/pytorch_logits.py failed (needs torch, safetensors, numpy)');
const reference = parseSafetensors(readFileSync(out));
const torchLogits = tensorToFloat32(reference.tensors.get('logits')!, 'logits');

const set = parseIdxDataset(
  readFileSync(path.join(args.data, 't10k-images-idx3-ubyte.gz')),
  readFileSync(path.join(args.data, 't10k-labels-idx1-ubyte.gz')),
);
const engine = planEngine({ ENGINE_EXECUTOR: args.executor === undefined ? undefined : parseExecutorName(args.executor) }, { cores: availableCores() });
console.log(`engine: ${engine.executor} on ${engine.workers} ${engine.isolation} workers`);
const service = await InferenceService.start({
  repositoryRoot: args.repository, engine,
  hangTimeoutMs: 600_000, loadTimeoutMs: 600_000, imageLimits: DEFAULT_IMAGE_LIMITS, logger: silentLogger,
});
const classes = service.describe(args.model).labels.length;
const pixels = set.height * set.width;
let maxDiff = 0;
let top1Mismatches = 0;
let next = 0;
const argmax = (row: ArrayLike<number>) => Array.prototype.indexOf.call(row, Math.max(...Array.from(row)));
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < set.count) {
    const i = next++;
    const png = await sharp(set.images.subarray(i * pixels, (i + 1) * pixels), { raw: { width: set.width, height: set.height, channels: 1 } }).png().toBuffer();
    const ours = (await service.inferImages(args.model, [png])).logits[0]!;
    const theirs = torchLogits.subarray(i * classes, (i + 1) * classes);
    for (let c = 0; c < classes; c++) maxDiff = Math.max(maxDiff, Math.abs(ours[c]! - theirs[c]!));
    if (argmax(ours) !== argmax(theirs)) top1Mismatches++;
  }
}));
await service.close();
console.log(`${set.count} images: top-1 mismatches ${top1Mismatches}, max |Δlogit| ${maxDiff.toExponential(2)} (tolerance ${TOLERANCE})`);
const agree = top1Mismatches === 0 && maxDiff <= TOLERANCE;
console.log(agree ? 'PyTorch and the service agree' : 'PyTorch and the service DISAGREE');
process.exit(agree ? 0 : 1);
