// gRPC load: no well-kept Node load tool drives our protos (ghz is a Go binary outside npm), so
// the loops in loops.ts send unary calls through grpc-js, one channel (HTTP/2, calls
// multiplexed) as a typical client would.
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/api/grpc/proto.ts';
import type { Outcome, Send } from './loops.ts';
import type { Payloads } from './requests.ts';

export interface GrpcSender {
  send: Send;
  close(): void;
}

type Callback = (err: grpc.ServiceError | null) => void;
type Unary = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => grpc.ClientUnaryCall;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

export function grpcSender(kind: 'grpc-infer' | 'grpc-classify', address: string, payloads: Payloads, timeoutMs: number): GrpcSender {
  const { inference, densenet } = loadProtos();
  const { name, height, width, channels } = payloads.model;
  let client: grpc.Client;
  let call: Unary;
  let request: object;
  if (kind === 'grpc-infer') {
    const c = new inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    client = c;
    call = c.ModelInfer.bind(c) as unknown as Unary;
    const { pixels } = payloads;
    request = {
      model_name: name,
      inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', String(height), String(width), String(channels)] }],
      outputs: [{ name: 'logits' }],
      raw_input_contents: [Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)],
    };
  } else {
    const c = new densenet.v1.Classifier(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    client = c;
    call = c.Classify.bind(c) as unknown as Unary;
    request = { model_name: name, images: [payloads.image], top_k: 5 };
  }
  const metadata = new grpc.Metadata();
  const send: Send = (signal) => new Promise<Outcome>((resolve) => {
    const pending = call(request, metadata, { deadline: Date.now() + timeoutMs }, (err) => {
      signal.removeEventListener('abort', cancel);
      resolve(err ? { ok: false, cause: `grpc ${grpc.status[err.code] ?? err.code}` } : { ok: true });
    });
    const cancel = () => pending.cancel();
    signal.addEventListener('abort', cancel, { once: true });
  });
  return { send, close: () => client.close() };
}

/** Resolves once the channel is connected (the first call would otherwise pay for it). */
export async function waitForGrpc(address: string, timeoutMs: number): Promise<void> {
  const { inference } = loadProtos();
  const client = new inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  client.close();
}
