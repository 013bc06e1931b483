// The gRPC port advertises the widened HTTP/2 windows (src/api/grpc/flow-control.ts), seen by a
// plain HTTP/2 client: a stream may send STREAM_WINDOW_BYTES and a connection
// CONNECTION_WINDOW_BYTES before the server must read. It also fails if a grpc-js upgrade moves
// the internals flow-control.ts reaches into (Node's 64 KiB defaults would come back).
import * as http2 from 'node:http2';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES } from '../../../src/api/grpc/flow-control.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ models: { tiny: { seed: 1 } } });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('gRPC HTTP/2 flow control', () => {
  it('lets a client send a large request without waiting for the event loop', async () => {
    const session = http2.connect(`http://${h.address}`);
    try {
      await once(session, 'remoteSettings');
      expect(session.remoteSettings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
      // The connection window arrives as a WINDOW_UPDATE right after the settings.
      const deadline = Date.now() + 2000;
      while ((session.state.remoteWindowSize ?? 0) < CONNECTION_WINDOW_BYTES && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(session.state.remoteWindowSize).toBeGreaterThanOrEqual(CONNECTION_WINDOW_BYTES);
      expect(STREAM_WINDOW_BYTES).toBeGreaterThan(224 * 224 * 3 * 4); // one FP32 DenseNet-121 image
    } finally {
      session.close();
    }
  });

  it('still serves calls (a 600 KB FP32 request) with the widened windows', async () => {
    const data = Buffer.alloc(224 * 224 * 3 * 4);
    const reply = await new Promise<{ error: grpc.ServiceError | null }>((resolve) => {
      h.inference.ModelInfer(
        { model_name: 'tiny', inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '224', '224', '3'] }], raw_input_contents: [data] },
        (error: grpc.ServiceError | null) => resolve({ error }),
      );
    });
    // The tiny model takes 16×16: the request arrives whole and is refused for its shape.
    expect(reply.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
