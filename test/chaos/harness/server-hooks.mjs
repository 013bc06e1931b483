// Preload entry for chaos runs (see server-hooks.ts). Node 20 also runs --import preloads in
// worker threads, where tsx's loader is not registered yet and a .ts file cannot load; the
// hooks belong to the main thread only.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) await import('./server-hooks.ts');
