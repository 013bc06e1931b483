// One inference request over a real socket, HTTP (Open Inference Protocol with the binary data
// extension) or gRPC (ModelInfer with raw_input_contents), and what its answer means for the
// chaos accounting. Every request ends in exactly one Outcome; none is left pending: one that
// has no answer within `lostAfterMs` is given up and counted lost.
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../../src/api/grpc/proto.ts';
import type { GRPCInferenceServiceClient } from '../../../src/api/grpc/generated/inference/GRPCInferenceService.ts';
import type { ModelInferRequest } from '../../../src/api/grpc/generated/inference/ModelInferRequest.ts';

export type Transport = 'http' | 'grpc';

/**
 * completed — answered with a result;
 * rejected  — refused at admission: queue full (429 / RESOURCE_EXHAUSTED), draining, model not
 *             ready, or no connection at all (refused before the server saw it);
 * retryable — accepted, then failed with the retryable WORKER_FAILED (503 / UNAVAILABLE);
 * expired   — the request's own deadline passed (504 / DEADLINE_EXCEEDED);
 * cancelled — the client gave up on purpose (cancellation scenario);
 * error     — any other answer (500, 400, an unknown status): always a failure of the run;
 * lost      — no answer: the connection broke after the request was sent, or nothing came back
 *             within lostAfterMs. Scenarios may reclassify a broken connection (a request sent
 *             after SIGTERM whose connection the draining server closed was refused, not lost).
 */
export type Outcome = 'completed' | 'rejected' | 'retryable' | 'expired' | 'cancelled' | 'error' | 'lost';

export interface RequestResult {
  /** Sent as x-request-id, so the server's log line for the request can be found. */
  id: string;
  transport: Transport;
  outcome: Outcome;
  /** HTTP status or gRPC status name, plus our error code where known (e.g. 503 WORKER_FAILED). */
  code: string;
  /** performance.now() when the request was handed to the client library. */
  sentAt: number;
  ms: number;
}

export interface RequestOptions {
  /** The server-side deadline (Triton's timeout parameter), in ms. */
  timeoutMs?: number;
  /** Client-side cancellation after this many ms (destroys the HTTP request / cancels the call). */
  cancelAfterMs?: number;
  /** No answer by then: lost. */
  lostAfterMs: number;
}

export interface Target {
  httpPort: number;
  grpcPort: number;
  model: string;
  /** [H, W, C] of one image. */
  shape: readonly [number, number, number];
  datatype: 'FP32' | 'UINT8';
}

/** HTTP 503 bodies carry only a message; these are the server's wordings (src/api, src/inference). */
export function classifyHttp(status: number, message: string): { outcome: Outcome; code: string } {
  if (status === 200) return { outcome: 'completed', code: '200' };
  if (status === 429) return { outcome: 'rejected', code: '429 QUEUE_FULL' };
  if (status === 504) return { outcome: 'expired', code: '504 DEADLINE_EXCEEDED' };
  if (status === 503) {
    if (/inference worker .* (crashed|exited|hung|terminated|is gone)/.test(message)) return { outcome: 'retryable', code: '503 WORKER_FAILED' };
    // The edge's refusal of a request arriving while draining. 'the server is shutting down' is
    // something else: an accepted request the closing service dropped — a failure of the drain.
    if (/draining/.test(message)) return { outcome: 'rejected', code: '503 SHUTTING_DOWN' };
    // Fastify's own answer to a request that arrives on a kept-alive connection while it closes.
    if (message === 'Service Unavailable') return { outcome: 'rejected', code: '503 closing' };
    if (/cannot serve now|is unavailable|is loading|not ready|no inference worker/.test(message)) return { outcome: 'rejected', code: '503 MODEL_NOT_READY' };
  }
  return { outcome: 'error', code: `${status} ${message.slice(0, 80)}` };
}

export function classifyGrpc(code: grpc.status, errorCode: string | undefined, details: string): { outcome: Outcome; code: string } {
  const name = grpc.status[code] ?? String(code);
  const label = errorCode ? `${name} ${errorCode}` : name;
  switch (code) {
    case grpc.status.OK: return { outcome: 'completed', code: label };
    case grpc.status.RESOURCE_EXHAUSTED: return { outcome: errorCode === 'QUEUE_FULL' ? 'rejected' : 'error', code: label };
    case grpc.status.DEADLINE_EXCEEDED: return { outcome: 'expired', code: label };
    case grpc.status.CANCELLED: return { outcome: 'cancelled', code: label };
    case grpc.status.UNAVAILABLE:
      if (errorCode === 'WORKER_FAILED') return { outcome: 'retryable', code: label };
      if (errorCode === 'MODEL_NOT_READY') return { outcome: 'rejected', code: label };
      // Refused while draining (rejected), or accepted and then dropped by the closing service
      // ('the server is shutting down'): a failure of the drain, reported as an error.
      if (errorCode === 'SHUTTING_DOWN') return /draining/.test(details) ? { outcome: 'rejected', code: label } : { outcome: 'error', code: `${label} dropped` };
      // grpc-js could not (re)connect: the server never saw the call.
      if (/No connection established|ECONNREFUSED/.test(details)) return { outcome: 'rejected', code: `${name} REFUSED` };
      // The connection broke under a call that was sent: no answer.
      return { outcome: 'lost', code: `${name} RESET ${details.slice(0, 60)}` };
    default: return { outcome: 'error', code: `${label} ${details.slice(0, 80)}` };
  }
}

/**
 * Connections a client fleet would hold: HTTP sockets (below the server's MAX_CONNECTIONS) and
 * gRPC channels (the server allows GRPC_MAX_CONCURRENT_STREAMS calls per connection, and
 * grpc-js queues calls above that on the client, which would hide the server's answers).
 */
const HTTP_SOCKETS = 512;
const GRPC_CHANNELS = 8;

let nextRequest = 0;

export class Clients {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_SOCKETS });
  private readonly grpcClients: GRPCInferenceServiceClient[];
  private nextChannel = 0;
  private readonly httpBody: Buffer;
  private readonly httpHeaderLength: number;
  private readonly pixels: Buffer;

  constructor(readonly target: Target) {
    const [h, w, c] = target.shape;
    // Deterministic noise; the content does not matter to the server's load.
    const noise = (i: number) => (i * 7919) % 255;
    this.pixels = target.datatype === 'FP32'
      ? Buffer.from(new Float32Array(h * w * c).map((_, i) => noise(i) / 255).buffer)
      : Buffer.from(new Uint8Array(h * w * c).map((_, i) => noise(i)));
    const header = Buffer.from(JSON.stringify(this.httpHeader()));
    this.httpHeaderLength = header.length;
    this.httpBody = Buffer.concat([header, this.pixels]);
    const { inference } = loadProtos();
    this.grpcClients = Array.from({ length: GRPC_CHANNELS }, () => new inference.GRPCInferenceService(
      `127.0.0.1:${target.grpcPort}`, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
        // One connection per client object (grpc-js shares them between clients by default).
        'grpc.use_local_subchannel_pool': 1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 500,
      },
    ) as unknown as GRPCInferenceServiceClient);
  }

  /** Requests waiting for a free HTTP socket on the client side (should stay 0: see HTTP_SOCKETS). */
  get httpQueued(): number {
    return Object.values(this.agent.requests).reduce((n, list) => n + (list?.length ?? 0), 0);
  }

  send(transport: Transport, options: RequestOptions): Promise<RequestResult> {
    return transport === 'http' ? this.http(options) : this.grpc(options);
  }

  close(): void {
    this.agent.destroy();
    for (const client of this.grpcClients) client.close();
  }

  private httpHeader(timeoutMs?: number): object {
    const [h, w, c] = this.target.shape;
    return {
      inputs: [{ name: 'input', datatype: this.target.datatype, shape: [1, h, w, c], parameters: { binary_data_size: this.pixels.length } }],
      outputs: [{ name: 'logits' }],
      ...(timeoutMs !== undefined ? { parameters: { timeout: Math.round(timeoutMs * 1000) } } : {}),
    };
  }

  private http(options: RequestOptions): Promise<RequestResult> {
    let body = this.httpBody;
    let headerLength = this.httpHeaderLength;
    if (options.timeoutMs !== undefined) {
      const header = Buffer.from(JSON.stringify(this.httpHeader(options.timeoutMs)));
      headerLength = header.length;
      body = Buffer.concat([header, this.pixels]);
    }
    const id = `chaos-${nextRequest++}`;
    const sentAt = performance.now();
    return new Promise((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const done = settleOnce({ id, transport: 'http', sentAt }, timers, resolve);
      const req = http.request({
        host: '127.0.0.1', port: this.target.httpPort, method: 'POST', path: `/v2/models/${this.target.model}/infer`, agent: this.agent,
        headers: {
          'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength),
          'content-length': body.length, 'x-request-id': id,
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let message = '';
          if (status !== 200) {
            try {
              message = String((JSON.parse(Buffer.concat(chunks).toString()) as { error?: unknown }).error ?? '');
            } catch {
              message = Buffer.concat(chunks).toString().slice(0, 80);
            }
          }
          const { outcome, code } = classifyHttp(status, message);
          done(outcome, code);
        });
        res.on('error', () => done('lost', 'RESET after headers'));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') done('rejected', 'REFUSED');
        else done('lost', `RESET ${err.code ?? err.message}`);
      });
      armTimers(timers, options, done, () => req.destroy());
      req.end(body);
    });
  }

  private grpc(options: RequestOptions): Promise<RequestResult> {
    const [h, w, c] = this.target.shape;
    const request: ModelInferRequest = {
      model_name: this.target.model,
      inputs: [{ name: 'input', datatype: this.target.datatype, shape: ['1', String(h), String(w), String(c)] }],
      outputs: [{ name: 'logits' }],
      raw_input_contents: [this.pixels],
      ...(options.timeoutMs !== undefined ? { parameters: { timeout: { int64_param: String(Math.round(options.timeoutMs * 1000)) } } } : {}),
    };
    const id = `chaos-${nextRequest++}`;
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', id);
    const sentAt = performance.now();
    return new Promise((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const done = settleOnce({ id, transport: 'grpc', sentAt }, timers, resolve);
      const client = this.grpcClients[this.nextChannel++ % this.grpcClients.length] as GRPCInferenceServiceClient;
      const call = client.ModelInfer(request, metadata, (err: grpc.ServiceError | null) => {
        if (!err) {
          done('completed', 'OK');
          return;
        }
        const errorCode = err.metadata?.get('densenet-error-code')[0];
        const { outcome, code } = classifyGrpc(err.code, typeof errorCode === 'string' ? errorCode : undefined, err.details ?? '');
        done(outcome, code);
      });
      armTimers(timers, options, done, () => call.cancel());
    });
  }
}

/** A request's one outcome: the first call wins, clears the request's timers and resolves. */
function settleOnce(
  request: Pick<RequestResult, 'id' | 'transport' | 'sentAt'>, timers: NodeJS.Timeout[], resolve: (result: RequestResult) => void,
): (outcome: Outcome, code: string) => void {
  let settled = false;
  return (outcome, code) => {
    if (settled) return;
    settled = true;
    for (const t of timers) clearTimeout(t);
    resolve({ ...request, outcome, code, ms: performance.now() - request.sentAt });
  };
}

/** The client-side cancel (when asked for) and the "lost" bound, both of which abort the call. */
function armTimers(
  timers: NodeJS.Timeout[], options: RequestOptions, done: (outcome: Outcome, code: string) => void, abort: () => void,
): void {
  if (options.cancelAfterMs !== undefined) {
    timers.push(setTimeout(() => {
      done('cancelled', 'client cancel');
      abort();
    }, options.cancelAfterMs));
  }
  timers.push(setTimeout(() => {
    done('lost', `no answer within ${options.lostAfterMs} ms`);
    abort();
  }, options.lostAfterMs));
}
