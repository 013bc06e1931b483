// Model management behind the bearer token, /metrics, the OpenAPI document and docs page,
// draining, and how unexpected errors are answered and logged.
import { Writable } from 'node:stream';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.ts';
import { pngOf, startHarness, type Harness } from './harness.ts';

const TOKEN = 'test-token-0123456789abcdef';
let h: Harness;
let secured: FastifyInstance;
const lines: string[] = [];
const input = { name: 'input', datatype: 'FP32', shape: [1, 16, 16, 3], data: new Array(16 * 16 * 3).fill(0.25) };

beforeAll(async () => {
  h = await startHarness({ models: { tiny: { seed: 1 }, spare: { seed: 2 }, broken: { manifest: { labels: ['only-one'] } } } });
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
  secured = await h.buildApp({ AUTH_TOKEN: TOKEN, METRICS_REQUIRE_TOKEN: 'true' }, createLogger('debug', sink));
});

afterAll(async () => {
  await h?.close();
});

const bearer = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

describe('model repository endpoints', () => {
  it('refuse a missing token with 401 and a wrong one with 403, and never log either', async () => {
    const none = await secured.inject({ method: 'POST', url: '/v2/repository/index' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="densenet-serve"');
    expect(none.json()).toEqual({ error: 'this endpoint needs an Authorization: Bearer <token> header' });
    const wrong = await secured.inject({ method: 'POST', url: '/v2/repository/models/spare/unload', headers: bearer('test-token-0123456789abcdeF') });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json()).toEqual({ error: 'the bearer token is not valid' });
    const basic = await secured.inject({ method: 'POST', url: '/v2/repository/index', headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.statusCode).toBe(401);
    expect(h.service.isReady('spare')).toBe(true); // the refused unload did nothing
    const ok = await secured.inject({ method: 'POST', url: '/v2/repository/index', headers: bearer() });
    expect(ok.statusCode).toBe(200);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes('test-token-0123456789abcde'))).toEqual([]);
  });

  it('list the repository with states, unloaded and broken folders included', async () => {
    const res = await secured.inject({ method: 'POST', url: '/v2/repository/index', headers: bearer() });
    const index = res.json<Array<{ name: string; state: string; reason?: string; version?: string }>>();
    expect(index.map((e) => [e.name, e.version, e.state])).toEqual([['broken', undefined, 'UNAVAILABLE'], ['spare', '1', 'READY'], ['tiny', '1', 'READY']]);
    expect(index[0]!.reason).toMatch(/label/);
    const ready = await secured.inject({ method: 'POST', url: '/v2/repository/index', headers: { ...bearer(), 'content-type': 'application/json' }, payload: '{"ready": true}' });
    expect(ready.json<Array<{ name: string }>>().map((e) => e.name)).toEqual(['spare', 'tiny']);
  });

  it('unload and load a model without restart, as tritonclient sends them (JSON body, no Content-Type)', async () => {
    const unload = await secured.inject({ method: 'POST', url: '/v2/repository/models/spare/unload', headers: bearer(), payload: Buffer.from('{"parameters": {"unload_dependents": false}}') });
    expect(unload.statusCode).toBe(200);
    expect(unload.json()).toEqual({});
    expect((await secured.inject('/v2/models/spare/ready')).statusCode).toBe(404);
    expect((await secured.inject({ method: 'POST', url: '/v2/models/spare/infer', payload: { inputs: [input] } })).statusCode).toBe(404);
    const index = (await secured.inject({ method: 'POST', url: '/v2/repository/index', headers: bearer() })).json<Array<{ name: string }>>();
    expect(index.find((e) => e.name === 'spare')).toEqual({ name: 'spare', state: 'UNAVAILABLE', reason: 'unloaded' });

    const load = await secured.inject({ method: 'POST', url: '/v2/repository/models/spare/load', headers: bearer(), payload: Buffer.from('{}') });
    expect(load.statusCode).toBe(200);
    expect((await secured.inject('/v2/models/spare/ready')).statusCode).toBe(200);
    expect((await secured.inject({ method: 'POST', url: '/v2/models/spare/infer', payload: { inputs: [input] } })).statusCode).toBe(200);
  });

  it('answer load and unload errors with the right status', async () => {
    const post = (url: string, payload?: string) => secured.inject({ method: 'POST', url, headers: bearer(), ...(payload ? { payload } : {}) });
    expect((await post('/v2/repository/models/absent/load')).statusCode).toBe(404);
    expect((await post('/v2/repository/models/absent/unload')).json()).toEqual({ error: 'model absent is not loaded' });
    const broken = await post('/v2/repository/models/broken/load');
    expect(broken.statusCode).toBe(400);
    expect(broken.json<{ error: string }>().error).toMatch(/label/);
    const config = await post('/v2/repository/models/tiny/load', '{"parameters": {"config": "{}"}}');
    expect(config.statusCode).toBe(400);
    expect(config.json()).toEqual({ error: 'parameters: load parameters (config or file overrides) are not supported' });
    expect((await post('/v2/repository/index', '{"ready": "yes"}')).json<{ error: string }>().error).toMatch(/^ready: /);
  });

  it('are open when no AUTH_TOKEN is set', async () => {
    expect((await h.app.inject({ method: 'POST', url: '/v2/repository/index' })).statusCode).toBe(200);
  });
});

describe('/metrics', () => {
  it('exposes request, batch and queue metrics labelled by model, behind the token when asked', async () => {
    await secured.inject({ method: 'PUT', url: '/v1/models/tiny/classify', payload: await pngOf(3) });
    await secured.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: { inputs: [{ ...input, shape: [1, 2] }] } });
    await secured.inject({ method: 'POST', url: '/v2/models/no-such-model/infer', payload: {} });
    expect((await secured.inject('/metrics')).statusCode).toBe(401);
    const res = await secured.inject({ url: '/metrics', headers: bearer() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toMatch(/densenet_requests_total\{transport="http",model="tiny",outcome="2xx"\} [1-9]/);
    expect(text).toMatch(/densenet_requests_total\{transport="http",model="tiny",outcome="4xx"\} [1-9]/);
    // A made-up model name does not become a label value.
    expect(text).toMatch(/densenet_requests_total\{transport="http",model="_unknown",outcome="4xx"\} [1-9]/);
    expect(text).not.toContain('no-such-model');
    for (const name of ['densenet_request_duration_seconds_bucket', 'densenet_batch_size_bucket', 'densenet_queue_duration_seconds_bucket',
      'densenet_compute_duration_seconds_bucket', 'densenet_inference_items_total', 'densenet_queue_depth', 'densenet_model_ready', 'densenet_process_cpu_seconds_total']) {
      expect(text, name).toContain(name);
    }
    expect((await h.app.inject('/metrics')).statusCode).toBe(200); // no METRICS_REQUIRE_TOKEN there
  });
});

describe('OpenAPI and docs', () => {
  it('serves a valid OpenAPI 3.1 document covering every route, generated from the zod schemas', async () => {
    const res = await h.app.inject('/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = JSON.parse(res.body) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }; parameters: Array<{ name: string; in: string }> }>> };
    expect(doc.openapi).toBe('3.1.0');
    // Valid against the OpenAPI Initiative's 3.1 schema, every internal $ref resolving.
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // The validator does refuse a broken copy (a path parameter that is not required, which
    // OpenAPI forbids), so the check above is not vacuous.
    const broken = structuredClone(doc);
    (broken.paths['/v2/models/{model}/infer']!.post!.parameters[0] as { required?: boolean }).required = false;
    expect((await new Validator().validate(broken)).valid).toBe(false);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/metrics', '/v1/classify', '/v1/models', '/v1/models/{model}/classify', '/v1/models/{model}/versions/{version}/classify',
      '/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/{model}', '/v2/models/{model}/config', '/v2/models/{model}/infer', '/v2/models/{model}/ready',
      '/v2/models/{model}/versions/{version}', '/v2/models/{model}/versions/{version}/config', '/v2/models/{model}/versions/{version}/infer',
      '/v2/models/{model}/versions/{version}/ready',
      '/v2/repository/index', '/v2/repository/models/{model}/load', '/v2/repository/models/{model}/unload',
    ]);
    expect(Object.keys(doc.paths['/v1/models/{model}/classify']!).sort()).toEqual(['post', 'put']);
    const infer = doc.paths['/v2/models/{model}/versions/{version}/infer']!.post!;
    expect(infer.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['path:model', 'path:version']);
    expect(Object.keys(infer.requestBody!.content['application/json']!.schema.properties!)).toEqual(['id', 'parameters', 'inputs', 'outputs']);
    const classify = doc.paths['/v1/classify']!.post!;
    expect(classify.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['query:top_k', 'query:timeout_ms', 'query:priority']);
  });

  it('serves a self-contained HTML page of the same document', async () => {
    const res = await h.app.inject('/docs');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toMatch(/^<!doctype html>/);
    expect(res.body).toContain('<code>/v2/models/{model}/versions/{version}/infer</code>');
    expect(res.body).toContain('binary_data_size');
    expect(res.body).not.toMatch(/<script|<link|src=|https?:\/\//i);
  });
});

describe('draining and unexpected errors', () => {
  it('reports not ready and refuses new inference while draining; live and metadata still answer', async () => {
    h.edge.setDraining(true);
    try {
      const ready = await h.app.inject('/v2/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ ready: false, error: 'the server is draining' });
      const modelReady = await h.app.inject('/v2/models/tiny/ready');
      expect(modelReady.statusCode).toBe(503);
      expect(modelReady.json()).toEqual({ name: 'tiny', ready: false, error: 'the server is draining' });
      expect((await h.app.inject('/v2/health/live')).statusCode).toBe(200);
      expect((await h.app.inject('/v2/models/tiny')).statusCode).toBe(200);
      const infer = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: { inputs: [input] } });
      expect(infer.statusCode).toBe(503);
      expect(infer.headers.connection).toBe('close');
      expect(infer.json()).toEqual({ error: 'the server is draining and accepts no new inference requests' });
      expect((await h.app.inject({ method: 'PUT', url: '/v1/classify', payload: await pngOf(4) })).statusCode).toBe(503);
    } finally {
      h.edge.setDraining(false);
    }
    expect((await h.app.inject('/v2/health/ready')).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: { inputs: [input] } })).statusCode).toBe(200);
  });

  it('answers an unexpected error generically and logs it in full with the request id', async () => {
    const logged: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { logged.push(JSON.parse(chunk.toString())); done(); } });
    const app = await h.buildApp({}, createLogger('info', sink));
    app.get('/boom', async () => {
      throw new Error('exploded reading /srv/private/weights.bin');
    });
    const res = await app.inject({ url: '/boom', headers: { 'x-request-id': 'boom-1' } });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'internal server error' });
    const error = logged.find((l) => l.level === 50)!;
    expect(error).toMatchObject({ reqId: 'boom-1', msg: 'request failed' });
    expect((error.err as { message: string; stack: string }).message).toBe('exploded reading /srv/private/weights.bin');
    expect((error.err as { stack: string }).stack).toContain('management.test.ts');
    expect(logged.find((l) => l.msg === 'request')).toMatchObject({ reqId: 'boom-1', status: 500, code: 'INTERNAL' });
  });
});
