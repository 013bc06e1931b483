// Whether TensorFlow's oneDNN kernels are safe on this machine, asked of a child process. With TF
// 2.21 on one AVX-512 CPU a 1×1 conv from 1024 to 512 channels (DenseNet-121's third transition)
// died with SIGFPE inside oneDNN, killing the process; on another (this project's CI machines
// since) it runs, and the fused executor's service throughput rose 14 % with oneDNN on. A crash
// cannot be caught in-process, so the probe runs that conv in a child with oneDNN on and reads
// how the child ended. The engine plan (src/inference/engine-plan.ts) turns oneDNN on only when
// the probe says it is safe (TF_ENABLE_ONEDNN=auto), and only servers that run tfjs ask.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

export interface OneDnnProbe {
  safe: boolean;
  /** How the child ended, in words, for the start-up log. */
  detail: string;
}

/** The regression conv on ones: every output is exactly 1024 when the kernel is right. */
const PROBE_SCRIPT = `
const tf = require(process.argv[1]);
const y = tf.conv2d(tf.ones([1, 14, 14, 1024]), tf.ones([1, 1, 1024, 512]), 1, 'same');
const values = y.dataSync();
console.log(values.every((v) => v === 1024) ? 'ONEDNN_OK' : 'ONEDNN_WRONG ' + values[0]);
`;

const DEFAULT_TIMEOUT_MS = 60_000;

export async function probeOneDnn(options: { timeoutMs?: number; script?: string } = {}): Promise<OneDnnProbe> {
  const tfjsNode = createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
  const child = spawn(process.execPath, ['-e', options.script ?? PROBE_SCRIPT, tfjsNode], {
    env: { ...process.env, TF_ENABLE_ONEDNN_OPTS: '1', TF_CPP_MIN_LOG_LEVEL: '2' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('error', () => resolve([null, null]));
    child.once('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  if (code === 0 && stdout.includes('ONEDNN_OK')) return { safe: true, detail: 'the regression conv ran correctly with oneDNN on' };
  if (signal === 'SIGKILL') return { safe: false, detail: `the probe did not finish within ${timeoutMs} ms` };
  if (signal) return { safe: false, detail: `the regression conv was killed by ${signal} with oneDNN on` };
  if (stdout.includes('ONEDNN_WRONG')) return { safe: false, detail: `the regression conv computed a wrong value with oneDNN on (${stdout.trim().slice(0, 80)})` };
  return { safe: false, detail: code === null ? 'the probe could not be started' : `the probe exited with code ${code}` };
}
