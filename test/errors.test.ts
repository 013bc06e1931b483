import { describe, expect, it } from 'vitest';
import { ServeError } from '../src/errors.ts';

describe('ServeError', () => {
  it('carries no stack trace for client outcomes (cheap to refuse under overload)', () => {
    const refused = new ServeError('QUEUE_FULL', 'the queue is full');
    expect(refused.stack).toBe('ServeError: the queue is full');
    expect(refused.code).toBe('QUEUE_FULL');
    expect(refused).toBeInstanceOf(Error);
  });

  it('keeps the stack trace of faults, and restores the global limit either way', () => {
    const limit = Error.stackTraceLimit;
    const fault = new ServeError('INTERNAL', 'broken');
    expect(fault.stack).toContain('errors.test.ts');
    new ServeError('INVALID_INPUT', 'bad');
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('plain').stack).toContain('errors.test.ts');
  });
});
