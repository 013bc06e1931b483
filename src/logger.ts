// Structured logging: one pino root logger; components take a child with their name.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'densenet-serve' }, redact: ['req.headers.authorization', '*.token'] }, destination);
}

/**
 * stdout, written asynchronously: pino's default destination writes every line with a
 * synchronous write(2) on the event loop, which was 16% of the server's main-thread time under
 * overload (400+ requests/s, one line each; profiled in npm run test:chaos). Lines are written
 * from libuv's thread pool in order; pino flushes what is pending when the process exits.
 */
export function asyncStdout(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false });
}

/** A logger that drops everything: for tests and tools that do not log. */
export const silentLogger: Logger = pino({ level: 'silent' });
