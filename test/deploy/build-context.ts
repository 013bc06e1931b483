// The Docker build context without Docker: the repository's files as a fresh clone of this working
// tree has them (git's tracked files plus new files it does not ignore), less what .dockerignore
// excludes, matched the way the Docker builder matches it.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './dockerfile.ts';

interface IgnoreRule {
  exclude: boolean;
  regex: RegExp;
}

function patternToRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` also matches no folder at all; `**` alone matches across folders.
      if (pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (c === '*') {
      source += '[^/]*';
    } else if (c === '?') {
      source += '[^/]';
    } else {
      source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exclude = !line.startsWith('!');
    const pattern = path.posix.normalize((exclude ? line : line.slice(1).trim()).replace(/^\/+/, '')).replace(/\/+$/, '');
    if (/[[\]\\]/.test(pattern)) throw new Error(`.dockerignore pattern '${line}': character classes and escapes are not supported by the checks`);
    rules.push({ exclude, regex: patternToRegex(pattern) });
  }
  return rules;
}

/**
 * Whether .dockerignore keeps a file out of the context. As in Docker, a rule matches a path or any
 * folder above it, and the last rule that matches decides.
 */
export function isIgnored(rules: IgnoreRule[], file: string): boolean {
  const parts = file.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((c) => rule.regex.test(c))) ignored = rule.exclude;
  }
  return ignored;
}

/** Files (relative, '/'-separated) that a fresh clone of the working tree would have. */
export function cloneFiles(root = REPO_ROOT): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  // A tracked file deleted in the working tree is not in the clone the next commit makes.
  return [...new Set(out.split('\0').filter((f) => f !== '' && existsSync(path.join(root, f))))].sort();
}

/** The files of the build context. */
export function contextFiles(root = REPO_ROOT): string[] {
  const ignoreFile = path.join(root, '.dockerignore');
  const rules = existsSync(ignoreFile) ? parseDockerignore(readFileSync(ignoreFile, 'utf8')) : [];
  return cloneFiles(root).filter((f) => !isIgnored(rules, f));
}

/** Copies the build context into `dest`; returns its files. */
export function writeContext(dest: string, root = REPO_ROOT): string[] {
  const files = contextFiles(root);
  for (const file of files) {
    const target = path.join(dest, file);
    mkdirSync(path.dirname(target), { recursive: true });
    const stat = lstatSync(path.join(root, file));
    if (stat.isSymbolicLink()) throw new Error(`${file} is a symbolic link; the checks do not copy links`);
    copyFileSync(path.join(root, file), target);
    // Keep the executable bits git records: the Dockerfile runs docker/*.sh directly.
    chmodSync(target, stat.mode & 0o777);
  }
  return files;
}

/** Whether `source` (a COPY source, relative to the context) exists in the context's file list. */
export function inContext(files: readonly string[], source: string): boolean {
  const normalized = path.posix.normalize(source).replace(/\/+$/, '');
  if (normalized === '' || normalized === '.') return files.length > 0;
  return files.some((f) => f === normalized || f.startsWith(`${normalized}/`));
}
