// MAX_CONNECTIONS on a listening socket, the same for both transports: Node closes a connection
// beyond the limit as soon as it is accepted and emits 'drop'. One warning per interval says
// so, however many are dropped: a flood must not become a flood of log lines.
import type { Server } from 'node:net';
import type { Logger } from '../logger.ts';

const WARN_INTERVAL_MS = 10_000;

export function limitConnections(server: Server, maxConnections: number, log: Logger, now: () => number = Date.now): void {
  server.maxConnections = maxConnections;
  let dropped = 0;
  let lastWarning = -Infinity;
  server.on('drop', () => {
    dropped++;
    const t = now();
    if (t - lastWarning < WARN_INTERVAL_MS) return;
    lastWarning = t;
    log.warn({ dropped, limit: 'MAX_CONNECTIONS', max: maxConnections }, 'connection refused: MAX_CONNECTIONS reached');
    dropped = 0;
  });
}
