// The overload result (bench/results/overload-*.json) as a table, and the generated Overload
// section of docs/benchmarks.md (between <!-- overload:begin --> and <!-- overload:end -->; the
// rest of the file is left alone).
//   node --import tsx bench/overload/report.ts [--result FILE] [--doc docs/benchmarks.md]
// Without --result the newest bench/results/overload-*.json is used.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DOC_TEMPLATE, readDoc, replaceSection } from '../load/report.ts';
import type { CapacityResult, CpuShare, Latency, OverloadResult } from './measure.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The issue's targets at 10× capacity (issue 15, "Overload"). */
export const TARGETS = { refusalP99Ms: 10, readinessP99Ms: 100, goodputShare: 0.85 };

export interface OverloadRun {
  type: 'overload';
  startedAt: string;
  finishedAt: string;
  command: string;
  host: { cpus: number; cpuModel: string; loadAverage: number[]; node: string };
  tools: Record<string, string>;
  model: string;
  modelDescription: string;
  maxBatchSize: number;
  maxQueueSize: number;
  serverSettings: Record<string, string>;
  serverCpus: string | undefined;
  generatorCpus: string | undefined;
  image: { description: string; bytes: number };
  multiple: number;
  capacityCallers: number;
  capacity: CapacityResult;
  overload: OverloadResult;
}

const f = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));
const int = (n: number | undefined) => (n === undefined ? '—' : Math.round(n).toLocaleString('en-US'));
const lat = (l: Latency | undefined) => (!l || l.count === 0 ? '—' : `${f(l.p50Ms, 2)} / ${f(l.p99Ms, 2)}`);
const cpu = (c: CpuShare | undefined) => (c ? `${f(c.cores, 2)} cores (${f(c.machineShare * 100, 0)} % of the machine)` : '—');
const mark = (ok: boolean) => (ok ? '✓' : '✗');

function others(byStatus: Record<string, number>, known: string[]): number {
  return Object.entries(byStatus).filter(([k]) => !known.includes(k)).reduce((s, [, n]) => s + n, 0);
}

/** The result as Markdown: the table, then readiness, CPU, targets and whether the run is valid. */
export function overloadTable(run: OverloadRun): string {
  const o = run.overload;
  const { http, grpc } = o;
  const cap = run.capacity.imagesPerS;
  const col = (h: string | undefined, g: string | undefined, t = '') => `| ${h ?? '—'} | ${g ?? '—'} | ${t} |`;
  const rows = [
    `| | HTTP/1.1, wrk | gRPC, h2load (+ sampler) | together |`,
    '|---|---:|---:|---:|',
    `| offered req/s (target) ${col(http && `${f(http.offeredRate)} (${f(http.targetRate)})`, grpc && `${f(grpc.h2load.offeredRate + grpc.samplerRate)} (${f(grpc.targetRate)})`, `${f((http?.offeredRate ?? 0) + (grpc ? grpc.h2load.offeredRate + grpc.samplerRate : 0))} (${f(o.rate)} = ${f(o.rate / cap, 1)}× ${f(cap)})`)}`,
    `| completed (200 / OK) ${col(http && int(http.byStatus['200'] ?? 0), grpc && `${int(grpc.serverOutcomes.OK ?? 0)} (server log)`)}`,
    `| refused (429 / RESOURCE_EXHAUSTED) ${col(http && int(http.byStatus['429'] ?? 0), grpc && `${int(grpc.serverOutcomes.RESOURCE_EXHAUSTED ?? 0)} (server log)`)}`,
    `| other answers / no answer ${col(http && `${int(others(http.byStatus, ['200', '429']))} / ${int(http.unanswered)}`,
      grpc && `${int(others(grpc.serverOutcomes, ['OK', 'RESOURCE_EXHAUSTED']))} / ${int(grpc.failedInWindow)} failed streams`)}`,
    `| goodput img/s ${col(http && f(http.goodput), grpc && `${f(grpc.goodput)} (server log)`, `**${f(o.goodput)}** = **${f((o.goodput / cap) * 100, 0)} %** of capacity (server log)`)}`,
    `| refusal latency p50 / p99 ms ${col(http && `**${lat(http.refusal)}** (${int(http.refusal.count)})`,
      grpc && `**${lat(grpc.sampler.refusal)}** (sampler, ${int(grpc.sampler.refusal.count)}); h2load p99 in [${f(grpc.refusalP99Bounds.lowMs, 1)}, ${f(grpc.refusalP99Bounds.highMs, 1)}]`)}`,
    `| refusal latency in the server's log p50 / p99 ms ${col(http && lat(o.server.refusalLatency?.http), grpc && lat(o.server.refusalLatency?.grpc))}`,
    `| completion latency p50 / p99 ms ${col(http && lat(http.completion), grpc && `${lat(grpc.sampler.completion)} (sampler, ${int(grpc.sampler.completion.count)})`)}`,
    ...(grpc ? [`| all answers p50 / p99 ms | — | ${lat(grpc.all)} (h2load, ${int(grpc.all.count)}, refusals and completions mixed) | |`] : []),
    `| generator CPU ${col(http && cpu(http.generator), grpc && cpu(grpc.generator), '')}`,
  ];
  const r = o.readiness;
  // The worse of the two transports' (gRPC: the sampler's); NaN when neither saw a refusal.
  const refusalP99s = [http?.refusal.p99Ms, grpc?.sampler.refusal.p99Ms].filter((v): v is number => v !== undefined && v !== null && Number.isFinite(v));
  const refusalP99 = refusalP99s.length ? Math.max(...refusalP99s) : Number.NaN;
  const validity = [
    ...(http ? [`HTTP offered ${f(http.offeredRate / http.targetRate * 100, 0)} % of its target ${mark(http.offeredRate >= 0.9 * http.targetRate)}` +
      `, sends behind schedule p99 ${f(http.lateP99Ms, 1)} ms (${int(http.lateOver10Ms)} sends > 10 ms late: many mean too few connections or a generator short of CPU)` +
      `${http.wrkErrors.connect + http.wrkErrors.read + http.wrkErrors.write ? `, socket errors ${JSON.stringify(http.wrkErrors)}` : ''}` +
      `; ${int(http.unanswered)} of ${int(http.sent)} sent in the window had no answer when wrk stopped ${mark(http.unanswered <= 0.01 * http.sent)}` +
      `${http.unanswered > 0.01 * http.sent ? ' (a longer --tail: the latencies above leave them out)' : ''}`] : []),
    ...(grpc ? [`gRPC offered ${f(((grpc.h2load.offeredRate + grpc.samplerRate) / grpc.targetRate) * 100, 0)} % of its target ${mark(grpc.h2load.offeredRate + grpc.samplerRate >= 0.9 * grpc.targetRate)}` +
      ` (h2load: ${int(grpc.h2load.started)} started, ${int(grpc.h2load.done)} done, ${int(grpc.h2load.errored)} errored, ${int(grpc.h2load.timeout)} timed out over ${f(grpc.h2load.seconds)} s)` +
      `${Object.keys(grpc.sampler.sessionEvents ?? {}).length ? `; sampler connections: ${Object.entries(grpc.sampler.sessionEvents).map(([e, n]) => `${e} ×${n}`).join(', ')}` : ''}`] : []),
    `this process (readiness prober, gRPC sampler): ${cpu(o.benchCpu)}, event-loop delay p99 ${f(o.benchLagP99Ms, 1)} ms (an error bound on the readiness and sampler timings)`,
  ];
  return [
    `Overload: ${run.modelDescription}, maxQueueSize ${run.maxQueueSize}; capacity ${f(cap)} img/s (closed loop, ${run.capacityCallers} callers` +
      `${run.capacity.httpCompleted !== undefined && run.capacity.grpcAnswered !== undefined ? `: ${int(run.capacity.httpCompleted)} HTTP + ${int(run.capacity.grpcAnswered)} gRPC answers` : ''}` +
      `; wrk ${cpu(run.capacity.generators.wrk)}, h2load ${cpu(run.capacity.generators.h2load)}, server ${cpu(run.capacity.serverCpu)}); ` +
      `${f(o.rate / cap, 1)}× offered for ${o.warmupS} + **${o.windowS}** + ${o.tailS} s (warm-up, judged window, tail); ${run.host.cpus} CPUs, load average ${run.host.loadAverage.join(' ')} at the start.`,
    '',
    ...rows,
    '',
    `- readiness (\`/v2/health/ready\` every ${o.probeIntervalMs} ms): p50 / p99 **${lat(r)}** ms, max ${f(r.maxMs, 1)} ms, ${int(r.count)} probes, ${int(r.failed)} not 200`,
    `- server (and its workers) CPU: ${cpu(o.serverCpu)}; generators: ${[http && `wrk ${cpu(http.generator)}`, grpc && `h2load ${cpu(grpc.generator)}`].filter(Boolean).join(', ')}`,
    `- targets (issue 15): refusal p99 ≤ ${TARGETS.refusalP99Ms} ms ${mark(refusalP99 <= TARGETS.refusalP99Ms)} (${f(refusalP99, 1)} ms); ` +
      `readiness p99 ≤ ${TARGETS.readinessP99Ms} ms ${mark(r.p99Ms <= TARGETS.readinessP99Ms && r.failed === 0)} (${f(r.p99Ms, 1)} ms); ` +
      `goodput ≥ ${TARGETS.goodputShare * 100} % of capacity ${mark(o.goodput >= TARGETS.goodputShare * cap)} (${f((o.goodput / cap) * 100, 0)} %)`,
    ...validity.map((v) => `- ${v}`),
  ].join('\n');
}

export async function writeOverloadReport(run: OverloadRun, doc: string): Promise<void> {
  const body = [
    '<!-- Generated by bench/overload/report.ts from bench/results/overload-*.json: edit the generator, not this section. -->',
    '',
    `Run ${run.finishedAt.slice(0, 16)} UTC, ${run.host.cpuModel}, Node ${run.host.node}, ${run.tools.wrk || 'wrk'}, ${run.tools.h2load || 'h2load'}; ` +
      `image: ${run.image.description} (${run.image.bytes.toLocaleString('en-US')} bytes); server \`${Object.entries(run.serverSettings)
        .filter(([k]) => !['MODEL_REPOSITORY', 'HOST', 'HTTP_PORT', 'GRPC_PORT'].includes(k)).map(([k, v]) => `${k}=${v}`).join(' ')}\`` +
      `${run.serverCpus ? ` on CPUs ${run.serverCpus}` : ''}${run.generatorCpus ? `, generators on CPUs ${run.generatorCpus}` : ', generators not pinned'}. ` +
      `Command: \`node --import tsx bench/overload/cli.ts ${run.command}\`.`,
    '',
    overloadTable(run),
  ].join('\n');
  const text = replaceSection(await readDoc(doc), 'overload', body);
  await mkdir(path.dirname(path.resolve(doc)), { recursive: true });
  await writeFile(doc, text);
  process.stderr.write(`wrote the Overload section of ${path.relative(REPO_ROOT, path.resolve(doc))}\n`);
}

export async function latestOverload(dir: string): Promise<OverloadRun | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^overload-.*\.json$/.test(n)).sort().reverse();
  for (const name of names) {
    const data = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as OverloadRun;
    if (data.type === 'overload') return data;
  }
  return undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      result: { type: 'string' },
      results: { type: 'string', default: path.join(REPO_ROOT, 'bench/results') },
      doc: { type: 'string', default: DOC_TEMPLATE },
    },
  });
  const run = values.result ? (JSON.parse(await readFile(values.result, 'utf8')) as OverloadRun) : await latestOverload(values.results);
  if (!run) throw new Error(`no overload result in ${values.results}: run bench/overload/cli.ts first`);
  console.log(overloadTable(run));
  await writeOverloadReport(run, values.doc);
}
