// gRPC calls that read their grpc-status: the same prepared bytes h2load sends, over node:http2
// (no grpc-js, so the client does as little as h2load per call). Used once before the run to
// check that the prepared request is answered OK, and during the overload as a light open-loop
// sampler (a few calls per second, part of the gRPC load) whose refusals and completions are
// timed separately — which h2load cannot do (h2load.ts).
import http2 from 'node:http2';

export interface GrpcCall {
  /** Send time, µs since the epoch. */
  sentUs: number;
  /** grpc-status of the answer; undefined when none came (stream reset, connection lost, timeout). */
  grpcStatus: number | undefined;
  ms: number;
  error?: string;
}

const epochUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

export function grpcCall(session: http2.ClientHttp2Session, path: string, body: Buffer, timeoutMs = 120_000): Promise<GrpcCall> {
  const sentUs = epochUs();
  const t0 = performance.now();
  return new Promise((resolve) => {
    let grpcStatus: number | undefined;
    let error: string | undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', 'te': 'trailers' });
    } catch (err) {
      resolve({ sentUs, grpcStatus: undefined, ms: performance.now() - t0, error: (err as Error).message });
      return;
    }
    const timer = setTimeout(() => {
      error = `no answer within ${timeoutMs} ms`;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, timeoutMs);
    const status = (headers: http2.IncomingHttpHeaders) => {
      const s = headers['grpc-status'];
      if (typeof s === 'string') grpcStatus = Number(s);
    };
    stream.on('response', status);
    stream.on('trailers', status);
    stream.on('data', () => undefined);
    stream.on('error', (err: Error) => (error ??= err.message));
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ sentUs, grpcStatus, ms: performance.now() - t0, ...(error !== undefined && grpcStatus === undefined ? { error } : {}) });
    });
    stream.end(body);
  });
}

/** A session to the gRPC port; `events` collects how sessions ended (errors, GOAWAY codes). */
export function openSession(port: number, events?: string[]): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', (err: Error) => events?.push(`error: ${err.message}`));
  session.on('goaway', (code: number) => events?.push(`GOAWAY ${code}`));
  return session;
}

export function connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once('connect', () => {
      session.off('error', reject);
      resolve(session);
    });
    session.once('error', reject);
  });
}

/**
 * Open loop: one call every 1000 / ratePerS ms whatever the answers, until stopped. A session
 * the server closes or breaks is replaced (and recorded in `events`).
 */
export class GrpcSampler {
  readonly events: string[] = [];
  private readonly calls: Array<Promise<GrpcCall>> = [];
  private readonly sessions: http2.ClientHttp2Session[] = [];
  private readonly timer: NodeJS.Timeout;
  private issued = 0;

  constructor(port: number, path: string, body: Buffer, ratePerS: number) {
    const start = performance.now();
    let session = this.open(port);
    // Catch up by the schedule, not by the ticks: a late tick sends what was due meanwhile.
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * ratePerS) / 1000) + 1;
      for (; this.issued < due; this.issued++) {
        if (session.closed || session.destroyed) session = this.open(port);
        this.calls.push(grpcCall(session, path, body));
      }
    }, Math.max(1, Math.min(20, 1000 / ratePerS)));
  }

  private open(port: number): http2.ClientHttp2Session {
    if (this.sessions.length > 0) this.events.push('new session');
    const session = openSession(port, this.events);
    this.sessions.push(session);
    return session;
  }

  /** Stops sending; resolves with every call once all have settled. */
  async stop(): Promise<GrpcCall[]> {
    clearInterval(this.timer);
    const calls = await Promise.all(this.calls);
    for (const session of this.sessions) session.close();
    return calls;
  }
}
