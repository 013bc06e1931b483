// Worker-thread entry that can run TypeScript: registers tsx in this thread, then imports the
// module named by workerData.entry. (Node 20 does not pass --import hooks on to workers.)
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
