// Child of bench/thread-layouts.ts: one ONNX Runtime session; measures a lone batch-1 latency or
// loops batch 8 for a while. Plain JS: no TypeScript loader in the child.
import * as ort from 'onnxruntime-node';

let session;
let shape;
process.on('message', async (m) => {
  if (m.modelPath) {
    shape = m.shape;
    session = await ort.InferenceSession.create(m.modelPath, {
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', executionMode: 'sequential',
      intraOpNumThreads: m.threads, interOpNumThreads: 1, enableCpuMemArena: true,
      ...(m.spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
    });
    const x = new ort.Tensor('float32', new Float32Array(8 * shape[0] * shape[1] * shape[2]).fill(0.5), [8, ...shape]);
    await session.run({ input: x });
    process.send({ ready: true });
  } else if (m.lone) {
    const x = new ort.Tensor('float32', new Float32Array(shape[0] * shape[1] * shape[2]).fill(0.5), [1, ...shape]);
    await session.run({ input: x });
    const times = [];
    for (let i = 0; i < m.lone; i++) {
      const t = performance.now();
      await session.run({ input: x });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    process.send({ ms: times[Math.floor(times.length / 2)] });
  } else if (m.sat) {
    const x = new ort.Tensor('float32', new Float32Array(m.batch * shape[0] * shape[1] * shape[2]).fill(0.5), [m.batch, ...shape]);
    const end = performance.now() + m.sat;
    let images = 0;
    while (performance.now() < end) {
      await session.run({ input: x });
      images += m.batch;
    }
    process.send({ images });
  }
});
