// PyTorch eager (the engine TorchServe runs) in a long-lived Python child:
// bench/engine/python/torch-server.py, torch.set_num_threads(cores), inference_mode, the
// faster memory format (channels_last or contiguous, measured at setup unless forced).
// Its engine time is measured inside Python per batch; the pipe round trip is reported beside.
import type { Candidate } from '../candidate.ts';
import { FramedChild } from '../python.ts';

export function pytorchEager(): Candidate {
  let child: FramedChild | undefined;
  let lastMs = NaN;
  let info: Record<string, unknown> = {};
  let threads = 0;
  return {
    name: 'pytorch-eager',
    describe: () => {
      const probe = info.probeMs as Record<string, number> | undefined;
      const probed = probe && Object.keys(probe).length
        ? ` (chosen at setup: ${Object.entries(probe).map(([f, ms]) => `${f} ${ms.toFixed(1)} ms`).join(', ')})`
        : '';
      return `torch ${String(info.torch)} eager in a child process, ${threads} threads, inference_mode, ` +
        `${String(info.format)} memory format${probed}; ms/batch measured inside Python`;
    },
    versions: () => ({ torch: String(info.torch) }),
    async setup(config, weightsPath, env) {
      child = new FramedChild(env.torchPython, 'torch-server.py');
      const reply = await child.request({
        op: 'load', config, weights: weightsPath, threads: env.threads, format: env.torchFormat,
        probeBatch: Math.min(8, env.maxBatch),
      });
      info = reply.header;
      threads = Number(info.threads);
    },
    async run(batch, n) {
      const reply = await (child as FramedChild).request({ op: 'run', n }, new Uint8Array(batch.buffer, batch.byteOffset, batch.byteLength));
      lastMs = Number(reply.header.ms);
      const p = reply.payload;
      return new Float32Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength));
    },
    lastEngineMs: () => lastMs,
    async dispose() {
      await child?.close();
    },
  };
}
