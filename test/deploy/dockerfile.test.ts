// The Dockerfile and its scripts, read without running them: the linter (dockerfile-utils, the
// validator behind VS Code's Docker support), pinned base images, the runtime stage's user, ports,
// health check, entrypoint and command against the server's config and start script, and the
// build context against .dockerignore. no-docker-build.test.ts executes them.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { validate } from 'dockerfile-utils';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.ts';
import { contextFiles, inContext, isIgnored, parseDockerignore } from './build-context.ts';
import {
  aptPackages, copyOperands, execForm, finalStage, healthcheck, instructionsOf, onlyInstruction, readDockerfile, REPO_ROOT,
} from './dockerfile.ts';

const { text, parsed } = readDockerfile();
const runtime = finalStage(parsed);
const stageNames = new Set(parsed.stages.map((s) => s.name).filter(Boolean));
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string } };
const entrypointScript = readFileSync(path.join(REPO_ROOT, 'docker/entrypoint.sh'), 'utf8');

describe('Dockerfile', () => {
  it('passes the linter with no errors or warnings', () => {
    const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('pins every base image by digest, on a Node version package.json allows', () => {
    const bases = parsed.stages.map((s) => s.from).filter((from) => !stageNames.has(from));
    expect(bases.length).toBeGreaterThan(0);
    const minMajor = Number(/>=\s*(\d+)/.exec(packageJson.engines.node)![1]);
    for (const base of bases) {
      expect(base).toMatch(/^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$/);
      const major = Number(/^(?:docker\.io\/library\/)?node:(\d+)/.exec(base)?.[1]);
      expect(major).toBeGreaterThanOrEqual(minMajor);
    }
  });

  it('runs project work only through docker/*.sh scripts; other RUNs only install Debian packages, cleanly', () => {
    for (const stage of parsed.stages) {
      for (const run of instructionsOf(stage, 'RUN')) {
        const packages = aptPackages(run.args);
        if (packages) continue;
        expect(run.args, `line ${run.line}`).toMatch(/^(\.\/)?docker\/[\w.-]+\.sh$/);
        const script = path.join(REPO_ROOT, run.args.replace(/^\.\//, ''));
        expect(statSync(script).mode & 0o111, `${run.args} is executable`).not.toBe(0);
        execFileSync('sh', ['-n', script]);
      }
    }
  });

  it('runtime: a numeric non-root USER, both server ports exposed, SIGTERM to stop', () => {
    const user = onlyInstruction(runtime, 'USER').args;
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    const exposed = instructionsOf(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    expect(exposed.sort()).toEqual([String(DEFAULTS.HTTP_PORT), String(DEFAULTS.GRPC_PORT)].sort());
    expect(onlyInstruction(runtime, 'STOPSIGNAL').args).toBe('SIGTERM');
  });

  it('runtime: tini as PID 1 runs the entrypoint script, whose default command is CMD, which is `npm start`: node on the compiled dist/', () => {
    const entrypoint = execForm(onlyInstruction(runtime, 'ENTRYPOINT'));
    expect(entrypoint).toEqual(['/usr/bin/tini', '--', '/app/docker/entrypoint.sh']);
    const installed = instructionsOf(runtime, 'RUN').flatMap((r) => aptPackages(r.args) ?? []);
    expect(installed).toContain('tini');

    const cmd = execForm(onlyInstruction(runtime, 'CMD'));
    const defaultCommand = /^\s*set -- (.+) "\$@"$/m.exec(entrypointScript)?.[1]?.split(/\s+/);
    expect(defaultCommand).toEqual(cmd);
    // `npm start` is `node dist/FILE.js`; CMD runs the same without npm in between, so SIGTERM
    // reaches the server itself. Compiled JavaScript, no TypeScript runner (conventions, rule 18).
    const start = /^node (dist\/\S+\.js)$/.exec(packageJson.scripts.start!);
    expect(start, packageJson.scripts.start).not.toBeNull();
    expect(cmd).toEqual(['node', start![1]!]);
    expect(cmd.join(' ')).not.toMatch(/tsx|\.ts\b/);
    expect(onlyInstruction(runtime, 'WORKDIR').args).toBe('/app');
  });

  it('runtime: gets the compiled dist/ from the build stage, and neither the sources nor a TypeScript config', () => {
    const copies = instructionsOf(runtime, 'COPY').map(copyOperands);
    expect(copies).toContainEqual({ from: 'build', sources: ['/app/dist'], dest: './dist' });
    const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(fromContext).toContain('package.json');
    for (const source of fromContext) expect(source).not.toMatch(/^(\.\/)?(src\b|tsconfig)/);
    // The build stage compiles with the project's build script, whose config writes dist/ from src/.
    const tsconfig = ts.readConfigFile(path.join(REPO_ROOT, 'tsconfig.build.json'), ts.sys.readFile).config as { compilerOptions: Record<string, unknown> };
    expect(packageJson.scripts.build).toBe('tsc -p tsconfig.build.json');
    expect(tsconfig.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(readFileSync(path.join(REPO_ROOT, 'docker/build.sh'), 'utf8')).toMatch(/^npm run build$/m);
  });

  it('runtime: HEALTHCHECK runs the readiness probe script, whose defaults are the config defaults', () => {
    const check = healthcheck(onlyInstruction(runtime, 'HEALTHCHECK'));
    expect(check.command).toEqual(['node', '/app/docker/healthcheck.mjs']);
    // Model loading and warm-up may take up to MODEL_LOAD_TIMEOUT_MS before the first success.
    expect(parseDuration(check.options['start-period']!)).toBeGreaterThanOrEqual(DEFAULTS.MODEL_LOAD_TIMEOUT_MS / 1000);
    const script = readFileSync(path.join(REPO_ROOT, 'docker/healthcheck.mjs'), 'utf8');
    expect(/process\.env\.HTTP_PORT \|\| '(\d+)'/.exec(script)?.[1]).toBe(String(DEFAULTS.HTTP_PORT));
    expect(/process\.env\.HOST \|\| '([^']+)'/.exec(script)?.[1]).toBe(DEFAULTS.HOST);
  });

  it('COPYs only what the build context has, and the context leaves out secrets, git and local installs', () => {
    const files = contextFiles();
    for (const stage of parsed.stages) {
      for (const copy of instructionsOf(stage, 'COPY')) {
        const { from, sources } = copyOperands(copy);
        if (from !== undefined) {
          expect(stageNames.has(from), `line ${copy.line}: --from=${from}`).toBe(true);
          continue;
        }
        for (const source of sources) expect(inContext(files, source), `line ${copy.line}: ${source}`).toBe(true);
      }
    }
    for (const file of files) expect(file).not.toMatch(/(^|\/)(node_modules|\.git|\.env)(\/|$)/);
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('training/'))).toBe(false);
  });
});

describe('.dockerignore matching', () => {
  it('matches as Docker does: a rule covers a folder\'s files, the last matching rule wins, **/ matches no folder too', () => {
    const rules = parseDockerignore('*\n!src/\n!docker/a.sh\n**/node_modules\n# comment\n');
    expect(isIgnored(rules, 'README.md')).toBe(true);
    expect(isIgnored(rules, 'src/main.ts')).toBe(false);
    expect(isIgnored(rules, 'src/deep/x.ts')).toBe(false);
    expect(isIgnored(rules, 'src/node_modules/x/index.js')).toBe(true);
    expect(isIgnored(rules, 'node_modules/x/index.js')).toBe(true);
    expect(isIgnored(rules, 'docker/a.sh')).toBe(false);
    expect(isIgnored(rules, 'docker/b.sh')).toBe(true);
  });
});

/** Docker durations: 300s, 5m, 1m30s. */
function parseDuration(value: string): number {
  let seconds = 0;
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    seconds += Number(n) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as Record<string, number>)[unit!]!;
  }
  return seconds;
}
