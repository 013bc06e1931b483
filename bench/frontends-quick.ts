// A quick look at what the transports cost: the same model at saturation (32 concurrent
// closed-loop callers, one image per request) through the in-process pipeline, REST (V2 infer
// with the binary-data extension) and gRPC (ModelInfer with raw_input_contents), in one run.
// The full load generator (open loop, percentiles, sweeps) is the performance work's.
//   npx tsx bench/frontends-quick.ts [--preset densenet-bc-100-k12] [--seconds 8]
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { initEngine } from '../src/densenet/tf-runtime.ts';
import { buildDenseNet, exportTorchvisionWeights, isPresetName, presetConfig } from '../src/densenet/index.ts';
import { availableCores, loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/logger.ts';
import { startServer } from '../src/main.ts';
import { loadProtos } from '../src/api/grpc/proto.ts';
import { InferenceService, DEFAULT_IMAGE_LIMITS, planEngine } from '../src/inference/index.ts';

const { values: args } = parseArgs({
  options: { preset: { type: 'string', default: 'densenet-bc-100-k12' }, seconds: { type: 'string', default: '8' } },
});
const preset = args.preset;
if (!isPresetName(preset)) throw new Error(`unknown preset ${preset}`);
const ms = Number(args.seconds) * 1000;
const CALLERS = 32;

await initEngine({ backend: 'tensorflow', intraOpThreads: 0, interOpThreads: 1, oneDnn: false });
const cfg = presetConfig(preset);
const { inputHeight: h, inputWidth: w, inputChannels: c } = cfg;
const root = await mkdtemp(path.join(tmpdir(), 'bench-frontends-'));
const model = buildDenseNet(cfg);
await mkdir(path.join(root, 'm'));
await writeFile(path.join(root, 'm', 'weights.safetensors'), exportTorchvisionWeights(model));
model.layersModel.dispose();
await writeFile(path.join(root, 'm', 'manifest.json'), JSON.stringify({
  format: 'safetensors', architecture: { preset }, labels: Array.from({ length: cfg.numClasses }, (_, i) => `c${i}`),
  preprocessing: { mean: [0.5], std: [0.25] }, batching: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 1024 },
}));

async function closedLoop(call: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + ms;
  let done = 0;
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    while (performance.now() < end) {
      await call();
      done++;
    }
  }));
  return (done * 1000) / ms;
}

const pixels = new Float32Array(h * w * c).map(() => Math.random());
const raw = Buffer.from(pixels.buffer);

// In-process pipeline, as the frontends call it.
const service = await InferenceService.start({
  repositoryRoot: root, engine: planEngine({ ENGINE_EXECUTOR: 'fused', WORKERS: 2 }, { cores: availableCores() }),
  hangTimeoutMs: 600_000, loadTimeoutMs: 600_000, imageLimits: DEFAULT_IMAGE_LIMITS, logger: silentLogger,
});
const inProcess = () => service.inferTensor('m', { data: pixels, shape: [1, h, w, c], layout: 'NHWC' });
await closedLoop(inProcess);
const pipeline = await closedLoop(inProcess);
await service.close();

const config = loadConfig({ MODEL_REPOSITORY: root, HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
const server = await startServer(config, silentLogger);

const header = Buffer.from(JSON.stringify({
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, h, w, c], parameters: { binary_data_size: raw.length } }],
  outputs: [{ name: 'logits', parameters: { binary_data: true } }],
}));
const body = Buffer.concat([header, raw]);
const rest = async () => {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/v2/models/m/infer`, {
    method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  });
  if (res.status !== 200) throw new Error(`REST ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
};
await closedLoop(rest);
const restRate = await closedLoop(rest);

const { inference } = loadProtos();
const client = new inference.GRPCInferenceService(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure(), {
  'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1,
});
const request = { model_name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', String(h), String(w), String(c)] }], raw_input_contents: [raw] };
const grpcCall = () => new Promise<void>((resolve, reject) => client.ModelInfer(request, (err) => (err ? reject(err) : resolve())));
await closedLoop(grpcCall);
const grpcRate = await closedLoop(grpcCall);
client.close();
await server.shutdown('bench done');
await rm(root, { recursive: true, force: true });

console.log(`${preset} ${h}×${w}×${c}, ${CALLERS} callers, 1 image per request, maxBatchSize 8, 2 workers`);
console.log(`  in-process pipeline: ${pipeline.toFixed(1)} img/s`);
console.log(`  REST V2 binary:      ${restRate.toFixed(1)} img/s   ratio ${(restRate / pipeline).toFixed(2)}`);
console.log(`  gRPC ModelInfer raw: ${grpcRate.toFixed(1)} img/s   ratio ${(grpcRate / pipeline).toFixed(2)}`);
process.exit(0);
