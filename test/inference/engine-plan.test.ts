// The engine plan (src/inference/engine-plan.ts) is pure: settings and a core count in, the
// whole plan out. No workers start here; the pool and worker tests run plans for real.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ENGINE_DEFAULTS, oneDnnProbeNeeded, planEngine, workerEngine, type EngineSettings } from '../../src/inference/engine-plan.ts';

describe('engine plan', () => {
  it("plans today's served defaults: onnxruntime in 2 worker processes, the cores split between them", () => {
    const plan = planEngine({}, { cores: 16 });
    expect({ ...plan, reasons: undefined }).toEqual({
      executor: 'onnxruntime',
      backend: 'tensorflow',
      workerStartBackend: 'cpu',
      workers: 2,
      isolation: 'process',
      nice: 0,
      cores: 16,
      intraOpThreads: 0,
      interOpThreads: 1,
      oneDnn: false,
      threadsPerWorker: 8,
      reasons: undefined,
    });
    expect(plan.reasons).toEqual({
      executor: expect.stringMatching(/^default \(onnxruntime/),
      backend: expect.stringMatching(/^default \(tensorflow\); onnxruntime workers start on 'cpu'/),
      workers: 'default (2)',
      isolation: expect.stringMatching(/^auto: processes for onnxruntime/),
      threads: '16 cores ÷ 2 workers = 8 each',
      oneDnn: 'auto: off (not probed: no batch runs on native TensorFlow)',
    });
    // A worker process runs its own TF pools, sized to its share like its onnxruntime session.
    expect(workerEngine(plan)).toEqual({
      executor: 'onnxruntime',
      startBackend: 'cpu',
      tf: { backend: 'tensorflow', intraOpThreads: 8, interOpThreads: 1, oneDnn: false },
      sessionThreads: 8,
    });
  });

  it('gives every worker at least one thread on small machines', () => {
    expect(planEngine({}, { cores: 1 })).toMatchObject({ threadsPerWorker: 1, reasons: { threads: '1 cores ÷ 2 workers = 1 each; 2 workers > 1 threads: oversubscribed' } });
    expect(planEngine({}, { cores: 2 })).toMatchObject({ threadsPerWorker: 1, reasons: { threads: '2 cores ÷ 2 workers = 1 each' } });
    expect(planEngine({}, { cores: 3 }).threadsPerWorker).toBe(1);
    // A fractional or absent core count (a cgroup quota of 0.5 CPU) still plans one core.
    expect(planEngine({}, { cores: 0.5 })).toMatchObject({ cores: 1, threadsPerWorker: 1 });
  });

  it.each([
    ['onnxruntime', 'process', 'cpu'],
    ['fused', 'thread', 'tensorflow'],
    ['layers', 'thread', 'tensorflow'],
  ] as const)("runs %s in %s workers under WORKER_ISOLATION=auto, starting on '%s'", (executor, isolation, startBackend) => {
    const plan = planEngine({ ENGINE_EXECUTOR: executor }, { cores: 16 });
    expect(plan).toMatchObject({ executor, isolation, workerStartBackend: startBackend, threadsPerWorker: 8 });
    expect(plan.reasons.executor).toBe(`ENGINE_EXECUTOR=${executor}`);
    expect(plan.reasons.isolation).toMatch(/^auto: /);
    const worker = workerEngine(plan);
    expect(worker).toMatchObject({ executor, startBackend, sessionThreads: 8 });
    // A worker thread shares the server process's TF pool (0: one thread per core) instead.
    expect(worker.tf.intraOpThreads).toBe(isolation === 'process' ? 8 : 0);
  });

  it('takes an explicit WORKER_ISOLATION over auto, either way', () => {
    const threads = planEngine({ ENGINE_EXECUTOR: 'onnxruntime', WORKER_ISOLATION: 'thread' }, { cores: 4 });
    expect(threads).toMatchObject({ isolation: 'thread', reasons: { isolation: 'WORKER_ISOLATION=thread' } });
    expect(workerEngine(threads).tf.intraOpThreads).toBe(0);
    expect(workerEngine(threads).sessionThreads).toBe(2);
    const processes = planEngine({ ENGINE_EXECUTOR: 'fused', WORKER_ISOLATION: 'process' }, { cores: 4 });
    expect(processes).toMatchObject({ isolation: 'process', workerStartBackend: 'tensorflow', reasons: { isolation: 'WORKER_ISOLATION=process' } });
    expect(workerEngine(processes).tf.intraOpThreads).toBe(2);
  });

  it('gives each of more WORKERS than cores one thread, and says it oversubscribes', () => {
    const plan = planEngine({ WORKERS: 6 }, { cores: 2 });
    expect(plan).toMatchObject({ workers: 6, threadsPerWorker: 1, reasons: { workers: 'WORKERS=6' } });
    expect(plan.reasons.threads).toBe('2 cores ÷ 6 workers = 1 each; 6 workers > 2 threads: oversubscribed');
  });

  it('splits an explicit TF_INTRA_OP_THREADS instead of the cores, and keeps it for the shared pool', () => {
    const processes = planEngine({ TF_INTRA_OP_THREADS: 6 }, { cores: 16 });
    expect(processes).toMatchObject({ intraOpThreads: 6, threadsPerWorker: 3, reasons: { threads: 'TF_INTRA_OP_THREADS=6 ÷ 2 workers = 3 each' } });
    expect(workerEngine(processes).tf.intraOpThreads).toBe(3);
    const threads = planEngine({ TF_INTRA_OP_THREADS: 6, ENGINE_EXECUTOR: 'fused', WORKERS: 4 }, { cores: 16 });
    expect(threads).toMatchObject({ intraOpThreads: 6, threadsPerWorker: 1 });
    expect(workerEngine(threads).tf.intraOpThreads).toBe(6);
    // 0 is "unset": TensorFlow's own default, and the cores are the budget.
    expect(planEngine({ TF_INTRA_OP_THREADS: 0 }, { cores: 16 })).toMatchObject({ intraOpThreads: 0, threadsPerWorker: 8 });
  });

  it('splits threads exactly as main.ts did before the plan: max(1, ⌊(TF_INTRA_OP_THREADS || cores) / WORKERS⌋)', () => {
    let checked = 0;
    for (let cores = 1; cores <= 16; cores++) {
      for (let workers = 1; workers <= 8; workers++) {
        for (const intra of [undefined, 0, 1, 3, 7, 32]) {
          const expected = Math.max(1, Math.floor((intra || cores) / workers));
          expect(planEngine({ WORKERS: workers, TF_INTRA_OP_THREADS: intra }, { cores }).threadsPerWorker, `${cores} cores, ${workers} workers, intra ${intra}`).toBe(expected);
          checked++;
        }
      }
    }
    expect(checked).toBe(16 * 8 * 6);
  });

  it('keeps a development backend for every worker, onnxruntime included', () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      const plan = planEngine({ ENGINE_BACKEND: backend }, { cores: 4 });
      expect(plan).toMatchObject({ backend, workerStartBackend: backend, reasons: { backend: `ENGINE_BACKEND=${backend}` } });
      expect(workerEngine(plan).tf.backend).toBe(backend);
    }
  });

  it('passes nice, inter-op threads and oneDNN through', () => {
    const settings: EngineSettings = { WORKER_NICE: 7, TF_INTER_OP_THREADS: 2, TF_ENABLE_ONEDNN: true };
    const plan = planEngine(settings, { cores: 4 });
    expect(plan).toMatchObject({ nice: 7, interOpThreads: 2, oneDnn: true });
    expect(workerEngine(plan).tf).toMatchObject({ interOpThreads: 2, oneDnn: true });
  });

  it('turns oneDNN on under auto only where the probe said safe, and only asks when tfjs serves on native TF', () => {
    const safe = { safe: true, detail: 'the regression conv ran correctly with oneDNN on' };
    const unsafe = { safe: false, detail: 'the regression conv was killed by SIGFPE with oneDNN on' };
    expect(oneDnnProbeNeeded({})).toBe(false); // onnxruntime serves by default
    expect(oneDnnProbeNeeded({ ENGINE_EXECUTOR: 'fused' })).toBe(true);
    expect(oneDnnProbeNeeded({ ENGINE_EXECUTOR: 'layers', TF_ENABLE_ONEDNN: 'auto' })).toBe(true);
    expect(oneDnnProbeNeeded({ ENGINE_EXECUTOR: 'fused', TF_ENABLE_ONEDNN: false })).toBe(false);
    expect(oneDnnProbeNeeded({ ENGINE_EXECUTOR: 'fused', ENGINE_BACKEND: 'cpu' })).toBe(false);
    const fused = { ENGINE_EXECUTOR: 'fused' } as const;
    expect(planEngine(fused, { cores: 2, oneDnnProbe: safe })).toMatchObject({ oneDnn: true, reasons: { oneDnn: `auto: on (${safe.detail})` } });
    expect(planEngine(fused, { cores: 2, oneDnnProbe: unsafe })).toMatchObject({ oneDnn: false, reasons: { oneDnn: `auto: off (${unsafe.detail})` } });
    expect(planEngine(fused, { cores: 2 }).oneDnn).toBe(false);
    // A setting wins over the probe, both ways.
    expect(planEngine({ ...fused, TF_ENABLE_ONEDNN: false }, { cores: 2, oneDnnProbe: safe })).toMatchObject({ oneDnn: false, reasons: { oneDnn: 'TF_ENABLE_ONEDNN=false' } });
    expect(planEngine({ ...fused, TF_ENABLE_ONEDNN: true }, { cores: 2, oneDnnProbe: unsafe }).oneDnn).toBe(true);
  });

  it('plans from the parsed configuration: unset settings get the defaults, set ones win', () => {
    expect(planEngine(loadConfig({}), { cores: 4 })).toEqual(planEngine({}, { cores: 4 }));
    const plan = planEngine(loadConfig({ ENGINE_EXECUTOR: 'fused', WORKERS: '3', TF_INTRA_OP_THREADS: '9' }), { cores: 4 });
    expect(plan).toMatchObject({ executor: 'fused', isolation: 'thread', workers: 3, intraOpThreads: 9, threadsPerWorker: 3 });
  });

  it('is a frozen value: the same inputs give the same plan, and nobody can change it', () => {
    const plan = planEngine({ WORKERS: 3 }, { cores: 12 });
    expect(planEngine({ WORKERS: 3 }, { cores: 12 })).toEqual(plan);
    expect(Object.isFrozen(plan)).toBe(true);
    expect(Object.isFrozen(plan.reasons)).toBe(true);
    expect(Object.isFrozen(ENGINE_DEFAULTS)).toBe(true);
  });
});
