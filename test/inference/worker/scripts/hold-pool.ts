// Starts a two-worker pool of worker processes, prints their pids as one JSON line, and waits
// to be killed. worker-isolation.test.ts SIGKILLs this process and checks the workers go too.
import { silentLogger } from '../../../../src/logger.ts';
import { planEngine } from '../../../../src/inference/engine-plan.ts';
import { WorkerPool } from '../../../../src/inference/worker/worker-pool.ts';

const pool = new WorkerPool(
  {
    hangTimeoutMs: 60_000, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger,
    plan: planEngine({ ENGINE_EXECUTOR: 'fused', WORKER_ISOLATION: 'process', WORKERS: 2, TF_INTRA_OP_THREADS: 1 }, { cores: 1 }),
  },
  { onWorkerReady: () => undefined, onWorkerLost: () => undefined },
);
await pool.start();
console.log(JSON.stringify({ pids: pool.workers.map((w) => w.pid) }));
setInterval(() => undefined, 60_000);
