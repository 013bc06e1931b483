// Properties of the model manifest parser (src/inference/repository/manifest.ts), on manifests
// fast-check makes up: every valid manifest parses and keeps what it says; any JSON value that
// is not one, and any valid manifest with one field made wrong or one key too many, is refused
// with INVALID_MODEL_FILE naming the field (its path in the manifest) or the unknown key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRESET_NAMES } from '../../src/densenet/index.ts';
import { ServeError } from '../../src/errors.ts';
import { parseManifest } from '../../src/inference/repository/manifest.ts';

const SEED = 0x3a1f;
const WHERE = 'models/m/manifest.json';

const fileName = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,30}$/);
const positive = (max: number) => fc.double({ min: 1e-6, max, noNaN: true });

const preprocessing = fc.integer({ min: 1, max: 4 }).chain((k) => fc.record({
  resizeMode: fc.constantFrom('resize-crop', 'stretch', 'letterbox'),
  resizeShorterTo: fc.integer({ min: 1, max: 8192 }),
  interpolation: fc.constantFrom('bilinear', 'bicubic', 'nearest'),
  mean: fc.array(fc.double({ min: -1000, max: 1000, noNaN: true }), { minLength: k, maxLength: k }),
  std: fc.array(positive(1000), { minLength: k, maxLength: k }),
  polarity: fc.constantFrom('as-is', 'invert', 'dark-background'),
  background: fc.integer({ min: 0, max: 255 }),
}, { requiredKeys: ['mean', 'std'] }));

const batching = fc.integer({ min: 1, max: 1024 }).chain((max) => fc.record({
  maxBatchSize: fc.constant(max),
  maxQueueDelayMs: fc.double({ min: 0, max: 60_000, noNaN: true }),
  maxQueueSize: fc.integer({ min: 1, max: 1_000_000 }),
  preferredBatchSizes: fc.array(fc.integer({ min: 1, max }), { maxLength: 16 }),
  latencyTargetMs: positive(600_000),
}, { requiredKeys: ['maxBatchSize'] }));

const architecture = fc.record({
  preset: fc.constantFrom(...PRESET_NAMES),
  inputHeight: fc.integer({ min: 1, max: 4096 }),
  inputWidth: fc.integer({ min: 1, max: 4096 }),
  inputChannels: fc.integer({ min: 1, max: 4 }),
  numClasses: fc.integer({ min: 1, max: 100_000 }),
  bnEpsilon: fc.double({ min: 1e-9, max: 0.1, noNaN: true }),
}, { requiredKeys: ['preset'] });

type Manifest = Record<string, unknown>;

const validManifest: fc.Arbitrary<Manifest> = fc.record({
  description: fc.string({ maxLength: 40 }),
  format: fc.constantFrom('safetensors', 'tfjs-layers'),
  architecture,
  weights: fileName,
  labels: fc.oneof(fileName, fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 20 })),
  preprocessing,
  batching,
  instances: fc.integer({ min: 1, max: 256 }),
  versionPolicy: fc.oneof(fc.constant('all'), fc.record({ latest: fc.integer({ min: 1, max: 100 }) })),
}, { requiredKeys: ['format', 'labels', 'preprocessing'] })
  // safetensors weights say nothing about the network: the manifest must.
  .map((m) => (m.format === 'safetensors' && m.architecture === undefined ? { ...m, architecture: { preset: 'densenet121' } } : m));

/** The refusal of `value`, which must be INVALID_MODEL_FILE naming where it came from. */
function refusal(value: unknown): ServeError {
  let caught: unknown;
  try {
    parseManifest(JSON.stringify(value), WHERE);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ServeError);
  const err = caught as ServeError;
  expect(err.code).toBe('INVALID_MODEL_FILE');
  expect(err.message.startsWith(`${WHERE}: `)).toBe(true);
  return err;
}

/** A copy of `m` with the value at `path` (dot-separated) replaced. */
function withValue(m: Manifest, path: string, value: unknown): Manifest {
  const copy = structuredClone(m);
  const keys = path.split('.');
  let at = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) {
    at[key] = { ...(at[key] as Record<string, unknown> | undefined) };
    at = at[key] as Record<string, unknown>;
  }
  at[keys.at(-1)!] = value;
  return copy;
}

/** For each field: values that are wrong for it whatever the rest of the manifest says. */
const WRONG: Record<string, fc.Arbitrary<unknown>> = {
  format: fc.oneof(fc.string().filter((s) => s !== 'safetensors' && s !== 'tfjs-layers'), fc.integer(), fc.constant(null)),
  labels: fc.constantFrom([], '', '../labels.txt', 'a/b.txt', 5, [''], ['x'.repeat(201)], null),
  weights: fc.constantFrom('', 'x'.repeat(256), 5, null, []),
  description: fc.constantFrom('x'.repeat(1001), 5, null),
  architecture: fc.constantFrom({ preset: 'resnet50' }, 'densenet121', { preset: 'densenet121', inputChannels: 5 }, { preset: 'densenet121', colour: 1 }, 7),
  'preprocessing.mean': fc.constantFrom('0.5', [2000], [null], {}, -1),
  'preprocessing.std': fc.constantFrom([0], [-1], ['1'], 0.5, [2000]),
  'preprocessing.resizeMode': fc.oneof(fc.constantFrom('crop', 'fill', 5, null)),
  'preprocessing.resizeShorterTo': fc.constantFrom(0, 8193, 1.5, '256'),
  'preprocessing.interpolation': fc.constantFrom('lanczos', 1),
  'preprocessing.polarity': fc.constantFrom('inverted', true),
  'preprocessing.background': fc.constantFrom(256, -1, 1.5, 'white'),
  'batching.maxBatchSize': fc.constantFrom(0, 1025, 1.5, '8'),
  'batching.maxQueueSize': fc.constantFrom(0, 1_000_001, -5),
  'batching.maxQueueDelayMs': fc.constantFrom(-1, 60_001, '0'),
  'batching.latencyTargetMs': fc.constantFrom(0, -1, 600_001),
  'batching.preferredBatchSizes': fc.constantFrom([0], [2000], 'all', Array.from({ length: 17 }, () => 1)),
  instances: fc.constantFrom(0, 257, 1.5, 'all'),
  versionPolicy: fc.constantFrom('newest', { latest: 0 }, { latest: 1, also: 2 }, 3, null),
};

describe('manifest properties', () => {
  it('parses every valid manifest, keeping each value it gives and filling the named defaults', () => {
    fc.assert(fc.property(validManifest, (m) => {
      const parsed = parseManifest(JSON.stringify(m), WHERE) as unknown as Manifest;
      // Compared with the manifest as its file holds it (JSON writes -0 as 0).
      const written = JSON.parse(JSON.stringify(m)) as Manifest;
      expect(parsed).toMatchObject(written);
      if (m.batching === undefined) expect(parsed.batching).toEqual({ maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 256 });
      if (m.versionPolicy === undefined) expect(parsed.versionPolicy).toEqual({ latest: 1 });
      expect(parsed.preprocessing).toMatchObject({ resizeMode: 'resize-crop', interpolation: 'bilinear', polarity: 'as-is', background: 255, ...(written.preprocessing as object) });
    }), { seed: SEED, numRuns: 300 });
  });

  it('refuses any JSON value that is not a manifest, naming each field at fault', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
      const err = refusal(value);
      const fields = err.details.fields as string[];
      expect(fields.length).toBeGreaterThan(0);
      for (const field of fields) expect(err.message).toContain(`${field || '(manifest)'}: `);
    }), { seed: SEED, numRuns: 300 });
  });

  it('refuses a valid manifest with one field made wrong, naming that field', () => {
    const broken = fc.tuple(validManifest, fc.constantFrom(...Object.keys(WRONG))).chain(([m, path]) => WRONG[path]!.map((value) => ({ m, path, value })));
    fc.assert(fc.property(broken, ({ m, path, value }) => {
      const err = refusal(withValue(m, path, value));
      const fields = err.details.fields as string[];
      expect(fields.some((f) => f === path || f.startsWith(`${path}.`)), `${path} in ${fields.join(', ')}`).toBe(true);
      expect(err.message).toContain(`${path}`);
    }), { seed: SEED, numRuns: 400 });
  });

  it('refuses a key it does not know, at the top or inside a section, naming the key', () => {
    const known = new Set(['description', 'format', 'architecture', 'weights', 'labels', 'preprocessing', 'batching', 'instances', 'versionPolicy',
      'resizeMode', 'resizeShorterTo', 'interpolation', 'mean', 'std', 'polarity', 'background',
      'maxBatchSize', 'maxQueueDelayMs', 'maxQueueSize', 'preferredBatchSizes', 'latencyTargetMs']);
    const key = fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.constantFrom('constructor', 'toString', 'colour', 'Labels')).filter((k) => !known.has(k) && !k.includes('.') && k !== '__proto__');
    fc.assert(fc.property(validManifest, fc.constantFrom('', 'preprocessing', 'batching'), key, fc.jsonValue({ maxDepth: 1 }), (m, section, extra, value) => {
      const err = refusal(withValue(m, section ? `${section}.${extra}` : extra, value));
      const fields = err.details.fields as string[];
      expect(fields).toContain(section);
      expect(err.message).toContain(`${section || '(manifest)'}: `);
      expect(err.message).toContain(extra);
    }), { seed: SEED, numRuns: 300 });
    // A "__proto__" key in the file is an own key like any other (JSON.parse makes it one).
    const proto = refusal(JSON.parse('{"format":"tfjs-layers","labels":["a"],"preprocessing":{"mean":[0],"std":[1]},"__proto__":{"instances":2}}'));
    expect(proto.message).toContain('__proto__');
  });
});
