// How to split the cores between ONNX Runtime sessions in worker processes — the service's layout
// decision (issue 15: a lone request should get every core, saturation should lose ≤ 5 % against
// 2 × 1-thread). Each layout runs P child processes with a session of T threads each (spinning on
// or off), on the same ONNX export (random weights: speed does not depend on values), and reports:
//   lone   — batch-1 latency with one process busy and the others idle (a lone request);
//   sat    — images/s with every process looping batch 8 at once (saturation);
// in one run, one layout after the other, repeated in rounds so drift spreads over all of them.
//
//   npx tsx bench/thread-layouts.ts [preset …] [--seconds 6] [--rounds 2]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { availableCores } from '../src/config.ts';
import { buildDenseNet, isPresetName, presetConfig } from '../src/densenet/index.ts';
import { exportOnnx } from '../src/densenet/onnx-export.ts';
import { initEngine } from '../src/densenet/tf-runtime.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '6' }, rounds: { type: 'string', default: '2' } },
});
const presets = positionals.length ? positionals : ['densenet121', 'densenet-bc-100-k12'];
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const cores = availableCores();

interface Layout { name: string; processes: number; threads: number; spinning: boolean }
const LAYOUTS: Layout[] = [
  { name: `${cores}×1`, processes: cores, threads: 1, spinning: true },
  { name: `1×${cores}`, processes: 1, threads: cores, spinning: true },
  { name: `2×${cores} spin`, processes: 2, threads: cores, spinning: true },
  { name: `2×${cores} no-spin`, processes: 2, threads: cores, spinning: false },
];

/** A child running one session: answers {lone: ms} or {sat: images} requests. */
function child(modelPath: string, layout: Layout, shape: number[]): Promise<ChildProcess> {
  const proc = fork(path.join(HERE, 'thread-layouts-child.mjs'), [], { execArgv: [], serialization: 'advanced' });
  proc.send({ modelPath, threads: layout.threads, spinning: layout.spinning, shape });
  return new Promise((resolve, reject) => {
    proc.once('message', () => resolve(proc));
    proc.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

function ask<T>(proc: ChildProcess, message: object): Promise<T> {
  return new Promise((resolve) => {
    proc.once('message', (m) => resolve(m as T));
    proc.send(message);
  });
}

await initEngine({ backend: 'cpu', intraOpThreads: 1, interOpThreads: 1, oneDnn: false });
const cacheDir = path.join(HERE, '.cache', 'thread-layouts');
mkdirSync(cacheDir, { recursive: true });
console.log(`thread layouts: ${cores} cores, ${seconds} s per saturation point, ${rounds} rounds`);
for (const preset of presets) {
  if (!isPresetName(preset)) throw new Error(`unknown preset ${preset}`);
  const model = buildDenseNet(presetConfig(preset));
  const modelPath = path.join(cacheDir, `${preset}.onnx`);
  writeFileSync(modelPath, exportOnnx(model, { inputLayout: 'nhwc' }));
  const { inputHeight: h, inputWidth: w, inputChannels: c } = model.config;
  model.layersModel.dispose();
  const results = new Map<string, { lone: number[]; sat: number[] }>();
  for (let round = 0; round < rounds; round++) {
    for (const layout of round % 2 ? [...LAYOUTS].reverse() : LAYOUTS) {
      const procs = await Promise.all(Array.from({ length: layout.processes }, () => child(modelPath, layout, [h, w, c])));
      try {
        const lone = await ask<{ ms: number }>(procs[0]!, { lone: 20 });
        const counts = await Promise.all(procs.map((p) => ask<{ images: number }>(p, { sat: seconds * 1000, batch: 8 })));
        const entry = results.get(layout.name) ?? { lone: [], sat: [] };
        entry.lone.push(lone.ms);
        entry.sat.push(counts.reduce((n, x) => n + x.images, 0) / seconds);
        results.set(layout.name, entry);
      } finally {
        for (const p of procs) p.kill();
      }
    }
  }
  const base = results.get(`${cores}×1`)!;
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\n${preset} (${h}×${w}×${c})`);
  console.log('layout              lone batch-1 ms   saturation img/s   sat ÷ ' + `${cores}×1`);
  for (const layout of LAYOUTS) {
    const r = results.get(layout.name)!;
    console.log(`${layout.name.padEnd(18)}  ${med(r.lone).toFixed(1).padStart(14)}   ${med(r.sat).toFixed(1).padStart(16)}   ${(med(r.sat) / med(base.sat)).toFixed(3)}×` +
      `   (lone ${r.lone.map((x) => x.toFixed(1)).join('/')}, sat ${r.sat.map((x) => x.toFixed(1)).join('/')})`);
  }
}
