import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig } from '../src/config.ts';
import { ServeError } from '../src/errors.ts';

function configError(env: Record<string, string>): ServeError {
  try {
    loadConfig(env);
  } catch (err) {
    return err as ServeError;
  }
  throw new Error('expected loadConfig to fail');
}

describe('config', () => {
  it('applies the named defaults and freezes the result', () => {
    const cfg = loadConfig({});
    expect(cfg.HTTP_PORT).toBe(DEFAULTS.HTTP_PORT);
    expect(cfg.WORKER_HANG_TIMEOUT_MS).toBe(DEFAULTS.WORKER_HANG_TIMEOUT_MS);
    expect(cfg.ALLOW_DEV_BACKEND).toBe(false);
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('leaves the engine settings unset when not given: the engine plan owns their defaults', () => {
    const cfg = loadConfig({});
    const engine = [
      'ENGINE_EXECUTOR', 'ENGINE_BACKEND', 'WORKERS', 'WORKER_ISOLATION', 'WORKER_NICE', 'TF_INTRA_OP_THREADS', 'TF_INTER_OP_THREADS', 'TF_ENABLE_ONEDNN',
    ] as const;
    expect(engine.map((k) => cfg[k])).toEqual(engine.map(() => undefined));
    // ENGINE_DEFAULTS (src/inference/engine-plan.ts) is the one list of them; config has no copy.
    expect(Object.keys(DEFAULTS).filter((k) => (engine as readonly string[]).includes(k))).toEqual([]);
    const set = loadConfig({
      ENGINE_EXECUTOR: 'fused', ENGINE_BACKEND: 'tensorflow', WORKERS: '3', WORKER_ISOLATION: 'process', WORKER_NICE: '5',
      TF_INTRA_OP_THREADS: '0', TF_INTER_OP_THREADS: '2', TF_ENABLE_ONEDNN: 'true',
    });
    expect(engine.map((k) => set[k])).toEqual(['fused', 'tensorflow', 3, 'process', 5, 0, 2, true]);
    expect(loadConfig({ TF_ENABLE_ONEDNN: 'false' }).TF_ENABLE_ONEDNN).toBe(false);
    expect(loadConfig({ TF_ENABLE_ONEDNN: 'auto' }).TF_ENABLE_ONEDNN).toBe('auto');
    expect(configError({ TF_ENABLE_ONEDNN: 'maybe' }).details.fields).toEqual(['TF_ENABLE_ONEDNN']);
    expect(configError({ ENGINE_EXECUTOR: 'tensorrt' }).details.fields).toEqual(['ENGINE_EXECUTOR']);
    expect(configError({ WORKER_ISOLATION: 'fiber' }).details.fields).toEqual(['WORKER_ISOLATION']);
  });

  it('coerces numbers from the environment', () => {
    expect(loadConfig({ TF_INTRA_OP_THREADS: '4' }).TF_INTRA_OP_THREADS).toBe(4);
  });

  it('names the field of a bad value', () => {
    const err = configError({ TF_INTER_OP_THREADS: 'many' });
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.message).toContain('TF_INTER_OP_THREADS');
  });

  it('takes flags over the environment, and names unknown flags', () => {
    const cfg = loadConfig({ HTTP_PORT: '1000' }, ['--http-port=9000', '--workers', '3']);
    expect(cfg.HTTP_PORT).toBe(9000);
    expect(cfg.WORKERS).toBe(3);
    expect(() => loadConfig({}, ['--colour=blue'])).toThrow(/unknown command-line flag '--colour=blue'/);
    expect(() => loadConfig({}, ['--workers'])).toThrow(/flag --workers needs a value/);
    expect(() => loadConfig({}, ['--workers=0'])).toThrow(/WORKERS/);
  });

  it('refuses to protect /metrics with no token configured', () => {
    expect(configError({ METRICS_REQUIRE_TOKEN: 'true' }).message).toContain('METRICS_REQUIRE_TOKEN: needs AUTH_TOKEN');
  });

  it('requires a long enough bearer token', () => {
    expect(configError({ AUTH_TOKEN: 'short' }).message).toContain('AUTH_TOKEN: must be at least 16 characters');
  });

  it('has safe defaults for every limit and timeout', () => {
    const cfg = loadConfig({});
    expect({
      MAX_BODY_BYTES: cfg.MAX_BODY_BYTES, MAX_GRPC_MESSAGE_BYTES: cfg.MAX_GRPC_MESSAGE_BYTES, MAX_TENSOR_ELEMENTS: cfg.MAX_TENSOR_ELEMENTS,
      MAX_HEADER_BYTES: cfg.MAX_HEADER_BYTES, MAX_CONNECTIONS: cfg.MAX_CONNECTIONS, GRPC_MAX_CONCURRENT_STREAMS: cfg.GRPC_MAX_CONCURRENT_STREAMS,
      HEADERS_TIMEOUT_MS: cfg.HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS: cfg.REQUEST_TIMEOUT_MS, IDLE_TIMEOUT_MS: cfg.IDLE_TIMEOUT_MS,
    }).toEqual({
      MAX_BODY_BYTES: 64 * 2 ** 20, MAX_GRPC_MESSAGE_BYTES: 64 * 2 ** 20, MAX_TENSOR_ELEMENTS: 16 * 2 ** 20,
      MAX_HEADER_BYTES: 16 * 1024, MAX_CONNECTIONS: 1024, GRPC_MAX_CONCURRENT_STREAMS: 100,
      HEADERS_TIMEOUT_MS: 10_000, REQUEST_TIMEOUT_MS: 120_000, IDLE_TIMEOUT_MS: 72_000,
    });
    expect(cfg.TLS_CERT_FILE).toBeUndefined();
    expect(cfg.AUTH_TOKEN).toBeUndefined();
  });

  it('ties the gRPC message limit to MAX_BODY_BYTES unless MAX_GRPC_MESSAGE_BYTES is set', () => {
    expect(loadConfig({ MAX_BODY_BYTES: '1000' }).MAX_GRPC_MESSAGE_BYTES).toBe(1000);
    expect(loadConfig({ MAX_BODY_BYTES: '1000', MAX_GRPC_MESSAGE_BYTES: '5000' }).MAX_GRPC_MESSAGE_BYTES).toBe(5000);
    expect(configError({ MAX_GRPC_MESSAGE_BYTES: '0' }).message).toContain('MAX_GRPC_MESSAGE_BYTES');
  });

  it('refuses limits and timeouts that would switch the protection off, naming the field', () => {
    for (const field of ['MAX_TENSOR_ELEMENTS', 'MAX_CONNECTIONS', 'GRPC_MAX_CONCURRENT_STREAMS', 'HEADERS_TIMEOUT_MS', 'REQUEST_TIMEOUT_MS', 'IDLE_TIMEOUT_MS', 'MAX_HEADER_BYTES']) {
      const err = configError({ [field]: '0' });
      expect(err.message, field).toContain(`${field}: `);
      expect(err.details.fields, field).toEqual([field]);
    }
    expect(configError({ HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '1000' }).message)
      .toContain('HEADERS_TIMEOUT_MS: must not exceed REQUEST_TIMEOUT_MS (1000)');
  });

  it('takes TLS files as a pair, a client CA only with them, and as flags too', () => {
    expect(configError({ TLS_CERT_FILE: 'server.crt' }).message).toContain('TLS_KEY_FILE: TLS needs both TLS_CERT_FILE and TLS_KEY_FILE');
    expect(configError({ TLS_KEY_FILE: 'server.key' }).message).toContain('TLS_CERT_FILE: TLS needs both');
    expect(configError({ TLS_CA_FILE: 'ca.crt' }).message).toContain('TLS_CA_FILE: mutual TLS needs TLS_CERT_FILE and TLS_KEY_FILE too');
    const cfg = loadConfig({}, ['--tls-cert-file', 'server.crt', '--tls-key-file=server.key', '--tls-ca-file', 'ca.crt']);
    expect([cfg.TLS_CERT_FILE, cfg.TLS_KEY_FILE, cfg.TLS_CA_FILE]).toEqual(['server.crt', 'server.key', 'ca.crt']);
  });

  it('never repeats a token in its error messages', () => {
    const token = 'tiny-secret';
    expect(configError({ AUTH_TOKEN: token }).message).not.toContain(token);
    expect(configError({ AUTH_TOKEN: 'x'.repeat(5000) }).message).not.toContain('xxxx');
  });

  it('refuses a development backend without the explicit opt-in', () => {
    expect(configError({ ENGINE_BACKEND: 'cpu' }).message).toContain('ALLOW_DEV_BACKEND=true');
    expect(loadConfig({ ENGINE_BACKEND: 'wasm', ALLOW_DEV_BACKEND: 'true' }).ENGINE_BACKEND).toBe('wasm');
  });
});
