// The README's and docs' examples, run: every fenced block that addresses a server (curl,
// grpcurl, localhost:8080/8081, $S) is either run here against a real server serving the
// embedded model (models/), or carries a visible skip marker with its reason. Each run block is
// pointed at that server (ports, the docs' example model name, its version), given the image
// files it names, and run by bash with `set -euo pipefail`; every curl call in it must answer
// 2xx with a body that parses as what it says it is, and every label in an answer must be one of
// the model's. So the docs cannot rot without this test failing.
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRealServer, type RealServer } from '../security/real-server.ts';
import { addressesServer, curlCalls, docBlocks, fencedBlocks, imageFiles, isShell, rewriteForServer, type DocBlock } from './doc-blocks.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MODEL = 'fashion-mnist-densenet';
const VERSION = '1';
const LABELS = (await readFile(path.join(ROOT, 'models', MODEL, 'labels.txt'), 'utf8')).split('\n').map((l) => l.trim()).filter(Boolean);
const TOKEN = 'docs-example-token';
const IMAGE_FOR = { '.jpg': 'test/fixtures/images/coffee.jpg', '.jpeg': 'test/fixtures/images/coffee.jpg', '.png': 'test/fixtures/images/chelsea.pil-r80c64.png' } as const;
/** A hang guard for one block (a stuck example must not stall the suite), not a speed bound. */
const BLOCK_GUARD_MS = 120_000;

const blocks = docBlocks(ROOT).filter(addressesServer);
const runnable = blocks.filter((b) => !b.skip && isShell(b));
const name = (b: DocBlock) => `${b.file}:${b.line}`;

/**
 * Sourced before each block. curl is wrapped so each call reports its status and content type on
 * stderr and keeps its output in a file of its own; `open` (a browser on macOS) fetches the page.
 */
const PRELUDE = [
  'set -euo pipefail',
  'curl() {',
  '  local out',
  '  out=$(mktemp "$DOCS_OUT/curl-XXXXXX")',
  '  command curl -sS -w "%{stderr}@@docs-test curl $out %{http_code} %{content_type}\\n" "$@" | tee "$out"',
  '  return "${PIPESTATUS[0]}"',
  '}',
  'open() { curl "$@"; }',
].join('\n');

let server: RealServer;
let work: string;

beforeAll(async () => {
  server = await startRealServer({ WORKERS: '1', AUTH_TOKEN: TOKEN }, { repo: path.join(ROOT, 'models'), logLevel: 'silent' });
  work = await mkdtemp(path.join(tmpdir(), 'docs-examples-'));
  // The working directory looks like a checkout to the examples (node_modules/, proto/).
  await symlink(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'));
  await symlink(path.join(ROOT, 'proto'), path.join(work, 'proto'));
});

afterAll(async () => {
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  calls: Array<{ file: string; status: number; contentType: string }>;
}

async function runBlock(block: DocBlock): Promise<Run> {
  const out = await mkdtemp(path.join(work, 'out-'));
  for (const image of imageFiles(block)) {
    const source = IMAGE_FOR[path.extname(image).toLowerCase() as keyof typeof IMAGE_FOR];
    await copyFile(path.join(ROOT, source), path.join(work, image));
  }
  const code = rewriteForServer(block.code, { httpPort: server.server.httpPort, grpcPort: server.server.grpcPort, model: MODEL, version: VERSION });
  const child = spawn('bash', ['-c', `${PRELUDE}\n${code}\n`], {
    cwd: work,
    env: {
      ...process.env,
      PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      S: `http://127.0.0.1:${server.server.httpPort}`,
      AUTH_TOKEN: TOKEN,
      DOCS_OUT: out,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), BLOCK_GUARD_MS);
  const exit = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(guard);
  const calls = [...stderr.matchAll(/^@@docs-test curl (\S+) (\d+) ?(.*)$/gm)].map((m) => ({ file: m[1]!, status: Number(m[2]), contentType: m[3]! }));
  return { code: exit, stdout, stderr, calls };
}

/** The body of a curl output (after the headers that -i or -D - put in front of it). */
function bodyOf(output: string): string {
  if (!output.startsWith('HTTP/')) return output;
  const end = output.search(/\r?\n\r?\n/);
  return end < 0 ? '' : output.slice(end).replace(/^\r?\n\r?\n/, '');
}

/** Checks every label in a JSON answer against the model's; returns how many it saw. */
function checkLabels(value: unknown, where: string): number {
  if (typeof value === 'string') {
    const row = /^-?\d+\.\d+:(\d+):(.+)$/.exec(value); // the classification extension's "score:index:label"
    if (!row) return 0;
    expect(LABELS[Number(row[1])], `${where}: ${value}`).toBe(row[2]);
    return 1;
  }
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + checkLabels(v, where), 0);
  if (value && typeof value === 'object') {
    let n = 0;
    const record = value as Record<string, unknown>;
    if (typeof record.label === 'string') {
      expect(LABELS, `${where}: label`).toContain(record.label);
      if (typeof record.index === 'number') expect(LABELS[record.index], `${where}: index of ${record.label}`).toBe(record.label);
      n++;
    }
    for (const [k, v] of Object.entries(record)) if (k !== 'label') n += checkLabels(v, where);
    return n;
  }
  return 0;
}

/** A plausible answer for its content type; returns the labels it checked. */
function checkAnswer(body: string, contentType: string, where: string): number {
  expect(body.trim(), `${where}: empty body`).not.toBe('');
  if (/json/.test(contentType)) {
    let parsed: unknown;
    expect(() => (parsed = JSON.parse(body)), `${where}: not JSON: ${body.slice(0, 200)}`).not.toThrow();
    return checkLabels(parsed, where);
  }
  if (/^text\/plain/.test(contentType)) {
    expect(body, `${where}: not Prometheus text`).toMatch(/^# TYPE densenet_\w+ (counter|gauge|histogram)$/m);
    return 0;
  }
  if (/^text\/html/.test(contentType)) {
    expect(body, where).toMatch(/<html/i);
    return 0;
  }
  throw new Error(`${where}: unexpected content type '${contentType}'`);
}

/** Blocks may unload the model (the repository example does): each starts with it loaded. */
async function ensureModelLoaded(): Promise<void> {
  const base = `http://127.0.0.1:${server.server.httpPort}`;
  if ((await fetch(`${base}/v2/models/${MODEL}/ready`)).status === 200) return;
  const res = await fetch(`${base}/v2/repository/models/${MODEL}/load`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status, await res.text()).toBe(200);
}

describe('README and docs examples', () => {
  it('every block that addresses a server is run here or marked with a reason; some of each kind run', () => {
    const unaccounted = blocks.filter((b) => !b.skip && !isShell(b)).map(name);
    expect(unaccounted, 'blocks that address a server but are neither shell (run here) nor marked <!-- docs-test: skip (reason) -->').toEqual([]);
    expect(runnable.length).toBeGreaterThan(0);
    expect(runnable.filter((b) => curlCalls(b) > 0).length, 'curl examples run').toBeGreaterThanOrEqual(5);
    expect(runnable.filter((b) => /node\b[^\n]*<<\s*'?EOF/.test(b.code)).length, 'gRPC example (Node) run').toBeGreaterThanOrEqual(1);
    expect(runnable.some((b) => b.file === 'README.md'), 'a README example runs').toBe(true);
  });

  it.each(runnable.map((b) => [name(b), b] as const))('%s runs against the server: exit 0, 2xx answers, plausible bodies', async (where, block) => {
    await ensureModelLoaded();
    const run = await runBlock(block);
    expect(run.code, `${where} exited ${run.code}\n--- code ---\n${block.code}\n--- stderr ---\n${run.stderr.slice(-3000)}`).toBe(0);
    // Every curl in the block ran (none skipped by an early exit), each answered 2xx.
    expect(run.calls.length, `${where}: curl calls made`).toBe(curlCalls(block));
    for (const [i, call] of run.calls.entries()) {
      const output = await readFile(call.file, 'utf8');
      expect(call.status, `${where}, curl call ${i + 1}: ${output.slice(0, 300)}`).toBeGreaterThanOrEqual(200);
      expect(call.status, `${where}, curl call ${i + 1}: ${output.slice(0, 300)}`).toBeLessThan(300);
      checkAnswer(bodyOf(output), call.contentType, `${where}, curl call ${i + 1}`);
    }
    if (run.calls.length === 0) {
      // Not curl (the Node gRPC example): every line it prints is a JSON answer.
      const lines = run.stdout.split('\n').filter((l) => l.trim());
      expect(lines.length, `${where}: printed nothing`).toBeGreaterThan(0);
      const labelled = lines.reduce((n, l, i) => n + checkAnswer(l, 'application/json', `${where}, line ${i + 1}`), 0);
      expect(labelled, `${where}: no label in its answers`).toBeGreaterThan(0);
    }
  }, BLOCK_GUARD_MS + 30_000);

  it('classify examples answer with the model\'s labels (the label checks above are not vacuous)', async () => {
    await ensureModelLoaded();
    const readme = runnable.find((b) => b.file === 'README.md' && /classify/.test(b.code));
    expect(readme, 'a README classify example').toBeDefined();
    const run = await runBlock(readme!);
    expect(run.code).toBe(0);
    let labelled = 0;
    for (const call of run.calls) labelled += checkAnswer(bodyOf(await readFile(call.file, 'utf8')), call.contentType, name(readme!));
    expect(labelled).toBeGreaterThanOrEqual(5);
  }, BLOCK_GUARD_MS + 30_000);
});

describe('docs-test markers', () => {
  const doc = (text: string) => fencedBlocks(text, 'x.md');

  it('a marker right before a fence (blank lines allowed) skips it with its reason; others do not', () => {
    const blocks = doc('a\n<!-- docs-test: skip (needs Docker) -->\n\n```sh\ncurl -T a.jpg http://localhost:8080/v1/classify\n```\n\n```bash\ncurl "$S/v2"\n```\n');
    expect(blocks.map((b) => [b.lang, b.skip, addressesServer(b), curlCalls(b)])).toEqual([['sh', 'needs Docker', true, 1], ['bash', undefined, true, 1]]);
  });

  it('refuses a marker without a reason or misspelt, so a block cannot be skipped by accident', () => {
    expect(() => doc('<!-- docs-test: skip -->\n```sh\ncurl x\n```\n')).toThrow(/malformed/);
    expect(() => doc('<!-- docs-test: skipp (x) -->\n```sh\ncurl x\n```\n')).toThrow(/malformed/);
  });

  it('counts curl calls but not curl in comments, and finds blocks by content, not by language alone', () => {
    const [block] = doc('```sh\n# raw body (curl -T uses PUT)\ncurl -T cat.jpg "$S/x"   # 200\ncurl -F file=@cat.jpg -F file=@dog.png "$S/y"\nopen "$S/docs"\n```\n');
    expect(curlCalls(block!)).toBe(3);
    expect(imageFiles(block!)).toEqual(['cat.jpg', 'dog.png']);
    const [python] = doc('```python\nclient = InferenceServerClient("localhost:8080")\n```\n');
    expect(addressesServer(python!) && !isShell(python!)).toBe(true); // would have to be marked
    const [grpcurl] = doc('```sh\ngrpcurl -plaintext x list\n```\n');
    expect(addressesServer(grpcurl!)).toBe(true);
  });

  it('points a block at the test server: ports, the example model, its version', () => {
    expect(rewriteForServer('curl -T a.jpg http://localhost:8080/v1/models/densenet121/versions/2/classify; x localhost:8081', { httpPort: 1234, grpcPort: 5678, model: 'm', version: '1' }))
      .toBe('curl -T a.jpg http://127.0.0.1:1234/v1/models/m/versions/1/classify; x 127.0.0.1:5678');
  });
});
