// zod at the edge: a failed parse becomes INVALID_INPUT whose message names every bad field by
// its path in the request (`inputs[0].shape[1]`, `top_k`, `model`).
import type { z } from 'zod';
import { ServeError } from '../../errors.ts';

export type Where = 'body' | 'query' | 'params';

/** Keys printed with a dot; any other key (a client's: "", "a.b", "x y") is quoted in brackets. */
const PLAIN_KEY = /^[A-Za-z_$][\w$]*$/;

export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && PLAIN_KEY.test(key)) out += out === '' ? key : `.${key}`;
    // Without quotes `parameters.` or `parameters.a.b` would name a field that is not there.
    else out += `[${JSON.stringify(String(key)).slice(0, 66)}]`;
  }
  return out;
}

export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: Where): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((issue) => {
    const path = fieldPath(issue.path);
    return { field: path === '' ? where : path, message: issue.message };
  });
  const more = result.error.issues.length > issues.length ? ` (and ${result.error.issues.length - issues.length} more)` : '';
  throw new ServeError('INVALID_INPUT', `${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}${more}`, {
    fields: issues.map((i) => i.field),
  });
}
