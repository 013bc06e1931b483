// The drain main.ts runs on SIGTERM (startServer … shutdown), seen from gRPC clients with
// ModelInfer and Classify calls in flight: every call the server accepted completes OK; every
// other call is refused with UNAVAILABLE (by the draining handler, or because the connection was
// refused); none is broken half-way (reset, cancelled, internal, or answered with the error of a
// service that closed under it).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEST_ID_METADATA_KEY } from '../src/api/grpc/calls.ts';
import { ERROR_CODE_METADATA_KEY } from '../src/api/grpc/status-codes.ts';
import { useNativeEngine } from './helpers/engine.ts';
import { writeTinyModelFolder } from './helpers/tiny-model.ts';
import { fp32Batch, pngOf, rawFp32Request } from './api/grpc/harness.ts';
import { grpcClients, startRealServer, type GrpcClients, type RealServer } from './security/real-server.ts';
import { listenerClosed } from './helpers/drain-probe.ts';

/**
 * The refusal the edge gives while draining (src/api/edge), the same on both transports. The service's own
 * SHUTTING_DOWN ('the server is shutting down') is what a call dropped by a closing service gets:
 * that one is broken.
 */
const DRAINING = 'the server is draining and accepts no new inference requests';
/** Within the model's queue (maxQueueSize) and the connection's stream limit (GRPC_MAX_CONCURRENT_STREAMS). */
const MAX_IN_FLIGHT = 4000;

type Outcome =
  | { kind: 'ok'; at: number }
  /** The handler ran and refused the call because the server is draining. */
  | { kind: 'refused-draining' }
  /** The server never started the call: UNAVAILABLE without its response headers. */
  | { kind: 'refused-unconnected'; details: string }
  | { kind: 'broken'; detail: string };

/**
 * One call, classified. The server's handler sends its response headers (with x-request-id) as
 * soon as it starts the call (call-context.ts): a call that got them was accepted.
 */
function attempt(client: grpc.Client, method: string, request: object, onAccepted?: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let accepted = false;
    const fn = (client as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>)[method]!.bind(client);
    // A deadline far beyond the drain, so a call the server forgot fails the test (as broken)
    // instead of hanging it.
    const call = fn(request, new grpc.Metadata(), { deadline: Date.now() + 90_000 }, (err: grpc.ServiceError | null) => {
      if (!err) {
        resolve(accepted ? { kind: 'ok', at: performance.now() } : { kind: 'broken', detail: 'OK without response headers' });
        return;
      }
      const code = err.metadata.get(ERROR_CODE_METADATA_KEY)[0];
      if (err.code === grpc.status.UNAVAILABLE && accepted && code === 'SHUTTING_DOWN' && err.details === DRAINING) {
        resolve({ kind: 'refused-draining' });
      } else if (err.code === grpc.status.UNAVAILABLE && !accepted && code === undefined) {
        resolve({ kind: 'refused-unconnected', details: err.details });
      } else {
        resolve({ kind: 'broken', detail: `${method}: ${grpc.status[err.code]} '${err.details}' (code ${String(code)}, accepted: ${accepted})` });
      }
    });
    call.on('metadata', (m: grpc.Metadata) => {
      if (m.get(REQUEST_ID_METADATA_KEY).length === 0) return;
      accepted = true;
      onAccepted?.();
    });
  });
}

describe('main: drain with gRPC calls in flight', () => {
  let repo: string;
  let real: RealServer;
  let clients: GrpcClients;
  let png: Buffer;
  beforeAll(async () => {
    await useNativeEngine();
    repo = await mkdtemp(path.join(tmpdir(), 'drain-grpc-'));
    // Batches of one on one worker, and a model wider and deeper than the default tiny one: a call
    // costs compute rather than transport, and calls wait in the queue long enough to be in flight
    // at shutdown.
    await writeTinyModelFolder(repo, 'tiny', {
      architecture: { growthRate: 32, blockLayers: [6, 12], stemChannels: 32 },
      manifest: { batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 4096 } },
    });
    real = await startRealServer({ SHUTDOWN_TIMEOUT_MS: '60000', GRPC_MAX_CONCURRENT_STREAMS: '4096', LOG_LEVEL: 'info' }, { repo, logLevel: 'info' });
    clients = grpcClients(`127.0.0.1:${real.server.grpcPort}`);
    png = await pngOf(7, 16, 16);
  });
  afterAll(async () => {
    clients.close();
    await real.server.shutdown('test over');
    await rm(repo, { recursive: true, force: true });
  });

  const infer = (onAccepted?: () => void) => attempt(clients.inference, 'ModelInfer', rawFp32Request('tiny', fp32Batch(1), [1, 16, 16, 3]), onAccepted);
  const classify = (onAccepted?: () => void) => attempt(clients.classifier, 'Classify', { model_name: 'tiny', images: [png], top_k: 2 }, onAccepted);
  const either = (i: number, onAccepted?: () => void) => (i % 2 ? classify(onAccepted) : infer(onAccepted));

  it('completes every accepted call, refuses the rest with UNAVAILABLE, breaks none', async () => {
    // How long a call takes here, now (the machine is shared), measured as the throughput of a
    // queue of calls like the one below: enough calls are put in flight to keep the worker busy
    // about four times the drain's read grace (1 s), so some are still running when the gRPC
    // server closes, not only when draining starts.
    const warmUp = await Promise.all(Array.from({ length: 20 }, (_, i) => either(i)));
    expect(warmUp.map((o) => o.kind)).toEqual(new Array(20).fill('ok'));
    const probeStart = performance.now();
    const probe = await Promise.all(Array.from({ length: 200 }, (_, i) => either(i)));
    const perCallMs = (performance.now() - probeStart) / probe.length;
    expect(probe.map((o) => o.kind)).toEqual(new Array(200).fill('ok'));
    const inFlight = Math.min(MAX_IN_FLIGHT, Math.ceil(4000 / perCallMs));

    // Shutdown begins once the server has accepted every one of these calls (each handler has
    // sent its response headers), while most are still waiting for the worker.
    let acceptedCount = 0;
    let allAccepted!: () => void;
    const accepted = new Promise<void>((resolve) => (allAccepted = resolve));
    const before = Array.from({ length: inFlight }, (_, i) => either(i, () => {
      if (++acceptedCount === inFlight) allAccepted();
    }));
    await accepted;
    const shutdownAt = performance.now();
    const stopped = real.server.shutdown('test');
    // Calls sent once draining has begun, on the connection the server accepted.
    const duringDrain = await Promise.all(Array.from({ length: 10 }, (_, i) => either(i)));
    // Calls sent once the listener is closed: the channel has to connect again, and is refused.
    await listenerClosed(real.server.grpcPort);
    const listenerClosedAt = performance.now();
    const afterClose = await Promise.all(Array.from({ length: 4 }, (_, i) => either(i)));
    const outcomes = await Promise.all(before);
    await stopped;

    expect([...outcomes, ...duringDrain, ...afterClose].filter((o) => o.kind === 'broken')).toEqual([]);
    // Every accepted call completed, and some of them only after the listener had closed (the
    // drain waited for them rather than racing them).
    expect(outcomes.map((o) => o.kind)).toEqual(new Array(inFlight).fill('ok'));
    const okAt = outcomes.flatMap((o) => (o.kind === 'ok' ? [o.at] : []));
    expect(okAt.filter((at) => at > shutdownAt).length).toBeGreaterThan(0);
    expect(okAt.filter((at) => at > listenerClosedAt).length).toBeGreaterThan(0);
    // The rest were refused, each in the way its moment calls for.
    expect(duringDrain.map((o) => o.kind)).toEqual(new Array(10).fill('refused-draining'));
    expect(afterClose.map((o) => o.kind)).toEqual(new Array(4).fill('refused-unconnected'));
  }, 120_000);
});
