// Issue 7, bad input: the seeded corpus of malformed requests (corpus.ts) fired over real sockets
// at ONE real service — the REST app listening on 127.0.0.1:0 and the gRPC server on an
// ephemeral port, over an InferenceService with two worker threads and three tiny DenseNets.
// Every case must get exactly the answer the corpus names (4xx / non-OK with a coded message;
// 200 only where the input is legitimately valid); never a 5xx, INTERNAL or UNKNOWN; nothing
// logged as an unexpected error. Afterwards both workers are alive, have not been replaced,
// hold exactly the engine tensors they held before, and the process's memory is back where
// it was. docs/reliability.md ("Bad input") tabulates the cases and what each must get.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Edge } from '../../src/api/edge/index.ts';
import { buildHttpApp } from '../../src/api/http/app.ts';
import { createGrpcServer, type GrpcServer } from '../../src/api/grpc/server.ts';
import { loadProtos } from '../../src/api/grpc/proto.ts';
import { createMetrics, type ServiceMetrics } from '../../src/api/metrics.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { DEFAULT_IMAGE_LIMITS, InferenceService, planEngine, type EnginePlan, type ImageLimits } from '../../src/inference/index.ts';
import type { PreprocessSpec } from '../../src/inference/preprocess/index.ts';
import { useNativeEngine } from '../helpers/engine.ts';
import { writeTinyModelFolder } from '../helpers/tiny-model.ts';
import { CLASSES, headOf, LIMITS, MODELS, wireBody, type Case, type GrpcCase, type GrpcExpect, type HttpExpect, type ModelName } from './cases.ts';
import { buildCorpus, CORPUS_SEED } from './corpus.ts';
import { grpcCall, grpcRawCall, rawHttp, runBounded, type GrpcAnswer, type HttpAnswer } from './wire.ts';

/** Cases in flight at once: enough to overlap decoding with I/O on two busy cores. */
const CONCURRENCY = 8;
/**
 * RSS may end this much above its baseline. The baseline is taken after a warm-up pass over an
 * eighth of the corpus (so glibc's arenas, libvips' buffers and V8's heap have grown to their
 * working size) and both ends are measured after a full GC. What is left is allocator noise:
 * freed pages glibc keeps, libvips' per-thread buffers on threads the warm-up did not touch —
 * across runs RSS ended between 17 MiB below and 50 MiB above the baseline. 96 MiB over 1,624
 * cases misses only leaks under ~60 KiB a case, where cases carry bodies of up to 4 MiB, decoded
 * images, and bombs that inflate 64 MiB: leaking what they allocate would be hundreds of MB.
 */
const RSS_TOLERANCE_BYTES = 96 << 20;
/** The main thread's V8 heap after a full GC: a retained request, body or listener per case would show here. */
const HEAP_TOLERANCE_BYTES = 16 << 20;

const PREPROCESSING: Record<ModelName, PreprocessSpec> = {
  tiny: { resizeMode: 'stretch', interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], polarity: 'as-is', background: 255 },
  'tiny-grey': { resizeMode: 'letterbox', interpolation: 'bilinear', mean: [0.5], std: [0.25], polarity: 'dark-background', background: 255 },
  'tiny-crop': { resizeMode: 'resize-crop', resizeShorterTo: 20, interpolation: 'bicubic', mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3], polarity: 'as-is', background: 0 },
};
const BATCHING = { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 256 };

interface LogLine { level: number; msg: string; requestId?: string; reqId?: string; status?: number | string; code?: string; err?: unknown; error?: string }

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let root: string;
let config: Config;
let engine: EnginePlan;
let service: InferenceService;
let metrics: ServiceMetrics;
let app: FastifyInstance;
let grpcServer: GrpcServer;
let httpPort: number;
let clients: Record<GrpcCase['service'], grpc.Client>;
let grpcAddress: string;
let limits: ImageLimits;
let corpus: Case[];
const requestLines = new Map<string, LogLine>();
const errorLines: LogLine[] = [];

/** RSS and the V8 heap in use, after a full collection. */
function memory(): { rss: number; heap: number } {
  gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heap: heapUsed };
}

async function startService(): Promise<void> {
  await useNativeEngine();
  sharp.cache(false); // as main.ts: no decoded-image cache on a server taking untrusted uploads
  root = await mkdtemp(path.join(tmpdir(), 'bad-input-'));
  const manifest = (model: ModelName) => ({ preprocessing: PREPROCESSING[model], batching: BATCHING });
  await writeTinyModelFolder(root, MODELS.rgb, { seed: 1, versions: [1, 2], manifest: { ...manifest('tiny'), versionPolicy: 'all' } });
  await writeTinyModelFolder(root, MODELS.grey, { seed: 2, architecture: { inputChannels: 1 }, manifest: manifest('tiny-grey') });
  await writeTinyModelFolder(root, MODELS.crop, { seed: 3, manifest: manifest('tiny-crop') });
  config = loadConfig({
    MODEL_REPOSITORY: root, HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', WORKERS: '2', LOG_LEVEL: 'info',
    ...Object.fromEntries(Object.entries(LIMITS).map(([k, v]) => [k, String(v)])),
  });
  const logger = createLogger('info', {
    write(text: string) {
      const line = JSON.parse(text) as LogLine;
      if (line.level >= 50) errorLines.push(line);
      const id = line.requestId ?? line.reqId;
      if (id !== undefined && (line.msg === 'request' || line.msg.startsWith('grpc call'))) requestLines.set(id, line);
    },
  });
  limits = {
    ...DEFAULT_IMAGE_LIMITS,
    maxEncodedBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS,
    maxDimension: config.MAX_IMAGE_DIMENSION, maxImagesPerRequest: config.MAX_IMAGES_PER_REQUEST,
  };
  // What src/main.ts builds, with the service kept at hand for its worker statistics.
  engine = planEngine({ ...config, ENGINE_EXECUTOR: 'fused', TF_INTRA_OP_THREADS: 1 }, { cores: 1 });
  service = await InferenceService.start({
    repositoryRoot: root, engine,
    hangTimeoutMs: config.WORKER_HANG_TIMEOUT_MS, loadTimeoutMs: config.MODEL_LOAD_TIMEOUT_MS, imageLimits: limits, logger,
  });
  metrics = createMetrics(service);
  const deps = { service, config, logger, metrics, edge: new Edge({ service, config, logger, metrics }) };
  app = await buildHttpApp(deps);
  httpPort = Number(new URL(await app.listen({ host: config.HOST, port: 0 })).port);
  grpcServer = createGrpcServer(deps);
  grpcAddress = `127.0.0.1:${await grpcServer.bind(config.HOST, 0)}`;
  clients = { inference: newClient('inference'), classifier: newClient('classifier'), health: newClient('health') };
}

/** A client of `service` on a connection of its own. */
function newClient(service: GrpcCase['service']): grpc.Client {
  type Ctor = new (...args: ConstructorParameters<typeof grpc.Client>) => grpc.Client;
  const objects = grpc.loadPackageDefinition(loadProtos().packageDefinition) as unknown as {
    inference: { GRPCInferenceService: Ctor }; densenet: { v1: { Classifier: Ctor } }; grpc: { health: { v1: { Health: Ctor } } };
  };
  // The client may send anything: the server's limit is what is under test. A channel of its
  // own (not grpc-js's shared subchannel pool) makes a connection of its own.
  const options = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1, 'grpc.use_local_subchannel_pool': 1, 'grpc.max_metadata_size': 1 << 20 };
  const ctor = { inference: objects.inference.GRPCInferenceService, classifier: objects.densenet.v1.Classifier, health: objects.grpc.health.v1.Health }[service];
  return new ctor(grpcAddress, grpc.credentials.createInsecure(), options);
}

// ---- firing one case and judging its answer ------------------------------------------------

type Verdict = string | undefined;

function describeHttp(answer: HttpAnswer | undefined): string {
  if (!answer) return 'no answer';
  return `${answer.status} ${answer.body.toString('utf8').slice(0, 200)}`;
}

/** The JSON part of a 200 (binary data extension answers carry it first). */
function jsonOf(answer: HttpAnswer): unknown {
  const headerLength = Number(answer.headers['inference-header-content-length'] ?? answer.body.length);
  return JSON.parse(answer.body.subarray(0, headerLength).toString('utf8'));
}

function judgeHttp(expect: HttpExpect, answer: HttpAnswer | undefined, line: LogLine | undefined): Verdict {
  if (!answer) return `expected ${expect.status}, got no answer`;
  const got = describeHttp(answer);
  if (answer.status >= 500) return `5xx: ${got}`;
  if (answer.status !== expect.status) return `expected ${expect.status}, got ${got}`;
  if (answer.status === 200) {
    const body = jsonOf(answer) as { predictions?: unknown[][]; outputs?: { shape: number[] }[] };
    const images = body.predictions?.length ?? body.outputs?.[0]?.shape.at(-2) ?? (body.outputs?.[0]?.shape.length === 1 ? 1 : undefined);
    if (images !== expect.images) return `expected ${expect.images} image(s) classified, got ${JSON.stringify(body).slice(0, 200)}`;
    if (body.predictions?.some((p) => p.length !== Math.min(CLASSES, 5))) return `expected ${CLASSES} predictions per image: ${got}`;
  } else if (expect.bodyless) {
    if (answer.body.length !== 0) return `expected no body, got ${got}`;
  } else {
    let error: unknown;
    try {
      error = (JSON.parse(answer.body.toString('utf8')) as { error?: unknown }).error;
    } catch {
      return `the error body is not JSON: ${got}`;
    }
    if (typeof error !== 'string' || error === '' || error === 'internal server error') return `no coded error message: ${got}`;
    if (expect.message && !expect.message.test(error)) return `message ${JSON.stringify(error)} does not match ${expect.message}`;
  }
  if (expect.code === 'unlogged') return undefined;
  if (!line) return `no request log line (${got})`;
  if (line.status !== answer.status) return `logged status ${String(line.status)}, answered ${answer.status}`;
  if ((line.code ?? null) !== expect.code) return `logged code ${String(line.code)}, expected ${String(expect.code)} (${got})`;
  return undefined;
}

function judgeGrpc(expect: GrpcExpect, answer: GrpcAnswer): Verdict {
  const got = `${grpc.status[answer.code]} ${answer.errorCode ?? '-'} ${answer.details.slice(0, 200)}`;
  const streamReset = expect.status === grpc.status.INTERNAL && /^Received RST_STREAM/.test(answer.details);
  if ((answer.code === grpc.status.INTERNAL && !streamReset) || answer.code === grpc.status.UNKNOWN) return `${grpc.status[answer.code]}: ${got}`;
  if (answer.code !== expect.status) return `expected ${grpc.status[expect.status]}, got ${got}`;
  if (answer.code === grpc.status.OK) {
    const response = answer.response as { results?: unknown[]; outputs?: { shape: string[] }[]; ready?: boolean };
    if (expect.ready !== undefined) return response.ready === expect.ready ? undefined : `expected ready ${expect.ready}, got ${JSON.stringify(response)}`;
    const images = response.results?.length ?? Number(response.outputs?.[0]?.shape[0]);
    return images === expect.images ? undefined : `expected ${expect.images} image(s) classified, got ${JSON.stringify(response).slice(0, 200)}`;
  }
  if (answer.details === '') return `no message: ${got}`;
  if ((answer.errorCode ?? null) !== expect.code) return `expected code ${String(expect.code)}, got ${got}`;
  if (expect.message && !expect.message.test(answer.details)) return `message ${JSON.stringify(answer.details)} does not match ${expect.message}`;
  return undefined;
}

async function fire(c: Case, index: number, expected: HttpExpect | GrpcExpect | 'no-answer'): Promise<Verdict> {
  const requestId = `bad-${index}`;
  if (c.kind === 'grpc') {
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', requestId);
    for (const [k, v] of c.metadata ?? []) metadata.set(k, v);
    const client = c.ownConnection ? newClient(c.service) : clients[c.service];
    try {
      const answer = c.raw ? await grpcRawCall(client, c.method, c.raw) : await grpcCall(client, c.method, c.request, metadata);
      return judgeGrpc(expected as GrpcExpect, answer);
    } finally {
      if (c.ownConnection) client.close();
    }
  }
  const answer = await rawHttp(httpPort, { head: headOf(c.request, requestId), body: wireBody(c.request), delivery: c.request.delivery ?? { mode: 'whole' } });
  if (expected === 'no-answer') {
    if (answer) return `expected no answer, got ${describeHttp(answer)}`;
    // The server notices the client left and logs the request once, as cancelled.
    for (let waited = 0; waited < 3000 && !requestLines.has(requestId); waited += 20) await new Promise((r) => setTimeout(r, 20));
    const line = requestLines.get(requestId);
    return line?.status === 499 && line.code === 'CANCELLED' ? undefined : `expected a 499 CANCELLED log line, got ${JSON.stringify(line)}`;
  }
  // The log line is written when the response ends, a moment after the client has it.
  for (let waited = 0; waited < 3000 && !requestLines.has(requestId) && (expected as HttpExpect).code !== 'unlogged'; waited += 5) await new Promise((r) => setTimeout(r, 5));
  return judgeHttp(expected as HttpExpect, answer, requestLines.get(requestId));
}

type DecoderOutcome = 'accepted' | 'undecodable' | 'limit';

interface PilVerdict { name: string; decodes: boolean | null; size?: [number, number]; error?: string }
interface PilVerdicts { pillow: string; imagesFrom: { sharp: string; vips: string }; images: Record<string, PilVerdict> }

/**
 * The independent oracle for bit-flipped images: whether Pillow decodes the file fully, and the
 * size its header declares, recorded by pil-verdicts.py (keyed by the SHA-256 of the bytes). A
 * declared size over the service's limits must be refused as such; otherwise Pillow's verdict.
 */
function pilOutcome(verdict: PilVerdict): DecoderOutcome {
  const [width, height] = verdict.size ?? [0, 0];
  if (width * height > limits.maxPixels || Math.max(width, height) > limits.maxDimension) return 'limit';
  if (verdict.decodes === null) throw new Error(`${verdict.name}: Pillow did not load it (${verdict.error}), and its size is within the limits`);
  return verdict.decodes ? 'accepted' : 'undecodable';
}

/** libheif (sharp's AVIF decoder) decodes AV1 with libaom, Pillow with dav1d. */
const AV1_DECODERS = 'libaom (libheif, in sharp) reports "Corrupt frame detected" for a flipped bit in the AV1 payload; ' +
  'dav1d (libavif, in Pillow) decodes the frame with the damage in its pixels. The service refuses it: 400.';

/**
 * Where the service and Pillow disagree on a bit-flipped image, and why. Every entry must hold:
 * Pillow's recorded verdict is `pil`, and the service must answer as for `service` over every
 * transport (a change that makes them agree fails the corpus until the entry is removed).
 */
const DISAGREEMENTS: Readonly<Record<string, { pil: DecoderOutcome; service: DecoderOutcome; reason: string }>> = {
  'bit-flipped/avif/1-bit-0': { pil: 'accepted', service: 'undecodable', reason: AV1_DECODERS },
  'bit-flipped/avif/1-bit-2': { pil: 'accepted', service: 'undecodable', reason: AV1_DECODERS },
  'bit-flipped/avif/1-bit-3': { pil: 'accepted', service: 'undecodable', reason: AV1_DECODERS },
  'bit-flipped/avif/1-bit-4': { pil: 'accepted', service: 'undecodable', reason: AV1_DECODERS },
  'bit-flipped/avif/8-bit-7': { pil: 'accepted', service: 'undecodable', reason: AV1_DECODERS },
  'bit-flipped/gif/8-bit-6': {
    pil: 'limit', service: 'undecodable',
    reason: 'the flips moved the first frame descriptor to 20993,56065 with size 12092×56922 in a 24×20 logical screen: ' +
      'Pillow grows the canvas to 33085×112987 (over maxDimension, so 413 by its size); libvips\' GIF loader finds no ' +
      'frame inside the screen ("no frames in GIF") before any size is known, so the service answers 400. Both refuse it.',
  },
};

const PIL_VERDICTS = JSON.parse(readFileSync(new URL('./bit-flipped-pil-verdicts.json', import.meta.url), 'utf8')) as PilVerdicts;
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Runs cases with at most CONCURRENCY in flight, except the ones that mostly wait (bodies that
 * drip in or stall for seconds): those all start at once beside them.
 */
async function runCorpus(cases: readonly Case[], task: (c: Case, index: number) => Promise<Verdict>): Promise<Verdict[]> {
  const waiting = (c: Case) => c.kind === 'http' && c.request.delivery !== undefined && c.request.delivery.mode !== 'whole';
  const verdicts = new Array<Verdict>(cases.length);
  const indexed = cases.map((c, i) => [c, i] as const);
  await Promise.all([
    ...indexed.filter(([c]) => waiting(c)).map(async ([c, i]) => (verdicts[i] = await task(c, i))),
    runBounded(indexed.filter(([c]) => !waiting(c)), CONCURRENCY, async ([c, i]) => (verdicts[i] = await task(c, i))),
  ]);
  return verdicts;
}

/** Good requests that reach the workers, so their tensor counts are fresh. */
async function exerciseWorkers(): Promise<number[]> {
  const data = new Float32Array(16 * 16 * 3).fill(0.25);
  await Promise.all(Array.from({ length: 16 }, () => service.inferTensor(MODELS.rgb, { data, shape: [16, 16, 3], layout: 'NHWC' })));
  return service.workerTensorCounts();
}

// ---- the tests -------------------------------------------------------------------------------

let baseline: { tensors: number[]; rss: number; heap: number };
const expectations = new Map<Case, HttpExpect | GrpcExpect | 'no-answer'>();

beforeAll(async () => {
  await startService();
  corpus = await buildCorpus(CORPUS_SEED);
  const missing = new Set<string>();
  for (const c of corpus) {
    if (!c.decoder) {
      expectations.set(c, c.expect);
      continue;
    }
    const verdict = PIL_VERDICTS.images[sha256(c.decoder.bytes)];
    if (!verdict) {
      missing.add(c.name.split('/').slice(0, 3).join('/'));
      continue;
    }
    expectations.set(c, c.decoder.resolve(DISAGREEMENTS[verdict.name]?.service ?? pilOutcome(verdict)));
  }
  if (missing.size > 0) {
    const { sharp: made, vips } = PIL_VERDICTS.imagesFrom;
    throw new Error(`no Pillow verdict for ${[...missing].join(', ')}: the images changed (verdicts were made from sharp ${made}, libvips ${vips}; ` +
      `this is sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}). Rerun python3 test/reliability/pil-verdicts.py`);
  }
  // Warm-up: a quarter of the corpus, so memory has grown to its working size before the baseline.
  await runCorpus(corpus.filter((_, i) => i % 8 === 0), (c, i) => fire(c, 100_000 + i, expectations.get(c)!));
  baseline = { tensors: await exerciseWorkers(), ...memory() };
}, 180_000);

afterAll(async () => {
  for (const client of Object.values(clients ?? {})) client.close();
  await grpcServer?.close(0);
  await app?.close();
  metrics?.close();
  await service?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the bad-input corpus over real sockets', () => {
  it('is large, covers every category on both transports, and names every case once', () => {
    // Names are checked for uniqueness as the corpus is built. At least 1,000 cases must be refused.
    const refused = [...expectations.values()].filter((e) => e === 'no-answer' || (e.status !== 200 && e.status !== grpc.status.OK));
    expect(refused.length).toBeGreaterThanOrEqual(1000);
    const by = (kind: Case['kind']) => new Set(corpus.filter((c) => c.kind === kind).map((c) => c.category));
    for (const category of ['truncated', 'bit-flipped', 'empty', 'random-bytes', 'decompression-bomb', 'aspect-ratio', 'channels-depth', 'unsupported-format', 'v2-tensor', 'dims', 'non-finite', 'unknown-model', 'oversized']) {
      expect(by('http'), category).toContain(category);
      expect(by('grpc'), category).toContain(category);
    }
    for (const category of ['content-type', 'multipart', 'base64', 'binary-header', 'json', 'slow-drip', 'framing', 'content-encoding', 'random-body', 'empty-body']) expect(by('http')).toContain(category);
    expect(by('grpc')).toContain('protobuf');
  });

  it('judges every bit-flipped image by Pillow, with each disagreement real and explained', () => {
    const judged = new Map(corpus.filter((c) => c.decoder).map((c) => {
      const verdict = PIL_VERDICTS.images[sha256(c.decoder!.bytes)]!;
      return [verdict.name, verdict] as const;
    }));
    expect(judged.size).toBe(48);
    // Pillow's verdicts go both ways: the oracle is not a constant.
    const outcomes = [...judged.values()].map(pilOutcome);
    expect(outcomes.filter((o) => o === 'accepted').length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o === 'undecodable').length).toBeGreaterThan(0);
    for (const [name, { pil, service: ours, reason }] of Object.entries(DISAGREEMENTS)) {
      expect(judged.get(name), name).toBeDefined();
      expect(pilOutcome(judged.get(name)!), name).toBe(pil);
      expect(ours, name).not.toBe(pil);
      expect(reason.length).toBeGreaterThan(0);
    }
  });

  it('every case gets exactly its answer: 4xx or non-OK with a coded message, 200 only for valid input, never a 5xx', async () => {
    const verdicts = await runCorpus(corpus, (c, i) => fire(c, i, expectations.get(c)!));
    const failures = corpus.flatMap((c, i) => (verdicts[i] ? [`${c.name}: ${verdicts[i]}`] : []));
    expect(failures).toEqual([]);
    // Nothing was an unexpected error for the server either (they are logged at error level).
    expect(errorLines.map((l) => `${l.msg} ${JSON.stringify(l.err ?? l.error ?? '')}`.slice(0, 300))).toEqual([]);
  }, 180_000);

  it('mints no metric series from client strings: every label value comes from a closed set', async () => {
    // Client-supplied strings in every place a request carries one, on both transports: model
    // names, versions, ids, request ids, other headers and metadata. Each holds the marker.
    const marker = `zq${Date.now().toString(36)}`;
    const tiny = Buffer.from(JSON.stringify({ id: `${marker}-id`, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: new Array(768).fill(0) }] }));
    for (let i = 0; i < 20; i++) {
      for (const pathName of [`/v2/models/${marker}-${i}/infer`, `/v2/models/tiny/versions/${9000 + i}/infer`, `/v1/models/${marker}-${i}/classify`, '/v2/models/tiny/infer']) {
        const head = headOf({ method: 'POST', path: pathName, headers: [['content-type', 'application/json'], [`x-${marker}`, `${marker}-h`]], body: tiny }, `${marker}-r${i}`);
        await rawHttp(httpPort, { head, body: tiny, delivery: { mode: 'whole' } });
      }
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', `${marker}-g${i}`);
      metadata.set(`x-${marker}`, marker);
      const tensor = { name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], contents: { fp32_contents: new Array(768).fill(0) } };
      await grpcCall(clients.inference, 'ModelInfer', { model_name: `${marker}-${i}`, id: `${marker}-id`, inputs: [tensor] }, metadata);
      await grpcCall(clients.inference, 'ModelInfer', { model_name: 'tiny', model_version: String(9000 + i), inputs: [tensor] }, metadata);
      await grpcCall(clients.classifier, 'Classify', { model_name: `${marker}-c${i}`, images: [Buffer.from('x')] }, metadata);
      await grpcCall(clients.inference, 'ModelReady', { name: `${marker}-${i}` }, metadata);
    }
    expect(await metrics.registry.metrics()).not.toContain(marker);
    // The closed sets: what the server knows (models and model:version keys), transports, the
    // HTTP status classes and gRPC status names, the batcher's item outcomes, drop reasons and
    // stages, histogram buckets. Node's default metrics (densenet_process_*, densenet_nodejs_*)
    // carry only what the runtime names.
    const models = new Set(service.listModels().flatMap((m) => [m.name, `${m.name}:${m.version}`]));
    const allowed: Record<string, (value: string) => boolean> = {
      transport: (v) => v === 'http' || v === 'grpc',
      model: (v) => v === '_unknown' || models.has(v),
      outcome: (v) => /^[1-5]xx$/.test(v) || v in grpc.status || ['success', 'failed', 'cancelled', 'expired', 'rejected'].includes(v),
      reason: (v) => v === 'cancelled' || v === 'deadline',
      stage: (v) => v === 'queued' || v === 'running',
      le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
    };
    const strays: string[] = [];
    let requestSeries = 0;
    for (const family of await metrics.registry.getMetricsAsJSON()) {
      if (/^densenet_(process|nodejs)_/.test(family.name)) continue;
      for (const value of family.values as { labels: Record<string, string | number> }[]) {
        if (family.name === 'densenet_requests_total') requestSeries++;
        for (const [label, v] of Object.entries(value.labels)) {
          if (!allowed[label]?.(String(v))) strays.push(`${family.name}{${label}="${v}"}`);
        }
      }
    }
    expect(strays).toEqual([]);
    // Bounded by (known models + _unknown) × transports × outcomes, whatever the corpus sent.
    const outcomes = 4 + Object.keys(grpc.status).filter((k) => Number.isNaN(Number(k))).length;
    expect(requestSeries).toBeLessThanOrEqual((new Set(service.listModels().map((m) => m.name)).size + 1) * 2 * outcomes);
  }, 120_000);

  it('leaves every worker alive and unreplaced, engine tensors and memory where they were', async () => {
    expect(service.workerRestarts).toBe(0);
    expect(await exerciseWorkers()).toEqual(baseline.tensors);
    expect(baseline.tensors).toHaveLength(engine.workers);
    const after = memory();
    expect(after.rss - baseline.rss, `RSS ${baseline.rss >> 20} → ${after.rss >> 20} MiB`).toBeLessThan(RSS_TOLERANCE_BYTES);
    expect(after.heap - baseline.heap, `V8 heap ${baseline.heap >> 20} → ${after.heap >> 20} MiB`).toBeLessThan(HEAP_TOLERANCE_BYTES);

    const ready = await rawHttp(httpPort, { head: headOf({ method: 'GET', path: '/v2/health/ready' }, 'after-ready'), body: Buffer.alloc(0), delivery: { mode: 'whole' } });
    expect(ready?.status).toBe(200);
    for (const model of Object.values(MODELS)) expect(service.isReady(model), model).toBe(true);
    const serverReady = await grpcCall(clients.inference, 'ServerReady', {});
    expect(serverReady.response).toEqual({ ready: true });
    const health = await grpcCall(clients.health, 'Check', { service: '' });
    expect(health.response).toEqual({ status: 'SERVING' });

    // The request metrics agree: no 5xx over REST, no INTERNAL or UNKNOWN over gRPC.
    const text = await metrics.registry.metrics();
    const outcomes = text.split('\n').filter((l) => l.startsWith('densenet_requests_total{') && !l.endsWith(' 0'));
    expect(outcomes.filter((l) => /outcome="(5xx|INTERNAL|UNKNOWN)"/.test(l))).toEqual([]);
  });
});
