// The service as main.ts starts it, attacked from outside: bearer tokens that must never reach
// the logs, model names that try to leave the repository, and errors that must not tell the
// client about the server's insides.
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InferenceService } from '../../src/inference/index.ts';
import { writeTinyModelFolder } from '../helpers/tiny-model.ts';
import { call, failure, grpcClients, makeRepository, startRealServer, type GrpcClients, type RealServer } from './real-server.ts';

const TOKEN = 'Sup3r-Secret-Token-7f3a9c1e5b';
const WRONG = 'Sup3r-Secret-Token-7f3a9c1e5c';
const OTHER = 'an-entirely-different-guess-42';

let outside: string;
let repo: string;
let s: RealServer;
let grpcClient: GrpcClients;
let base: string;

beforeAll(async () => {
  // A complete, valid model outside the repository: were a check missing, loading it would work.
  outside = await mkdtemp(path.join(tmpdir(), 'outside-'));
  repo = await makeRepository(async (root) => {
    await writeTinyModelFolder(outside, 'elsewhere', { seed: 5 });
    await symlink(path.join(outside, 'elsewhere'), path.join(root, 'linked-out'));
  });
  s = await startRealServer({ AUTH_TOKEN: TOKEN, METRICS_REQUIRE_TOKEN: 'true' }, { repo, logLevel: 'trace' });
  base = `http://127.0.0.1:${s.server.httpPort}`;
  grpcClient = grpcClients(`127.0.0.1:${s.server.grpcPort}`);
});

afterAll(async () => {
  grpcClient?.close();
  await s?.close();
  await rm(repo, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const post = (url: string, headers: Record<string, string> = {}) => fetch(`${base}${url}`, { method: 'POST', headers });

/** A request with its path sent exactly as written (fetch would normalise `..`). */
function rawRequest(method: string, rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: s.server.httpPort, method, path: rawPath, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** What must never be in an answer: stack frames, our paths, the repository's, library paths. */
function expectNothingInternal(text: string): void {
  expect(text).not.toMatch(/\n\s+at |\bat .*\.(ts|js):\d+/);
  for (const leak of [process.cwd(), repo, outside, '/work/', 'node_modules', 'file://', '.ts:', 'Error:']) expect(text).not.toContain(leak);
}

describe('bearer tokens', () => {
  it('guard management and /metrics (401 without, 403 wrong, 200 right) and never appear in any log line', async () => {
    const linesBefore = s.logs.length;
    expect((await post('/v2/repository/index')).status).toBe(401);
    expect((await post('/v2/repository/index', bearer(WRONG))).status).toBe(403);
    expect((await post('/v2/repository/index', bearer(OTHER))).status).toBe(403);
    expect((await post('/v2/repository/models/tiny/unload', bearer(WRONG))).status).toBe(403);
    expect((await post('/v2/repository/index', { authorization: `Basic ${TOKEN}` })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: bearer(WRONG) })).status).toBe(403);
    expect((await fetch(`${base}/metrics`, { headers: bearer(TOKEN) })).status).toBe(200);
    expect((await post('/v2/repository/index', bearer(TOKEN))).status).toBe(200);
    expect((await post('/v2/repository/models/tiny/load', bearer(TOKEN))).status).toBe(200);
    // Inference is open; a token sent along anyway is not logged either (HTTP header, gRPC metadata).
    expect((await fetch(`${base}/v2/models/tiny`, { headers: bearer(TOKEN) })).status).toBe(200);
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    await call(grpcClient.inference, 'ModelMetadata', { name: 'tiny' }, metadata);
    await failure(call(grpcClient.inference, 'ModelMetadata', { name: 'absent' }, metadata));

    // Trace level: everything the server and its libraries log per request is in there.
    await expect.poll(() => s.logs.slice(linesBefore).filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(10);
    const written = s.logs.join('');
    expect(written).toContain('"status":403');
    for (const secret of [TOKEN, WRONG, OTHER, TOKEN.slice(0, 16), WRONG.slice(-12)]) expect(written).not.toContain(secret);
  });
});

describe('model names that try to leave the repository', () => {
  const load = (name: string) => rawRequest('POST', `/v2/repository/models/${name}/load`, bearer(TOKEN));

  it.each([
    ['..%2Fx', 400], ['%2e%2e%2fx', 400], ['%2E%2E%2Ftiny', 400], ['..', 400], ['%2e%2e', 400], ['..%2F..%2Fetc%2Fpasswd', 400],
    ['%2Fetc%2Fpasswd', 400], ['%252e%252e%252f', 400], ['..%5Ctiny', 400], ['tiny%00', 400], ['.hidden', 400],
    // Unencoded separators never reach the handler: no route has that many segments.
    ['../x', 404], ['/etc/passwd', 404], ['../../etc/passwd', 404],
  ])('REST load refuses %s (%i) without touching the file system', async (name, status) => {
    const res = await load(name);
    expect(res.status).toBe(status);
    expectNothingInternal(res.body);
    if (status === 400) expect(JSON.parse(res.body)).toMatchObject({ error: expect.stringMatching(/is not a valid model name/) });
  });

  it('REST load refuses a model folder that is a symlink out of the repository, without saying where it points', async () => {
    const res = await load('linked-out');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: "model 'linked-out' resolves outside the model repository" });
    expectNothingInternal(res.body);
    expect((await fetch(`${base}/v2/models/linked-out`)).status).toBe(404);
    expect((await fetch(`${base}/v2/models/elsewhere`)).status).toBe(404);
  });

  it('REST unload and model routes refuse the same names', async () => {
    for (const name of ['..%2Ftiny', '%2e%2e%2ftiny', '%2Fetc%2Fpasswd']) {
      const unload = await rawRequest('POST', `/v2/repository/models/${name}/unload`, bearer(TOKEN));
      expect(unload.status, name).toBe(400);
      const meta = await rawRequest('GET', `/v2/models/${name}`);
      expect(meta.status, name).toBe(400);
      expectNothingInternal(meta.body);
    }
    expect((await fetch(`${base}/v2/models/tiny/ready`)).status).toBe(200);
  });

  it('gRPC answers such names as unknown or invalid, its load RPC included, never from the file system', async () => {
    const token = new grpc.Metadata();
    token.set('authorization', `Bearer ${TOKEN}`);
    for (const name of ['../tiny', '../../etc/passwd', '/etc/passwd', '%2e%2e%2ftiny', 'linked-out', 'elsewhere']) {
      const meta = await failure(call(grpcClient.inference, 'ModelMetadata', { name }));
      expect([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND], name).toContain(meta.code);
      expectNothingInternal(meta.details);
      const classify = await failure(call(grpcClient.classifier, 'Classify', { model_name: name, images: [Buffer.from('x')] }));
      expect([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND], name).toContain(classify.code);
      const load = await failure(call(grpcClient.inference, 'RepositoryModelLoad', { model_name: name }, token));
      // As over REST: a bad name is INVALID_ARGUMENT, a symlink out of the repository (linked-out)
      // FAILED_PRECONDITION (INVALID_MODEL_FILE), a missing folder NOT_FOUND; nothing says where.
      expect([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.FAILED_PRECONDITION], name).toContain(load.code);
      expectNothingInternal(load.details);
    }
    const wrong = new grpc.Metadata();
    wrong.set('authorization', 'Bearer not-the-token-at-all');
    expect((await failure(call(grpcClient.inference, 'RepositoryModelUnload', { model_name: 'tiny' }, wrong))).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await fetch(`${base}/v2/models/tiny/ready`)).status).toBe(200);
  });
});

describe('errors', () => {
  it('answer an unexpected failure generically on both transports, and log it in full', async () => {
    const boom = (): never => {
      throw new Error(`disk on fire reading ${path.join(repo, 'tiny', 'weights.safetensors')}`);
    };
    const spy = vi.spyOn(InferenceService.prototype, 'describe').mockImplementation(boom);
    try {
      const res = await fetch(`${base}/v2/models/tiny`, { headers: { 'x-request-id': 'boom-http' } });
      expect(res.status).toBe(500);
      const body = await res.text();
      expect(JSON.parse(body)).toEqual({ error: 'internal server error' });
      expectNothingInternal(body);
      const headers = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
      expectNothingInternal(headers);

      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', 'boom-grpc');
      const err = await failure(call(grpcClient.inference, 'ModelMetadata', { name: 'tiny' }, metadata));
      expect(err.code).toBe(grpc.status.INTERNAL);
      expect(err.details).toBe('internal error (request id boom-grpc)');
      expectNothingInternal(JSON.stringify(err.metadata.getMap()));
    } finally {
      spy.mockRestore();
    }
    const logged = s.logs.map((l) => JSON.parse(l) as { level: number; requestId?: string; reqId?: string; err?: { stack?: string } });
    expect(logged.find((l) => l.level === 50 && l.reqId === 'boom-http')?.err?.stack).toContain('disk on fire');
    expect(logged.find((l) => l.level === 50 && l.reqId === 'boom-grpc')?.err?.stack).toContain('hardening.test.ts');
  });

  it('answer malformed requests with messages written for clients, never parser internals', async () => {
    const answers = await Promise.all([
      fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": [' }),
      fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1e400]}]}' }),
      fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: 'not gzip at all' }),
      fetch(`${base}/v1/models/tiny/classify`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x\r\nbroken' }),
      fetch(`${base}/v1/models/tiny/classify`, { method: 'PUT', body: Buffer.from('GIF89a-truncated') }),
      fetch(`${base}/no/such/route`),
    ]);
    for (const res of answers) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expectNothingInternal(await res.text());
    }
    for (const raw of ['/v2/models/%E0%A4%A/ready', '/v2/models/tiny%ZZ', '/%']) {
      const res = await rawRequest('GET', raw);
      expect(res.status, raw).toBeGreaterThanOrEqual(400);
      expectNothingInternal(res.body);
    }
  });
});
