// Turns load results (bench/results/load-*.json) into SVG plots and the generated "Service"
// section of docs/benchmarks.md (between <!-- service:begin --> and <!-- service:end -->; the
// rest of the file is hand-written and left alone).
//   node --import tsx bench/load/report.ts [--sweep FILE] [--memory FILE] [--doc docs/benchmarks.md] [--svg-dir docs/benchmarks]
// Without --sweep / --memory the newest results in bench/results/ are used.
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PEER_LABELS } from '../peers/peer-process.ts';
import type { MemoryRun } from './memory.ts';
import { halfRate, peerMarkdown } from './peer-table.ts';
import { KIND_LABELS, KINDS, type Kind } from './requests.ts';
import { lineChart, type Series } from './svg-chart.ts';
import type { KindSummary, LoadRun, PeerRun, PointResult } from './sweep.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DOC_TEMPLATE = path.join(REPO_ROOT, 'docs/benchmarks.md');

/** Replaces what lies between `<!-- name:begin -->` and `<!-- name:end -->` (markers kept). */
export function replaceSection(doc: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) return `${doc.trimEnd()}\n\n${begin}\n${body.trim()}\n${end}\n`;
  return `${doc.slice(0, i + begin.length)}\n${body.trim()}\n${doc.slice(j)}`;
}

/** Reads a doc to rewrite; a missing one starts as a copy of docs/benchmarks.md. */
export async function readDoc(doc: string): Promise<string> {
  try {
    return await readFile(doc, 'utf8');
  } catch {
    if (path.resolve(doc) !== DOC_TEMPLATE) {
      await mkdir(path.dirname(doc), { recursive: true });
      await copyFile(DOC_TEMPLATE, doc).catch(() => undefined);
      return readFile(doc, 'utf8').catch(() => '# Benchmarks\n');
    }
    return '# Benchmarks\n';
  }
}

export async function latestResult(dir: string, type: 'sweep'): Promise<LoadRun | undefined>;
export async function latestResult(dir: string, type: 'memory'): Promise<MemoryRun | undefined>;
export async function latestResult(dir: string, type: 'sweep' | 'memory'): Promise<LoadRun | MemoryRun | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const candidates = names
    .filter((n) => (type === 'memory' ? /^load-memory-.*\.json$/ : /^load-(?!memory-).*\.json$/).test(n))
    .sort()
    .reverse();
  for (const name of candidates) {
    const data = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as LoadRun | MemoryRun;
    if (data.type === type) return data;
  }
  return undefined;
}

const f = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));
const mib = (kib: number | undefined) => (kib === undefined ? '—' : `${(kib / 1024).toFixed(1)} MiB`);
const label = (kind: Kind) => KIND_LABELS[kind];
const kindOrder = (run: LoadRun) => KINDS.filter((k) => run.settings.kinds.includes(k));

function subtitle(run: { host?: LoadRun['host']; finishedAt?: string }, model: string): string {
  const host = run.host ? `${run.host.cpus} CPUs, load avg ${run.host.loadAverage[0]}` : '';
  return [model, host, run.finishedAt?.slice(0, 10)].filter(Boolean).join(' · ');
}

function sweepCharts(run: LoadRun): Record<string, string> {
  const kinds = kindOrder(run);
  const closed = (k: Kind) => run.points.filter((p) => p.kind === k && p.mode === 'closed' && !p.peer);
  const open = (k: Kind) => run.points.filter((p) => p.kind === k && p.mode === 'open' && !p.peer);
  const sub = subtitle(run, run.modelDescription);
  // The peers' colours come after ours (one per kind).
  const peers = (run.peers ?? []).filter((p) => p.points.length);
  const peerColor = (i: number) => kinds.length + i;
  // Short: legends are narrow. The peers only ever run rest-raw.
  const peerName = (p: PeerRun) => PEER_LABELS[p.name];
  const peerClosed = (p: PeerRun) => p.points.filter((x) => x.mode === 'closed');
  const peerOpen = (p: PeerRun) => p.points.filter((x) => x.mode === 'open');
  const charts: Record<string, string> = {};
  charts['throughput-vs-concurrency.svg'] = lineChart({
    title: 'Throughput vs concurrency (closed loop)', subtitle: sub,
    xLabel: 'concurrent clients (log scale)', yLabel: 'successful requests / s (1 image each)',
    xScale: 'log', xTicks: run.settings.concurrencies,
    series: [
      ...kinds.map((k, i) => ({ name: label(k), color: i, points: closed(k).map((p) => ({ x: p.concurrency ?? 0, y: p.throughput })) })),
      ...peers.map((p, i) => ({ name: peerName(p), color: peerColor(i), points: peerClosed(p).map((x) => ({ x: x.concurrency ?? 0, y: x.throughput })) })),
    ],
  });
  charts['latency-vs-concurrency.svg'] = lineChart({
    title: 'Latency vs concurrency (closed loop): p50 solid, p99 dashed', subtitle: sub,
    xLabel: 'concurrent clients (log scale)', yLabel: 'latency, ms (log scale)',
    xScale: 'log', yScale: 'log', xTicks: run.settings.concurrencies,
    series: kinds.flatMap((k, i): Series[] => [
      { name: `${label(k)} p50`, color: i, points: closed(k).map((p) => ({ x: p.concurrency ?? 0, y: p.latency.p50Ms })) },
      { name: `${label(k)} p99`, color: i, dashed: true, points: closed(k).map((p) => ({ x: p.concurrency ?? 0, y: p.latency.p99Ms })) },
    ]).concat(peers.flatMap((p, i): Series[] => [
      { name: `${peerName(p)} p50`, color: peerColor(i), points: peerClosed(p).map((x) => ({ x: x.concurrency ?? 0, y: x.latency.p50Ms })) },
      { name: `${peerName(p)} p99`, color: peerColor(i), dashed: true, points: peerClosed(p).map((x) => ({ x: x.concurrency ?? 0, y: x.latency.p99Ms })) },
    ])),
  });
  if (run.settings.loadPercents.length) {
    charts['latency-vs-load.svg'] = lineChart({
      title: `Latency vs offered load (open loop, ${run.settings.arrivals}): p50 solid, p99 dashed`, subtitle: sub,
      xLabel: `offered load, % of the kind's closed-loop saturation${peers.length ? ' (peers, on REST raw: % of ours)' : ''}`,
      yLabel: 'latency from scheduled send, ms (log scale)',
      yScale: 'log', xTicks: run.settings.loadPercents,
      series: kinds.flatMap((k, i): Series[] => [
        { name: `${label(k)} p50`, color: i, points: open(k).map((p) => ({ x: (p.loadFraction ?? 0) * 100, y: p.latency.p50Ms })) },
        { name: `${label(k)} p99`, color: i, dashed: true, points: open(k).map((p) => ({ x: (p.loadFraction ?? 0) * 100, y: p.latency.p99Ms })) },
      ]).concat(peers.flatMap((p, i): Series[] => [
        { name: `${peerName(p)} p50`, color: peerColor(i), points: peerOpen(p).map((x) => ({ x: (x.loadFraction ?? 0) * 100, y: x.latency.p50Ms })) },
        { name: `${peerName(p)} p99`, color: peerColor(i), dashed: true, points: peerOpen(p).map((x) => ({ x: (x.loadFraction ?? 0) * 100, y: x.latency.p99Ms })) },
      ])),
    });
    if (peers.length && run.settings.kinds.includes('rest-raw')) {
      // Ours and the peers alone, on the same arrivals: the chart issue 15 asks for.
      const rates = open('rest-raw').map((p) => Math.round(p.offeredRate ?? 0));
      charts['peers-latency-vs-load.svg'] = lineChart({
        title: 'REST raw image, ours vs peers: latency vs offered load',
        subtitle: `${sub} · open loop, ${run.settings.arrivals}, the same arrivals for every server · p50 solid, p99 dashed`,
        xLabel: 'offered load, requests / s (the same Poisson arrivals for every server)', yLabel: 'latency from scheduled send, ms (log scale)',
        yScale: 'log', xTicks: [...new Set(rates)].sort((a, b) => a - b),
        series: [
          { name: 'ours p50', color: 0, points: open('rest-raw').map((x) => ({ x: x.offeredRate ?? 0, y: x.latency.p50Ms })) },
          { name: 'ours p99', color: 0, dashed: true, points: open('rest-raw').map((x) => ({ x: x.offeredRate ?? 0, y: x.latency.p99Ms })) },
          ...peers.flatMap((p, i): Series[] => [
            { name: `${PEER_LABELS[p.name]} p50`, color: i + 1, points: peerOpen(p).map((x) => ({ x: x.offeredRate ?? 0, y: x.latency.p50Ms })) },
            { name: `${PEER_LABELS[p.name]} p99`, color: i + 1, dashed: true, points: peerOpen(p).map((x) => ({ x: x.offeredRate ?? 0, y: x.latency.p99Ms })) },
          ]),
        ],
      });
    }
    for (const k of kinds) {
      const summary = run.summary.find((s) => s.kind === k);
      const xs = run.settings.loadPercents;
      const flat = (y: number | undefined) => (y === undefined ? [] : [{ x: Math.min(...xs), y }, { x: Math.max(...xs), y }]);
      charts[`latency-vs-load-${k}.svg`] = lineChart({
        title: `${label(k)}: latency percentiles vs offered load`, subtitle: `${sub} · open loop, ${run.settings.arrivals} arrivals`,
        xLabel: 'offered load, % of closed-loop saturation', yLabel: 'latency from scheduled send, ms (log scale)',
        yScale: 'log', xTicks: xs,
        series: [
          { name: 'p50', color: 0, points: open(k).map((p) => ({ x: (p.loadFraction ?? 0) * 100, y: p.latency.p50Ms })) },
          { name: 'p90', color: 1, points: open(k).map((p) => ({ x: (p.loadFraction ?? 0) * 100, y: p.latency.p90Ms })) },
          { name: 'p99', color: 3, points: open(k).map((p) => ({ x: (p.loadFraction ?? 0) * 100, y: p.latency.p99Ms })) },
          { name: 'unloaded p50 (1 client)', color: 7, dashed: true, plain: true, points: flat(summary?.unloadedP50Ms) },
          { name: '2 × unloaded p50 (target)', color: 4, dashed: true, plain: true, points: flat(summary?.unloadedP50Ms === undefined ? undefined : summary.unloadedP50Ms * 2) },
        ],
      });
    }
  }
  return charts;
}

function memoryChart(run: MemoryRun): string {
  return lineChart({
    title: `Server RSS over ${run.requests.toLocaleString('en-US')} requests`, subtitle: subtitle(run, run.modelDescription),
    xLabel: 'requests completed', yLabel: 'resident set size, MiB',
    yFromZero: false,
    series: [{ name: `RSS (${run.workers} worker(s))`, points: run.samples.map((s) => ({ x: s.requests, y: s.rssKiB / 1024 })) }],
  });
}

function pass(value: number | undefined, ok: (v: number) => boolean): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return ok(value) ? `${f(value, 2)} ✓` : `${f(value, 2)} ✗`;
}

function targetsTable(run: LoadRun): string {
  const kinds = kindOrder(run);
  const s = (k: Kind): KindSummary | undefined => run.summary.find((x) => x.kind === k);
  const row = (name: string, cell: (x: KindSummary | undefined) => string) => `| ${name} | ${kinds.map((k) => cell(s(k))).join(' | ')} |`;
  return [
    `| | ${kinds.map(label).join(' | ')} |`,
    `|---|${kinds.map(() => '---:').join('|')}|`,
    row('saturation, req/s (at concurrency)', (x) => (x ? `${f(x.saturation)} (${x.saturationConcurrency})` : '—')),
    row(`÷ engine alone${run.engineRate ? ` (${f(run.engineRate)} img/s)` : ''}, target ≥ 0.9`, (x) => pass(x?.overEngine, (v) => v >= 0.9)),
    row('32 clients ÷ 1 client, target ≥ 1.5', (x) => pass(x?.ratio32Over1, (v) => v >= 1.5)),
    row('unloaded latency (1 client) p50 / p99, ms', (x) => (x ? `${f(x.unloadedP50Ms, 2)} / ${f(x.unloadedP99Ms, 2)}` : '—')),
    row('p99 at 50% load, ms', (x) => f(x?.p99At50Ms, 2)),
    row('ideal queue p99 at the same arrivals (workers × unloaded p50, no overhead), ms', (x) => f(x?.idealP99At50Ms, 2)),
    row('p99 at 50% ÷ the ideal queue\'s, target ≤ 1.5', (x) => pass(x?.p99At50OverIdeal, (v) => v <= 1.5)),
    row('p99 at 50% ÷ unloaded p50 (the retired bound)', (x) => f(x?.p99At50OverUnloadedP50, 2)),
  ].join('\n');
}

function closedMatrix(run: LoadRun): string {
  const kinds = kindOrder(run);
  const cell = (k: Kind, c: number) => {
    const p = run.points.find((x) => x.kind === k && x.mode === 'closed' && x.concurrency === c && !x.peer);
    return p ? `${f(p.throughput)} · ${f(p.latency.p50Ms, 1)} / ${f(p.latency.p99Ms, 1)}${p.errors ? ` · ${p.errors} err` : ''}` : '—';
  };
  return [
    `| clients | ${kinds.map(label).join(' | ')} |`,
    `|---:|${kinds.map(() => '---:').join('|')}|`,
    ...run.settings.concurrencies.map((c) => `| ${c} | ${kinds.map((k) => cell(k, c)).join(' | ')} |`),
  ].join('\n');
}

function pointTable(points: PointResult[]): string {
  const rows = points.map((p) => {
    const load = p.mode === 'closed' ? `closed, ${p.concurrency} clients`
      : `open, ${Math.round((p.loadFraction ?? 0) * 100)}%${p.peer ? ' of ours' : ''} (${f(p.offeredRate)}/s)`;
    const errs = p.errors ? `${p.errors} ${Object.entries(p.errorsByCause).map(([c, n]) => `${c}: ${n}`).join(', ')}` : '0';
    return `| ${label(p.kind)}${p.peer ? ` @ ${PEER_LABELS[p.peer]}` : ''} | ${load} | ${f(p.throughput)} | ${p.latency.count} | ${f(p.latency.p50Ms, 2)} | ${f(p.latency.p90Ms, 2)} | ${f(p.latency.p99Ms, 2)} | ${errs} | ` +
      `${f(p.server?.meanBatchSize, 2)} | ${f(p.server?.meanQueueMs, 2)} | ${f(p.rssBeforeKiB / 1024)} → ${f(p.rssAfterKiB / 1024)} | ` +
      `${f(p.generatorCpu, 2)}${p.sendLagP99Ms !== undefined ? ` / ${f(p.sendLagP99Ms, 1)} ms` : ''} |`;
  });
  return [
    '| kind | load | req/s | latencies | p50 ms | p90 ms | p99 ms | errors | mean batch | mean queue ms | server RSS MiB | generator CPU / send lag p99 |',
    '|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|',
    ...rows,
  ].join('\n');
}

function peersSection(run: LoadRun, svgRel: string): string {
  const env = run.peerEnvironment;
  const lines = ['### Against the peers', ''];
  if (run.peersSkipped && !run.peers?.length) {
    lines.push(`**No peer ran:** ${run.peersSkipped}`);
    return lines.join('\n');
  }
  lines.push(
    `${label('rest-raw')} (\`POST /v1/models/{m}/classify\`, ${run.image ?? 'the same image'}) against ours and each peer in this run, one server ` +
      `at a time, with the same generator, concurrencies and Poisson arrival rates: the open-loop rates are fractions of OUR ` +
      `saturation, so "p99 at 50 %" is the same ${f(halfRate(run))} req/s for every server. Ratios are ours ÷ peer; ` +
      'the targets (issue 15) apply against Ray Serve. "Same answer": the peer\'s top-1 class and top-5 scores for the ' +
      'image vs ours (same ONNX network and weights; PIL vs sharp resizing may move the scores a little). On random ' +
      'weights every score is near 1/classes and the top class hardly depends on the image, so the score difference ' +
      'relative to the top score is the telling number.',
    '',
    peerMarkdown(run),
    '',
    ...(run.peers ?? []).map((p) => `- ${PEER_LABELS[p.name]}: ${p.description}` +
      `${p.startSeconds !== undefined ? `; started in ${f(p.startSeconds)} s` : ''}` +
      `${p.rssIdleKiB !== undefined ? `, RSS ${mib(p.rssIdleKiB)} idle → ${mib(p.rssEndKiB)} at the end (its whole process tree)` : ''}.`),
    ...(env ? [`- Peers' Python: a venv made by \`bench/peers/python-env.ts\` (pip, ${f(env.installSeconds, 0)} s to install, ${env.sizeMiB} MiB); ` +
      `ONNX file \`${env.onnx}\` exported from the weights our server loads.`] : []),
  );
  if (run.settings.loadPercents.length && run.peers?.some((p) => p.points.length)) {
    lines.push('', `![Ours vs peers: latency vs offered load](${svgRel}/peers-latency-vs-load.svg)`);
  }
  return lines.join('\n');
}

function memorySection(run: MemoryRun, svgRel: string): string {
  const idle = [
    ...(run.emptyRssKiB !== undefined ? [`| idle, empty model repository | ${mib(run.emptyRssKiB)} |`] : []),
    ...run.loaded.map((l) => `| idle, model loaded on ${l.instances} worker(s) | ${mib(l.rssKiB)} |`),
    ...(run.perInstanceKiB !== undefined ? [`| **RSS per loaded instance** (difference per extra worker holding it) | **${mib(run.perInstanceKiB)}** |`] : []),
    `| after ${run.warmupRequests.toLocaleString('en-US')} requests (warm-up) | ${mib(run.rssAfterWarmupKiB)} |`,
    `| after ${run.requests.toLocaleString('en-US')} requests | ${mib(run.rssEndKiB)} |`,
    `| **growth after warm-up** | **${mib(run.growthKiB)}** (least-squares slope ${f(run.slopeKiBPer1000)} KiB per 1000 requests) |`,
    `| peak (VmHWM) | ${mib(run.peakKiB)} |`,
    `| errors | ${run.errors}${run.errors ? ` (${Object.entries(run.errorsByCause).map(([c, n]) => `${c}: ${n}`).join(', ')})` : ''} |`,
  ];
  return [
    '### Memory',
    '',
    `${run.modelDescription}; ${run.workers} worker(s); ${run.requests.toLocaleString('en-US')} requests cycling through ` +
      `${run.kinds.map((k) => label(k)).join(', ')}, ${run.concurrency} at a time; RSS of the server process and its ` +
      `worker processes (\`/proc/<pid>/status\` VmRSS, summed) every ${run.samples[1]?.requests ?? '—'} requests. Run ${run.finishedAt?.slice(0, 16) ?? ''} UTC` +
      `${run.command !== undefined ? `, \`npm run bench:load -- ${run.command}\`` : ''}.`,
    '',
    '| | RSS |',
    '|---|---:|',
    ...idle,
    '',
    `![Server RSS over the run](${svgRel}/memory-rss.svg)`,
  ].join('\n');
}

export interface ReportInput {
  sweep?: LoadRun;
  memory?: MemoryRun;
  doc: string;
  svgDir: string;
}

export async function writeServiceReport({ sweep, memory, doc, svgDir }: ReportInput): Promise<void> {
  await mkdir(svgDir, { recursive: true });
  const svgRel = path.relative(path.dirname(path.resolve(doc)), path.resolve(svgDir)) || '.';
  const parts: string[] = ['<!-- Generated by bench/load/report.ts from bench/results/load-*.json: edit the generator, not this section. -->', ''];
  if (sweep) {
    for (const [name, svg] of Object.entries(sweepCharts(sweep))) await writeFile(path.join(svgDir, name), svg);
    const h = sweep.host;
    parts.push(
      `Run ${sweep.finishedAt.slice(0, 16)} UTC: ${sweep.modelDescription}; server \`${Object.entries(sweep.serverSettings)
        .filter(([k]) => !['MODEL_REPOSITORY', 'HOST', 'HTTP_PORT', 'GRPC_PORT'].includes(k)).map(([k, v]) => `${k}=${v}`).join(' ')}\`; ` +
        `${h.cpus} CPUs (${h.cpuModel}), load average ${h.loadAverage.join(' ')} at the start, Node ${h.node}. ` +
        `${sweep.settings.seconds} s per point after ${sweep.settings.warmupSeconds} s of warm-up; open loop with ${sweep.settings.arrivals} arrivals. ` +
        `${sweep.image ? `Image (REST raw, gRPC Classify): ${sweep.image}. ` : ''}` +
        `Command: \`npm run bench:load -- ${sweep.command}\`.`,
      '',
      '### Targets',
      '',
      targetsTable(sweep),
      '',
      ...(sweep.peers?.length || sweep.peersSkipped ? [peersSection(sweep, svgRel), ''] : []),
      '### Throughput vs concurrency',
      '',
      `![Throughput vs concurrency](${svgRel}/throughput-vs-concurrency.svg)`,
      '',
      `![Latency vs concurrency](${svgRel}/latency-vs-concurrency.svg)`,
      '',
      'Each cell: successful requests/s · p50 / p99 latency in ms.',
      '',
      closedMatrix(sweep),
      '',
    );
    if (sweep.settings.loadPercents.length) {
      parts.push(
        '### Latency vs offered load',
        '',
        `![Latency vs offered load](${svgRel}/latency-vs-load.svg)`,
        '',
        ...kindOrder(sweep).map((k) => `![${label(k)}](${svgRel}/latency-vs-load-${k}.svg)`),
        '',
      );
    }
    parts.push('<details><summary>Every point</summary>', '', pointTable(sweep.points), '', '</details>', '');
  } else {
    parts.push('No service sweep recorded yet: `npm run bench:load`.', '');
  }
  if (memory) {
    await writeFile(path.join(svgDir, 'memory-rss.svg'), memoryChart(memory));
    parts.push(memorySection(memory, svgRel), '');
  } else {
    parts.push('### Memory', '', 'No memory run recorded yet: `npm run bench:load -- --memory`.', '');
  }
  const text = replaceSection(await readDoc(doc), 'service', parts.join('\n'));
  await mkdir(path.dirname(doc), { recursive: true });
  await writeFile(doc, text);
  process.stderr.write(`wrote ${path.relative(REPO_ROOT, path.resolve(doc))} and plots in ${path.relative(REPO_ROOT, path.resolve(svgDir))}/\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      sweep: { type: 'string' },
      memory: { type: 'string' },
      results: { type: 'string', default: path.join(REPO_ROOT, 'bench/results') },
      doc: { type: 'string', default: DOC_TEMPLATE },
      'svg-dir': { type: 'string' },
    },
  });
  const read = async <T>(file: string) => JSON.parse(await readFile(file, 'utf8')) as T;
  const sweep = values.sweep ? await read<LoadRun>(values.sweep) : await latestResult(values.results, 'sweep');
  const memory = values.memory ? await read<MemoryRun>(values.memory) : await latestResult(values.results, 'memory');
  await writeServiceReport({ sweep, memory, doc: values.doc, svgDir: values['svg-dir'] ?? path.join(path.dirname(values.doc), 'benchmarks') });
}
