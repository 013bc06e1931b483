// ─── OUR ENGINE PATH ─────────────────────────────────────────────────────────────────────────
// The service's own inference path: exactly what a worker thread builds for a safetensors
// model and runs for a batch (src/inference/worker/worker-main.ts: createRunner, then
// runner.run), with the service's default executor (config ENGINE_EXECUTOR) unless
// --ours-executor picks another. When the serving path changes, change it here — the harness,
// the equality check and the table stay as they are.
// ─────────────────────────────────────────────────────────────────────────────────────────────
import { fusedRunner, layersRunner, onnxRunner, type DenseNetRunner, type ExecutorName } from '../../../src/densenet/index.ts';
import type { Candidate } from '../candidate.ts';
import { loadDenseNet } from '../tfjs-model.ts';

export function ours(executor: ExecutorName): Candidate {
  let runner: DenseNetRunner | undefined;
  let threads = 0;
  return {
    name: 'ours',
    describe: () => `the service worker's DenseNetRunner, executor '${executor}', native TF with ${threads} intra-op threads` +
      (executor === 'onnxruntime' ? ` (ORT session: ${threads} threads)` : ''),
    async setup(config, weightsPath, env) {
      threads = env.threads;
      const densenet = await loadDenseNet(config, weightsPath);
      try {
        if (executor === 'fused') runner = fusedRunner(densenet); // releases the LayersModel itself
        else if (executor === 'layers') runner = layersRunner(densenet.layersModel);
        else runner = await onnxRunner(densenet, { intraOpThreads: threads });
      } finally {
        if (executor === 'onnxruntime' || !runner) densenet.layersModel.dispose();
      }
    },
    run: (batch, n) => (runner as DenseNetRunner).run(batch, n),
    async dispose() {
      runner?.dispose();
    },
  };
}
