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
    expect(cfg.ENGINE_BACKEND).toBe(DEFAULTS.ENGINE_BACKEND);
    expect(cfg.TF_INTER_OP_THREADS).toBe(DEFAULTS.TF_INTER_OP_THREADS);
    expect(cfg.ALLOW_DEV_BACKEND).toBe(false);
    expect(Object.isFrozen(cfg)).toBe(true);
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

  it('refuses a development backend without the explicit opt-in', () => {
    expect(configError({ ENGINE_BACKEND: 'cpu' }).message).toContain('ALLOW_DEV_BACKEND=true');
    expect(loadConfig({ ENGINE_BACKEND: 'wasm', ALLOW_DEV_BACKEND: 'true' }).ENGINE_BACKEND).toBe('wasm');
  });
});
