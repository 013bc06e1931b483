// Seeing from outside when a draining server has closed its listening socket: bare TCP connects
// (no request is ever written on them) until one is refused. Requests sent after that can only be
// refused before any server code sees them.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolves true when a connect to 127.0.0.1:port was refused, false when it was not (accepted, or
 * reset while the listener was closing with it still in the accept queue: ask again).
 */
export function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve(true);
      else if (err.code === 'ECONNRESET') resolve(false);
      else reject(err);
    });
  });
}

/** Polls until the listener on 127.0.0.1:port refuses connections (it never reopens). */
export async function listenerClosed(port: number, pollMs = 20): Promise<void> {
  while (!(await connectRefused(port))) await sleep(pollMs);
}
