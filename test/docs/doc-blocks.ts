// The fenced code blocks of the README and docs/*.md, found by fence and content (never by line
// number, so the docs can be rewritten freely), and what the examples test needs to run them
// against a server it started: which blocks address the server, which are marked as not run and
// why, and how to point a block at that server.
//
// A block that is not run must say so right before its fence, visibly to anyone editing the doc:
//   <!-- docs-test: skip (the reason) -->
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface DocBlock {
  /** Path relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence (for messages only). */
  line: number;
  lang: string;
  code: string;
  /** The reason of a skip marker right before the fence, if there is one. */
  skip?: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;
const MARKER = /^\s*<!--\s*docs-test:\s*skip\s*\((.*\S.*)\)\s*-->\s*$/;

/** Every fenced block of a Markdown text; throws on a docs-test comment that is not a valid marker. */
export function fencedBlocks(markdown: string, file: string): DocBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !close.test(lines[j]!); j++) body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const before = k >= 0 ? lines[k]! : '';
    const marker = MARKER.exec(before);
    if (!marker && /docs-test/.test(before)) throw new Error(`${file}:${k + 1}: malformed docs-test marker (want <!-- docs-test: skip (reason) -->): ${before.trim()}`);
    blocks.push({ file, line: i + 1, lang: lang.toLowerCase(), code: body.join('\n'), ...(marker ? { skip: marker[1]!.trim() } : {}) });
    i = j;
  }
  return blocks;
}

/** README.md and docs/*.md of a repository, in that order. */
export function docBlocks(root: string): DocBlock[] {
  const files = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  return files.flatMap((file) => fencedBlocks(readFileSync(path.join(root, file), 'utf8'), file));
}

/** A block that talks to a running server: curl or grpcurl, or the server's default address. */
const ADDRESSES_SERVER = /(^|[\s|;&(])(curl|grpcurl)\s|localhost:808[01]|\$S\b/m;
export const addressesServer = (block: DocBlock): boolean => ADDRESSES_SERVER.test(block.code);

const SHELL = new Set(['sh', 'bash', 'shell']);
export const isShell = (block: DocBlock): boolean => SHELL.has(block.lang);

/** Lines of shell code without comments (whole-line, and ` # …` at the end of a line). */
function commands(code: string): string[] {
  return code.split('\n').filter((l) => !/^\s*#/.test(l)).map((l) => l.replace(/\s#\s.*$/, ''));
}

/** How many times a block runs curl (and `open`, which the test serves with curl). */
export function curlCalls(block: DocBlock): number {
  return commands(block.code).reduce((n, l) => n + (l.match(/(^|[\s|;&(])curl\s/g)?.length ?? 0) + (/^\s*open\s/.test(l) ? 1 : 0), 0);
}

/** Image files a block reads (they are made in its working directory). */
export function imageFiles(block: DocBlock): string[] {
  return [...new Set(block.code.match(/[\w.-]+\.(?:jpe?g|png)\b/g) ?? [])];
}

/** The model name the docs' examples assume ("a model called densenet121", docs/rest-api.md). */
export const DOC_EXAMPLE_MODEL = 'densenet121';

/** Points a block at the test's server: its ports, its model, its only version. */
export function rewriteForServer(code: string, target: { httpPort: number; grpcPort: number; model: string; version: string }): string {
  return code
    .replace(/localhost:8080/g, `127.0.0.1:${target.httpPort}`)
    .replace(/localhost:8081/g, `127.0.0.1:${target.grpcPort}`)
    .replace(new RegExp(`\\b${DOC_EXAMPLE_MODEL}\\b`, 'g'), target.model)
    .replace(/\/versions\/\d+\//g, `/versions/${target.version}/`);
}
