// Starts a two-worker pool of worker processes, prints their pids as one JSON line, and waits
// to be killed. worker-isolation.test.ts SIGKILLs this process and checks the workers go too.
import { silentLogger } from '../../../../src/logger.ts';
import { WorkerPool } from '../../../../src/inference/worker/worker-pool.ts';

const pool = new WorkerPool(
  {
    size: 2, isolation: 'process', hangTimeoutMs: 60_000, loadTimeoutMs: 60_000, restartBackoffMs: 50, logger: silentLogger,
    engine: { backend: 'tensorflow', intraOpThreads: 1, interOpThreads: 1, executor: 'fused' },
  },
  { onWorkerReady: () => undefined, onWorkerLost: () => undefined },
);
await pool.start();
console.log(JSON.stringify({ pids: pool.workers.map((w) => w.pid) }));
setInterval(() => undefined, 60_000);
