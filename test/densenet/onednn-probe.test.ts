// The oneDNN probe (src/densenet/onednn-probe.ts): a child process runs the conv that crashed TF
// 2.21's oneDNN on one AVX-512 CPU, and how the child ends decides. Its verdict on this machine is
// checked against an independent run: a DenseNet block with oneDNN on, compared with the same
// block on Eigen (oneDNN off), each in a child of its own.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { probeOneDnn } from '../../src/densenet/onednn-probe.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

/** A dense block's worth of DenseNet-121 ops (BN folded away: convs, relu, concat) on seeded input. */
function blockLogits(oneDnn: boolean): { status: number | null; signal: string | null; values?: number[] } {
  const script = "const tf = require('@tensorflow/tfjs-node');" +
    'tf.setBackend("tensorflow");' +
    'let x = tf.randomUniform([2, 14, 14, 256], -1, 1, "float32", 7);' +
    'for (let i = 0; i < 4; i++) {' +
    '  const w1 = tf.randomUniform([1, 1, x.shape[3], 128], -0.1, 0.1, "float32", 11 + i);' +
    '  const w2 = tf.randomUniform([3, 3, 128, 32], -0.1, 0.1, "float32", 23 + i);' +
    '  const y = tf.conv2d(tf.relu(tf.conv2d(tf.relu(x), w1, 1, "same")), w2, 1, "same");' +
    '  x = tf.concat([x, y], 3);' +
    '}' +
    'const t = tf.conv2d(x, tf.randomUniform([1, 1, x.shape[3], 1024], -0.05, 0.05, "float32", 5), 1, "same");' +
    'const head = tf.conv2d(t, tf.randomUniform([1, 1, 1024, 512], -0.05, 0.05, "float32", 6), 1, "same");' +
    'console.log(JSON.stringify(Array.from(head.mean([1, 2]).dataSync().slice(0, 16))));';
  const child = spawnSync(process.execPath, ['-e', script], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, TF_ENABLE_ONEDNN_OPTS: oneDnn ? '1' : '0', TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  const line = child.stdout.trim().split('\n').at(-1);
  return { status: child.status, signal: child.signal, ...(child.status === 0 && line ? { values: JSON.parse(line) as number[] } : {}) };
}

describe('oneDNN probe', () => {
  it('gives a verdict on this machine that an independent DenseNet block run with oneDNN on agrees with', async () => {
    const probe = await probeOneDnn();
    const withOneDnn = blockLogits(true);
    const eigen = blockLogits(false);
    expect(eigen.status).toBe(0);
    if (probe.safe) {
      expect(probe.detail).toBe('the regression conv ran correctly with oneDNN on');
      expect(withOneDnn.status).toBe(0);
      withOneDnn.values!.forEach((v, i) => expect(v).toBeCloseTo(eigen.values![i]!, 3));
    } else {
      // The probe refused: the block with oneDNN on must fail the same way (crash or exit).
      expect(withOneDnn.signal !== null || withOneDnn.status !== 0).toBe(true);
    }
  }, 120_000);

  it('calls a crash, a wrong answer, a hang and a failed start unsafe, each in words', async () => {
    expect(await probeOneDnn({ script: "process.kill(process.pid, 'SIGFPE')" })).toEqual({ safe: false, detail: 'the regression conv was killed by SIGFPE with oneDNN on' });
    expect(await probeOneDnn({ script: "console.log('ONEDNN_WRONG 1023')" })).toEqual({ safe: false, detail: 'the regression conv computed a wrong value with oneDNN on (ONEDNN_WRONG 1023)' });
    expect(await probeOneDnn({ script: 'setTimeout(() => {}, 60000)', timeoutMs: 300 })).toEqual({ safe: false, detail: 'the probe did not finish within 300 ms' });
    expect(await probeOneDnn({ script: 'process.exit(3)' })).toEqual({ safe: false, detail: 'the probe exited with code 3' });
    expect(await probeOneDnn({ script: "console.log('ONEDNN_OK')" })).toEqual({ safe: true, detail: 'the regression conv ran correctly with oneDNN on' });
  }, 60_000);
});
