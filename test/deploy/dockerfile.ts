// Reads the Dockerfile the way the builder does, for the deployment tests: instructions with line
// continuations joined and comments dropped, grouped into stages, with their flags, exec-form
// arguments and COPY operands. Only the syntax this project's Dockerfile uses is accepted;
// anything else is an error that says so, rather than a step the checks would silently skip.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(new URL('../..', import.meta.url).pathname);

export interface Instruction {
  keyword: string;
  /** `--name=value` flags before the arguments (a flag may repeat: RUN --mount). */
  flags: Array<{ name: string; value: string }>;
  /** The rest of the instruction, continuation lines joined with a space. */
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  /** The FROM reference with build arguments substituted: an image or an earlier stage's name. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Map<string, string | undefined>;
  stages: Stage[];
  /** Every instruction in order, the global ARGs included. */
  instructions: Instruction[];
}

const FLAG = /^--([a-z-]+)=(\S*)\s*/;

function parseInstruction(text: string, line: number): Instruction {
  const match = /^(\S+)\s*([\s\S]*)$/.exec(text);
  if (!match) throw new Error(`Dockerfile line ${line}: cannot parse '${text}'`);
  const keyword = match[1]!.toUpperCase();
  let rest = match[2]!.trim();
  const flags: Instruction['flags'] = [];
  // HEALTHCHECK and the instructions with flags put them first.
  for (let flag = FLAG.exec(rest); flag; flag = FLAG.exec(rest)) {
    flags.push({ name: flag[1]!, value: flag[2]! });
    rest = rest.slice(flag[0].length);
  }
  return { keyword, flags, args: rest.trim(), line };
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    // Comment lines are dropped, inside a continued instruction too (as BuildKit does).
    if (trimmed.startsWith('#') || (trimmed === '' && !pending)) continue;
    const continued = trimmed.endsWith('\\');
    const piece = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending = pending ? { text: `${pending.text} ${piece}`, line: pending.line } : { text: piece, line: i + 1 };
    if (!continued) {
      if (pending.text !== '') instructions.push(parseInstruction(pending.text, pending.line));
      pending = undefined;
    }
  }
  if (pending) throw new Error(`Dockerfile line ${pending.line}: the file ends inside a continued instruction`);

  const globalArgs = new Map<string, string | undefined>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!m) throw new Error(`Dockerfile line ${instruction.line}: cannot parse FROM ${instruction.args}`);
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_all, a: string | undefined, b: string | undefined) => {
        const name = (a ?? b)!;
        const value = globalArgs.get(name);
        if (value === undefined) throw new Error(`Dockerfile line ${instruction.line}: FROM uses \${${name}}, which has no default`);
        return value;
      });
      stages.push({ name: m[2], from, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`Dockerfile line ${instruction.line}: only ARG may come before FROM`);
      const [name, value] = splitArg(instruction.args);
      globalArgs.set(name, value);
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages, instructions };
}

export function readDockerfile(file = path.join(REPO_ROOT, 'Dockerfile')): { text: string; parsed: Dockerfile } {
  const text = readFileSync(file, 'utf8');
  return { text, parsed: parseDockerfile(text) };
}

/** `NAME` or `NAME=default`. */
export function splitArg(args: string): [string, string | undefined] {
  const m = /^(\w+)(?:=(\S*))?$/.exec(args);
  if (!m) throw new Error(`cannot parse ARG ${args}`);
  return [m[1]!, m[2]];
}

/** `ENV A=1 B=2` (no quoting or substitution: this Dockerfile needs none). */
export function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of args.split(/\s+/)) {
    const m = /^(\w+)=([^"'$\\]*)$/.exec(pair);
    if (!m) throw new Error(`ENV ${args}: only NAME=value pairs without quotes or $ are supported here`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

/** The arguments of an exec-form (JSON array) instruction; shell form is an error. */
export function execForm(instruction: Instruction, args = instruction.args): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} must use the exec (JSON) form`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} must be a non-empty JSON array of strings`);
  }
  return parsed as string[];
}

export function flag(instruction: Instruction, name: string): string | undefined {
  return instruction.flags.find((f) => f.name === name)?.value;
}

export interface CopyOperands {
  from: string | undefined;
  sources: string[];
  dest: string;
}

export function copyOperands(instruction: Instruction): CopyOperands {
  if (/["'*?[\]$]/.test(instruction.args)) {
    throw new Error(`Dockerfile line ${instruction.line}: COPY with quotes, wildcards or variables is not supported by the checks`);
  }
  const parts = instruction.args.split(/\s+/);
  if (parts.length < 2) throw new Error(`Dockerfile line ${instruction.line}: COPY needs a source and a destination`);
  return { from: flag(instruction, 'from'), sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/** The HEALTHCHECK's options and its command (exec form). */
export function healthcheck(instruction: Instruction): { options: Record<string, string>; command: string[] } {
  const m = /^CMD\s+([\s\S]+)$/.exec(instruction.args);
  if (!m) throw new Error(`Dockerfile line ${instruction.line}: HEALTHCHECK must be HEALTHCHECK [options] CMD [...]`);
  return {
    options: Object.fromEntries(instruction.flags.map((f) => [f.name, f.value])),
    command: execForm(instruction, m[1]!),
  };
}

/**
 * The Debian packages a RUN installs, when it is exactly the one system step allowed here:
 * `apt-get update && apt-get install -y --no-install-recommends PKG... && rm -rf /var/lib/apt/lists/*`.
 */
export function aptPackages(command: string): string[] | undefined {
  const m = /^apt-get update && apt-get install -y --no-install-recommends ([a-z0-9+.\- ]+?) && rm -rf \/var\/lib\/apt\/lists\/\*$/
    .exec(command.replace(/\s+/g, ' ').trim());
  return m ? m[1]!.split(' ') : undefined;
}

/** The final stage: what `docker build .` produces. */
export function finalStage(dockerfile: Dockerfile): Stage {
  const stage = dockerfile.stages.at(-1);
  if (!stage) throw new Error('the Dockerfile has no FROM');
  return stage;
}

export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** The one instruction of a kind in a stage (the last one wins in Docker; the linter flags repeats). */
export function onlyInstruction(stage: Stage, keyword: string): Instruction {
  const found = instructionsOf(stage, keyword);
  if (found.length !== 1) throw new Error(`stage ${stage.name ?? '(unnamed)'} has ${found.length} ${keyword} instructions, expected 1`);
  return found[0]!;
}
