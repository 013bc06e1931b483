// What the dispatcher needs from whoever runs a batch (the worker pool implements it), and
// how an executor says "this failure was not the batch's fault, run it elsewhere".
import { ServeError, isServeError } from '../../errors.ts';

export interface Executor<TIn, TOut> {
  /** Unique among the dispatcher's executors. */
  readonly id: string;
  /** Whether this executor can run the model now (it has it loaded). Asked often: keep it cheap. */
  canRun(modelKey: string): boolean;
  /**
   * Runs one batch; resolves with exactly one result per input, in order. The dispatcher gives an
   * executor one batch at a time.
   */
  run(modelKey: string, inputs: TIn[]): Promise<TOut[]>;
}

/**
 * The executor died under the batch (worker thread exited, process crashed): the inputs are not
 * at fault, so the dispatcher retries the batch's items once on another executor.
 */
export class WorkerLostError extends ServeError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super('INTERNAL', message, { ...details, retryable: true }, options);
    this.name = 'WorkerLostError';
  }
}

/** A failure worth one retry elsewhere: a WorkerLostError or any ServeError with details.retryable. */
export function isRetryableError(err: unknown): boolean {
  return isServeError(err) && err.details.retryable === true;
}
