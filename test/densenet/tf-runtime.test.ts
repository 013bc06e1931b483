import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { engineInfo, tf, type Tensor4D } from '../../src/densenet/tf-runtime.ts';
import { useNativeEngine } from '../helpers/engine.ts';

await useNativeEngine();
const THREAD_ENTRY = new URL('../helpers/ts-thread.mjs', import.meta.url);
const THREAD_SCRIPT = new URL('../helpers/engine-thread.ts', import.meta.url).href;

interface ThreadResult { backend: string; tensorflowVersion?: string; values: number[] }

function runInThread(seed: number): { worker: Worker; result: Promise<ThreadResult> } {
  const worker = new Worker(THREAD_ENTRY, { workerData: { seed, entry: THREAD_SCRIPT } });
  const result = new Promise<ThreadResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
  });
  return { worker, result };
}

function referenceValues(seed: number): number[] {
  return tf.tidy(() => {
    const x = tf.randomUniform([2, 16, 16, 8], -1, 1, 'float32', seed);
    const w = tf.randomUniform([3, 3, 8, 4], -1, 1, 'float32', seed + 1);
    return Array.from(tf.conv2d(x as Tensor4D, w as Tensor4D, 1, 'same').relu().sum([1, 2]).dataSync());
  });
}

describe('native TensorFlow engine', () => {
  it('runs on the native tensorflow backend', () => {
    expect(tf.getBackend()).toBe('tensorflow');
    expect(engineInfo()?.backend).toBe('tensorflow');
    expect(engineInfo()?.tensorflowVersion).toMatch(/^2\.\d+/);
  });

  it('refuses to switch backend once loaded', async () => {
    const { initEngine } = await import('../../src/densenet/tf-runtime.ts');
    await expect(initEngine({ backend: 'cpu', intraOpThreads: 1, interOpThreads: 1, oneDnn: false })).rejects.toThrow(/cannot switch/);
  });

  // tfjs#8388 reports tfjs-node failing to load in a second worker thread. This is the
  // evidence the worker pool builds on: on Node 20 with our source-built binding, three
  // threads load it at once, agree with the main thread, and a replacement thread loads it
  // again after one is terminated.
  it('loads in several worker threads at once, and again after a thread is replaced', async () => {
    const threads = [11, 12, 13].map((seed) => ({ seed, ...runInThread(seed) }));
    const results = await Promise.all(threads.map((t) => t.result));
    results.forEach((r, i) => {
      expect(r.backend).toBe('tensorflow');
      const expected = referenceValues(threads[i]!.seed);
      expect(expected).toHaveLength(2 * 4); // batch 2 × 4 output channels
      expect(r.values).toHaveLength(expected.length);
      r.values.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 3));
    });
    await threads[0]!.worker.terminate();
    const replacement = runInThread(11);
    const again = await replacement.result;
    expect(again.backend).toBe('tensorflow');
    expect(again.values).toEqual(results[0]!.values);
    await Promise.all([replacement.worker, threads[1]!.worker, threads[2]!.worker].map((w) => w.terminate()));
  }, 120_000);

  // Regression guard for the oneDNN SIGFPE (see EngineOptions.oneDnn): in a child process,
  // because the failure kills the whole process rather than throwing.
  it('runs the 1×1 conv 1024→512 that crashes TF 2.21 oneDNN', () => {
    const script = "import { initEngine, tf } from './src/densenet/tf-runtime.ts';" +
      "await initEngine({ backend: 'tensorflow', intraOpThreads: 2, interOpThreads: 1, oneDnn: false });" +
      "const y = tf.conv2d(tf.ones([1, 14, 14, 1024]), tf.ones([1, 1, 1024, 512]), 1, 'same');" +
      "console.log('VALUE', y.dataSync()[0]);";
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8', cwd: new URL('../..', import.meta.url).pathname,
    });
    expect(child.signal).toBeNull();
    expect(child.stdout).toContain('VALUE 1024');
  });

  it('refuses to start without native TensorFlow, with a message that says how to fix it', () => {
    const hide = new URL('../helpers/hide-tfjs-node.cjs', import.meta.url).pathname;
    const script = "import { initEngine } from './src/densenet/tf-runtime.ts';" +
      "initEngine({ backend: 'tensorflow', intraOpThreads: 1, interOpThreads: 1, oneDnn: false })" +
      ".then(() => console.log('LOADED'), (e) => { console.log(e.code + ': ' + e.message); process.exit(3); });";
    const child = spawnSync(process.execPath, ['--require', hide, '--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8', cwd: new URL('../..', import.meta.url).pathname,
    });
    expect(child.status).toBe(3);
    expect(child.stdout).toContain('ENGINE_UNAVAILABLE');
    expect(child.stdout).toContain('npm ci');
    expect(child.stdout).toContain('ENGINE_BACKEND=wasm|cpu');
  });
});
