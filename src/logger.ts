// Structured logging: one pino root logger; components take a child with their name.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'densenet-serve' }, redact: ['req.headers.authorization', '*.token'] }, destination);
}

/** A logger that drops everything: for tests and tools that do not log. */
export const silentLogger: Logger = pino({ level: 'silent' });
