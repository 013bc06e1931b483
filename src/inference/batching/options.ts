// Batching options as given vs as resolved: one zod schema validates them, names each bad
// field, and fills the named defaults (piscina's options / resolved-options split).
import { z } from 'zod';
import { ServeError } from '../../errors.ts';
import type { BatchingOptions } from './types.ts';

export const BATCHING_DEFAULTS = {
  /** Triton's priority levels are opt-in; ten levels cover KServe clients' 1…10 habit. */
  priorityLevels: 10,
  /**
   * A low-priority item is promoted after a second: long enough that priorities mean something
   * at the latencies DenseNet has on CPU, short enough that nobody times out behind them.
   */
  priorityAgingMs: 1000,
} as const;

export interface ResolvedBatchingOptions {
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  readonly maxQueueSize: number;
  /** Ascending, unique, each ≤ maxBatchSize; empty when none were configured. */
  readonly preferredBatchSizes: readonly number[];
  /** Absent = plan like Triton (no latency target). */
  readonly latencyTargetMs: number | undefined;
  readonly priorityLevels: number;
  readonly defaultPriority: number;
  readonly priorityAgingMs: number;
}

const nonNegativeMs = z.number().min(0, 'must be ≥ 0');
const positiveInt = z.number().int('must be an integer').min(1, 'must be ≥ 1');

export const BatchingOptionsSchema = z
  .object({
    maxBatchSize: positiveInt,
    maxQueueDelayMs: nonNegativeMs,
    maxQueueSize: positiveInt,
    preferredBatchSizes: z.array(positiveInt).optional(),
    latencyTargetMs: z.number().positive('must be > 0').optional(),
    priorityLevels: positiveInt.optional(),
    defaultPriority: positiveInt.optional(),
    priorityAgingMs: z.union([nonNegativeMs, z.literal(Infinity)]).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    for (const size of o.preferredBatchSizes ?? []) {
      if (size > o.maxBatchSize) {
        ctx.addIssue({
          code: 'custom',
          path: ['preferredBatchSizes'],
          message: `${size} exceeds maxBatchSize ${o.maxBatchSize}`,
        });
      }
    }
    const levels = o.priorityLevels ?? BATCHING_DEFAULTS.priorityLevels;
    if (o.defaultPriority !== undefined && o.defaultPriority > levels) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultPriority'],
        message: `must be within 1…priorityLevels (${levels})`,
      });
    }
  });

/** Validates and fills defaults; throws ServeError('INVALID_CONFIG') naming every bad field. */
export function resolveBatchingOptions(options: BatchingOptions, modelKey = '?'): ResolvedBatchingOptions {
  const result = BatchingOptionsSchema.safeParse(options);
  if (!result.success) {
    const fields = result.error.issues.map((i) => i.path.join('.'));
    const text = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ServeError('INVALID_CONFIG', `invalid batching options for model '${modelKey}': ${text}`, {
      model: modelKey,
      fields,
    });
  }
  const o = result.data;
  const priorityLevels = o.priorityLevels ?? BATCHING_DEFAULTS.priorityLevels;
  return Object.freeze({
    maxBatchSize: o.maxBatchSize,
    maxQueueDelayMs: o.maxQueueDelayMs,
    maxQueueSize: o.maxQueueSize,
    preferredBatchSizes: Object.freeze([...new Set(o.preferredBatchSizes ?? [])].sort((a, b) => a - b)),
    latencyTargetMs: o.latencyTargetMs,
    priorityLevels,
    defaultPriority: o.defaultPriority ?? priorityLevels,
    priorityAgingMs: o.priorityAgingMs ?? BATCHING_DEFAULTS.priorityAgingMs,
  });
}
